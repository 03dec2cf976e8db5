"""The vectorized n-gram model against a slow reference written with plain Python dicts, on random corpora."""
import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recursion.backends.ngram.lm import NgramLM

WORDS = ["a", "b", "c", "d", "e"]


class Reference:
    """P(w | h) from the textbook definitions (see recursion.backends.ngram.lm), one dict per order."""

    def __init__(self, docs, n, smoothing, alpha=None, discount=None, jm_lambda=None):
        self.n, self.smoothing, self.alpha, self.jm_lambda = n, smoothing, alpha, jm_lambda
        self.vocab = {w for d in docs for w in d.split()}
        self.V = len(self.vocab) + 2  # + </s>, <unk>
        padded = [["<s>"] * (n - 1) + d.split() + ["</s>"] for d in docs]
        positions = [(p, i) for p in padded for i in range(n - 1, len(p))]
        self.counts = {}  # order -> history tuple -> Counter
        raw = defaultdict(Counter)
        for p, i in positions:
            raw[tuple(p[i - n + 1 : i])][p[i]] += 1
        self.counts[n] = raw
        for k in range(n - 1, 0, -1):
            table = defaultdict(Counter)
            if smoothing == "kneser_ney":  # N1+(• h w): distinct (k+1)-grams ending in h w
                for longer, w in {(tuple(p[i - k : i]), p[i]) for p, i in positions}:
                    table[longer[1:]][w] += 1
            else:  # raw counts of the k-grams
                for p, i in positions:
                    table[tuple(p[i - k + 1 : i])][p[i]] += 1
            self.counts[k] = table
        self.discounts = {}
        for k, table in self.counts.items():
            c_of_c = Counter(c for ctr in table.values() for c in ctr.values())
            n1 = max(c_of_c[1], 1)
            self.discounts[k] = discount if discount is not None else n1 / (n1 + 2 * c_of_c[2])

    def prob(self, hist, w):
        if w != "</s>" and w not in self.vocab:
            w = "<unk>"
        hist = tuple(h if h == "<s>" or h in self.vocab else "<unk>" for h in hist)
        if self.smoothing == "add_alpha":
            ctr = self.counts[self.n].get(hist, Counter())
            return (ctr[w] + self.alpha) / (sum(ctr.values()) + self.alpha * self.V)
        p = 1.0 / self.V
        for k in range(1, self.n + 1):
            ctr = self.counts[k].get(hist[len(hist) - k + 1 :] if k > 1 else ())
            if not ctr:
                continue
            total = sum(ctr.values())
            if self.smoothing == "kneser_ney":
                d = self.discounts[k]
                p = max(ctr[w] - d, 0) / total + d * len(ctr) / total * p
            else:
                p = self.jm_lambda * ctr[w] / total + (1 - self.jm_lambda) * p
        return p

    def logprob(self, text):
        toks = ["<s>"] * (self.n - 1) + text.split() + ["</s>"]
        return sum(math.log(self.prob(toks[i - self.n + 1 : i], toks[i])) for i in range(self.n - 1, len(toks)))


docs_strategy = st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=7).map(" ".join), min_size=1, max_size=8)
queries_strategy = st.lists(st.lists(st.sampled_from(WORDS + ["zz"]), max_size=6).map(" ".join), min_size=1, max_size=5)
smoothing_strategy = st.sampled_from([
    {"smoothing": "add_alpha", "alpha": 0.3},
    {"smoothing": "kneser_ney"},
    {"smoothing": "kneser_ney", "discount": 0.75},
    {"smoothing": "jelinek_mercer", "jm_lambda": 0.7},
])


@settings(max_examples=150, deadline=None)
@given(docs=docs_strategy, queries=queries_strategy, n=st.integers(1, 3), kwargs=smoothing_strategy)
def test_vectorized_equals_the_dict_reference(docs, queries, n, kwargs):
    lm = NgramLM(n=n, **kwargs).fit(docs)
    ref = Reference(docs, n, **kwargs)
    assert lm.V == ref.V
    if lm.discounts is not None:
        assert lm.discounts == pytest.approx([ref.discounts[k] for k in range(1, n + 1)], rel=1e-12)
    got = lm.logprobs(queries, eos=True)
    assert got == pytest.approx([ref.logprob(q) for q in queries], rel=1e-10, abs=1e-10)
    # the dense distribution after every history (seen or not) equals the reference, and sums to 1
    for hist in itertools.islice(itertools.product(["<s>", "zz", *WORDS], repeat=n - 1), 40):
        ids = [lm._index.get(h, 2) for h in hist]
        p = lm.distribution(lm._key(np.array([ids], dtype=np.int64).reshape(1, n - 1)))[0]
        assert p[1:] == pytest.approx([ref.prob(hist, w) for w in lm.vocab[1:]], rel=1e-10, abs=1e-12)
        assert p.sum() == pytest.approx(1.0, abs=1e-12)
