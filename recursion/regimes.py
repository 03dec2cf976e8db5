"""Training-set regimes: what generation g trains on.

``real`` is generation 0's real training set (size N), ``fresh`` a sequence of disjoint folds of
further real documents (for ``mix``), ``selected[k]`` the synthetic documents kept after
generation k. For g = 0 every regime trains on ``real``. For g >= 1:

* ``replace`` — ``selected[g-1]`` only (Shumailov et al.; the fully synthetic loop).
* ``accumulate`` — ``real`` + ``selected[0..g-1]`` (Gerstgrasser et al.: data accumulates).
* ``accumulate_subsample`` — N documents drawn from that same pool (Gerstgrasser et al.'s fixed
  compute budget).
* ``mix`` — round(p N) documents of a *fresh* real fold g (disjoint from every other generation's,
  as Guo et al.) + up to N − round(p N) documents drawn from ``selected[g-1]``.
* ``keep_real`` — round(p N) documents of the original ``real`` set (Shumailov et al. keep 10%)
  + up to N − round(p N) documents drawn from ``selected[g-1]``.
* ``accumulate_select`` — ``filter.top_k`` documents chosen by the filter (under the model of
  generation g-1) from a pool that accumulates (Gambetta et al.): :func:`selection_pool` names it —
  ``all`` = ``real`` + every generation's synthetic documents, ``real`` only (their FRESH
  baseline), ``synthetic`` only (SYNALL), ``last`` = generation g-1's (SYNLAST). Generation 0 takes
  ``top_k`` random real documents. The select stage keeps every synthetic document.

Draws use ``rng`` (seeded per generation by the driver), so a rerun builds the same sets.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

REGIMES = ("replace", "accumulate", "accumulate_subsample", "mix", "keep_real", "accumulate_select")
#: Pools of ``accumulate_select``.
POOLS = ("all", "real", "synthetic", "last")


def _draw(texts: Sequence[str], k: int, rng: np.random.Generator) -> list[str]:
    k = min(k, len(texts))
    return [texts[i] for i in np.sort(rng.choice(len(texts), size=k, replace=False))]


def training_set(
    regime: str,
    g: int,
    *,
    real: Sequence[str],
    selected: Callable[[int], list[str]],
    fresh: Callable[[int, int], list[str]] | None = None,
    fraction: float = 0.1,
    rng: np.random.Generator,
) -> list[str]:
    """The training texts of generation ``g``.

    ``selected(k)`` loads the documents kept after generation k; ``fresh(g, n)`` returns n real
    documents of fold g, disjoint from ``real`` and from every other fold.
    """
    if regime not in REGIMES or regime == "accumulate_select":
        raise ValueError(f"unknown regime {regime!r}; choose one of: {', '.join(REGIMES[:-1])} "
                         "(accumulate_select: selection_pool)")
    if g == 0:
        return list(real)
    n = len(real)
    if regime == "replace":
        return selected(g - 1)
    pool = list(real) + [t for k in range(g) for t in selected(k)]
    if regime == "accumulate":
        return pool
    if regime == "accumulate_subsample":
        return _draw(pool, n, rng)
    n_real = int(round(fraction * n))
    synthetic = _draw(selected(g - 1), n - n_real, rng)
    if regime == "keep_real":
        return _draw(real, n_real, rng) + synthetic
    if fresh is None:
        raise ValueError("regime 'mix' needs a source of fresh real documents")
    return fresh(g, n_real) + synthetic


def selection_pool(pool: str, g: int, *, real: Sequence[str], selected: Callable[[int], list[str]]) -> list[str]:
    """The documents ``accumulate_select`` chooses generation ``g``'s training set from (g >= 1).

    Examples
    --------
    >>> syn = {0: ["s0"], 1: ["s1"]}.__getitem__
    >>> [selection_pool(p, 2, real=["r"], selected=syn) for p in POOLS]
    [['r', 's0', 's1'], ['r'], ['s0', 's1'], ['s1']]
    """
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; choose one of: {', '.join(POOLS)}")
    if pool == "real":
        return list(real)
    synthetic = [t for k in range(g - 1 if pool == "last" else 0, g) for t in selected(k)]
    return list(real) + synthetic if pool == "all" else synthetic
