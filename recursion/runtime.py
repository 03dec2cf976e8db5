"""How many CPU threads torch may use: the cores actually free, unless ``runtime.threads`` says.

The default is the cores this process may run on (``os.sched_getaffinity``) minus the load of
*other* processes, never more threads than cores and at least one. The load of others is the
1-minute load average (``os.getloadavg``) minus this process's own recent CPU use (CPU seconds
per wall second since the previous call, or since this module was imported), so a run does not
count its own work as someone else's. On a shared 2-core laptop beside one busy process that gives
1 thread, not 2 threads fighting for 1 core; alone, both cores. ``OMP_NUM_THREADS``, when set (a
Ray task's CPUs in ``lm-collapse sweep``, a job scheduler's share), caps the default.
"""
from __future__ import annotations

import math
import os
import time

# (wall clock, this process's CPU seconds, its CPU use in cores over the interval before) at the last look
_last = (time.monotonic(), time.process_time(), 0.0)
_MIN_INTERVAL = 5.0  # seconds; a shorter interval repeats the previous estimate


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API on this platform
        return max(1, os.cpu_count() or 1)


def own_load() -> float:
    """This process's CPU use, in cores, since the previous call (or since import); within
    ``_MIN_INTERVAL`` seconds of it, the previous estimate (a short interval says little)."""
    global _last
    wall, cpu = time.monotonic(), time.process_time()
    elapsed = wall - _last[0]
    if elapsed < _MIN_INTERVAL:
        return _last[2]
    _last = (wall, cpu, max(0.0, (cpu - _last[1]) / elapsed))
    return _last[2]


def free_cores(*, cores: int | None = None, load: float | None = None, own: float | None = None) -> int:
    """``round(cores − max(0, load − own))``, clipped to ``[1, cores]``.

    Parameters
    ----------
    cores : int, optional
        Usable cores; default :func:`usable_cores`.
    load : float, optional
        1-minute load average of the machine; default ``os.getloadavg()[0]`` (0 where unavailable).
    own : float, optional
        The part of ``load`` that is this process; default :func:`own_load`.

    Examples
    --------
    >>> free_cores(cores=2, load=0.1, own=0.0), free_cores(cores=2, load=1.2, own=0.0), free_cores(cores=2, load=5.0, own=0.0)
    (2, 1, 1)
    >>> free_cores(cores=2, load=2.1, own=2.0)  # the load is this process's own
    2
    """
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    own = own_load() if own is None else own
    others = max(0.0, load - own)
    return int(min(cores, max(1, math.floor(cores - others + 0.5))))


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (``runtime.threads``), else to :func:`free_cores`,
    at most ``OMP_NUM_THREADS`` when that is set (a scheduler's share: a Ray task's CPUs); returns
    the number set (nothing is set when torch is not installed)."""
    n = int(threads) if threads else min(free_cores(), _omp_cap() or usable_cores())
    try:
        import torch
    except ImportError:
        return n
    torch.set_num_threads(n)
    return n


def _omp_cap() -> int | None:
    """``OMP_NUM_THREADS`` as a positive integer, else ``None``."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None
