"""Probes stored beside the lm-eval results of each generation.

* ``gen0_perplexity`` — the perplexity of each of this generation's synthetic documents under the
  generation-0 model (the data of Shumailov et al.'s Fig. 1: the density narrows and shifts to
  low perplexity as the tails wash away).
* ``top1_mass`` / ``next_token_entropy`` — the probability of the most likely next token and the
  entropy (nats) of the next-token distribution of *this* generation's model, on a fixed set of
  real held-out prompts (Gambetta et al.'s concentration probe), per prompt and averaged.
* ``heldout_perplexity`` — with ``data.heldout_fraction`` > 0, the perplexity of this generation's
  model on the held-out real documents, in the model's own tokens:
  ``exp(−Σ_d log P(d) / Σ_d |d|)``, each document scored from the start token
  (no end token), as ``loglikelihood_rolling`` does — the seed Lab 1 notebook's measurement.
* with ``probes.embedding_diagnostics`` (:func:`embedding_diagnostics`), Shi et al.'s two
  diagnostics on sentence embeddings: ``train_knn_entropy``, the Kozachenko–Leonenko entropy of
  the generation's training set, and ``nn_distance_to_train``, the mean distance of its generated
  documents to their nearest training document (memorization: it shrinks as the model copies).
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from .artifacts import PROBES, SYNTHETIC, atomic_write_text, read_texts, read_training_texts


def heldout_perplexity(model, texts: Sequence[str]) -> float:
    """Corpus perplexity of ``texts``: exp of minus the summed log-probability over the summed token count.

    ``model.loglikelihood_rolling(texts)`` gives each document's natural-log probability and its
    number of scored tokens (both back ends have it).
    """
    logp, n = model.loglikelihood_rolling(list(texts))
    return float(np.exp(-np.sum(logp) / max(int(np.sum(n)), 1)))


def run_probes(model, gen0_model, synthetic: Sequence[str], prompts: Sequence[str], *, heldout: Sequence[str] = ()) -> dict:
    ppl = np.asarray(gen0_model.perplexity(list(synthetic)), dtype=float) if synthetic else np.zeros(0)
    top1, entropy = model.next_token_stats(list(prompts))
    extra = {"heldout_perplexity": heldout_perplexity(model, heldout), "num_heldout": len(heldout)} if heldout else {}
    return {
        "gen0_perplexity": ppl.tolist(),
        "gen0_perplexity_median": float(np.median(ppl)) if ppl.size else None,
        "top1_mass": np.asarray(top1, dtype=float).tolist(),
        "top1_mass_mean": float(np.mean(top1)),
        "next_token_entropy": np.asarray(entropy, dtype=float).tolist(),
        "next_token_entropy_mean": float(np.mean(entropy)),
        "num_prompts": len(prompts),
        **extra,
    }


def _sample(texts: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    texts = list(texts)
    return texts if len(texts) <= n else [texts[i] for i in np.sort(rng.choice(len(texts), size=n, replace=False))]


def embedding_diagnostics(train: Sequence[str], generated: Sequence[str], *, embedder: str | None, sample_size: int,
                          rng: np.random.Generator) -> dict:
    """Shi et al.'s diagnostics of one generation, on ``sample_size`` documents drawn (with ``rng``)
    from each of its training set and its generated set, embedded with ``embedder`` (default
    all-MiniLM-L6-v2, see :func:`recursion.filters.embedder_name`):

    * ``train_knn_entropy`` — :func:`metrics.knn_entropy` (k = 1, nats) of the training embeddings;
    * ``nn_distance_to_train`` — :func:`metrics.nn_distance` of the generated embeddings to them.

    The sample size is fixed because the kNN entropy moves with N; compare generations and arms at
    the same ``probes.embedding_sample``. Shi et al., "A Closer Look at Model Collapse: From a
    Generalization-to-Memorization Perspective", NeurIPS 2025 (arXiv 2509.16499).
    """
    from metrics import knn_entropy, nn_distance

    from .filters import embed_texts

    train, generated = _sample(train, sample_size, rng), _sample(generated, sample_size, rng)
    T = embed_texts(train, embedder=embedder)
    out = {"train_knn_entropy": knn_entropy(T, k=1), "embedding_sample": len(train)}
    if generated:
        out["nn_distance_to_train"] = nn_distance(embed_texts(generated, embedder=embedder), T)
    return out


def probes_stage(ctx) -> None:
    """Generation ``ctx.g``'s probes (``probes.json``, :class:`recursion.stages.Context`): :func:`run_probes`
    on this model against generation 0's, and :func:`embedding_diagnostics` when asked for."""
    exp, gdir = ctx.exp, ctx.gen(ctx.g)
    model = ctx.model(ctx.g)
    prompts = [model.truncate(p, exp.probes.prompt_tokens) for p in ctx.real.probe_prompts]
    result = run_probes(model, ctx.model(0), read_texts(gdir / SYNTHETIC), prompts, heldout=ctx.real.heldout)
    if exp.probes.embedding_diagnostics:
        result.update(embedding_diagnostics(
            read_training_texts(gdir), read_texts(gdir / SYNTHETIC), embedder=exp.probes.embedder,
            sample_size=exp.probes.embedding_sample, rng=ctx.rng("probes")))
    atomic_write_text(gdir / PROBES, json.dumps(result))


def preflight(exp) -> None:
    """The sentence embedder of ``probes.embedding_diagnostics`` loads (:func:`recursion.filters.check_embeddings`)."""
    from .filters import check_embeddings

    if exp.probes.embedding_diagnostics:
        check_embeddings(exp)
