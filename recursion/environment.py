"""The environment a replica runs in, written to its ``environment.json`` at every start.

A torch model's numbers depend on the CPU's kernels, the thread count and the library versions
(an n-gram model's do not), so a report states the environment its numbers came from. The record
(:func:`environment`) holds the package versions (:func:`recursion.rundir.versions`: torch,
transformers, lm_eval, numpy, ...), the CPU model, the cores this process may use, the torch
threads the driver set, ``OMP_NUM_THREADS``, the platform and any CUDA devices. A run resumed in
another environment keeps the earlier records under ``previous``, oldest first.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from .artifacts import ENVIRONMENT, atomic_write_text
from .rundir import versions
from .runtime import usable_cores


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def accelerators() -> list[str]:
    """Names of the CUDA devices torch sees (none without torch, or when torch was never imported)."""
    torch = sys.modules.get("torch")
    try:
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch else []
    except (RuntimeError, AssertionError):
        return []


def environment(threads: int) -> dict:
    """This process's environment, with ``threads``, the torch threads the driver set."""
    return {"versions": versions(), "cpu": cpu_model(), "cores": usable_cores(), "torch_threads": threads,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "platform": platform.platform(),
            "accelerators": accelerators()}


def write_environment(replica: str | os.PathLike, threads: int) -> dict:
    """Write ``replica/environment.json`` (atomically); an earlier record that differs moves to ``previous``."""
    path = Path(replica) / ENVIRONMENT
    record = environment(threads)
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = {}
    earlier = earlier if isinstance(earlier, dict) else {}
    previous = list(earlier.pop("previous", None) or [])
    if earlier and earlier != record:
        previous.append(earlier)
    doc = {**record, **({"previous": previous} if previous else {})}
    atomic_write_text(path, json.dumps(doc, indent=2))
    return doc
