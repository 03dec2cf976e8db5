"""Verbalized Sampling: templates, the tolerant parser on hand-written outputs, sampling."""
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collapse_tasks.verbalized import TEMPLATES, Candidate, parse, parse_probability, render, sample, weights

FIXTURES = [json.loads(line) for line in (Path(__file__).parent / "fixtures/vs/outputs.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("case", FIXTURES, ids=[c["name"] for c in FIXTURES])
def test_parser_on_fixtures(case):
    parsed = parse(case["output"])
    assert parsed.status == case["status"]
    assert parsed.form == case["form"]
    assert [c.text for c in parsed.candidates] == case["texts"]
    assert [c.probability for c in parsed.candidates] == pytest.approx(case["probs"]) if any(
        p is not None for p in case["probs"]) else [c.probability for c in parsed.candidates] == case["probs"]


def test_templates():
    for form in TEMPLATES:
        text = render(form, "Tell me a joke about cats.", k=4, threshold=0.1)
        assert "{" not in text.replace('{"', "").replace("{k}", "") or form != "direct"
    assert render("direct", "Tell me a joke.") == "Tell me a joke."
    assert "4 responses" in render("standard", "x", k=4) and "'probability'" in render("standard", "x")
    assert '"reasoning"' in render("cot", "x") and "less than 0.1." in render("xml", "x", threshold=0.1)
    # the authors' wording (methods/prompt.py; the README's XML prompt)
    assert "- 'probability': how likely this response would be (from 0.0 to 1.0)." in render("standard", "x")
    assert "Randomly sample the responses from the full distribution." in render("cot", "x")
    assert render("xml", "Tell me a joke.", k=5, threshold=0.1).startswith(
        "<instructions>\nGenerate 5 responses to the user query, each within a separate <response> tag.")
    assert render("multi", "x", k=5, turns=3).startswith(
        "Generate 15 responses to the input prompt.\n\nFirst, sample 5 responses.\n")
    # their CreativityPromptTemplate.get_vs_multi_turn_prompt has no "Maximizing ..." line (VS-Standard does)
    assert "Maximizing" not in render("multi", "x") + render("multi_rounds", "x") and "Maximizing" in render("standard", "x")
    with pytest.raises(ValueError, match="choose one of"):
        render("vs_plus", "x")


def test_probability_forms():
    assert parse_probability("0.25") == 0.25 and parse_probability("12.5%") == 0.125
    assert parse_probability(40) == 0.4 and parse_probability(0.4) == 0.4
    for bad in ("high", -0.1, 150, None, True, [0.2]):
        assert parse_probability(bad) is None


def test_sampling_matches_renormalized_probabilities():
    cands = [Candidate("a", 0.4), Candidate("b", 0.1), Candidate("c", 0.3)]  # sums to 0.8
    rng = np.random.default_rng(0)
    draws = [sample(cands, rng).text for _ in range(20000)]
    expected = np.array([0.5, 0.125, 0.375]) * 20000
    observed = np.array([draws.count(t) for t in "abc"])
    chi2 = ((observed - expected) ** 2 / expected).sum()
    assert chi2 < 13.8  # 2 dof, p = 0.001
    assert sample(cands, np.random.default_rng(5)) == sample(cands, np.random.default_rng(5))


def test_weights_with_missing_and_zero_probabilities():
    assert weights([Candidate("a", None), Candidate("b", None)]).tolist() == [0.5, 0.5]
    assert weights([Candidate("a", 0.0), Candidate("b", 0.0)]).tolist() == [0.5, 0.5]
    assert weights([Candidate("a", 0.2), Candidate("b", None)]).tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="did not parse"):
        sample([], np.random.default_rng(0))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_raises_and_never_invents_text(text):
    parsed = parse(text)
    assert parsed.status in ("ok", "partial", "failed")
    assert all(c.text and (c.probability is None or 0 <= c.probability <= 1) for c in parsed.candidates)
    assert parsed.ok == bool(parsed.candidates)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=40).filter(str.strip), st.floats(0, 1)), min_size=1, max_size=6))
def test_json_round_trip(items):
    doc = json.dumps({"responses": [{"text": t, "probability": p} for t, p in items]})
    parsed = parse(doc)
    assert parsed.status == "ok" and [c.text for c in parsed.candidates] == [t.strip() for t, _ in items]
