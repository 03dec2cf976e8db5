"""What the driver asks of a model back end.

A back end is a small object built from its config block. It trains a model from texts into a
folder and loads a folder back into a :class:`Model`; everything between stages goes through
those folders on disk, so any stage can be resumed from them.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..artifacts import MODEL, honour_umask, read_training_texts


def failing(*checks: tuple[bool, str, str]) -> list[tuple[str, str]]:
    """``(key, message)`` of every ``(ok, key, message)`` check that fails.

    A config block's ``problems()`` returns this; the config loader prefixes each key with the
    block's place in the YAML (``generate.decoding.top_p must be in (0, 1]``).
    """
    return [(key, message) for ok, key, message in checks if not ok]


@dataclass(frozen=True)
class Decoding:
    """Decoding options, shared by every back end (HF ``generate`` names)."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0
    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    num_beams: int = 1
    repetition_penalty: float = 1.0
    batch_size: int = 64

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1"),
            (0 <= self.min_new_tokens <= self.max_new_tokens, "min_new_tokens", "must be in [0, max_new_tokens]"),
            (self.temperature > 0, "temperature", "must be > 0"),
            (0 < self.top_p <= 1, "top_p", "must be in (0, 1]"),
            (self.top_k >= 0, "top_k", "must be >= 0 (0: no top-k cut)"),
            (self.num_beams >= 1, "num_beams", "must be >= 1"),
            (self.repetition_penalty > 0, "repetition_penalty", "must be > 0 (1: none)"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
        )


@runtime_checkable
class Model(Protocol):
    """A trained model, loaded once per stage and reused for every call of that stage."""

    def generate(
        self, *, num: int | None = None, prompts: Sequence[str] | None = None, decoding: Decoding, seed: int
    ) -> list[str]:
        """``num`` documents from BOS, or one continuation per prompt (the new text only, as it reads
        after the prompt: ``prompt + continuation`` is the document), batched."""

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """Per-document perplexity (exp of the mean negative log-likelihood per token)."""

    def next_token_stats(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 next-token probability and next-token entropy (nats) after each prompt."""

    def truncate(self, text: str, num_tokens: int) -> str:
        """The first ``num_tokens`` tokens of ``text``, as text (for real-prefix prompting)."""

    def lm_eval_model(self):
        """An ``lm_eval.api.model.LM`` wrapping this already-loaded model (no reload)."""

    def toedit(self, texts: Sequence[str], *, rule, seed: int) -> list:
        """ToEdit (:mod:`recursion.toedit`): ``texts`` edited by ``rule`` (a :class:`~recursion.toedit.ToEditRule`),
        one :class:`~recursion.toedit.EditedDoc` each, drawing with :func:`~recursion.toedit.uniforms` of ``seed``."""


class Backend(Protocol):
    """Trains and loads models of one family.

    ``config_class`` is the dataclass of its ``model:`` block; ``experiment_problems(exp)`` (a
    classmethod) returns ``(key, message)`` for every setting of the whole experiment this back
    end cannot honour (a decoding option it cannot do, ...), so the config fails before any work.
    The driver builds it as ``cls(exp.model, exp.runtime, checkpoints=exp.checkpoints)``.

    Optional: ``load_base()`` — the pretrained model named by its config's ``pretrained`` (ToEdit's
    ``prior: base``; the tasks are told it as ``pretrained``); ``reports_floor_share = True`` — its
    models have ``floor_share(texts)``, recorded by the diversity stage.
    """

    config_class: type

    def __init__(self, cfg, runtime=None, checkpoints=None) -> None:
        """``cfg``: the ``model:`` block; ``runtime`` / ``checkpoints``: the experiment's blocks."""

    @classmethod
    def experiment_problems(cls, exp) -> list[tuple[str, str]]:
        """Settings of ``exp`` this back end cannot run; [] when it can run all of them."""

    def train(self, texts: Sequence[str], out_dir: Path, *, previous: Path | None, seed: int,
              validation: Sequence[str] | None = None) -> None:
        """Train on ``texts`` and save into ``out_dir``. ``previous`` is the last generation's model
        folder (``None`` at generation 0): back ends reuse its tokenizer / vocabulary, and continue
        from its weights when configured to. ``validation``: texts of ``data.validation_split``
        (a loss per epoch), ``None`` without one."""

    def load(self, path: Path) -> Model:
        """Load a model folder written by :meth:`train`."""


def train_stage(ctx) -> None:
    """Generation ``ctx.g``'s training (:class:`recursion.stages.Context`), on every rank: the back end
    trains on the generation's training set into ``model.tmp/`` (rank 0 saves), which then replaces
    ``model/``, so a killed run never leaves a half-written model folder."""
    gdir = ctx.gen(ctx.g)
    tmp, model_dir = gdir / "model.tmp", gdir / MODEL
    if ctx.ranks.main:
        shutil.rmtree(tmp, ignore_errors=True)
    ctx.backend.train(read_training_texts(gdir), tmp, previous=ctx.gen(ctx.g - 1) / MODEL if ctx.g else None,
                      seed=ctx.seed_of("train"), validation=ctx.validation or None)
    if ctx.ranks.main:  # only rank 0 saved into tmp
        honour_umask(tmp)
        shutil.rmtree(model_dir, ignore_errors=True)
        os.replace(tmp, model_dir)
