"""``benchmarks/gpu_check.sh``'s contract, without running its steps: bad arguments are one line and
exit 2, nothing lands outside the output folder's few files, and a run that measured nothing exits 1.
(The install from a wheelhouse with ``--no-index`` is ``tests/test_wheelhouse.py``, marked slow.)"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"


def gpu_check(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("PY", "WHEELHOUSE", "RUNS", "MODEL", "VIRTUAL_ENV")}
    return subprocess.run(["bash", str(SCRIPT), *args], env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, env, message", [
    ((), {}, "give the output folder"),
    (("--step", "bogus", "OUT"), {}, "unknown step bogus"),
    (("--fast", "OUT"), {}, "unknown option --fast"),
    (("OUT",), {"RUNS": "OUT/runs"}, "must not be inside OUT"),
    (("OUT",), {"PY": "/no/such/python"}, "no Python at PY=/no/such/python"),
    (("OUT",), {"WHEELHOUSE": "/no/such/folder"}, "WHEELHOUSE=/no/such/folder is not a folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, env, message):
    args = tuple(str(tmp_path / a) if a == "OUT" else a for a in args)
    env = {k: str(tmp_path / v) if v.startswith("OUT") else v for k, v in env.items()}
    done = gpu_check(*args, **env)
    assert done.returncode == 2 and message in done.stderr.splitlines()[0], done.stderr


def test_a_run_that_measured_nothing_exits_1_and_keeps_out_small(tmp_path):
    out = tmp_path / "out"
    done = gpu_check("--tiny", str(out), PY="/bin/false", RUNS=str(tmp_path / "runs"))
    assert done.returncode == 1 and "nothing was measured" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "failures.txt", "steps.txt"]
    assert "bench_vllm: rc=1" in (out / "steps.txt").read_text() and "lab2: rc=1" in (out / "steps.txt").read_text()
    assert (tmp_path / "runs/logs/lab2.log").exists()  # logs in RUNS, never in OUT
