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
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
