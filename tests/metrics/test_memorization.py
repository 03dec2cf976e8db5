"""Memorization: against a brute-force search of all substrings, hand-computed cases, real Shakespeare,
properties."""
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import tokenize
from metrics.memorization import Memorization, NgramIndex, memorization

memorization_module = importlib.import_module("metrics.memorization")  # the module, not the re-exported function


def brute_longest(text, reference):
    """The definition: the longest run of ``text`` equal to a run inside one reference text."""
    runs = {tuple(ref[a:b]) for ref in reference for a in range(len(ref)) for b in range(a + 1, len(ref) + 1)}
    spans = ((a, b) for a in range(len(text)) for b in range(a + 1, len(text) + 1))
    return max((b - a for a, b in spans if tuple(text[a:b]) in runs), default=0)


# few distinct tokens, so that long matches and repeats are common
token = st.sampled_from(["a", "b", "c", "New York", "ß"])
token_lists = st.lists(st.lists(token, max_size=14), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(texts=token_lists, reference=token_lists)
def test_equals_brute_force(texts, reference):
    expected = [brute_longest(t, reference) for t in texts]
    assert NgramIndex(reference).longest_matches(texts).tolist() == expected
    result = memorization(texts, reference, 3, per_text=True)
    assert result.longest.tolist() == expected
    assert result.rate == pytest.approx(np.mean(np.array(expected) >= 3))
    assert result.mean_longest == pytest.approx(np.mean(expected))


@settings(max_examples=50, deadline=None)
@given(
    texts=st.lists(st.lists(st.sampled_from("ab"), max_size=40), min_size=1, max_size=4),
    reference=st.lists(st.lists(st.sampled_from("ab"), max_size=60), min_size=1, max_size=3),
)
def test_equals_brute_force_long_repeats(texts, reference):
    """Two tokens only: matches of every length up to the texts' length, several doubling levels."""
    assert NgramIndex(reference).longest_matches(texts).tolist() == [brute_longest(t, reference) for t in texts]


def test_hand_computed():
    reference = ["to be or not to be that is the question", "all the world's a stage"]
    texts = ["to be or not to be a stage", "the world is a question", "all the world's a stage", "", "zounds"]
    result = memorization(texts, reference, n=5, per_text=True)
    # "to be or not to be" (6); "the" (1: "world's" is one token); the whole second text (5)
    assert result.longest.tolist() == [6, 1, 5, 0, 0]
    assert result == Memorization(rate=2 / 5, mean_longest=12 / 5, n=5, longest=result.longest)
    assert memorization(texts, reference, n=6).rate == pytest.approx(1 / 5)
    assert memorization(texts, reference, n=1).rate == pytest.approx(3 / 5)
    assert memorization(texts, reference).longest is None


def test_never_spans_two_reference_texts():
    index = NgramIndex([["a", "b"], ["c", "d"]])
    assert index.longest_match(["a", "b", "c", "d"]) == 2
    assert index.longest_match(["b", "c"]) == 1
    assert NgramIndex([["a", "b", "c", "d"]]).longest_match(["b", "c"]) == 2
    # nor two texts: each text is matched on its own
    assert NgramIndex([["a", "b", "c"]]).longest_matches([["a"], ["b", "c"]]).tolist() == [1, 2]


def test_tokens_kept_as_given():
    index = NgramIndex([["New York", "is", "big"], ["東京", "ünïcödé"]])
    texts = [["New York", "is"], ["new york", "is"], ["東京", "ünïcödé", "x"]]
    assert index.longest_matches(texts).tolist() == [2, 1, 2]


def test_raw_strings_use_the_default_tokenizer():
    index = NgramIndex(["O Romeo, Romeo! Wherefore art thou Romeo?"])
    assert index.longest_match("romeo romeo wherefore ART thou...") == 5
    assert index.longest_match("") == 0


def test_whole_reference_text_as_query():
    rng = np.random.default_rng(0)
    reference = [[f"w{i}" for i in rng.integers(0, 50, size=5000)], ["x"] * 3000]
    index = NgramIndex(reference)
    assert index.longest_matches(reference).tolist() == [5000, 3000]
    assert index.longest_match(["x"] * 4000) == 3000


def test_batches_agree(monkeypatch):
    rng = np.random.default_rng(1)
    reference = [[str(t) for t in rng.integers(0, 3, size=40)] for _ in range(5)]
    texts = [[str(t) for t in rng.integers(0, 3, size=rng.integers(0, 30))] for _ in range(40)]
    whole = NgramIndex(reference).longest_matches(texts)
    monkeypatch.setattr(memorization_module, "_BATCH_TOKENS", 16)
    assert NgramIndex(reference).longest_matches(texts).tolist() == whole.tolist()
    assert whole.tolist() == [brute_longest(t, reference) for t in texts]


def test_prebuilt_index_is_reused():
    reference = ["the cat sat on the mat", "a dog ran"]
    index = NgramIndex(reference)
    texts = ["the cat sat down", "a dog ran on the mat"]
    assert memorization(texts, index, 3, per_text=True).longest.tolist() == [3, 3]
    assert memorization(texts, index, 3) == memorization(texts, reference, 3)
    assert repr(index) == "NgramIndex(n_texts=2, n_tokens=9)"


def test_reference_without_tokens_matches_nothing():
    result = memorization(["to be or not"], ["", ""], n=1, per_text=True)
    assert (result.rate, result.mean_longest, result.longest.tolist()) == (0.0, 0.0, [0])
    assert NgramIndex([[]]).longest_matches([["a"], []]).tolist() == [0, 0]


def test_empty_query_list():
    assert NgramIndex(["a b"]).longest_matches([]).tolist() == []


@pytest.mark.parametrize(
    "texts, reference, n, message",
    [
        ([], ["a b"], 8, "texts must contain at least 1 text"),
        (["a b"], [], 8, "reference_texts must contain at least 1 text"),
        (["a b"], [["a", "b"]], 8, "same form"),
        ([["a", "b"]], ["a b"], 8, "same form"),
        (["a b"], ["a b"], 0, "n must be a positive integer"),
    ],
)
def test_bad_input(texts, reference, n, message):
    with pytest.raises(ValueError, match=message):
        memorization(texts, reference, n)


def test_bad_input_types():
    with pytest.raises(TypeError):
        NgramIndex("a single string")
    with pytest.raises(ValueError, match="same form"):
        NgramIndex(["a b"]).longest_match(["a", "b"])


@pytest.fixture(scope="module")
def plays(shakespeare_lines):
    """Blocks of 50 real lines as the reference corpus, and the index of them."""
    lines = shakespeare_lines[:5000]
    reference = [" ".join(lines[i : i + 50]) for i in range(0, len(lines), 50)]
    return lines, reference, NgramIndex(reference)


def test_shakespeare_copied_and_shuffled_lines(plays):
    lines, _, index = plays
    rng = np.random.default_rng(0)
    copied = [lines[i] for i in rng.choice(len(lines), 300, replace=False)]
    lengths = np.array([len(tokenize(line)) for line in copied])
    assert index.longest_matches(copied).tolist() == lengths.tolist()
    shuffled = [" ".join(rng.permutation(tokenize(line))) for line in copied]
    longest = index.longest_matches(shuffled)
    assert (longest <= lengths).all()
    assert longest.mean() < 0.5 * lengths.mean()
    result = memorization(copied + shuffled, index, n=8)
    assert result.rate == pytest.approx(np.mean(np.concatenate([lengths, longest]) >= 8))


def test_shakespeare_brute_force_sample(shakespeare_lines):
    """Real lines against a brute force: 200 lines as the reference, 60 other lines and 5 copies as queries."""
    reference = [tokenize(line) for line in shakespeare_lines[:200]]
    queries = [tokenize(line) for line in shakespeare_lines[6000:6060]] + reference[:5]
    expected = [brute_longest(q, reference) for q in queries]
    assert NgramIndex(reference).longest_matches(queries).tolist() == expected
    assert expected[-5:] == [len(q) for q in reference[:5]]


@settings(max_examples=100, deadline=None)
@given(
    texts=token_lists, reference=token_lists, extra=token_lists, n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1)
)
def test_properties(texts, reference, extra, n, seed):
    result = memorization(texts, reference, n, per_text=True)
    assert 0 <= result.rate <= 1
    assert ((result.longest >= 0) & (result.longest <= [len(t) for t in texts])).all()
    # more reference text never lowers a longest match
    assert (memorization(texts, reference + extra, n, per_text=True).longest >= result.longest).all()
    # permuting the texts permutes the matches; permuting the reference changes nothing
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    shuffled_reference = [reference[i] for i in rng.permutation(len(reference))]
    permuted = memorization([texts[i] for i in order], shuffled_reference, n, per_text=True)
    assert permuted.longest.tolist() == result.longest[order].tolist()
    assert permuted.rate == result.rate
