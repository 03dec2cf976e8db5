"""metrics.homogenization against the rouge-score package and Shaib et al.'s diversity package."""
import importlib
import json
from itertools import combinations, permutations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from rouge_score import tokenize as rouge_tokenizer

from lm_collapse.cli import main
from metrics import homogenization, score
from metrics.homogenization import rouge_tokenize

engine = importlib.import_module("metrics.homogenization")  # the module (the package exports the function)
SCORER = rouge_scorer.RougeScorer(["rougeL"])  # the default: no stemming

TEXTS = [
    "Why did the coffee file a police report? It got mugged.",
    "Decaf is just coffee that has given up on its dreams.",
    "My espresso machine and I have a latte in common.",
    "",
    "Coffee, coffee, coffee!",
    "coffee",
]

# words that stress the tokenizer: case, punctuation inside and around words, digits, non-ASCII
# letters (separators in rouge-score), tokens that vanish, and a small alphabet so that LCSs are long
WORDS = ["a", "b", "c", "A", "b.", "c,c", "x1", "42", "déjà", "ÇA", "—", "!!", "", "don't", "ſ", "İstanbul", "ǅ"]
texts_strategy = st.lists(
    st.one_of(
        st.lists(st.sampled_from(WORDS), max_size=150).map(" ".join),
        st.text(max_size=40),
    ),
    min_size=2,
    max_size=7,
)


def rouge_f(a: str, b: str) -> float:
    return SCORER.score(a, b)["rougeL"].fmeasure


def rouge_mean(texts) -> float:
    return float(np.mean([rouge_f(a, b) for a, b in permutations(texts, 2)]))


def test_rouge_l_equals_the_rouge_score_double_loop():
    assert homogenization(TEXTS) == pytest.approx(rouge_mean(TEXTS), abs=1e-12)
    assert homogenization(["same words here"] * 3) == 1.0
    assert homogenization(["", ""]) == 0.0


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_tokenizer_is_rouge_scores(text):
    assert rouge_tokenize(text) == rouge_tokenizer.tokenize(text, None)


@settings(max_examples=150, deadline=None)
@given(texts_strategy)
def test_every_pair_and_the_mean_equal_rouge_score(texts):
    lengths, shared = engine._encode([rouge_tokenize(t) for t in texts])
    f = np.zeros((len(texts), len(texts)))
    seen = np.zeros_like(f)
    for i, j, lcs in engine._pairwise_lcs(shared):  # batches of pairs, each unordered pair once
        np.add.at(seen, (np.minimum(i, j), np.maximum(i, j)), 1)
        f[i, j] = f[j, i] = 2 * lcs / (lengths[i] + lengths[j])
    assert seen.max() <= 1
    for i, j in combinations(range(len(texts)), 2):
        assert f[i, j] == pytest.approx(rouge_f(texts[i], texts[j]), abs=1e-12)
        assert rouge_f(texts[i], texts[j]) == pytest.approx(rouge_f(texts[j], texts[i]), abs=1e-15)  # symmetric
    assert homogenization(texts) == pytest.approx(rouge_mean(texts), abs=1e-12)


def test_work_splitting_does_not_change_the_result(monkeypatch, shakespeare_lines):
    """Tiny work budgets force many row blocks and column chunks, multi-word bit vectors included."""
    rng = np.random.default_rng(0)
    long_texts = [" ".join(rng.choice(["to", "be", "or", "not"], size=n)) for n in (70, 130, 64, 65, 200)]
    texts = shakespeare_lines[:40] + long_texts + ["", "!!"]
    expected = homogenization(texts)
    assert expected == pytest.approx(rouge_mean(texts), abs=1e-12)
    monkeypatch.setattr(engine, "_TABLE_BUDGET", 50)
    monkeypatch.setattr(engine, "_PAIR_BUDGET", 7)
    assert homogenization(texts) == pytest.approx(expected, abs=1e-12)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # the numpy < 2 popcount
    assert homogenization(texts) == pytest.approx(expected, abs=1e-12)


def test_diversity_package_agrees_up_to_rounding_except_when_no_pair_overlaps(shakespeare_lines):
    from diversity import homogenization_score  # Shaib et al.'s package: the same mean, rounded to 3 decimals

    for texts in (TEXTS, shakespeare_lines[:40]):
        assert round(homogenization(texts), 3) == homogenization_score(texts, verbose=False)
    # its `if corpus_score == 0: corpus_score += len(data)` turns "no pair shares a token" into 1.0
    disjoint = ["the cat sat", "a dog ran", "one bird flew"]
    assert homogenization(disjoint) == 0.0
    assert homogenization_score(disjoint, verbose=False) == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 texts"):
        homogenization(["one"])
    with pytest.raises(ValueError, match="unknown measure 'bleu'; choose one of: rouge_l"):
        homogenization(["a", "b"], "bleu")
    with pytest.raises(TypeError, match="not a single str"):
        homogenization("a b")
    with pytest.raises(TypeError, match="expected a str"):
        homogenization(["a", 3])


def test_score_and_cli(tmp_path, capsys):
    assert score(TEXTS, ["homogenization"]) == {"homogenization": homogenization(TEXTS)}
    with pytest.raises(ValueError, match="raw strings"):
        score([["a", "b"], ["a"]], ["homogenization"])
    path = tmp_path / "gen.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    assert main(["metrics", str(path), "--metrics", "homogenization", "--format", "json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)[str(path)]["homogenization"] == homogenization(TEXTS)
