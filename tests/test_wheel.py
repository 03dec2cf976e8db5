"""The quick demo end to end, as a newcomer runs it (smaller), from the project's wheel installed into a fresh
environment and run in a folder outside the checkout: the installed package, the task YAMLs and the
Shakespeare corpus inside the wheel, the configs it installs under ``<prefix>/share/lm-collapse/configs``
(setup.cfg's ``data_files``), the ``lm-collapse`` console script, and how the demo records its sizes.

Offline, as tests/test_wheelhouse.py: the ``project_wheel`` and ``fresh_venv`` fixtures (tests/conftest.py)
build the wheel with this environment's setuptools and link this environment's requirements into the
new environment, so pip installs the wheel alone with no index.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow


def test_the_installed_wheel_runs_the_quick_demo_outside_the_checkout(tmp_path, project_wheel, fresh_venv):
    python, site = fresh_venv
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(project_wheel)], env=env,
                   check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([python, "-c", "import lm_collapse; print(lm_collapse.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(site)  # the installed copy, not the checkout (nor its editable install)

    proc = subprocess.run([python.parent / "lm-collapse", "demo", "--quick", "--out", "demo"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = work / "demo"
    log = (out / "demo.log").read_text()
    for name in ("lab1_bigram", "tiny_gpt2_regimes"):
        assert f"=== {name}: {python.parent.parent}/share/lm-collapse/configs/{name}.yaml with" in log  # the wheel's configs
        report = out / name / "report" / "report.md"
        assert report.exists() and f"demo/{name}/report/report.md" in proc.stdout
        text = report.read_text()
        assert "ppl_shakespeare/bits_per_byte" in text and "## Figures" in text and "**Sizes:** reduced" in text
        for figure in ("quality", "diversity", "probes"):
            assert (out / name / "report" / f"{figure}.png").stat().st_size > 10_000
        config = yaml.safe_load(next((out / name).glob("*/seed_0/config.yaml")).read_text())
        assert "generations=2" in config["overrides"] and "seeds=[0]" in config["overrides"]
    assert "Demo finished" in proc.stdout and "gen 0 →" in proc.stdout and "sizes reduced by the demo" in proc.stdout
    assert "seeds [0, 1, 2] → [0]" in proc.stdout
    assert "pure_synthetic" in proc.stdout and "accumulate_subsample" in proc.stdout and "paired by seed" in proc.stdout
    # the console holds progress and the key tables; the libraries' output is in the log, without the lm-eval hint
    # 8 replica lines (1 seed), the key and difference tables
    assert len(proc.stdout.splitlines()) < 140 and proc.stderr.strip() == ""
    # the driver's stage lines (those Ray's log deduplication prints verbatim) are in the log
    assert re.search(r"\[\w+/seed_0\] gen_0\d/\w+ done in", log) and "Custom kwargs can be passed" not in log
