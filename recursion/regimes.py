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
  ``top_k`` random real documents. The select stage keeps every synthetic document; the driver
  writes the chosen documents themselves (they depend on the filter, not on sizes alone).

Draws use ``rng`` (seeded per generation by the driver), so a rerun builds the same sets.

:func:`training_parts` says which rows of which sources form the set (``("real", None)``,
``("selected", k)``, ``("fresh", g)``), from the sizes alone; the driver writes that as a reference
(``train_sources.json``, read back by :func:`recursion.artifacts.read_training_texts`), so an
accumulating pool is never copied.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

REGIMES = ("replace", "accumulate", "accumulate_subsample", "mix", "keep_real", "accumulate_select")
#: Pools of ``accumulate_select``.
POOLS = ("all", "real", "synthetic", "last")


Source = tuple[str, int | None]  # ("real", None), ("selected", k), ("fresh", g)
Part = tuple[Source, "list[int] | None"]  # a source and the rows taken from it (None: all, in order)


def real_share(n_real: int, fraction: float) -> int:
    """round(p N): the real documents of ``mix`` (fresh) and ``keep_real`` (original) generations."""
    return int(round(fraction * n_real))


def _rows(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """``min(k, n)`` distinct rows of ``n``, drawn uniformly, in order."""
    return np.sort(rng.choice(n, size=min(k, n), replace=False)).tolist()


def training_parts(
    regime: str,
    g: int,
    *,
    n_real: int,
    n_selected: Callable[[int], int],
    fraction: float = 0.1,
    rng: np.random.Generator,
) -> list[Part]:
    """The sources of generation ``g``'s training set and the rows taken from each, in order.

    ``n_real`` is the size N of the real set, ``n_selected(k)`` the number of documents kept after
    generation k. A ``("fresh", g)`` part is all of fold g: round(p N) fresh real documents.
    """
    if regime not in REGIMES or regime == "accumulate_select":
        raise ValueError(f"unknown regime {regime!r}; choose one of: {', '.join(REGIMES[:-1])} "
                         "(accumulate_select: selection_pool)")
    if g == 0:
        return [(("real", None), None)]
    if regime == "replace":
        return [(("selected", g - 1), None)]
    pool: list[Source] = [("real", None)] + [("selected", k) for k in range(g)]
    if regime == "accumulate":
        return [(src, None) for src in pool]
    if regime == "accumulate_subsample":
        sizes = [n_real] + [n_selected(k) for k in range(g)]
        offsets = np.cumsum([0] + sizes)
        rows = np.asarray(_rows(int(offsets[-1]), n_real, rng), dtype=np.int64)
        part_of = np.searchsorted(offsets, rows, side="right") - 1
        return [(src, (rows[part_of == i] - offsets[i]).tolist()) for i, src in enumerate(pool) if np.any(part_of == i)]
    n_keep_real = real_share(n_real, fraction)
    synthetic: Part = (("selected", g - 1), _rows(n_selected(g - 1), n_real - n_keep_real, rng))
    if regime == "keep_real":
        return [(("real", None), _rows(n_real, n_keep_real, rng)), synthetic]
    return [(("fresh", g), None), synthetic]



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
