"""``surf report``: one self-contained HTML page over result files and folders."""

from __future__ import annotations

import argparse
import time

from surf.common import UserError

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML report (warnings, ArviZ summary and plots, provenance)",
        description="Write one HTML file over result files (sample/sgd/compare netCDF) and "
        "folders (compare, sgd sweep, or any folder holding them, such as the demo's). "
        "Warnings come first, then ArviZ's summary, the figures and each result's provenance; "
        "figures are embedded, so the file opens offline.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="result file or folder, repeatable")
    p.add_argument("--out", default="report.html", help="HTML file to write (default report.html)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.add_argument(
        "--row-plots",
        action="store_true",
        help="also draw ArviZ plots and the toy figures for every sampler of a compare folder (slower)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from diagnostics.report import ReportError, write_report

    if not str(args.out).lower().endswith((".html", ".htm")):
        raise UserError(f"--out names an HTML file ending in .html, got {args.out}")
    start = time.perf_counter()
    try:
        out = write_report(args.paths, args.out, force=args.force, row_plots=args.row_plots)
    except ReportError as err:
        raise UserError(str(err)) from None
    if not args.quiet:
        print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0
