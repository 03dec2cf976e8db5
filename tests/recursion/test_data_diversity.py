"""The data each generation hands on: ``gen_XX/data_diversity.json`` (recursion.data_diversity) by hand
on a tiny corpus, written per generation as a recorded stage output, redone on resume, read by the report."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lm_collapse.report.collect import collect
from recursion.artifacts import read_texts, read_training_texts
from recursion.data_diversity import corpus_diversity, data_diversity
from recursion.driver import run_experiment

CONFIG = """
name: tiny
generations: 3
seeds: [0]
model: {backend: ngram, n: 2, smoothing: jelinek_mercer, jm_lambda: 0.9}
data: {num_train: 200}
generate: {num_docs: 100, decoding: {max_new_tokens: 12}}
eval: {enabled: false}
probes: {enabled: false}
"""


def test_measures_by_hand():
    # tokens: [the, cat, the, cat] and [a, dog, the]: 7 tokens, types the 3, cat 2, a 1, dog 1
    d = corpus_diversity(["The cat, the cat!", "a dog the"])
    assert d["documents"] == 2 and d["tokens"] == 7 and d["word_types"] == 4
    assert d["distinct_1"] == pytest.approx(4 / 7)
    # bigrams inside documents: (the cat) (cat the) (the cat) | (a dog) (dog the): 4 distinct of 5
    assert d["distinct_2"] == pytest.approx(4 / 5)
    p = [3 / 7, 2 / 7, 1 / 7, 1 / 7]
    assert d["entropy_1"] == pytest.approx(-sum(x * math.log2(x) for x in p))
    assert d["top10_share"] == 1.0 and d["mean_length"] == 3.5
    # twelve types, one of them twice: the ten commonest hold 11 of 13 tokens
    words = [f"w{i}" for i in range(12)]
    assert corpus_diversity([" ".join(words + ["w0"])])["top10_share"] == pytest.approx(11 / 13)
    doc = data_diversity(["a b"], [], floor_share=0.25)
    assert doc["pool"] == {"documents": 0, "tokens": 0, "word_types": 0, "distinct_1": 0.0, "distinct_2": 0.0,
                           "entropy_1": 0.0, "top10_share": 0.0, "mean_length": 0.0, "floor_share": 0.25}
    assert "floor_share" not in data_diversity(["a b"], ["a"])["pool"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcdefghijkl"), max_size=8).map(" ".join), min_size=1, max_size=12))
def test_word_types_is_the_vocabulary_the_corpus_uses(texts):
    d = corpus_diversity(texts)
    tokens = [w for t in texts for w in t.split()]
    assert d["word_types"] == len(set(tokens)) and d["tokens"] == len(tokens)
    assert 0.0 <= d["top10_share"] <= 1.0 and d["mean_length"] == pytest.approx(len(tokens) / len(texts))


@pytest.fixture
def run(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    [folder] = run_experiment(path, tmp_path / "run", log=lambda s: None)
    return path, folder


def test_written_per_generation_and_recorded(run, tmp_path):
    config, folder = run
    stages = json.loads((folder / "manifest.json").read_text())["stages"]
    for g in range(3):
        gen = folder / f"gen_{g:02d}"
        doc = json.loads((gen / "data_diversity.json").read_text())
        assert doc["train"] == corpus_diversity(read_training_texts(gen))
        pool = read_texts(gen / "synthetic.jsonl")
        assert {k: v for k, v in doc["pool"].items() if k != "floor_share"} == corpus_diversity(pool)
        assert f"gen_{g:02d}/data_diversity.json" in stages[f"gen_{g:02d}/diversity"]["files"]
    # Jelinek-Mercer: every history of generation 0's samples was seen in training, so each draw
    # falls to the uniform floor with probability (1 - lambda)^2 (bigram, then unigram)
    g0 = json.loads((folder / "gen_00/data_diversity.json").read_text())["pool"]
    assert g0["floor_share"] == pytest.approx(0.1 ** 2)
    rows = {(r.generation, r.metric): r.value for r in collect([tmp_path / "run"]).rows}
    assert rows[(1, "data_train/distinct_2")] == json.loads((folder / "gen_01/data_diversity.json").read_text())[
        "train"]["distinct_2"]
    assert (2, "data_pool/floor_share") in rows and (0, "data_pool/word_types") in rows


def test_resume_redoes_a_missing_file_only(run):
    config, folder = run
    target = folder / "gen_01/data_diversity.json"
    before = target.read_bytes()
    target.unlink()
    lines = []
    run_experiment(config, folder.parent.parent, log=lines.append)
    assert target.read_bytes() == before
    assert [line.split("] ")[1].split(" done")[0] for line in lines if " done in " in line] == ["gen_01/diversity"]
