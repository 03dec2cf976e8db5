"""The real corpus of an experiment: generation 0's training set, fresh folds, probe prompts.

``data.source``:

* ``shakespeare`` — the shipped corpus (:mod:`collapse_tasks.corpus`), ``unit`` lines (of at least
  ``min_words`` words) or blank-line blocks, from ``split`` (``train`` by default); probe prompts
  come from the held-out plays.
* ``jsonl:PATH`` — the ``field`` of each record of a local JSONL file.
* ``hf:NAME[:CONFIG]`` — a Hugging Face dataset (``datasets.load_dataset(NAME, CONFIG, split=split)``;
  NAME may be a local folder), e.g. ``hf:wikitext:wikitext-2-raw-v1`` or ``hf:roneneldan/TinyStories``.

With ``prompt_field``, records are (prompt, text) pairs and a training document is
``prompt + separator + text``; ``generate.prompt: task`` then prompts with ``prompt + separator``.
With ``template`` (Guo et al.'s tasks: ``xsum`` document → summary, ``sciabs`` title → abstract,
``writingprompts`` prompt → story) a training document is the prompt the lm-eval task
``collapse_gen_<template>`` builds from the same record, a space, and the reference
(:data:`collapse_tasks.hub_utils.TEMPLATES`): the model is trained on the format it is evaluated
on, and ``generate.prompt: task`` prompts with exactly the task's prompt. ``chunk_words`` cuts every
document into consecutive blocks of that many words; ``tokens`` cuts the records by a model's
tokenizer (:func:`token_documents`: Shumailov et al.'s exact 64-token blocks, Gambetta et al.'s
128-token prefixes). ``validation_split`` names another split of the source, processed alike
(:func:`validation_texts`).

The pool is shuffled once with the replica's seed; the first ``num_train`` documents are the real
training set, the following ones the disjoint fresh folds of the ``mix`` regime, and (for
non-shipped sources) the last ``probes.num_prompts`` documents the probe prompts, never trained on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from collapse_tasks import corpus

from .config import DataConfig, TokensConfig


def load_pool(cfg: DataConfig) -> list[str]:
    """Every real document of the configured source, in source order, empty ones dropped."""
    texts = _load_source(cfg)
    if cfg.tokens is not None:
        return token_documents(texts, cfg.tokens)
    if cfg.chunk_words:
        size = cfg.chunk_words
        texts = [" ".join(w[i : i + size]) for t in texts if (w := t.split()) for i in range(0, len(w), size)]
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ValueError(f"data.source {cfg.source!r} gave no documents")
    return texts


def _load_source(cfg: DataConfig) -> list[str]:
    kind, _, rest = cfg.source.partition(":")
    if cfg.source == "shakespeare":
        if cfg.unit == "lines":
            texts = corpus.lines(cfg.split, min_words=cfg.min_words)
        else:
            texts = [b for b in corpus.blocks(cfg.split) if len(b.split()) >= cfg.min_words]
    elif kind in ("jsonl", "hf") and cfg.template is not None:
        texts = template_documents(_records(kind, rest, cfg), cfg.template, min_words=cfg.min_words)
    elif kind in ("jsonl", "hf"):
        records = _records(kind, rest, cfg)
        fields = [cfg.field] + ([cfg.prompt_field] if cfg.prompt_field else [])
        for f in fields:
            if records and f not in records[0]:
                raise ValueError(f"{cfg.source}: records have no field {f!r}; fields: {sorted(records[0])}")
        texts = [
            (r[cfg.prompt_field].strip() + cfg.separator if cfg.prompt_field else "") + r[cfg.field]
            for r in records
            if isinstance(r.get(cfg.field), str) and len(r[cfg.field].split()) >= cfg.min_words
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


def template_documents(records: list[dict], template: str, *, min_words: int = 0) -> list[str]:
    """``prompt + " " + reference`` of every record the task ``collapse_gen_<template>`` can prompt with
    (references of at least ``min_words`` words), in record order."""
    from collapse_tasks.hub_utils import TEMPLATES

    make = TEMPLATES[template]
    pairs = [pair for r in records if (pair := make(r)) is not None]
    return [f"{p['prompt']} {p['reference']}" for p in pairs if len(p["reference"].split()) >= min_words]


def token_documents(texts: list[str], cfg: TokensConfig) -> list[str]:
    """``texts`` cut by the tokenizer ``cfg.tokenizer`` (see :class:`~recursion.config.TokensConfig`).

    ``group``: exact ``cfg.size``-token blocks of the token stream (:func:`collapse_tasks.blocks.group_texts`),
    each decoded with its special tokens written out (re-encoded, they are the same tokens).
    ``truncate``: each text's first ``cfg.size`` tokens, decoded without special tokens.
    Empty documents are dropped.
    """
    from transformers import AutoTokenizer

    from collapse_tasks.blocks import group_texts

    try:
        tokenizer = AutoTokenizer.from_pretrained(cfg.tokenizer)
    except OSError as e:
        raise OSError(f"data.tokens.tokenizer: cannot load {cfg.tokenizer!r} (offline, or a wrong id?) — {e}") from e
    ids = tokenizer(list(texts))["input_ids"] if texts else []
    if cfg.mode == "truncate":
        docs = tokenizer.batch_decode([d[:cfg.size] for d in ids], skip_special_tokens=True,
                                      clean_up_tokenization_spaces=False)
    else:
        blocks = group_texts(ids, cfg.size, batch_size=cfg.map_batch_size, num_proc=cfg.map_num_proc)
        docs = tokenizer.batch_decode(blocks, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    docs = [d for d in docs if d.strip()]
    if not docs:
        raise ValueError(f"data.tokens: the records give no {cfg.mode} document of {cfg.size} tokens")
    return docs


def validation_texts(cfg: DataConfig) -> list[str]:
    """The documents of ``cfg.validation_split``, loaded and cut as the training split is."""
    return load_pool(dataclasses.replace(cfg, split=cfg.validation_split))


def split_prompt(document: str, separator: str) -> str:
    """The prompt part of a (prompt, text) document, separator included."""
    head, sep, _ = document.partition(separator)
    return head + sep


@dataclass
class RealData:
    train: list[str]  # generation 0's real training set
    rest: list[str]  # unused real documents: fresh folds for ``mix``
    probe_prompts: list[str]

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
    pool = load_pool(cfg)
    order = np.random.default_rng(seed).permutation(len(pool))
    pool = [pool[i] for i in order]
    if cfg.source == "shakespeare":
        probes = corpus.lines("heldout", min_words=cfg.min_words)[:num_probe_prompts]
    else:
        probes, pool = pool[len(pool) - num_probe_prompts :], pool[: len(pool) - num_probe_prompts]
    n = len(pool) if cfg.num_train is None else cfg.num_train
    if n > len(pool):
        raise ValueError(f"data.num_train = {n} but the corpus has only {len(pool)} documents")
    return RealData(pool[:n], pool[n:], probes)
