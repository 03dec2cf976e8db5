"""The data each generation hands on, measured: ``gen_XX/data_diversity.json``.

Model collapse lives in the data: a model trained on its own finite samples loses the words and
continuations its samples happen to miss (Shumailov et al. 2024). The seed Lab 1 notebook measures
it on the documents themselves, and so does this stage output, once per generation, for two corpora:

* ``train`` — the generation's training set (what the previous generation handed on, plus any real
  or accumulated documents the regime adds);
* ``pool`` — the generation's synthetic pool (``synthetic.jsonl``, before any filter).

For each, computed with :mod:`metrics` on its default tokens (lower-cased words,
:func:`metrics.tokenize`), every n-gram inside one document:

=================  ===================================================================
``documents``      number of documents
``tokens``         number of word tokens
``word_types``     distinct word types (the vocabulary the corpus uses): ``distinct_1 × tokens``
``distinct_1/2``   :func:`metrics.distinct_n` (unique n-grams / n-grams)
``entropy_1``      :func:`metrics.ngram_entropy` of the unigram distribution, in bits
``top10_share``    :func:`metrics.top_k_share`, the share of tokens taken by the 10 commonest types
``mean_length``    mean tokens per document (distinct-n falls as documents grow: read them together)
=================  ===================================================================

The pool of an n-gram model also carries ``floor_share``: the expected share of its sampled
tokens that were drawn from the uniform floor below the unigram — the smoothing mass, noise —
given the histories the samples visited (:meth:`recursion.backends.ngram.lm.NgramLM.uniform_share`:
at each predicted position, end token included, the product of the lower-order weights
:math:`\\prod_k B_k(h_k)`, averaged). It is the probability with which the sampler
(``NgramLM._draw``) falls through every order to the uniform draw, so its mean over the positions
sampled is an unbiased estimate of the realized share of floor draws. A rising floor share means
the generations drift into noise; a falling vocabulary with a steady floor means tail loss.

The JSON: ``{"tokenizer": "metrics.tokenize", "train": {...}, "pool": {..., "floor_share": x}}``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

from metrics import score, tokenize

from .artifacts import DATA_DIVERSITY, SYNTHETIC, atomic_write_text, read_texts, read_training_texts
from .backends import BACKENDS

#: The :func:`metrics.score` names measured on each corpus.
MEASURES = ("distinct_1", "distinct_2", "entropy_1", "top10_share", "mean_length")


def corpus_diversity(texts: Sequence[str]) -> dict[str, float | int]:
    """The measures of the module docstring for one corpus (zeros for an empty one).

    Examples
    --------
    >>> corpus_diversity(["the cat sat", "the cat ran"])["word_types"]
    4
    """
    tokens = [tokenize(t) for t in texts]
    total = sum(map(len, tokens))
    values = score(tokens, MEASURES) if tokens else dict.fromkeys(MEASURES, 0.0)
    return {"documents": len(tokens), "tokens": total, "word_types": round(values["distinct_1"] * total), **values}


def data_diversity(train: Sequence[str], pool: Sequence[str], *, floor_share: float | None = None) -> dict:
    """The document written to ``gen_XX/data_diversity.json`` (see the module docstring)."""
    extra = {} if floor_share is None else {"floor_share": float(floor_share)}
    return {"tokenizer": "metrics.tokenize", "train": corpus_diversity(train), "pool": {**corpus_diversity(pool), **extra}}


def reads_model(exp) -> bool:
    """Whether the stage loads the generation's model: its back end reports the floor share of the pool."""
    return getattr(BACKENDS[exp.backend].run, "reports_floor_share", False)


def diversity_stage(ctx) -> None:
    """Generation ``ctx.g``'s ``data_diversity.json`` (:class:`recursion.stages.Context`): its training
    set and synthetic pool, with the floor share of the pool under this model where the back end reports one."""
    gdir = ctx.gen(ctx.g)
    pool = read_texts(gdir / SYNTHETIC)
    floor = ctx.model(ctx.g).floor_share(pool) if reads_model(ctx.exp) else None
    doc = data_diversity(read_training_texts(gdir), pool, floor_share=floor)
    atomic_write_text(gdir / DATA_DIVERSITY, json.dumps(doc, indent=1) + "\n")
