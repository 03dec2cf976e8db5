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
