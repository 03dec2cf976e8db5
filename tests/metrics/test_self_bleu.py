"""Self-BLEU against NLTK's sentence_bleu (float for float), fast-bleu, hand-computed cases, properties."""
import math
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from metrics import tokenize
from metrics.self_bleu import _stable_argsort, self_bleu

SMOOTHINGS = ["method0", "method1", "method2", "method3", "method4"]


def nltk_self_bleu(token_lists, n, smoothing="method1"):
    """The definition: each text against all the others, one NLTK call per text (O(N²))."""
    smooth = getattr(SmoothingFunction(), smoothing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # method0 warns on every zero precision
        return np.array(
            [
                float(sentence_bleu(token_lists[:i] + token_lists[i + 1 :], hyp, (1 / n,) * n, smooth))
                for i, hyp in enumerate(token_lists)
            ]
        )


@pytest.fixture(scope="module")
def corpus(shakespeare_lines):
    """~120 real lines plus the awkward cases: short, empty, duplicate, spaced and unicode tokens."""
    rng = np.random.default_rng(0)
    lines = [tokenize(shakespeare_lines[i]) for i in rng.choice(len(shakespeare_lines), 110, replace=False)]
    return lines + [
        [],
        [],
        ["to"],
        ["to", "be"],
        ["to", "be", "or"],
        lines[0][:],  # duplicate of a real line
        lines[0][:],
        lines[1][:3],  # a prefix of a real line
        ["New York", "is", "the", "king"],
        ["new york", "is", "the", "king"],
        ["東京", "ünïcödé", "ß", "the", "king"],
        ["the"] * 7,
    ]


@pytest.mark.parametrize("n", [2, 3, 4, 5])
@pytest.mark.parametrize("smoothing", ["method0", "method1"])
def test_equals_nltk_on_shakespeare(corpus, n, smoothing):
    ours = self_bleu(corpus, n, smoothing=smoothing, per_text=True)
    ref = nltk_self_bleu(corpus, n, smoothing)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ours, ref)  # in fact identical: same float operations as NLTK
    assert self_bleu(corpus, n, smoothing=smoothing) == pytest.approx(ref.mean(), rel=0, abs=1e-12)


@pytest.mark.parametrize("smoothing", ["method2", "method3", "method4"])
def test_other_smoothings_equal_nltk(corpus, smoothing):
    ours = self_bleu(corpus, 4, smoothing=smoothing, per_text=True)
    np.testing.assert_array_equal(ours, nltk_self_bleu(corpus, 4, smoothing))


token = st.sampled_from(["a", "b", "c", "a b", "é"])
small_corpora = st.lists(st.lists(token, max_size=7), min_size=2, max_size=7)


@settings(max_examples=150, deadline=None)
@given(small_corpora, st.integers(1, 4), st.sampled_from(SMOOTHINGS))
def test_equals_nltk_on_random_small_corpora(token_lists, n, smoothing):
    # a tiny alphabet gives many repeated n-grams, ties for the max count and ties in length
    ours = self_bleu(token_lists, n, smoothing=smoothing, per_text=True)
    np.testing.assert_array_equal(ours, nltk_self_bleu(token_lists, n, smoothing))


def test_equals_fast_bleu_on_1000_lines(shakespeare_lines):
    fast_bleu = pytest.importorskip("fast_bleu")
    token_lists = [tokenize(line) for line in shakespeare_lines[:1000]]
    ref = fast_bleu.SelfBLEU(token_lists, {4: (0.25,) * 4}, smoothing_func=1).get_score()[4]
    np.testing.assert_allclose(self_bleu(token_lists, 4, per_text=True), ref, rtol=0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**62), max_size=300), st.integers(0, 62))
def test_radix_argsort_is_a_stable_argsort(keys, bits):
    keys = np.array(keys, dtype=np.int64) >> bits  # many ties when bits is large
    np.testing.assert_array_equal(_stable_argsort(keys), np.argsort(keys, kind="stable"))


def test_hand_computed_clipping_against_the_others():
    texts = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park"]
    # text 0: unigrams the(2, clipped to 1), cat, sat, on, mat -> 5/6; bigrams the-cat, cat-sat,
    # sat-on -> 3/5; all lengths 6 -> BP 1
    assert self_bleu(texts, 2, per_text=True)[0] == pytest.approx(math.sqrt(5 / 6 * 3 / 5), abs=1e-15)
    # the max count over the *other* texts: 3 -> 2, 2 -> 3 (ties share the max), 1 -> 3
    scores = self_bleu([["the"] * 3, ["the"] * 2, ["the"]], 1, per_text=True)
    # BP: h=3 > r=2; h=2, others 3 and 1 tie -> the shorter 1; h=1 < r=2 -> exp(1 - 2)
    np.testing.assert_allclose(scores, [2 / 3, 1.0, math.exp(-1)], rtol=1e-15)


def test_brevity_penalty_uses_the_other_lengths_and_ties_go_shorter():
    a, b, c = list("abc"), list("ab"), list("abcd")
    scores = self_bleu([a, b, c], 1, per_text=True)
    assert scores[0] == 1.0  # h=3: others 2 and 4 tie -> r=2 -> no penalty (r=4 would give 0.72)
    assert scores[1] == pytest.approx(math.exp(1 - 3 / 2))  # h=2: its own length does not count
    assert self_bleu([b, list("xy"), c], 1, per_text=True)[0] == 1.0  # another text of length 2: r=2


def test_short_hypothesis_still_gets_the_brevity_penalty():
    # h=2 < n: p = (1, 1, 0.1, 0.1), r=5 -> BP exp(1 - 5/2); fast-bleu 0.0.90 leaves BP out (0.316)
    texts = [list("ab"), list("abcde"), list("abcdef")]
    expected = math.exp(0.5 * math.log(0.1)) * math.exp(1 - 5 / 2)
    assert self_bleu(texts, 4, per_text=True)[0] == pytest.approx(expected, rel=1e-14)
    assert self_bleu(texts, 4, per_text=True)[0] == nltk_self_bleu(texts, 4)[0]


def test_zero_precision_and_short_texts_follow_nltk():
    # method0: a zero bigram precision becomes sys.float_info.min -> tiny but positive
    tiny = self_bleu([["a", "b"], ["a", "c"]], 2, smoothing="method0", per_text=True)
    np.testing.assert_allclose(tiny, math.sqrt(0.5) * math.sqrt(sys.float_info.min), rtol=1e-12)
    assert (tiny > 0).all()
    # method1: a text shorter than n gets 0.1 for each missing order
    assert self_bleu([["a"], ["a"]], 4) == pytest.approx(0.1**0.75, rel=1e-14)


def test_empty_and_unmatched_texts_score_zero():
    assert self_bleu(["", ""]) == 0.0
    assert list(self_bleu(["", "to be", "to be"], 2, per_text=True)) == [0.0, 1.0, 1.0]
    assert self_bleu(["a b c", "d e f"], 1) == 0.0


def test_tokens_are_used_as_given():
    # pre-tokenized: "New York" is one token, case-sensitive; strings go through tokenize()
    assert self_bleu([["New York", "is"], ["new york", "is"]], 1, per_text=True)[0] == 0.5
    texts = ["O Romeo, Romeo!", "Romeo, o ROMEO", "ünïcödé 東京 romeo"]
    assert self_bleu(texts, 2) == self_bleu([tokenize(t) for t in texts], 2)


@settings(max_examples=60, deadline=None)
@given(small_corpora, st.integers(1, 4), st.randoms(use_true_random=False))
def test_range_and_permutation(token_lists, n, rnd):
    scores = self_bleu(token_lists, n, per_text=True)
    assert ((scores >= 0) & (scores <= 1)).all()
    perm = list(range(len(token_lists)))
    rnd.shuffle(perm)
    shuffled = self_bleu([token_lists[i] for i in perm], n, per_text=True)
    np.testing.assert_array_equal(shuffled, scores[perm])
    assert self_bleu([token_lists[i] for i in perm], n) == pytest.approx(scores.mean(), abs=1e-15)


@settings(max_examples=30, deadline=None)
@given(st.lists(token, min_size=4, max_size=9), st.integers(2, 6), st.integers(1, 4))
def test_identical_texts_give_one(text, copies, n):
    assert self_bleu([text] * copies, n) == 1.0


def test_sample_size(shakespeare_lines):
    lines = shakespeare_lines[:3000]
    once = self_bleu(lines, sample_size=200, seed=7, per_text=True)
    np.testing.assert_array_equal(once, self_bleu(lines, sample_size=200, seed=7, per_text=True))
    assert self_bleu(lines, sample_size=200, seed=8) != once.mean()
    chosen = np.sort(np.random.default_rng(7).choice(len(lines), 200, replace=False))
    np.testing.assert_array_equal(once, self_bleu([lines[j] for j in chosen], per_text=True))
    whole = self_bleu(lines[:50])
    assert self_bleu(lines[:50], sample_size=50) == self_bleu(lines[:50], sample_size=500) == whole


def test_depends_on_corpus_size(shakespeare_lines):
    small = self_bleu(shakespeare_lines, sample_size=100, seed=0)
    large = self_bleu(shakespeare_lines, sample_size=5000, seed=0)
    assert small < large  # more references, more matches: compare only at the same N


@pytest.mark.parametrize("bad", [[], ["only one"], [["only", "one"]]])
def test_fewer_than_two_texts(bad):
    with pytest.raises(ValueError, match="at least 2"):
        self_bleu(bad)


def test_bad_arguments():
    texts = ["a b", "a c", "b c"]
    with pytest.raises(TypeError):
        self_bleu("a single string")
    with pytest.raises(ValueError, match="positive integer"):
        self_bleu(texts, 0)
    with pytest.raises(ValueError, match="smoothing"):
        self_bleu(texts, smoothing="method9")
    for size in (0, 1, True, 2.5):
        with pytest.raises(ValueError, match="sample_size"):
            self_bleu(texts, sample_size=size)
