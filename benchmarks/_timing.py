"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""
import time
from pathlib import Path


def best_time(fn, repeats):
    """``(best wall time over repeats, last result)`` of calling ``fn()``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def results_file(name: str, quick: bool) -> Path:
    """Where a benchmark writes its figures: ``benchmarks/results/NAME`` for a full run (the committed
    numbers the README cites), ``bench_out/NAME`` (git-ignored) for a ``--quick`` smoke run."""
    root = Path(__file__).resolve().parent.parent
    path = root / "bench_out" / name if quick else root / "benchmarks" / "results" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
