"""Optional extras of the tasks, checked when lm-eval loads a task: before any generation.

A task whose metrics need an extra calls :func:`require` in its ``custom_dataset`` hook, so a
missing package is one line saying what to install, seconds after start — not an ``ImportError``
at aggregation, after every generation is done.
"""
from __future__ import annotations

import importlib.util

#: extra of ``lm-collapse`` → (module it provides, what it is called)
EXTRAS = {
    "embeddings": ("sentence_transformers", "sentence-transformers"),
    "spacy": ("spacy", "spaCy"),
}


class MissingExtra(ImportError):
    """An optional extra a task needs is not installed; the message says what to install."""


def missing(*extras: str) -> list[str]:
    """The extras among ``extras`` whose package cannot be imported.

    Examples
    --------
    >>> missing("spacy", "embeddings")
    []
    """
    return [e for e in extras if importlib.util.find_spec(EXTRAS[e][0]) is None]


def require(tasks: str, *extras: str) -> None:
    """:class:`MissingExtra` naming ``tasks`` and the ``pip install`` line when an extra is missing."""
    lacking = missing(*extras)
    if lacking:
        what = " and ".join(EXTRAS[e][1] for e in lacking)
        raise MissingExtra(f"{what} not installed (needed by {tasks}): pip install 'lm-collapse[{','.join(lacking)}]'")
