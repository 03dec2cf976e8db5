"""ToEdit: the edit rule against hand-computed cases; the n-gram edit (exact) and the batched HF edit
against direct per-document computations."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recursion.backends.ngram import NgramModel
from recursion.backends.ngram.lm import NgramLM
from recursion.toedit import DROP, KEEP, RESAMPLE, ToEditRule, apply_edits, summary, uniforms


# -- the rule, by hand -------------------------------------------------------------------------------
def test_actions_by_hand():
    p = [0.995, 0.99, 0.5, 0.0009, 0.001, 1.0]
    assert ToEditRule().actions(p).tolist() == [RESAMPLE, KEEP, KEEP, KEEP, KEEP, RESAMPLE]  # p > 0.99, strictly
    assert ToEditRule(drop_below=0.001).actions(p).tolist() == [RESAMPLE, KEEP, KEEP, DROP, KEEP, RESAMPLE]


def test_resample_by_hand():
    """Candidates with p = 0.995, 0.003, 0.002 and β = 1.5: weights p^(1/1.5) = 0.996664, 0.020801,
    0.015874 (sum 1.033339), so the CDF is 0.964511, 0.984641, 1."""
    rule = ToEditRule(beta=1.5)
    ids, logp = np.array([[10, 11, 12]] * 6), np.log([[0.995, 0.003, 0.002]] * 6)
    u = [0.0, 0.9645, 0.96452, 0.98463, 0.98466, 0.9999]
    assert rule.resample(ids, logp, u).tolist() == [10, 10, 11, 11, 12, 12]
    # β = 1 draws from the candidates' renormalized probabilities: CDF 0.995, 0.998, 1
    assert ToEditRule(beta=1.0).resample(ids[:3], logp[:3], [0.9949, 0.9951, 0.9981]).tolist() == [10, 11, 12]


def test_resample_never_draws_excluded_tokens():
    logp = np.array([[np.log(0.6), -np.inf, np.log(0.4)]])
    assert {ToEditRule(beta=3.0).resample([[1, 2, 3]], logp, [u]).item() for u in np.linspace(0, 1, 101)} == {1, 3}


def test_apply_edits_and_summary():
    new, changed, dropped = apply_edits(["a", "b", "c", "d", "e"], np.array([RESAMPLE, DROP, KEEP, RESAMPLE, DROP]), ["a", "z"])
    assert (new, changed, dropped) == (["a", "c", "z"], 1, 2)
    from recursion.toedit import EditedDoc

    s = summary([EditedDoc("x", 4, 2, 1, 0), EditedDoc("y", 6, 1, 0, 3)])
    assert s == {"documents": 2, "tokens": 10, "resampled_share": 0.3, "changed_share": 0.1, "dropped_share": 0.3,
                 "edited_documents_share": 1.0}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30), st.floats(0.01, 0.99), st.sampled_from([None, 0.005]))
def test_rule_properties(p, threshold, drop):
    """Edits touch only the flagged positions; the kept text is the rest, in order."""
    rule = ToEditRule(threshold=threshold, drop_below=drop)
    actions = rule.actions(p)
    assert ((actions == RESAMPLE) == (np.array(p) > threshold)).all()
    tokens = list(range(len(p)))
    new, changed, dropped = apply_edits(tokens, actions, [-1] * int(np.sum(actions == RESAMPLE)))
    assert len(new) == len(p) - dropped and changed == np.sum(actions == RESAMPLE)
    assert [t for t in new if t != -1] == [t for t, a in zip(tokens, actions) if a == KEEP]


# -- the n-gram model: exact, by hand -----------------------------------------------------------------
@pytest.fixture(scope="module")
def ngram():
    """Vocabulary a, b, c (+ <s>, </s>, <unk>: V = 5), α = 0.001, from 99 × "a b" and 1 × "a c":
    P(a | <s>) = 100.001 / 100.005, P(b | <s>) = P(c | <s>) = 0.001 / 100.005,
    P(b | a) = 99.001 / 100.005, P(c | a) = 1.001 / 100.005, P(c | c) = 0.001 / 1.005."""
    return NgramModel(NgramLM(n=2, alpha=0.001).fit(["a b"] * 99 + ["a c"]))


def test_ngram_probabilities_by_hand(ngram):
    lp = ngram.lm.logprobs(["a", "b", "b", "c", "c"], contexts=["", "", "a", "a", "c"])
    np.testing.assert_allclose(np.exp(lp), [100.001 / 100.005, 0.001 / 100.005, 99.001 / 100.005, 1.001 / 100.005,
                                            0.001 / 1.005], rtol=1e-12)


def expected_first_word(u: float, beta: float, k: int) -> str:
    """Position 0 of "a b" (p = 0.99996 > 0.99) redrawn from softmax(log p / β) over the top-k of
    a, b, c (b and c tie; vocabulary order)."""
    p = np.array([100.001, 0.001, 0.001])[:k] / 100.005
    w = p ** (1 / beta)
    cdf = np.cumsum(w / w.sum())
    return "abc"[min(int(np.sum(cdf < u)), k - 1)]


@pytest.mark.parametrize("beta, k", [(1.5, 64), (100.0, 3), (100.0, 2), (100.0, 0)])
def test_ngram_toedit_by_hand(ngram, beta, k):
    rule = ToEditRule(beta=beta, candidates=k)
    for seed in range(20):
        [doc] = ngram.toedit(["a b"], rule=rule, seed=seed)
        first = expected_first_word(uniforms(seed, 0, 2)[0], beta, k or 3)
        assert doc.text == f"{first} b" and (doc.tokens, doc.resampled, doc.dropped) == (2, 1, 0)
        assert doc.changed == (first != "a")
    if beta == 100.0 and k in (0, 3):  # nearly uniform: the three words all come up over 20 seeds
        drawn = {ngram.toedit(["a b"], rule=rule, seed=s)[0].text[0] for s in range(20)}
        assert drawn == {"a", "b", "c"}
    if k == 2:
        assert all(ngram.toedit(["a b"], rule=rule, seed=s)[0].text[0] in "ab" for s in range(20))


def test_ngram_toedit_drop_variant_by_hand(ngram):
    rule = ToEditRule(drop_below=0.001, threshold=0.999999)  # nothing resampled: P(a | <s>) = 0.99996
    docs = ngram.toedit(["a b", "c c", "a c", "a zebra b"], rule=rule, seed=0)
    # P(c | <s>) = 1e-5 and P(c | c) = 0.000995 are dropped; P(c | a) = 0.01 is kept; "zebra" is <unk>
    # (P = 0.001 / 100.005, dropped) and b after <unk> (an unseen history: 1 / V = 0.2) is kept
    assert [d.text for d in docs] == ["a b", "", "a c", "a b"]
    assert [(d.tokens, d.dropped, d.resampled) for d in docs] == [(2, 0, 0), (2, 2, 0), (2, 0, 0), (3, 1, 0)]
    assert docs[0].text == "a b"  # unchanged documents keep their exact text


def test_ngram_unigram_and_spacing():
    model = NgramModel(NgramLM(n=1, alpha=1e-6).fit(["x"] * 1000 + ["y"]))
    [doc] = model.toedit(["x  x"], rule=ToEditRule(threshold=0.4, beta=1.0), seed=0)  # P(x) = 1000 / 2002 (</s> counts)
    assert doc.resampled == 2 and doc.tokens == 2
    [same] = model.toedit(["  y  "], rule=ToEditRule(), seed=0)
    assert same.text == "  y  "


# -- Hugging Face: batched edit == a direct per-document pass ------------------------------------------
torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    from collapse_tasks import corpus
    from recursion.backends.hf import HFScratchBackend
    from recursion.backends.hf.config import HFScratchConfig, TrainConfig
    from recursion.config import RuntimeConfig

    cfg = HFScratchConfig(n_layer=1, n_embd=32, n_head=2, n_positions=48, vocab_size=400, eval_batch_size=3,
                          train=TrainConfig(max_steps=60, batch_size=8, block_size=48, learning_rate=0.01))
    backend = HFScratchBackend(cfg, RuntimeConfig(device="cpu", threads=1))
    folder = tmp_path_factory.mktemp("hf") / "model"
    backend.train(corpus.lines("train")[:400], folder, previous=None, seed=0)
    return backend.load(folder)


def toedit_reference(model, text: str, d: int, rule: ToEditRule, seed: int):
    """One unpadded forward pass of [BOS] + the document; the rule applied token by token."""
    ids = model.encode([text])[0]
    with torch.no_grad():
        logits = model.model(torch.tensor([[model.start_id] + ids])).logits[0, :-1].float()
    logp = torch.log_softmax(logits, -1)
    u = np.random.default_rng([seed, d]).random(len(ids))
    special = model.tokenizer.all_special_ids
    out, resampled, changed, dropped = [], 0, 0, 0
    for j, t in enumerate(ids):
        p = math.exp(logp[j, t].item())
        if p > rule.threshold:
            row = logp[j].clone()
            row[special] = -math.inf
            values, index = torch.topk(row, rule.candidates or row.shape[0])
            w = torch.softmax(values.double() / rule.beta, -1).numpy()
            new = int(index[min(int(np.sum(np.cumsum(w) < u[j])), len(w) - 1)])
            out.append(new)
            resampled += 1
            changed += new != t
        elif rule.drop_below is not None and p < rule.drop_below:
            dropped += 1
        else:
            out.append(t)
    text = model.tokenizer.decode(out, skip_special_tokens=True) if changed or dropped else text
    return text, len(ids), resampled, changed, dropped


@pytest.mark.parametrize("rule", [ToEditRule(threshold=0.05, beta=4.0, candidates=8),
                                  ToEditRule(threshold=0.05, beta=4.0, candidates=0, drop_below=0.002)])
def test_hf_toedit_equals_a_direct_pass(hf_model, rule):
    from collapse_tasks import corpus

    texts = [t for t in corpus.lines("heldout")[200:260] if len(hf_model.encode([t])[0]) < 48][:10] + ["", "the"]
    docs = hf_model.toedit(texts, rule=rule, seed=7)
    for d, (text, doc) in enumerate(zip(texts, docs)):
        assert (doc.text, doc.tokens, doc.resampled, doc.changed, doc.dropped) == toedit_reference(hf_model, text, d, rule, 7)
    assert sum(doc.resampled for doc in docs) > 0 and sum(doc.changed for doc in docs) > 0
    assert any(doc.text == text for doc, text in zip(docs, texts))


def test_hf_toedit_long_documents_and_batching(hf_model):
    """Documents longer than the context (48 tokens) are edited in the rolling windows of
    loglikelihood_rolling; the result does not depend on the batch size."""
    from collapse_tasks import corpus

    texts = [" ".join(corpus.lines("heldout")[i:i + 8]) for i in range(0, 40, 8)]
    assert min(len(t) for t in hf_model.encode(texts)) > 48
    rule = ToEditRule(threshold=0.05, candidates=4, drop_below=0.001)
    docs = hf_model.toedit(texts, rule=rule, seed=1)
    assert [d.tokens for d in docs] == [len(t) for t in hf_model.encode(texts)]
    hf_model.batch_size = 1
    try:
        assert hf_model.toedit(texts, rule=rule, seed=1) == docs
    finally:
        hf_model.batch_size = 3
    assert hf_model.toedit(texts, rule=rule, seed=2) != docs
