"""The real corpus of an experiment: generation 0's training set, fresh folds, probe prompts.

``data.source``:

* ``shakespeare`` — the shipped corpus (:mod:`collapse_tasks.corpus`), ``unit`` lines (of at least
  ``min_words`` words) or blank-line blocks, from ``split`` (``train`` by default); probe prompts
  come from the held-out plays.
* ``jsonl:PATH`` — the ``field`` of each record of a local JSONL file.
* ``hf:NAME[:CONFIG]`` — a Hugging Face dataset (``datasets.load_dataset(NAME, CONFIG, split=split)``;
  NAME may be a local folder), e.g. ``hf:wikitext:wikitext-2-raw-v1`` or ``hf:roneneldan/TinyStories``.

With ``prompt_field``, records are (prompt, text) pairs — Guo et al.'s tasks: document → summary,
title → abstract, prompt → story — and a training document is ``prompt + separator + text``;
``generate.prompt: task`` then prompts with ``prompt + separator``. ``chunk_words`` cuts every
document into consecutive blocks of that many words (Shumailov et al.'s fixed-length blocks).

The pool is shuffled once with the replica's seed; the first ``num_train`` documents are the real
training set, the following ones the disjoint fresh folds of the ``mix`` regime, and (for
non-shipped sources) the last ``probes.num_prompts`` documents the probe prompts, never trained on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from collapse_tasks import corpus

from .config import DataConfig
from .words import tokenizer


def load_pool(cfg: DataConfig) -> list[str]:
    """Every real document of the configured source, in source order, empty ones dropped."""
    texts = _load_source(cfg)
    if cfg.chunk_words:
        size = cfg.chunk_words
        texts = [" ".join(w[i : i + size]) for t in texts if (w := t.split()) for i in range(0, len(w), size)]
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ValueError(f"data.source {cfg.source!r} gave no documents")
    return texts


def _long_enough(cfg: DataConfig, text: str) -> bool:
    """At least ``min_chars`` characters (stripped) and ``min_words`` words (counted by ``count_words``)."""
    return len(text.strip()) >= cfg.min_chars and len(tokenizer(cfg.count_words)(text)) >= cfg.min_words


def shipped_units(cfg: DataConfig) -> list[str]:
    """Lines or blocks of the shipped corpus's ``split``, before any length filter.

    With ``max_chars``, only the first ``max_chars`` characters of the split's text are read: its
    works in :func:`collapse_tasks.corpus.work_names` order (alphabetical), each file's text as
    shipped, joined by a blank line (``"\n\n"``), cut there and split into stripped lines (or
    blocks); the line cut at the end is kept if it passes the filters.
    """
    if cfg.max_chars is None:
        return corpus.lines(cfg.split, min_words=0) if cfg.unit == "lines" else corpus.blocks(cfg.split)
    text = "\n\n".join(corpus.works(cfg.split).values())[: cfg.max_chars]
    units = text.splitlines() if cfg.unit == "lines" else text.split("\n\n")
    return [u.strip() for u in units if u.strip()]


def _load_source(cfg: DataConfig) -> list[str]:
    kind, _, rest = cfg.source.partition(":")
    if cfg.source == "shakespeare":
        texts = [t for t in shipped_units(cfg) if _long_enough(cfg, t)]
    elif kind in ("jsonl", "hf"):
        records = _records(kind, rest, cfg)
        fields = [cfg.field] + ([cfg.prompt_field] if cfg.prompt_field else [])
        for f in fields:
            if records and f not in records[0]:
                raise ValueError(f"{cfg.source}: records have no field {f!r}; fields: {sorted(records[0])}")
        texts = [
            (r[cfg.prompt_field].strip() + cfg.separator if cfg.prompt_field else "") + r[cfg.field]
            for r in records
            if isinstance(r.get(cfg.field), str) and _long_enough(cfg, r[cfg.field])
        ]
    else:
        raise ValueError(f"unknown data.source {cfg.source!r}")
    return texts


def _records(kind: str, rest: str, cfg: DataConfig) -> list[dict]:
    if kind == "jsonl":
        from .artifacts import read_jsonl

        return read_jsonl(rest)
    import datasets

    name, _, config = rest.partition(":")
    return list(datasets.load_dataset(name, config or None, split=cfg.split, revision=cfg.revision))


def split_prompt(document: str, separator: str) -> str:
    """The prompt part of a (prompt, text) document, separator included."""
    head, sep, _ = document.partition(separator)
    return head + sep


def split_heldout(pool: list[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(rest, held out): a random line-level split of ``pool`` with the replica's ``seed``.

    As the seed notebook's ``shuffle; train = lines[:int(0.9 * N)]``: a seeded permutation (a random
    stream of its own, spawned from ``seed``), the first ``int((1 − fraction) · N)`` documents stay,
    the others are held out; both keep source order.
    """
    if not fraction:
        return list(pool), []
    order = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0]).permutation(len(pool))
    cut = int(len(pool) * (1.0 - fraction))
    return [pool[i] for i in np.sort(order[:cut])], [pool[i] for i in np.sort(order[cut:])]


@dataclass
class RealData:
    train: list[str]  # generation 0's real training set
    rest: list[str]  # unused real documents: fresh folds for ``mix``
    probe_prompts: list[str]
    heldout: list[str] = field(default_factory=list)  # data.heldout_fraction of the pool, never trained on

    def fresh(self, g: int, n: int) -> list[str]:
        """Fold g (g >= 1) of n fresh real documents, disjoint from every other fold."""
        lo, hi = (g - 1) * n, g * n
        if hi > len(self.rest):
            raise ValueError(
                f"regime 'mix' needs {n} fresh real documents per generation; the corpus has "
                f"{len(self.rest)} beyond the training set, enough for {len(self.rest) // max(n, 1)} generations"
            )
        return self.rest[lo:hi]


def real_data(cfg: DataConfig, *, seed: int, num_probe_prompts: int) -> RealData:
    pool, heldout = split_heldout(load_pool(cfg), cfg.heldout_fraction, seed)
    order = np.random.default_rng(seed).permutation(len(pool))
    pool = [pool[i] for i in order]
    if cfg.source == "shakespeare":
        probes = corpus.lines("heldout", min_words=cfg.min_words)[:num_probe_prompts]
    else:
        probes, pool = pool[len(pool) - num_probe_prompts :], pool[: len(pool) - num_probe_prompts]
    n = len(pool) if cfg.num_train is None else cfg.num_train
    if n > len(pool):
        raise ValueError(f"data.num_train = {n} but the corpus has only {len(pool)} documents")
    return RealData(pool[:n], pool[n:], probes, heldout)
