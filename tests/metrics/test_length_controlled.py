"""metrics.length_controlled against naive references, closed forms and properties."""
import math
import random
from collections import Counter
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import distinct_n, ngram_entropy, score, top_k_share, unique_n
from metrics.length_controlled import TooFewNgrams, distinct_n_at, entropy_at, sample_ngram_counts, top_k_share_at

WORDS = st.sampled_from(list("abcdefg"))
CORPORA = st.lists(st.lists(WORDS, min_size=0, max_size=12), min_size=1, max_size=8)


def naive_ngrams(texts, n):
    return [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]


def naive_measures(grams, k=10):
    """distinct, entropy (bits), top-k share of a list of n-grams, written out by hand."""
    counts = Counter(grams)
    total = len(grams)
    entropy = -sum(c / total * math.log2(c / total) for c in counts.values())
    top = sum(sorted(counts.values(), reverse=True)[:k]) / total
    return len(counts) / total, entropy, top


def expected_distinct(grams, budget):
    """E[distinct n-grams among `budget` drawn without replacement] = sum_g 1 - C(M - c_g, T) / C(M, T)."""
    m = len(grams)
    return sum(1 - comb(m - c, budget) / comb(m, budget) for c in Counter(grams).values())


@given(CORPORA, st.integers(1, 3))
def test_whole_corpus_budget_is_the_plain_measure(texts, n):
    """With T = every n-gram the sample is the corpus: the values are the naive ones and lexical's."""
    grams = naive_ngrams(texts, n)
    if not grams:
        with pytest.raises(TooFewNgrams):
            distinct_n_at(texts, n, budget=1)
        return
    distinct, entropy, top = naive_measures(grams)
    t = len(grams)
    assert distinct_n_at(texts, n, budget=t) == pytest.approx(distinct) == pytest.approx(distinct_n(texts, n))
    assert entropy_at(texts, n, budget=t) == pytest.approx(entropy, abs=1e-12)
    assert entropy_at(texts, n, budget=t) == pytest.approx(ngram_entropy(texts, n), abs=1e-12)
    if n == 1:
        assert top_k_share_at(texts, 10, budget=t) == pytest.approx(top) == pytest.approx(top_k_share(texts, 10))


@settings(max_examples=60)
@given(CORPORA, st.integers(1, 2), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_bounds_submultiset_and_unique_n(texts, n, budget, seed):
    grams = naive_ngrams(texts, n)
    if len(grams) < budget:
        with pytest.raises(TooFewNgrams) as err:
            distinct_n_at(texts, n, budget=budget, seed=seed)
        assert (err.value.count, err.value.size) == (len(grams), budget) and f"has {len(grams)} " in str(err.value)
        return
    drawn = sample_ngram_counts(texts, n, budget=budget, seed=seed)
    assert sum(drawn.values()) == budget and not drawn - Counter(grams)  # a sub-multiset of the corpus' n-grams
    d, h, top = (distinct_n_at(texts, n, budget=budget, seed=seed), entropy_at(texts, n, budget=budget, seed=seed),
                 top_k_share_at(texts, 3, budget=budget, seed=seed))
    assert 1 / budget <= d <= 1 and 0 <= h <= math.log2(budget) + 1e-12 and min(3, budget) / budget <= top <= 1
    assert (d, h) == pytest.approx(naive_measures(list(drawn.elements()))[:2], abs=1e-12)
    assert d == unique_n(texts, ns=(n,), sample_size=budget, seed=seed)  # unique-n's draw, one order


def test_the_draw_is_uniform_without_replacement():
    """Mean over seeds of the distinct count = its closed form under uniform draws without replacement."""
    texts = [["a"] * 6 + ["b"] * 3 + ["c", "d", "e"]]
    grams = naive_ngrams(texts, 1)
    for budget in (2, 5, 9):
        mean = np.mean([distinct_n_at(texts, 1, budget=budget, seed=s) * budget for s in range(3000)])
        assert mean == pytest.approx(expected_distinct(grams, budget), abs=0.05)


def test_appending_length_moves_distinct_but_not_the_budget_measures():
    """Generations drawn i.i.d. from one Zipf distribution, cut at 10 or 40 words: over 60 independent corpora,
    distinct-n falls with the length by tens of standard errors, the measures at T = 300 move by fewer than 4
    (for one fixed seed: the draw's positions depend on the corpus size alone, see the module docstring)."""
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(400)]
    corpora = [[rng.choices(vocab, weights, k=40) for _ in range(50)] for _ in range(60)]
    shorts = [[t[:10] for t in corpus] for corpus in corpora]

    def shift(fn, *args, **kw):
        """Mean change short - long, in standard errors of the paired differences."""
        d = np.array([fn(s, *args, **kw) - fn(c, *args, **kw) for s, c in zip(shorts, corpora)])
        return d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))

    assert shift(distinct_n, 1) > 20 and shift(distinct_n, 2) > 20 and shift(ngram_entropy, 1) < -20
    for fn, arg in [(distinct_n_at, 1), (distinct_n_at, 2), (entropy_at, 1), (entropy_at, 2), (top_k_share_at, 10)]:
        assert abs(shift(fn, arg, budget=300)) < 4, fn.__name__


def test_score_names_carry_the_budget():
    texts = ["the cat sat on the mat", "the dog sat on the log"]
    got = score(texts, ["distinct_2_at_5", "entropy_1_at_8", "top2_share_at_6"])
    assert got == {"distinct_2_at_5": distinct_n_at(texts, 2, budget=5), "entropy_1_at_8": entropy_at(texts, 1, budget=8),
                   "top2_share_at_6": top_k_share_at(texts, 2, budget=6)}
    assert score(texts, ["distinct_1_at_4"], options={"distinct_1_at_4": {"seed": 7}})["distinct_1_at_4"] == \
        distinct_n_at(texts, 1, budget=4, seed=7)
    with pytest.raises(TooFewNgrams, match="has 10 2-grams, fewer than the budget of 11"):
        score(texts, ["distinct_2_at_11"])
    with pytest.raises(ValueError, match="unknown metric"):
        score(texts, ["distinct_2_at_0"])
    with pytest.raises(ValueError, match="its options: seed"):
        score(texts, ["entropy_2_at_5"], options={"entropy_2_at_5": {"sample_size": 3}})


def test_task_aggregations_report_nan_and_the_count_below_the_budget(caplog):
    from collapse_tasks import gen_utils

    texts = [["to be or not to be"] * 300]  # 1,800 words: enough for T = 1000
    aggregation = gen_utils.AGGREGATIONS
    assert 0 < aggregation["distinct_2_at_1000"](texts) < 1 and aggregation["top10_share_at_1000"](texts) == 1.0
    assert gen_utils.AGGREGATIONS["entropy_1_at_1000"](texts) == pytest.approx(entropy_at(texts[0], 1, budget=1000))
    assert not gen_utils.higher_is_better("top10_share_at_1000") and gen_utils.higher_is_better("entropy_2_at_1000")
    with caplog.at_level("WARNING"):
        assert math.isnan(gen_utils.AGGREGATIONS["distinct_2_at_1000"]([["a short one", "and another"]]))
    assert "distinct_2_at_1000 is nan" in caplog.text and "has 3 2-grams, fewer than the budget of 1000" in caplog.text
