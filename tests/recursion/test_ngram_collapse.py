"""On 2,000 real lines (a single seed), retrained on its own samples, Kneser–Ney loses its tails;
add-α with α = 1 drifts to uniform noise instead.

Generation 0 fits 2,000 real Shakespeare lines; each later generation fits 2,000 samples of the one
before, with generation 0's vocabulary. Measured on 1,000 other real lines.

Lab 1's ``kneser_ney`` arm (``configs/lab1_bigram.yaml``), with the same estimator, goes the other
way: its estimated discount climbs, the floor's draws grow the samples' word types, and it drifts
into noise (``docs/lab1.md``). What differs is generation 0's data: here 2,000 lines and 5,368
whitespace word types; there the whole training split less 10% held out (the split has 84,590
lines and 63,180 types), with the same 2,000 samples handed on. Which of those differences turns
the direction has not been isolated. This test is a single seed (sampling seeds 0..4 of one
split); Lab 1's direction holds over its 3 seeds.
"""
import numpy as np
import pytest

from collapse_tasks import corpus
from recursion.backends.ngram.lm import NgramLM

GENERATIONS = 5


def corpus_perplexity(lm, texts):
    return float(np.exp(-np.sum(lm.logprobs(texts)) / lm.num_tokens(texts).sum()))


def recurse(**kwargs):
    lines = corpus.lines("train", min_words=5)
    order = np.random.default_rng(0).permutation(len(lines))
    real, heldout = [lines[i] for i in order[:2000]], [lines[i] for i in order[2000:3000]]
    lm, trace = NgramLM(n=2, **kwargs).fit(real), []
    for g in range(GENERATIONS):
        samples = lm.generate(2000, max_new_tokens=40, seed=g)
        used = np.bincount([lm._index[w] for s in samples for w in s.split()], minlength=len(lm.vocab))[3:]
        p = used[used > 0] / used.sum()
        trace.append({
            "bigram_types": len(lm._tables[-1].pair_keys),  # distinct (history, word) pairs of the model
            "words_used": int((used > 0).sum()),  # distinct words in the model's own samples
            "unigram_entropy": float(-(p * np.log(p)).sum() / np.log(len(used))),  # of the samples, 1 = uniform
            "heldout_perplexity": corpus_perplexity(lm, heldout),
        })
        lm = NgramLM(n=2, vocab=lm.vocab[3:], **kwargs).fit(samples)
    return lm.V, trace


def test_kneser_ney_loses_its_tails():
    V, trace = recurse(smoothing="kneser_ney")
    first, last = trace[0], trace[-1]
    ppl = [t["heldout_perplexity"] for t in trace]
    assert all(b > a for a, b in zip(ppl, ppl[1:])) and ppl[-1] > 1.5 * ppl[0]  # rises every generation
    assert ppl[-1] < 0.5 * V  # ... far from a uniform model
    assert last["bigram_types"] < first["bigram_types"]
    assert last["words_used"] < 0.85 * first["words_used"]  # words that drop out of the samples stay rare
    assert last["unigram_entropy"] <= first["unigram_entropy"] < 0.85


def test_add_alpha_with_a_large_alpha_drifts_to_uniform():
    V, trace = recurse(smoothing="add_alpha", alpha=1.0)
    first, last = trace[0], trace[-1]
    assert last["heldout_perplexity"] == pytest.approx(V, rel=0.05)  # the uniform model's perplexity is V
    assert last["unigram_entropy"] > 0.99 and first["unigram_entropy"] > 0.99  # samples ~ uniform words
    assert last["words_used"] >= 0.99 * (V - 2)  # every word shows up: nothing is lost, everything is noise
    assert last["bigram_types"] > 3 * first["bigram_types"]  # the noise makes ever more bigram types
