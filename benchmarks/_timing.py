"""Timing helper shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""
import time


def best_time(fn, repeats):
    """``(best wall time over repeats, last result)`` of calling ``fn()``."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result
