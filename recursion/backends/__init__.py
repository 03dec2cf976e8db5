"""Model back ends, by the name a config's ``model.backend`` gives them.

Each entry of :data:`BACKENDS` is ``"module:Class"``, imported only when that back end is used
(the Hugging Face ones pull in torch and transformers). The class is the plug-in
(:class:`recursion.plugins.Plugin`): its ``config_class`` is the dataclass of the ``model:`` block,
its ``experiment_problems`` the check; it implements :class:`recursion.backends.base.Backend`.
"""
from __future__ import annotations

from ..plugins import Registry

BACKENDS = Registry("back end", "model.backend", lazy={
    "ngram": "recursion.backends.ngram:NgramBackend",
    "hf_scratch": "recursion.backends.hf:HFScratchBackend",
    "hf_finetune": "recursion.backends.hf:HFFinetuneBackend",
})


def backend_class(name: str) -> type:
    """The back end class registered as ``name``."""
    return BACKENDS[name].run
