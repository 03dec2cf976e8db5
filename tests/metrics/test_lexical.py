"""Lexical metrics against hand-computed cases, the `diversity` package, and properties."""
import gzip
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import (
    compression_ratio,
    distinct_n,
    ngram_entropy,
    normalized_entropy,
    tokenize,
    top_k_share,
    ttr,
    ttr_fixed_length,
    unique_n,
)

token_lists = st.lists(st.lists(st.sampled_from(list("abcde")), max_size=12), min_size=1, max_size=8)


def test_tokenize_lowercases_words_and_keeps_contractions():
    assert tokenize("Don't STOP, o'er the Hills…") == ["don't", "stop", "o'er", "the", "hills"]
    assert tokenize("Ünïcödé ünïcödé 東京") == ["ünïcödé", "ünïcödé", "東京"]
    assert tokenize("   ") == []


def test_distinct_hand_computed():
    texts = ["the cat sat on the mat", "the cat ran"]
    # unigrams: the x3, cat x2, sat, on, mat, ran -> 6 types / 9 tokens
    assert distinct_n(texts, 1) == 6 / 9
    # bigrams: the-cat x2, cat-sat, sat-on, on-the, the-mat, cat-ran -> 6 / 7 (none spans texts)
    assert distinct_n(texts, 2) == 6 / 7
    assert distinct_n(texts, 3) == 5 / 5
    assert ttr(texts) == distinct_n(texts, 1)


def test_pretokenized_input_used_as_is():
    texts = [["New York", "is", "big"], ["new york", "is", "big"]]
    assert distinct_n(texts, 1) == 4 / 6  # "New York" and "new york" differ: no re-tokenizing


def test_no_ngrams_is_zero_not_nan():
    for fn in (lambda t: distinct_n(t, 3), ttr, ngram_entropy, normalized_entropy, top_k_share):
        assert fn(["", "  "]) == 0.0
    assert distinct_n(["a b", "c"], 3) == 0.0


@pytest.mark.parametrize("bad", [[], "a string", None])
def test_bad_input(bad):
    with pytest.raises((ValueError, TypeError)):
        distinct_n(bad, 1)


def test_bad_order():
    for n in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            distinct_n(["a b"], n)


def test_mixed_input_forms_rejected():
    with pytest.raises(TypeError, match="mixes"):
        ttr(["a b", ["a", "b"]])


def test_distinct_matches_diversity_package_on_one_text(shakespeare_lines):
    diversity = pytest.importorskip("diversity")
    text = " ".join(" ".join(tokenize(line)) for line in shakespeare_lines[:300])
    ours = sum(distinct_n([text.split(" ")], n) for n in range(1, 5))
    assert round(ours, 3) == diversity.ngram_diversity_score([text], num_n=4)


@pytest.mark.parametrize("algorithm", ["gzip", "xz"])
def test_compression_ratio_matches_diversity_package(shakespeare_lines, algorithm, tmp_path, monkeypatch):
    diversity = pytest.importorskip("diversity")
    # the package stamps time.time() into its inner gzip header; with that clock at 0 (our fixed
    # header) the two definitions agree exactly
    monkeypatch.setattr(gzip.time, "time", lambda: 0.0)
    for texts in (shakespeare_lines[:50], shakespeare_lines[:2000], ["ab"] * 3, ["ünïcode ✓ text"]):
        theirs = diversity.compression_ratio(texts, algorithm, path=str(tmp_path))
        assert round(compression_ratio(texts, algorithm=algorithm), 3) == theirs


def test_compression_ratio_is_deterministic(shakespeare_lines, monkeypatch):
    """The same corpus gives the same value whatever the clock says (the package's value moves with it)."""
    diversity = pytest.importorskip("diversity")
    texts = ["to be or not to be"] * 200
    values, theirs = set(), set()
    for clock in (0.0, 1.7e9, 1.7e9 + 12345.678, 2**31 - 1):
        monkeypatch.setattr(gzip.time, "time", lambda clock=clock: clock)
        values.add(compression_ratio(texts))
        theirs.add(diversity.compression_ratio(texts, "gzip"))
    (ours,) = values
    assert len(theirs) > 1  # why the fixed header is needed
    size = len(" ".join(texts).encode())
    # it differs only by the 4 time bytes of the inner header, compressed by the outer gzip
    assert all(abs(round(size / t) - round(size / ours)) <= 4 for t in theirs)


def test_compression_ratio_definition(monkeypatch):
    texts = ["to be or not to be"] * 50
    raw = " ".join(texts).encode()
    # the diversity package's file: gzip(gzip(raw)) plus the header field naming "compressed",
    # every header stamped with the time 0
    monkeypatch.setattr(gzip.time, "time", lambda: 0.0)
    double = gzip.compress(gzip.compress(raw))
    assert compression_ratio(texts) == len(raw) / (len(double) + len(b"compressed\0"))
    assert compression_ratio([""]) == 0.0
    assert compression_ratio([["a", "b"], ["c"]]) == compression_ratio(["a b", "c"])
    with pytest.raises(ValueError, match="algorithm"):
        compression_ratio(["a"], algorithm="zip")


def test_entropy_hand_computed():
    assert ngram_entropy(["a a b b"]) == 1.0
    assert ngram_entropy(["a a a a"]) == 0.0
    assert ngram_entropy(["a b c d"], 1) == 2.0
    assert ngram_entropy(["a b a b"], 2) == pytest.approx(-(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))
    assert normalized_entropy(["a b c d"]) == 1.0
    assert normalized_entropy(["a a a a"]) == 0.0


def test_top_k_share_hand_computed():
    assert top_k_share(["a a a b c", "a b"], k=1) == 4 / 7
    assert top_k_share(["a a a b c", "a b"], k=2) == 6 / 7
    assert top_k_share(["a b"], k=10) == 1.0


def test_unique_n_sampling():
    texts = ["a b c d e f g h i j"]
    assert unique_n(texts, ns=(1, 2, 3), sample_size=8) == 1.0
    assert unique_n(["a a a a"], ns=(1,), sample_size=2) == 0.5
    assert unique_n(texts, sample_size=5, seed=1) == unique_n(texts, sample_size=5, seed=1)
    with pytest.raises(ValueError, match="sample_size=100"):
        unique_n(texts, sample_size=100)
    with pytest.raises(ValueError, match="sample_size"):
        unique_n(texts, sample_size=0)


def test_unique_n_controls_for_length(shakespeare_lines):
    short, long = shakespeare_lines[:1000], shakespeare_lines[:8000]
    assert distinct_n(long, 1) < 0.6 * distinct_n(short, 1)  # distinct-n falls with N ...
    a, b = unique_n(short, sample_size=2000), unique_n(long, sample_size=2000)
    assert abs(a - b) < 0.05  # ... unique-n at fixed N does not


@settings(max_examples=200, deadline=None)
@given(token_lists)
def test_ranges_and_permutation_invariance(texts):
    for fn in (lambda t: distinct_n(t, 1), lambda t: distinct_n(t, 2), ttr, normalized_entropy, top_k_share):
        v = fn(texts)
        assert 0.0 <= v <= 1.0
        assert fn(list(reversed(texts))) == pytest.approx(v)
    h = ngram_entropy(texts)
    assert 0.0 <= h <= math.log2(5) + 1e-12


@settings(max_examples=200, deadline=None)
@given(token_lists)
def test_duplicating_the_corpus_does_not_raise_distinct(texts):
    for n in (1, 2):
        once, twice = distinct_n(texts, n), distinct_n(texts * 2, n)
        if once:
            assert twice == pytest.approx(once / 2)
    assert ngram_entropy(texts * 3) == pytest.approx(ngram_entropy(texts))


@settings(max_examples=100, deadline=None)
@given(token_lists)
def test_entropy_matches_counter_definition(texts):
    counts = Counter(t for text in texts for t in text)
    total = sum(counts.values())
    expected = -sum(c / total * math.log2(c / total) for c in counts.values()) if total else 0.0
    assert ngram_entropy(texts) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- TTR on fixed-length texts


def nltk_ttr_fixed_length(texts, length):
    """Independent reference: NLTK's FreqDist of each long-enough text's first ``length`` tokens, B() / N()."""
    from nltk import FreqDist

    ratios = [FreqDist(t[:length]).B() / FreqDist(t[:length]).N() for t in texts if len(t) >= length]
    return sum(ratios) / len(ratios) if ratios else 0.0


@settings(max_examples=200, deadline=None)
@given(token_lists, st.integers(1, 8))
def test_ttr_fixed_length_equals_nltk_and_is_length_controlled(texts, length):
    value = ttr_fixed_length(texts, length)
    assert value == pytest.approx(nltk_ttr_fixed_length(texts, length), abs=1e-12)
    assert value == 0.0 or 1 / length - 1e-12 <= value <= 1.0
    assert ttr_fixed_length(list(reversed(texts)), length) == pytest.approx(value)
    assert ttr_fixed_length(texts * 3, length) == pytest.approx(value)  # the corpus size does not move it
    longer = [t + ["z"] * 5 if len(t) >= length else t for t in texts]
    assert ttr_fixed_length(longer, length) == pytest.approx(value)  # tokens past L do not count


def test_ttr_fixed_length_hand_computed_and_controls_for_length(shakespeare_lines):
    assert ttr_fixed_length(["a b a c", "a a a a", "x"], length=4) == pytest.approx((3 / 4 + 1 / 4) / 2)
    assert ttr_fixed_length(["a b"], length=3) == 0.0  # no text is long enough
    with pytest.raises(ValueError):
        ttr_fixed_length(["a b"], length=0)
    short, long = shakespeare_lines[:1000], shakespeare_lines[:8000]
    assert ttr(long) < 0.6 * ttr(short)  # whole-corpus TTR falls with N ...
    assert abs(ttr_fixed_length(short, 5) - ttr_fixed_length(long, 5)) < 0.02  # ... TTR at a fixed length does not
