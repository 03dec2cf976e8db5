"""The generate stage: the synthetic corpus of each generation — how many documents
(:func:`num_docs`), from which prompts (:func:`generation_prompts`), sampled by this generation's model."""
from __future__ import annotations

import math

import numpy as np

from .artifacts import SYNTHETIC, read_texts, read_training_texts, synthetic_record, write_jsonl
from .config import Experiment
from .data import split_prompt


def num_docs(exp: Experiment, n_docs: int) -> int:
    """Synthetic documents per generation: ``generate.num_docs``, else enough that the filter keeps
    about ``n_docs`` — the real training documents, or, for ``prompt: train_prefix``, this
    generation's training set (one continuation per block trained on, growing under ``accumulate``)."""
    if exp.generate.num_docs is not None:
        return exp.generate.num_docs
    return n_docs if exp.filter.top_k is not None else math.ceil(n_docs / exp.filter.keep)


def generation_prompts(exp: Experiment, model, docs: list[str], n: int, rng: np.random.Generator) -> list[str] | None:
    """Prompts of the synthetic documents: none (from BOS), prefixes of ``docs`` (the real training
    documents, or this generation's for ``train_prefix``), or task prompts.

    ``n`` prompts from the source documents in order (cycling), or, with ``generate.resample_prompts``,
    drawn at random by ``rng`` — without replacement while there are enough (Gambetta et al. draw
    each generation's prompts anew)."""
    mode = exp.generate.prompt
    if mode == "unconditional":
        return None
    if mode == "task" and exp.generate.prompts_file:
        docs = read_texts(exp.generate.prompts_file)
    order = (rng.choice(len(docs), size=n, replace=n > len(docs)) if exp.generate.resample_prompts
             else np.arange(n) % len(docs))
    docs = [docs[i] for i in order]
    if mode in ("real_prefix", "train_prefix"):
        return [model.truncate(t, exp.generate.prefix_tokens) for t in docs]
    return docs if exp.generate.prompts_file else [split_prompt(t, exp.data.prompt_end) for t in docs]


def generate_stage(ctx) -> None:
    """Generation ``ctx.g``'s synthetic documents (``synthetic.jsonl``), by its model
    (:class:`recursion.stages.Context`)."""
    exp, gdir = ctx.exp, ctx.gen(ctx.g)
    model = ctx.model(ctx.g)
    docs = read_training_texts(gdir) if exp.generate.prompt == "train_prefix" else ctx.real.train
    n = num_docs(exp, len(docs))
    prompts = generation_prompts(exp, model, docs, n, ctx.rng("generate"))
    texts = model.generate(num=None if prompts else n, prompts=prompts, decoding=exp.generate.decoding,
                           seed=ctx.seed_of("generate"))
    write_jsonl(gdir / SYNTHETIC, (synthetic_record(t, p, prompt_in_text=exp.generate.keep_prompt)
                                   for t, p in zip(texts, prompts or [None] * len(texts))))
