import os

import pytest

# Offline everywhere: tests use only models and data shipped in packages or in the repo.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shakespeare_lines() -> list[str]:
    """Lines of at least 5 words from the shipped held-out plays (13,935 lines)."""
    from collapse_tasks import corpus

    return corpus.lines("heldout")


def _tiny_models():
    """``tests/tiny_models.py`` (tests/ is not a package; pytest runs with --import-mode=importlib)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("tiny_models", Path(__file__).with_name("tiny_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """Folder of a tiny GPT-2 (2 layers, 64 dims, BPE tokenizer with a chat template) trained on the
    shipped train plays: ``--model hf --model_args pretrained=<this>``. Built once per session (~20 s)."""
    return _tiny_models().build_tiny_gpt2(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_lora(tiny_gpt2, tmp_path_factory):
    """Folder of a LoRA adapter (peft, r=4 on c_attn) for :func:`tiny_gpt2`: ``peft=<this>``."""
    return _tiny_models().build_tiny_lora(tiny_gpt2, tmp_path_factory.mktemp("tiny_lora"))


@pytest.fixture
def project_wheel(tmp_path):
    """The project's wheel, built with this environment's setuptools (no index needed) into
    ``tmp_path/wheelhouse`` from a copy of the checkout's files (tracked, and untracked but not
    ignored): setuptools would pack whatever an earlier build left in the checkout's ``build/``.
    The build must print no warning (setuptools warns before it stops shipping a file, e.g. data
    in a folder it does not know as a package)."""
    import re
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    root, source = Path(__file__).resolve().parents[1], tmp_path / "source"
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True, text=True).stdout
    for name in filter(None, listed.split("\0")):
        if (root / name).is_file():  # not a tracked file deleted in the working tree
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, source / name)
    wheelhouse = tmp_path / "wheelhouse"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheelhouse),
                            str(source)], check=True, capture_output=True, text=True)
    output = built.stdout + built.stderr
    assert not re.search(r"\w*Warning: ", output), output
    [wheel] = wheelhouse.glob("lm_collapse-*-py3-none-any.whl")
    return wheel


@pytest.fixture
def fresh_venv(tmp_path):
    """``(python, site-packages)`` of a new virtualenv in ``tmp_path/venv`` whose site-packages holds
    links to this environment's installed packages, pip among them and lm-collapse's own install
    left out, so that pip installs lm-collapse offline. Links in the site-packages folder itself, not
    a ``.pth`` path: dill, under datasets' fingerprinting, pickles by value what lies outside site-packages."""
    import subprocess
    import sys
    import sysconfig
    from pathlib import Path

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                               capture_output=True, text=True).stdout.strip())
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().replace("-", "_").startswith(("lm_collapse", "__editable__")) and entry.suffix != ".pth":
            (site / entry.name).symlink_to(entry)
    return python, site
