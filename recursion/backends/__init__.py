"""Model back ends, by the name a config's ``model.backend`` gives them.

Each value is ``"module:Class"``, imported only when that back end is used (the Hugging Face ones
pull in torch and transformers).
"""
from __future__ import annotations

import importlib

BACKENDS = {
    "ngram": "recursion.backends.ngram:NgramBackend",
    "hf_scratch": "recursion.backends.hf:HFScratchBackend",
    "hf_finetune": "recursion.backends.hf:HFFinetuneBackend",
}


def backend_class(name: str) -> type:
    """The back end class registered as ``name``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown back end {name!r}; choose one of: {', '.join(BACKENDS)}")
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)
