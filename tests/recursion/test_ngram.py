"""The word n-gram back end: smoothed probabilities, sampling, persistence, lm-eval adapter."""
import math

import numpy as np
import pytest

from recursion.backends.ngram import FILENAME, NgramLM

DOCS = ["the cat sat", "the dog sat", "a cat ran"]


def prob(lm, hist, w):
    """P(w | hist) straight from the formula, counting by brute force over DOCS."""
    grams = [tuple(["<s>"] * (lm.n - 1) + d.split() + ["</s>"]) for d in DOCS]
    c_hw = sum(1 for g in grams for i in range(len(g) - lm.n + 1) if g[i : i + lm.n] == (*hist, w))
    c_h = sum(1 for g in grams for i in range(len(g) - lm.n + 1) if g[i : i + lm.n - 1] == tuple(hist))
    return (c_hw + lm.alpha) / (c_h + lm.alpha * lm.V)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_logprobs_follow_the_add_alpha_formula(n):
    lm = NgramLM(n=n, alpha=0.5).fit(DOCS)
    assert lm.V == 6 + 2  # 6 words + </s> + <unk>
    text = "the cat ran away"  # "away" is <unk>
    toks = ["<s>"] * (n - 1) + text.split()
    toks = [t if t in lm.vocab else "<unk>" for t in toks]
    expected = sum(math.log(prob(lm, toks[i : i + n - 1], toks[i + n - 1])) for i in range(len(toks) - n + 1))
    assert lm.logprobs([text])[0] == pytest.approx(expected, abs=1e-12)
    with_eos = expected + math.log(prob(lm, toks[len(toks) - n + 1 :] if n > 1 else [], "</s>"))
    assert lm.logprobs([text], eos=True)[0] == pytest.approx(with_eos, abs=1e-12)


def test_distribution_sums_to_one():
    lm = NgramLM(n=2, alpha=0.1).fit(DOCS)
    for hist in ["<s>", "the", "cat", "unseen"]:
        total = sum(prob(lm, [hist], w) for w in lm.vocab[1:]) if hist != "unseen" else None
        if total is not None:
            assert total == pytest.approx(1.0)


def test_context_conditioning():
    lm = NgramLM(n=2, alpha=0.1).fit(DOCS)
    assert lm.logprobs([" sat"], contexts=["the cat"])[0] == pytest.approx(math.log(prob(lm, ["cat"], "sat")))
    assert lm.logprobs(["cat"], contexts=[""])[0] == pytest.approx(math.log(prob(lm, ["<s>"], "cat")))


def test_save_load_roundtrip_is_plain_json(tmp_path):
    lm = NgramLM(n=3, alpha=0.2).fit(DOCS * 3)
    path = lm.save(tmp_path)
    assert path.name == FILENAME and path.read_text().startswith("{")
    back = NgramLM.load(tmp_path)
    assert back.logprobs(DOCS) == lm.logprobs(DOCS)
    assert back.generate(5, seed=3) == lm.generate(5, seed=3)
    with pytest.raises(FileNotFoundError):
        NgramLM.load(tmp_path / "nope")


def test_fixed_vocabulary_is_shared_across_generations():
    gen0 = NgramLM(n=2, alpha=0.1).fit(DOCS)
    gen1 = NgramLM(n=2, alpha=0.1, vocab=gen0.vocab).fit(["the cat sat"])
    assert gen1.vocab == gen0.vocab and gen1.V == gen0.V


def test_sampling_matches_the_smoothed_distribution():
    lm = NgramLM(n=2, alpha=1.0).fit(DOCS)
    draws = lm.generate(prompts=["the"] * 20000, max_new_tokens=1, seed=0)
    # <unk> is never drawn: renormalize over the other events
    events = [w for w in lm.vocab[1:] if w != "<unk>"]
    p = np.array([prob(lm, ["the"], w) for w in events])
    p /= p.sum()
    counts = np.array([sum(d == (w if w != "</s>" else "") for d in draws) for w in events])
    chi2 = (((counts - 20000 * p) ** 2) / (20000 * p)).sum()
    assert chi2 < 30  # 7 degrees of freedom: p < 1e-4 under the null


def test_dense_path_samples_the_same_distribution():
    lm = NgramLM(n=2, alpha=1.0).fit(DOCS)
    plain = lm.generate(prompts=["the"] * 4000, max_new_tokens=1, seed=1)
    dense = lm.generate(prompts=["the"] * 4000, max_new_tokens=1, seed=1, top_p=0.999999)
    for w in ["cat", "dog", "", "sat"]:
        assert abs(plain.count(w) - dense.count(w)) < 200


def test_generation_limits_and_decoding_options():
    lm = NgramLM(n=2, alpha=0.01).fit(DOCS * 10)
    out = lm.generate(50, max_new_tokens=4, min_new_tokens=2, seed=0)
    assert all(2 <= len(t.split()) <= 4 for t in out)
    assert all("<unk>" not in t and "<s>" not in t for t in out)
    assert lm.generate(prompts=["the dog"], max_new_tokens=3, do_sample=False) == ["sat"]
    assert lm.generate(prompts=["the dog"] * 3, max_new_tokens=3, top_k=1, seed=5) == ["sat"] * 3
    assert lm.generate(3, seed=7) == lm.generate(3, seed=7)
    with pytest.raises(ValueError, match="either num"):
        lm.generate(3, prompts=["a"])
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(3, temperature=0)


def test_probes():
    lm = NgramLM(n=2, alpha=0.1).fit(DOCS)
    top1, ent = lm.next_token_stats(["the", "zebra"])
    assert top1[0] == pytest.approx(max(prob(lm, ["the"], w) for w in lm.vocab[1:]))
    assert ent[1] == pytest.approx(math.log(lm.V))  # unseen history: uniform
    ppl = lm.perplexity(["the cat sat", ""])
    assert ppl[0] == pytest.approx(math.exp(-lm.logprobs(["the cat sat"])[0] / 3)) and ppl[1] == 1.0


@pytest.mark.parametrize("kwargs, match", [({"n": 0}, "n must"), ({"alpha": 0}, "alpha")])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NgramLM(**kwargs)
    with pytest.raises(ValueError, match="not fitted"):
        NgramLM().logprobs(["a"])


def test_lm_eval_adapter(tmp_path):
    from lm_eval.api.instance import Instance

    from recursion.backends.ngram import NgramLMEval, register

    lm = NgramLM(n=2, alpha=0.1).fit(DOCS * 5 + ["the cat sat"])  # greedy: the -> cat -> sat
    lm.save(tmp_path)
    adapter = NgramLMEval(pretrained=str(tmp_path))
    req = lambda kind, args: Instance(request_type=kind, doc={}, arguments=args, idx=0)  # noqa: E731
    [(ll, greedy)] = adapter.loglikelihood([req("loglikelihood", ("the dog", " sat"))])
    assert ll == pytest.approx(lm.logprobs([" sat"], contexts=["the dog"])[0]) and greedy
    [rolling] = adapter.loglikelihood_rolling([req("loglikelihood_rolling", ("the dog sat",))])
    assert rolling == pytest.approx(lm.logprobs(["the dog sat"])[0])
    [text] = adapter.generate_until([req("generate_until", ("the", {"until": ["sat"], "do_sample": False}))])
    assert text == "cat "
    register()
    from lm_eval.api.registry import get_model

    assert get_model("collapse-ngram") is NgramLMEval
