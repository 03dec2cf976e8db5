"""The held-out perplexity probe: one corpus perplexity over the model's own tokens."""
import math

import numpy as np
import pytest

from recursion.backends.ngram import NgramModel
from recursion.backends.ngram.lm import NgramLM
from recursion.probes import heldout_perplexity, run_probes


class Stub:
    """A model whose documents have fixed log-probabilities and token counts."""

    def loglikelihood_rolling(self, texts):
        return np.array([-2.0, -6.0])[: len(texts)], np.array([1, 3])[: len(texts)]

    def perplexity(self, texts):
        return np.ones(len(texts))

    def next_token_stats(self, prompts):
        return np.full(len(prompts), 0.5), np.full(len(prompts), 1.0)


def test_corpus_perplexity_weights_documents_by_tokens():
    assert heldout_perplexity(Stub(), ["a", "b c d"]) == pytest.approx(math.exp(8 / 4))  # not the mean of e^2 and e^2
    assert "heldout_perplexity" not in run_probes(Stub(), Stub(), ["x"], ["p"])
    probes = run_probes(Stub(), Stub(), ["x"], ["p"], heldout=["a", "b c d"])
    assert probes["heldout_perplexity"] == pytest.approx(math.exp(2)) and probes["num_heldout"] == 2


def test_ngram_model_scores_its_own_tokens():
    model = NgramModel(NgramLM(n=2, smoothing="kneser_ney", tokenizer="lower_alnum").fit(["The cat sat.", "a dog sat"]))
    logp, n = model.loglikelihood_rolling(["The cat, sat!", ""])
    assert n.tolist() == [3, 0] and logp[1] == 0.0
    assert logp[0] == pytest.approx(model.lm.logprobs(["the cat sat"])[0])
    assert heldout_perplexity(model, ["The cat, sat!"]) == pytest.approx(math.exp(-logp[0] / 3))
