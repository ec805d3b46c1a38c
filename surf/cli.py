"""The ``surf`` command line. Recipes live in their own modules; no science here."""

from __future__ import annotations

import argparse
import os
import sys

from surf.common import UserError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2)."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from surf import compare, demo, sample, sgd

    parser = _Parser(
        prog="surf",
        description="gradient-surfing: optimizers and samplers as dynamics on a loss "
        "landscape, measured near its singularities.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--cache-dir", help="JAX compilation cache folder")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sample.add_parser(sub)
    sgd.add_parser(sub)
    compare.add_parser(sub)
    demo.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or bool(os.environ.get("SURF_DEBUG"))
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from surf.common import enable_compilation_cache

    enable_compilation_cache(args.cache_dir)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        if debug:
            raise
        sys.stderr.write(f"surf {args.command}: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"surf {args.command}: interrupted; nothing was written\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
