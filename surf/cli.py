"""The ``surf`` command line. Recipes live in their own modules; no science here."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from surf.common import Interrupted, UserError

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), and no abbreviated options.

    (``--distrib`` must not pass for ``--distributed``: that flag is acted on
    before parsing, see :func:`main`.)
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        if args is not None:
            args = _join_negative_values(list(args))
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from surf import compare, demo, explore, grok, llc, report, sample, sgd

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
    grok.add_parser(sub)
    report.add_parser(sub)
    explore.add_parser(sub)
    llc.add_parser(sub)
    for name, command in sub.choices.items():
        if name != "report":
            _add_scale_arguments(command)
    return parser


def _add_scale_arguments(parser: argparse.ArgumentParser) -> None:
    from surf.common import positive_int

    group = parser.add_argument_group("scaling out (README: Scaling out)")
    group.add_argument("--devices", type=positive_int, default=None,
                       help="local devices per process to spread chains/runs over (default: all of them); "
                            "the draws do not depend on it")
    group.add_argument("--distributed", action="store_true",
                       help="multi-host: jax.distributed.initialize() from JAX_COORDINATOR_ADDRESS, "
                            "JAX_NUM_PROCESSES, JAX_PROCESS_ID or SLURM; process 0 writes the results")


def _join_distributed() -> None:
    """``--distributed``: start ``jax.distributed`` before anything touches a device.

    It has to come before the recipes are imported (BlackJAX computes
    constants at import time, which starts the backend).
    """
    import jax

    from samplers.placement import initialize

    try:
        initialize()
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"--distributed: could not join the run ({first}); set JAX_COORDINATOR_ADDRESS, "
                        "JAX_NUM_PROCESSES and JAX_PROCESS_ID, or launch under SLURM") from None
    # One process speaks for the run. C++ libraries (Gloo) print banners on
    # file descriptor 1: point it at stderr and give Python the real stdout.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    if jax.process_index() == 0:
        sys.stdout = os.fdopen(real_stdout, "w")
    else:
        os.close(real_stdout)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def _check_devices(args: argparse.Namespace) -> int | None:
    """``--devices`` within what this process sees; returns the device count to use."""
    import jax

    devices = getattr(args, "devices", None)
    available = jax.local_device_count()
    if devices is not None and devices > available:
        raise UserError(f"--devices {devices}: this process sees {available} local device(s) "
                        f"({jax.default_backend()}); choose 1..{available}")
    return devices


# Options whose value may start with "-" (a negative number list such as -1,1).
_NEGATIVE_VALUE_OPTIONS = ("--box", "--center", "--step-sizes")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--box -1,1`` -> ``--box=-1,1``: argparse would read ``-1,1`` as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if token in _NEGATIVE_VALUE_OPTIONS and len(value) > 1 and value[0] == "-" and value[1] in "0123456789.":
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _raise_interrupt(signum, frame):
    """SIGTERM behaves like Ctrl-C: runs stop between steps and keep their checkpoint."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("SURF_DEBUG"))
    if "--distributed" not in argv:  # (hosts may differ in cores; a multi-host run keeps JAX's default)
        from samplers.placement import use_host_cores

        use_host_cores()  # chains on every core of a CPU; before anything starts JAX's backend
    if "--distributed" in argv:
        try:
            _join_distributed()
        except UserError as err:
            sys.stderr.write(f"surf: error: {err}\n")
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        sys.stderr.write("surf: error: choose a command, e.g. surf sample (see surf --help)\n")
        return 2
    from surf.common import enable_compilation_cache

    enable_compilation_cache(args.cache_dir)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        from samplers.placement import use_devices

        with use_devices(_check_devices(args)):
            return int(args.func(args) or 0)
    except UserError as err:
        if debug:
            raise
        sys.stderr.write(f"surf {args.command}: error: {err}\n")
        return 2
    except Interrupted as err:
        sys.stderr.write(f"surf {args.command}: {err}\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write(f"surf {args.command}: interrupted; nothing was written\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
