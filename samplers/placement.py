"""Where chains run: devices, processes, and the one rule that keeps answers equal.

A run of ``C`` chains on ``D`` devices pads ``C`` up to a multiple of ``D``
and gives device ``g`` (numbered across all processes, process by process)
the contiguous block of chains ``[g * per, (g + 1) * per)``. Every device
runs the same single-device program on its block, dispatched from its own
thread (see below), and the blocks form one global ``jax.Array`` whose
``NamedSharding`` has a ``chains`` mesh axis (:func:`global_chains`).

Why not one SPMD-partitioned ``jit`` over the mesh? Measured: XLA compiles a
partitioned program (``num_partitions > 1``) through a different pipeline
from a one-device program, and the float rounding differs at the last bit
(for example in dual averaging). Samplers with adaptation feed that back,
so 1 and 4 devices gave different draws. Running the one-device program on
each block gives the same bits on any device count (tested), at the cost of
one compilation per device.

On a CPU, JAX shows one device for all cores, and a sampler's program (a
loop of small steps) keeps one core busy. :func:`use_host_cores` asks XLA
for one host device per core (``--xla_force_host_platform_device_count``;
the CLI does this at start-up), and the run loop dispatches each device's
block from its own thread, because a CPU device executes a program on the
thread that dispatched it. Chains then run on every core, with the same
draws as on one. On a CPU with AVX-512 it also asks XLA's code generator
for 512-bit vectors (``--xla_cpu_prefer_vector_width=512``; XLA's default
is 256): the run loop's steps are elementwise work over a device's chains,
and the seed's SGD measured 1.4x faster with them, the other benchmarks
unchanged (``benchmarks/RESULTS.md``). The toy models' draws are the same
bits with either width (tested), but a matrix product may round
differently in its last bit, so, as across CPUs, a run's bits can depend
on the width: set ``--xla_cpu_prefer_vector_width`` in ``XLA_FLAGS`` to
choose it yourself.

Several hosts: :func:`initialize` starts ``jax.distributed`` (coordinator,
process count and id from the environment, or detected from SLURM / Open
MPI by JAX). Each process runs the blocks of its local devices; results are
joined with :func:`jax.experimental.multihost_utils.process_allgather`, so
every process holds the whole run and only process 0 writes files
(:func:`is_writer`). Every process must see the same number of local
devices, pass the same ``--devices`` and, to resume, read the same
checkpoint (a shared filesystem).

Limits: bitwise equality across device counts is tested on CPU devices. On
GPUs, XLA may autotune a different matrix-product algorithm for a different
block shape, so a network's draws could differ in the last bits between
device counts there (not measured: no GPU was available).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

__all__ = [
    "ChainLayout",
    "chain_layout",
    "use_devices",
    "use_host_cores",
    "default_devices",
    "initialize",
    "is_writer",
    "gather",
    "global_chains",
]

_DEFAULT_DEVICES: list[int | None] = [None]


def default_devices() -> int | None:
    """The device count runs use when none is given (``None``: every local device)."""
    return _DEFAULT_DEVICES[-1]


@contextlib.contextmanager
def use_devices(devices: int | None):
    """Within the block, runs use ``devices`` local devices per process by default."""
    if devices is not None and int(devices) < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    _DEFAULT_DEVICES.append(devices)
    try:
        yield
    finally:
        _DEFAULT_DEVICES.pop()


_HOST_FLAG = "--xla_force_host_platform_device_count"
_VECTOR_FLAG = "--xla_cpu_prefer_vector_width"


def use_host_cores(count: int | None = None) -> int | None:
    """One CPU device per core (``count``: that many), for runs in this process.

    Sets ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``, which
    XLA reads when JAX starts its CPU backend: call it before anything asks
    JAX for a device (the CLI calls it first thing; from Python, before the
    first run, as with ``numpyro.set_host_device_count``). A count already
    in ``XLA_FLAGS`` or ``JAX_NUM_CPU_DEVICES`` is the user's and is kept.
    On a CPU with AVX-512 it also asks for 512-bit vectors, unless
    ``XLA_FLAGS`` already names a vector width (see the module docstring).
    Accelerators are unaffected (the host devices are not the default
    backend there). Returns the count set, or ``None`` when the user had set
    one (the vector width may still have been added) or JAX's backend had
    already started (too late: nothing changes).
    """
    if _backend_started():
        return None  # after start-up it is too late
    flags = os.environ.get("XLA_FLAGS", "")
    if _VECTOR_FLAG not in flags and _has_avx512():
        flags = f"{flags} {_VECTOR_FLAG}=512".strip()
        os.environ["XLA_FLAGS"] = flags
    if _HOST_FLAG in flags or os.environ.get("JAX_NUM_CPU_DEVICES"):
        return None  # the user's count (either spelling) wins
    if count is None:
        count = usable_cores()
    count = max(1, int(count))
    os.environ["XLA_FLAGS"] = f"{flags} {_HOST_FLAG}={count}".strip()
    return count


def _has_avx512(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has AVX-512 (Linux; elsewhere: assume not)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (containers)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def _backend_started() -> bool:
    try:
        from jax._src.xla_bridge import backends_are_initialized
    except ImportError:  # a JAX without it: assume not started
        return False
    return bool(backends_are_initialized())


@dataclass(frozen=True)
class ChainLayout:
    """How ``num_chains`` chains are laid out on devices (see the module docstring)."""

    num_chains: int
    per_device: int
    devices: tuple  # this process's devices, in block order
    first_device: int  # global index of devices[0]
    num_devices: int  # across all processes

    @property
    def padded(self) -> int:
        return self.per_device * self.num_devices

    @property
    def local_slice(self) -> slice:
        start = self.first_device * self.per_device
        return slice(start, start + self.per_device * len(self.devices))

    def blocks(self, array):
        """This process's rows of a global ``(padded, ...)`` array, one piece per device."""
        rows = self.local_slice
        return [
            jax.device_put(array[rows.start + i * self.per_device : rows.start + (i + 1) * self.per_device], d)
            for i, d in enumerate(self.devices)
        ]


def chain_layout(num_chains: int, devices: int | None = None) -> ChainLayout:
    """Lay ``num_chains`` chains on ``devices`` local devices per process.

    ``devices=None`` takes :func:`default_devices` (all local devices unless
    set). No more devices are used than there are chains to fill them.
    """
    if devices is None:
        devices = default_devices()
    available = jax.local_device_count()
    n = available if devices is None else int(devices)
    if n < 1 or n > available:
        raise ValueError(f"devices must be between 1 and {available} (the local devices), got {devices}")
    processes = jax.process_count()
    n = max(1, min(n, math.ceil(num_chains / processes)))
    total = n * processes
    per = math.ceil(num_chains / total)
    return ChainLayout(
        num_chains=int(num_chains),
        per_device=per,
        devices=tuple(jax.local_devices()[:n]),
        first_device=jax.process_index() * n,
        num_devices=total,
    )


def gather(tree: Any) -> Any:
    """Host arrays of this process's chains -> the whole run's, on every process."""
    tree = jax.device_get(tree)
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.device_get(multihost_utils.process_allgather(tree, tiled=True))


def global_chains(layout: ChainLayout, blocks: list) -> Any:
    """Per-device blocks -> one ``jax.Array`` per leaf over a ``chains`` mesh axis.

    For users who keep working on device (the run loop itself moves blocks
    to the host): the result is sharded exactly as the blocks were placed.
    """
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh_devices = [d for p in range(jax.process_count()) for d in _process_devices(p)[: len(layout.devices)]]
    mesh = Mesh(np.array(mesh_devices), ("chains",))
    sharding = NamedSharding(mesh, PartitionSpec("chains"))

    def join(*pieces):
        shape = (layout.padded, *pieces[0].shape[1:])
        return jax.make_array_from_single_device_arrays(shape, sharding, list(pieces))

    return jax.tree.map(join, *blocks)


def _process_devices(process: int) -> list:
    return sorted((d for d in jax.devices() if d.process_index == process), key=lambda d: d.id)


def is_writer() -> bool:
    """Only process 0 writes result files and checkpoints."""
    return jax.process_index() == 0


def initialize() -> dict[str, int]:
    """Start ``jax.distributed`` for a multi-host run (``surf --distributed``).

    ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES``
    and ``JAX_PROCESS_ID`` are read when set; otherwise JAX detects SLURM or
    Open MPI. Must run before anything touches a JAX device.
    """
    kwargs: dict[str, Any] = {}
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        kwargs["coordinator_address"] = os.environ["JAX_COORDINATOR_ADDRESS"]
    for env, name in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
        if os.environ.get(env):
            try:
                kwargs[name] = int(os.environ[env])
            except ValueError:
                raise ValueError(f"{env} must be an integer, got {os.environ[env]!r}") from None
    jax.distributed.initialize(**kwargs)
    return {"process_index": jax.process_index(), "process_count": jax.process_count()}
