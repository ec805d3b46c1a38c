"""Shared fixtures.

The test folders are packages (``tests/__init__.py`` and one per subfolder) so
that ``tests/models`` and ``tests/surf`` can never shadow the source packages
``models`` and ``surf`` of the same names on ``sys.path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def surf_env(tmp_path_factory) -> dict[str, str]:
    """Environment for ``surf`` / example subprocesses.

    A private JAX compilation cache (``SURF_CACHE_DIR``), no debug tracebacks,
    and the CPU backend (a machine with a GPU but without CUDA jaxlib would
    otherwise print a fallback warning on stderr, which the one-line-error
    checks would count).
    """
    env = dict(os.environ)
    env["SURF_CACHE_DIR"] = str(tmp_path_factory.mktemp("jax_cache"))
    env.pop("SURF_DEBUG", None)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture(autouse=True)
def _keep_xla_flags():
    """``surf.cli.main`` run in-process may set ``XLA_FLAGS`` (``use_host_cores``) when it is
    the first to touch JAX; put it back, so no test depends on the order tests ran in."""
    before = os.environ.get("XLA_FLAGS")
    yield
    if before is None:
        os.environ.pop("XLA_FLAGS", None)
    else:
        os.environ["XLA_FLAGS"] = before
