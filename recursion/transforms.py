"""Transforms of real documents that replace the synthetic pool.

With a transform, the select stage of every generation hands on transformed *real* documents
instead of the generated ones: the filter selects from them and the regime builds the next
training set from what it kept, as it would from synthetic documents. Each transform is
registered in :data:`TRANSFORMS` (:class:`recursion.plugins.Registry`) with the dataclass of its
``transform:`` block and a function ``(ctx) -> records`` that writes its files and returns the
pool (``{"text": ...}`` records).

* ``none`` — the generated documents are the pool.
* ``toedit`` — ToEdit (Zhu et al., 2025, :mod:`recursion.toedit`): the documents of ``input``
  (``real``: generation 0's real training set; ``previous``: the documents the previous generation
  handed on) token-edited by the ``prior`` model (``gen0``: generation 0's model; ``current``: this
  generation's; ``base``: the pretrained model of a back end that has one; or a checkpoint folder).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar, Literal

from .artifacts import EDITED, EDITS, SELECTED, SYNTHETIC, atomic_write_text, read_jsonl, read_texts, write_jsonl
from .backends import BACKENDS
from .backends.base import failing
from .config import TransformConfig
from .plugins import Registry
from .toedit import summary, toedit

TRANSFORMS = Registry("transform", "transform.name", options=TransformConfig)


@TRANSFORMS.register("none")
def generated(ctx) -> list[dict]:
    """No transform: the select stage's pool is generation ``ctx.g``'s generated documents."""
    return read_jsonl(ctx.gen(ctx.g) / SYNTHETIC)


@dataclass(frozen=True)
class ToEditOptions(TransformConfig):
    """ToEdit's options (see :mod:`recursion.toedit` for the rule)."""

    files: ClassVar[tuple[str, ...]] = (EDITED, EDITS)

    input: Literal["real", "previous"] = "real"
    prior: str = "gen0"
    threshold: float = 0.99  # resample tokens whose probability exceeds this
    beta: float = 1.5  # ... from softmax(log p / beta) over the candidates
    candidates: int = 64  # the prior's top tokens sampled from (0: the whole vocabulary)
    drop_below: float | None = None  # the drop variant: remove tokens whose probability is below this (0.001)

    @property
    def reads_gen0_model(self) -> bool:
        return self.prior == "gen0"

    def problems(self) -> list[tuple[str, str]]:
        keyword = self.prior in ("gen0", "current", "base")
        return failing(
            (0.0 < self.threshold < 1.0, "threshold", "must be in (0, 1)"),
            (self.beta > 0, "beta", "must be > 0"),
            (self.candidates >= 0, "candidates", "must be >= 0 (0: the whole vocabulary)"),
            (self.drop_below is None or 0.0 < self.drop_below < self.threshold, "drop_below",
             "must be in (0, threshold)"),
            (keyword or Path(self.prior).expanduser().is_dir(), "prior",
             f"= {self.prior!r} is not valid; choose one of: gen0, current, base, or an existing checkpoint folder"),
        )


def _base_prior(exp) -> list[tuple[str, str]]:
    """``prior: base`` needs a back end with a pretrained model (``load_base``)."""
    if exp.transform.prior != "base" or hasattr(BACKENDS[exp.backend].run, "load_base"):
        return []
    having = ", ".join(n for n in BACKENDS.names() if hasattr(BACKENDS[n].run, "load_base"))
    return [("transform.prior", f"= base needs model.backend: {having} (its pretrained model); use gen0, current or "
             "a checkpoint folder")]


def prior_model(ctx, name: str):
    """``transform.prior``: generation 0's model, this generation's, the pretrained base, or a
    checkpoint folder (both loaded once per run)."""
    if name in ("gen0", "current"):
        return ctx.model(0 if name == "gen0" else ctx.g)
    load = ctx.backend.load_base if name == "base" else partial(ctx.backend.load, Path(name).expanduser())
    return ctx.models.once(name, load)


@TRANSFORMS.register("toedit", options=ToEditOptions, check=_base_prior)
def edit_real(ctx) -> list[dict]:
    """ToEdit's pool for generation ``ctx.g``'s select stage: ``transform.input`` edited by
    ``transform.prior``, written to ``edited.jsonl`` (text, source index, token counts) with the
    shares of edited tokens in ``edits.json``."""
    cfg, g, gdir = ctx.exp.transform, ctx.g, ctx.gen(ctx.g)
    docs = ctx.real.train if cfg.input == "real" or g == 0 else read_texts(ctx.gen(g - 1) / SELECTED)
    edited = toedit(prior_model(ctx, cfg.prior), docs, cfg, seed=ctx.seed_of("select", 1))
    records = [{"text": e.text, "source": i, "tokens": e.tokens, "resampled": e.resampled, "changed": e.changed,
                "dropped": e.dropped} for i, e in enumerate(edited)]
    write_jsonl(gdir / EDITED, records)
    atomic_write_text(gdir / EDITS, json.dumps({"prior": cfg.prior, "input": cfg.input, **summary(edited)}))
    return records

