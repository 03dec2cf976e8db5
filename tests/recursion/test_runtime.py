"""Torch threads default to the cores other processes leave free (load average mocked)."""
import os

import pytest
import torch

from recursion import runtime


@pytest.fixture
def machine(monkeypatch):
    """A 2-core machine whose load average the test sets; this process counted as idle."""
    state = {"load": 0.0}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (state["load"], 0.0, 0.0))
    monkeypatch.setattr(runtime, "own_load", lambda: 0.0)
    threads = torch.get_num_threads()
    yield state
    torch.set_num_threads(threads)


@pytest.mark.parametrize("load, expected", [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (1.4, 1), (7.5, 1)])
def test_free_cores_follow_the_load_of_others(machine, load, expected):
    machine["load"] = load
    assert runtime.free_cores() == expected


def test_own_load_is_not_counted_as_others():
    assert runtime.free_cores(cores=2, load=2.0, own=2.0) == 2  # a run alone, busy on both cores
    assert runtime.free_cores(cores=2, load=3.0, own=2.0) == 1  # the same beside one busy process
    assert runtime.free_cores(cores=4, load=1.0, own=3.0) == 4  # own estimate above the load: nobody else
    assert runtime.free_cores(cores=8, load=0.0, own=0.0) == 8  # never more than the cores, never fewer than 1


def test_set_threads_default_and_override(machine):
    machine["load"] = 1.1
    assert runtime.set_threads(None) == 1 and torch.get_num_threads() == 1
    machine["load"] = 0.0
    assert runtime.set_threads(None) == 2 and torch.get_num_threads() == 2
    assert runtime.set_threads(3) == 3 and torch.get_num_threads() == 3  # runtime.threads is obeyed as given


def test_omp_num_threads_caps_the_default(machine, monkeypatch):
    machine["load"] = 0.0  # both cores free, but a scheduler (a Ray task's num_cpus) gave this process one
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert runtime.set_threads(None) == 1 and torch.get_num_threads() == 1
    assert runtime.set_threads(2) == 2  # runtime.threads still wins
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    assert runtime.set_threads(None) == 2


def test_a_sweep_task_passes_its_overrides_and_cpu_share(monkeypatch, tmp_path):
    import recursion.driver
    from recursion.sweep import _run_one

    seen = {}

    def fake_run_replica(exp, path, *, seed, arm, overrides, **locking):
        seen.update(overrides=overrides, omp=os.environ.get("OMP_NUM_THREADS"))

    monkeypatch.setattr(recursion.driver, "run_replica", fake_run_replica)
    monkeypatch.setenv("OMP_NUM_THREADS", "9")  # restored after the test
    marker = tmp_path / ".sweep-marker"  # the file each node must see (shared storage)
    marker.write_text("")
    assert _run_one(None, "x", 0, "a", ["generations=2"], 3, str(marker))[0] == "done"
    assert seen == {"overrides": ["generations=2"], "omp": "3"}  # recorded in config.yaml as a run records them


def test_own_load_measures_this_process(monkeypatch):
    clock = {"wall": 100.0, "cpu": 10.0}
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(runtime.time, "process_time", lambda: clock["cpu"])
    monkeypatch.setattr(runtime, "_last", (100.0, 10.0, 0.0))
    clock.update(wall=120.0, cpu=50.0)  # 40 CPU seconds in 20 s: two cores busy
    assert runtime.own_load() == pytest.approx(2.0)
    clock.update(wall=121.0, cpu=50.1)  # too short an interval to say: the previous estimate
    assert runtime.own_load() == pytest.approx(2.0)
    clock.update(wall=131.0, cpu=50.5)  # idle since
    assert runtime.own_load() == pytest.approx(0.5 / 11)
