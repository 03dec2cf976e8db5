"""Probes stored beside the lm-eval results of each generation.

* ``gen0_perplexity`` — the perplexity of each of this generation's synthetic documents under the
  generation-0 model (the data of Shumailov et al.'s Fig. 1: the density narrows and shifts to
  low perplexity as the tails wash away).
* ``top1_mass`` / ``next_token_entropy`` — the probability of the most likely next token and the
  entropy (nats) of the next-token distribution of *this* generation's model, on a fixed set of
  real held-out prompts (Gambetta et al.'s concentration probe), per prompt and averaged.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def run_probes(model, gen0_model, synthetic: Sequence[str], prompts: Sequence[str]) -> dict:
    ppl = np.asarray(gen0_model.perplexity(list(synthetic)), dtype=float) if synthetic else np.zeros(0)
    top1, entropy = model.next_token_stats(list(prompts))
    return {
        "gen0_perplexity": ppl.tolist(),
        "gen0_perplexity_median": float(np.median(ppl)) if ppl.size else None,
        "top1_mass": np.asarray(top1, dtype=float).tolist(),
        "top1_mass_mean": float(np.mean(top1)),
        "next_token_entropy": np.asarray(entropy, dtype=float).tolist(),
        "next_token_entropy_mean": float(np.mean(entropy)),
        "num_prompts": len(prompts),
    }
