"""Tasks check their optional extras when lm-eval loads them (their ``custom_dataset`` hooks),
so a missing package is an install hint before any generation, not an ImportError after it."""
import importlib
import re
import sys

import pytest

from collapse_tasks.extras import MissingExtra, missing, require


@pytest.mark.parametrize("hook, module, hint", [
    ("vs_utils.direct_prompts", "sentence_transformers", "sentence-transformers not installed (needed by the collapse_vs tasks): "
                                                         "pip install 'lm-collapse[embeddings]'"),
    ("vs_utils.multi_prompts", "sentence_transformers", "pip install 'lm-collapse[embeddings]'"),
    ("gen_utils.shakespeare_prompts_full", "spacy", "spaCy not installed (needed by collapse_gen_shakespeare_full): "
                                                    "pip install 'lm-collapse[spacy]'"),
    ("gen_utils.shakespeare_prompts_full", "sentence_transformers", "pip install 'lm-collapse[embeddings]'"),
])
def test_hooks_check_their_extras(hook, module, hint, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    module_name, _, name = hook.partition(".")
    with pytest.raises(MissingExtra, match=re.escape(hint)):
        getattr(importlib.import_module(f"collapse_tasks.{module_name}"), name)()


def test_both_missing_name_both(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    assert missing("spacy", "embeddings") == ["spacy", "embeddings"]
    with pytest.raises(MissingExtra, match=re.escape("spaCy and sentence-transformers not installed (needed by X): "
                                                     "pip install 'lm-collapse[spacy,embeddings]'")):
        require("X", "spacy", "embeddings")
