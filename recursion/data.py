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
(:func:`validation_texts`) and loaded by :func:`prepare` with the corpus, before any run folder exists.

The pool is shuffled once with the replica's seed; the first ``num_train`` documents are the real
training set, the following ones the disjoint fresh folds of the ``mix`` regime.

Probe prompts (``probes.num_prompts`` of them) come from ``probes.prompts_file`` or ``probes.split``
when given; else from the held-out plays (``shakespeare``), or, for ``jsonl:`` / ``hf:`` sources,
from the shuffled pool (its last documents): with ``probes.from_pool: held_out`` they are removed
before the training set is taken (never trained on); with ``from_pool: shared`` they stay in it
(Gambetta et al. keep all 5,000 human documents in the pool and the prompt source, so the probe
texts may be trained on, and the pool keeps its size). A held-out share never eats training data silently: with
``num_train`` set, the corpus must hold ``num_train + num_prompts`` documents; with
``num_train: null`` (every document), the probes may take at most half of the corpus. Otherwise
:func:`prepare` raises, naming the keys to change — before any run folder exists.

``data.heldout_fraction`` first holds out a random share of the pool (:func:`split_heldout`, the
seed notebook's 90/10 line split): never trained on, written once per replica as ``heldout.jsonl``
and scored by the ``heldout_perplexity`` probe. The sizes above count what is left.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np

from collapse_tasks import corpus

from .config import DataConfig, ProbesConfig, TokensConfig
from .messages import first_line
from .words import tokenizer


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
    elif kind in ("jsonl", "hf") and cfg.template is not None:
        texts = template_documents(_records(kind, rest, cfg), cfg)
    elif kind in ("jsonl", "hf"):
        fields = [cfg.field] + ([cfg.prompt_field] if cfg.prompt_field else [])
        records = _records(kind, rest, cfg, fields)
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


def _records(kind: str, rest: str, cfg: DataConfig, fields: list[str] = ()) -> list[dict]:
    """The records of a ``jsonl:`` or ``hf:`` source. A JSONL line that is not a JSON object, or whose
    ``fields`` are missing or not strings, is an error naming the file and line (never skipped)."""
    if kind == "jsonl":
        from .artifacts import read_jsonl

        return read_jsonl(rest, fields=fields, objects=True)
    import datasets

    name, _, config = rest.partition(":")
    try:
        return list(datasets.load_dataset(name, config or None, split=cfg.split, revision=cfg.revision))
    except ConnectionError as err:  # HF_DATASETS_OFFLINE, or no network
        raise ValueError(f"data.source {cfg.source!r}: the Hugging Face hub cannot be reached (offline? "
                         f"{first_line(err)}); give a local copy: hf:/path/to/folder or jsonl:PATH") from None
    except (FileNotFoundError, ValueError) as err:  # no such dataset / config / split
        raise ValueError(f"data.source {cfg.source!r} (split {cfg.split!r}): {first_line(err)}") from None


def template_documents(records: list[dict], cfg: DataConfig) -> list[str]:
    """``prompt + " " + reference`` of every record the task ``collapse_gen_<cfg.template>`` can prompt
    with, whose reference is long enough (``min_words`` words counted by ``count_words``, ``min_chars``
    characters: as a text field elsewhere), in record order."""
    from collapse_tasks.hub_utils import TEMPLATES

    make = TEMPLATES[cfg.template]
    pairs = [pair for r in records if (pair := make(r)) is not None]
    return [f"{p['prompt']} {p['reference']}" for p in pairs if _long_enough(cfg, p["reference"])]


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


def split_prompt(document: str, separator: str | re.Pattern) -> str:
    """The prompt part of a (prompt, text) document, separator included; ``separator`` a string, or a
    pattern whose first match ends the prompt (:data:`collapse_tasks.hub_utils.PROMPT_END`)."""
    if isinstance(separator, re.Pattern):
        found = separator.search(document)
        return document[:found.end()] if found else document
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


@dataclass(frozen=True)
class Source:
    """The loaded, checked real corpus of an experiment: all :func:`real_data` needs but the seed."""

    data: DataConfig
    pool: list[str]  # every document, in source order
    num_probes: int  # probe prompts (0: probes disabled)
    probe_prompts: list[str] | None  # from their own source; None: from the pool
    validation: list[str] | None = None  # the documents of data.validation_split (None: none asked for)
    probes_shared: bool = False  # probes.from_pool = shared: drawn from the pool without removing them

    @property
    def available(self) -> int:
        """Documents of the pool left after the ``data.heldout_fraction`` split (:func:`split_heldout`)."""
        return int(len(self.pool) * (1.0 - self.data.heldout_fraction)) if self.data.heldout_fraction else len(self.pool)

    @property
    def held_out(self) -> int:
        """Documents of the pool held out as probe prompts (none when they are shared or come from elsewhere)."""
        return self.num_probes if self.probe_prompts is None and not self.probes_shared else 0

    @property
    def num_train(self) -> int:
        """Documents of generation 0's real training set."""
        return self.available - self.held_out if self.data.num_train is None else self.data.num_train

    def check_fresh(self, per_generation: int, generations: int) -> None:
        """``ValueError`` unless the corpus holds ``per_generation`` fresh documents for each generation
        after the first (regime ``mix``), beyond the training set and the probes."""
        need, have = per_generation * (generations - 1), self.available - self.held_out - self.num_train
        if need > have:
            raise ValueError(f"regime 'mix' needs {per_generation} fresh real documents in each of generations 1.."
                             f"{generations - 1} ({need} in all), but data.source {self.data.source!r} has {have} beyond "
                             "the training set and the probes; lower generations, regime.fraction or data.num_train")


def prepare(data: DataConfig, probes: ProbesConfig, *, pool: list[str] | None = None,
            validation: list[str] | None = None) -> Source:
    """Load the corpus and the validation texts (unless ``pool`` / ``validation`` are given) and the
    probe prompts, and check that the training set and the probes fit: ``ValueError`` naming the
    keys to change otherwise."""
    from .artifacts import read_texts

    pool = load_pool(data) if pool is None else pool
    if validation is None and data.validation_split:
        validation = validation_texts(data)
    num = probes.num_prompts if probes.enabled else 0
    prompts = None
    if num and probes.prompts_file:
        prompts = read_texts(probes.prompts_file)
        what = f"probes.prompts_file {probes.prompts_file}"
    elif num and probes.split:
        prompts = load_pool(dataclasses.replace(data, split=probes.split))
        what = f"probes.split {probes.split!r} of {data.source}"
    elif num and data.source == "shakespeare":
        prompts = corpus.lines("heldout", min_words=data.min_words)
        what = "the held-out plays"
    if prompts is not None and len(prompts) < num:
        raise ValueError(f"probes.num_prompts = {num} but {what} has only {len(prompts)} prompts")
    shared = probes.from_pool == "shared"
    if prompts is None and shared and num > len(pool):
        raise ValueError(f"probes.num_prompts = {num} but data.source {data.source!r} has only {len(pool)} documents "
                         "to draw them from (probes.from_pool = shared)")
    source = Source(data, pool, num, None if prompts is None else prompts[:num], validation, probes_shared=shared)
    held, n = source.held_out, source.num_train
    fix = "lower probes.num_prompts, or give probes.prompts_file" + (" or probes.split" if data.source.startswith("hf:") else "")
    have = source.available
    after_split = f" (after data.heldout_fraction = {data.heldout_fraction})" if data.heldout_fraction else ""
    if data.num_train is not None and n + held > have:
        asked = f"data.num_train = {n} and probes.num_prompts = {held} (held out) need {n + held}" if held \
            else f"data.num_train = {n} needs {n}"
        raise ValueError(f"{asked} documents, but data.source {data.source!r} has {have}{after_split}"
                         + (f"; lower data.num_train, {fix}" if held else ""))
    if data.num_train is None and held > have / 2:
        raise ValueError(f"probes.num_prompts = {held} would hold out {held} of the {have} documents{after_split} of "
                         f"data.source {data.source!r} (at most half may be held out); set data.num_train, {fix}")
    return source


def real_data(source: Source, *, seed: int) -> RealData:
    """Generation 0's training set, the fresh folds and the probe prompts of one replica (see the module docstring)."""
    pool, heldout = split_heldout(source.pool, source.data.heldout_fraction, seed)
    order = np.random.default_rng(seed).permutation(len(pool))
    pool = [pool[i] for i in order]
    cut = len(pool) - source.held_out
    probes = source.probe_prompts if source.probe_prompts is not None else pool[len(pool) - source.num_probes:]
    return RealData(pool[:source.num_train], pool[source.num_train:cut], probes, heldout)
