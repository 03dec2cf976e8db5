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
  ``top_k`` random real documents. The select stage keeps every synthetic document; the regime
  writes the chosen documents themselves (they depend on the filter, not on sizes alone).

Each regime is registered in :data:`REGIMES` (:class:`recursion.plugins.Registry`) with the
dataclass of its ``regime:`` block (``fraction`` for ``mix`` / ``keep_real``, ``pool`` for
``accumulate_select``) and a function ``(exp, g, gdir, real, *, rng, model, gen0_model) -> files``
that writes generation g's training set into ``gdir`` (``model``, ``gen0_model``: generation g-1's
and generation 0's models as :class:`recursion.filters.Lazy`, loaded by ``.load()`` or by
:func:`~recursion.filters.select`; :func:`data_stage` runs it).

Draws use ``rng`` (seeded per generation by the driver), so a rerun builds the same sets.

:func:`training_parts` says which rows of which sources form the set (``("real", None)``,
``("selected", k)``, ``("fresh", g)``), from the sizes alone; :func:`write_parts` writes that as a reference
(``train_sources.json``, read back by :func:`recursion.artifacts.read_training_texts`), so an
accumulating pool is never copied.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from .artifacts import (
    FRESH,
    HELDOUT,
    SELECTED,
    TRAIN,
    TRAIN_SOURCES,
    gen_dir,
    gen_name,
    read_texts,
    write_jsonl,
    write_train_sources,
)
from .backends.base import failing
from .config import RegimeConfig
from .filters import select
from .plugins import Registry

REGIMES = Registry("regime", "regime.name", options=RegimeConfig)
#: Regimes whose training set is rows of earlier sets, from the sizes alone (:func:`training_parts`).
PART_REGIMES = ("replace", "accumulate", "accumulate_subsample", "mix", "keep_real")
#: Pools of ``accumulate_select``.
POOLS = ("all", "real", "synthetic", "last")


@dataclass(frozen=True)
class FractionOptions(RegimeConfig):
    fraction: float = 0.1  # share of real data: original real (keep_real) or fresh real (mix)

    def problems(self) -> list[tuple[str, str]]:
        return failing((0.0 <= self.fraction <= 1.0, "fraction", "must be in [0, 1]"))


@dataclass(frozen=True)
class MixOptions(FractionOptions):
    def fresh_per_generation(self, n_real: int) -> int:
        return real_share(n_real, self.fraction)


@dataclass(frozen=True)
class AccumulateSelectOptions(RegimeConfig):
    selects: ClassVar[bool] = True

    pool: Literal["all", "real", "synthetic", "last"] = "all"  # where filter.top_k are chosen


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
    if regime not in PART_REGIMES:
        raise ValueError(f"unknown regime {regime!r}; choose one of: {', '.join(PART_REGIMES)} "
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


def write_parts(exp, g: int, gdir: Path, real, *, rng: np.random.Generator, model, gen0_model) -> list[Path]:
    """Generation ``g``'s training set as a reference to rows of earlier files (``train_sources.json``,
    :func:`training_parts`), so an accumulating pool is never copied; generation 0's real documents
    and ``mix``'s fresh ones are written out (``train.jsonl``, ``fresh.jsonl``)."""
    if g == 0:
        write_jsonl(gdir / TRAIN, ({"text": t} for t in real.train))
        return [gdir / TRAIN]
    replica = gdir.parent
    parts = training_parts(
        exp.regime.name, g, n_real=len(real.train), n_selected=lambda k: len(read_texts(gen_dir(replica, k) / SELECTED)),
        rng=rng, **({"fraction": exp.regime.fraction} if isinstance(exp.regime, FractionOptions) else {}),
    )
    files = {"real": f"{gen_name(0)}/{TRAIN}", "fresh": f"{gdir.name}/{FRESH}"}
    written = [gdir / TRAIN_SOURCES]
    for (kind, k), _ in parts:
        if kind == "fresh":
            write_jsonl(gdir / FRESH, ({"text": t} for t in real.fresh(k, exp.regime.fresh_per_generation(len(real.train)))))
            written.append(gdir / FRESH)
    write_train_sources(gdir, [(files.get(kind) or f"{gen_name(k)}/{SELECTED}", rows) for (kind, k), rows in parts])
    return written


REGIMES.register("replace")(write_parts)
REGIMES.register("accumulate")(write_parts)
REGIMES.register("accumulate_subsample")(write_parts)
REGIMES.register("mix", options=MixOptions)(write_parts)
REGIMES.register("keep_real", options=FractionOptions)(write_parts)


def _needs_top_k(exp) -> list[tuple[str, str]]:
    return failing((exp.filter.top_k is not None, "filter.top_k",
                    "must be set with regime accumulate_select (the number of documents chosen from the pool)"))


@REGIMES.register("accumulate_select", options=AccumulateSelectOptions, check=_needs_top_k)
def write_selection(exp, g: int, gdir: Path, real, *, rng: np.random.Generator, model, gen0_model) -> list[Path]:
    """The filter's ``top_k`` documents of the accumulated pool (:func:`selection_pool`), scored by
    generation g-1's ``model``; generation 0: ``top_k`` random real documents."""
    replica = gdir.parent
    pool = selection_pool(exp.regime.pool, g, real=real.train,
                          selected=lambda k: read_texts(gen_dir(replica, k) / SELECTED)) if g else real.train
    kept = select(exp.filter.name if g else "random", pool, keep=1.0, top_k=exp.filter.top_k, rng=rng,
                  config=exp.filter, model=model if g else None, gen0_model=gen0_model if g else None)
    write_jsonl(gdir / TRAIN, ({"text": pool[i]} for i in kept))
    return [gdir / TRAIN]


def data_stage(ctx) -> list[Path]:
    """The data stage of generation ``ctx.g`` (:class:`recursion.stages.Context`): the held-out
    documents (generation 0) and the training set, by the regime; returns the files written.
    Whichever form of the set an earlier run left is removed first: it would be read in place of the new one."""
    gdir, written = ctx.gen(ctx.g), []
    if ctx.g == 0 and ctx.real.heldout:
        write_jsonl(ctx.path / HELDOUT, ({"text": t} for t in ctx.real.heldout))
        written.append(ctx.path / HELDOUT)
    for earlier in (gdir / TRAIN, gdir / TRAIN_SOURCES):
        earlier.unlink(missing_ok=True)
    previous = ctx.lazy_model(ctx.g - 1) if ctx.g else None
    return written + REGIMES[ctx.exp.regime.name].run(ctx.exp, ctx.g, gdir, ctx.real, rng=ctx.rng("data"),
                                                      model=previous, gen0_model=ctx.lazy_model(0) if ctx.g else None)
