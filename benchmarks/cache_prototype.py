"""The ``surf`` CLI with one prototype change (for ``bench_cache.py``; not the source).

``jax_persistent_cache_min_compile_time_secs = 0``: ``surf.common.enable_compilation_cache``
sets it to 0.1 s, so the ~25 small programs of a ``surf sample`` run (key
derivation, initial positions, eager array ops), each compiled in under 0.1 s,
are never written to the cache and are compiled again on every run.

    python benchmarks/cache_prototype.py sample --model cross ...   # like ``surf sample ...``
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    import jax

    import surf.common as common

    original = common.enable_compilation_cache

    def enable(path=None):
        folder = original(path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        return folder

    common.enable_compilation_cache = enable
    from surf.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
