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
    from lm_collapse import corpus

    return corpus.lines("heldout")
