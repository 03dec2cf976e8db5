"""Selection filters: which synthetic documents are handed to the next generation.

A filter is a function ``(texts, *, n_keep, model, rng) -> indices`` registered under a name
with :func:`register_filter`; the driver computes ``n_keep`` from ``filter.keep`` (a fraction of
the pool) or ``filter.top_k`` (a count) and writes the kept documents, in pool order.

* ``none`` — keep everything.
* ``random`` — a uniformly random subset (the control for any selective filter).
* ``surprise`` — the documents with the *highest* perplexity under the current model: the seed's
  Lab 1 "keep the most surprising 30%", and Gambetta et al.'s surplexity selection (top-k of the
  pool by perplexity under the current model).
* ``low_surprise`` — the lowest perplexity: the ablation, which should speed collapse up.
* ``word_entropy`` — the highest Shannon entropy of the document's word distribution (Gambetta
  et al.'s word-entropy baseline).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from metrics import ngram_entropy

FilterFn = Callable[..., np.ndarray]
FILTERS: dict[str, FilterFn] = {}


def register_filter(name: str) -> Callable[[FilterFn], FilterFn]:
    """Decorator: make a selection function available as ``filter.name: <name>``."""

    def deco(fn: FilterFn) -> FilterFn:
        FILTERS[name] = fn
        return fn

    return deco


def _top(scores: np.ndarray, n_keep: int) -> np.ndarray:
    """Indices of the ``n_keep`` largest scores (ties broken by position), in pool order."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=float)))
    return np.sort(order[:n_keep])


@register_filter("none")
def keep_all(texts: Sequence[str], *, n_keep: int, model=None, rng=None) -> np.ndarray:
    return np.arange(len(texts))


@register_filter("random")
def keep_random(texts: Sequence[str], *, n_keep: int, model=None, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(len(texts), size=n_keep, replace=False))


@register_filter("surprise")
def keep_surprising(texts: Sequence[str], *, n_keep: int, model, rng=None) -> np.ndarray:
    return _top(model.perplexity(texts), n_keep)


@register_filter("low_surprise")
def keep_unsurprising(texts: Sequence[str], *, n_keep: int, model, rng=None) -> np.ndarray:
    return _top(-np.asarray(model.perplexity(texts)), n_keep)


def word_entropy(text: str) -> float:
    """Shannon entropy (bits) of the whitespace-word distribution of one document."""
    return ngram_entropy([text.split()], 1)


@register_filter("word_entropy")
def keep_high_entropy(texts: Sequence[str], *, n_keep: int, model=None, rng=None) -> np.ndarray:
    return _top(np.array([word_entropy(t) for t in texts]), n_keep)


def select(name: str, texts: Sequence[str], *, keep: float, top_k: int | None, model, rng) -> np.ndarray:
    """Run filter ``name``; returns the kept indices in pool order."""
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; choose one of: {', '.join(FILTERS)}")
    n_keep = min(top_k, len(texts)) if top_k is not None else int(round(keep * len(texts)))
    if name == "none" and top_k is None and keep >= 1.0:
        n_keep = len(texts)
    if name == "none" and n_keep < len(texts):
        raise ValueError("filter 'none' keeps every document; use 'random' to subsample")
    return np.asarray(FILTERS[name](list(texts), n_keep=max(n_keep, 1) if texts else 0, model=model, rng=rng), dtype=int)
