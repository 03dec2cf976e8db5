"""The word n-gram back end: smoothed probabilities, sampling, persistence, lm-eval adapter."""
import json
import math
from fractions import Fraction as F

import numpy as np
import pytest

from recursion.backends.ngram import NgramConfig
from recursion.backends.ngram.lm import FILENAME, NgramLM

DOCS = ["the cat sat", "the dog sat", "a cat ran"]
SMOOTHINGS = [
    ("add_alpha", {"alpha": 0.5}),
    ("kneser_ney", {}),
    ("kneser_ney", {"discount": 0.75}),
    ("jelinek_mercer", {"jm_lambda": 0.6}),
]


def prob(lm, hist, w):
    """add-α P(w | hist) straight from the formula, counting by brute force over DOCS."""
    grams = [tuple(["<s>"] * (lm.n - 1) + d.split() + ["</s>"]) for d in DOCS]
    c_hw = sum(1 for g in grams for i in range(len(g) - lm.n + 1) if g[i : i + lm.n] == (*hist, w))
    c_h = sum(1 for g in grams for i in range(len(g) - lm.n + 1) if g[i : i + lm.n - 1] == tuple(hist))
    return (c_hw + lm.alpha) / (c_h + lm.alpha * lm.V)


def every_history(lm):
    """Keys of every history of n − 1 vocabulary ids (seen or not), ``<s>`` pads included."""
    return np.arange(len(lm.vocab) ** (lm.n - 1), dtype=np.int64)


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


@pytest.mark.parametrize("smoothing, kwargs", SMOOTHINGS)
@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_history_sums_to_one_over_the_event_space(smoothing, kwargs, n):
    lm = NgramLM(n=n, smoothing=smoothing, **kwargs).fit(DOCS)
    p = lm.distribution(every_history(lm))  # every history, seen and unseen
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-12)
    assert (p[:, 0] == 0).all() and (p[:, 1:] > 0).all()  # <s> is never predicted; every event keeps mass
    keys, nexts, _ = lm._windows([[i] * 2 for i in range(1, len(lm.vocab))], eos=True)
    assert np.allclose(lm._token_probs(keys, nexts), p[np.searchsorted(every_history(lm), keys), nexts], rtol=1e-12)


def test_kneser_ney_by_hand():
    """Bigram KN on two documents: D_2 = 4/(4 + 2·2) from the bigram counts (2,1,1,1,1,2), D_1 = 4/(4 + 2·1)
    from the continuation counts N1+(• w) (the 1, cat 1, dog 1, sat 2, </s> 1); V = 6."""
    lm = NgramLM(n=2, smoothing="kneser_ney").fit(["the cat sat", "the dog sat"])
    assert lm.discounts == [pytest.approx(2 / 3), 0.5]
    uniform = F(2, 3) * F(5, 6) / 6  # D_1 · N1+(•) / N1+(••) · 1/V
    p1 = {w: max(F(c) - F(2, 3), 0) / 6 + uniform for w, c in {"the": 1, "cat": 1, "sat": 2, "</s>": 1, "<unk>": 0}.items()}
    assert p1["the"] == F(4, 27) and p1["sat"] == F(34, 108)
    expected = {
        ("<s>", "the"): F(3, 4) + F(1, 4) * p1["the"],  # (2 − ½)/2 + ½·1/2·P1
        ("the", "cat"): F(1, 4) + F(1, 2) * p1["cat"],  # (1 − ½)/2 + ½·2/2·P1
        ("cat", "sat"): F(1, 2) + F(1, 2) * p1["sat"],
        ("sat", "</s>"): F(3, 4) + F(1, 4) * p1["</s>"],
        ("the", "<unk>"): F(1, 2) * p1["<unk>"],
        ("zebra", "cat"): p1["cat"],  # unseen history: the unigram level
    }
    assert [float(v) for v in expected.values()] == pytest.approx([85 / 108, 35 / 108, 71 / 108, 85 / 108, 5 / 108, 16 / 108])
    for (h, w), p in expected.items():
        ctx, text = (h, w) if w != "</s>" else (h, "")
        got = lm.logprobs([text], contexts=[ctx], eos=w == "</s>")[0]
        assert got == pytest.approx(math.log(p), abs=1e-12), (h, w)


def test_jelinek_mercer_by_hand():
    """Bigram JM with λ = ½: unigram counts the 2, cat 1, dog 1, sat 2, </s> 2 (N = 8), V = 6."""
    lm = NgramLM(n=2, smoothing="jelinek_mercer", jm_lambda=0.5).fit(["the cat sat", "the dog sat"])
    p1 = lambda c: F(1, 2) * F(c, 8) + F(1, 2) * F(1, 6)  # noqa: E731
    for ctx, w, p in [("<s>", "the", F(1, 2) + F(1, 2) * p1(2)), ("the", "cat", F(1, 4) + F(1, 2) * p1(1)),
                      ("the", "<unk>", F(1, 2) * p1(0)), ("zebra", "sat", p1(2))]:
        ctx = "" if ctx == "<s>" else ctx
        assert lm.logprobs([w if w != "<unk>" else "zzz"], contexts=[ctx])[0] == pytest.approx(math.log(p), abs=1e-12)
    assert float(F(1, 2) + F(1, 2) * p1(2)) == pytest.approx(29 / 48)


def test_context_conditioning():
    lm = NgramLM(n=2, alpha=0.1).fit(DOCS)
    assert lm.logprobs([" sat"], contexts=["the cat"])[0] == pytest.approx(math.log(prob(lm, ["cat"], "sat")))
    assert lm.logprobs(["cat"], contexts=[""])[0] == pytest.approx(math.log(prob(lm, ["<s>"], "cat")))


@pytest.mark.parametrize("smoothing, kwargs", SMOOTHINGS)
def test_save_load_roundtrip_is_plain_json(tmp_path, smoothing, kwargs):
    lm = NgramLM(n=3, smoothing=smoothing, tokenizer="lower_alnum", **kwargs).fit(DOCS * 3 + ["A DOG, sat."])
    path = lm.save(tmp_path)
    doc = json.loads(path.read_text())
    assert path.name == FILENAME and doc["version"] == 2 and doc["smoothing"] == smoothing
    back = NgramLM.load(tmp_path)
    assert (back.smoothing, back.tokenizer, back.discounts, back.vocab) == (lm.smoothing, "lower_alnum", lm.discounts, lm.vocab)
    assert back.logprobs(DOCS, eos=True) == lm.logprobs(DOCS, eos=True)
    assert back.generate(5, seed=3) == lm.generate(5, seed=3)
    with pytest.raises(FileNotFoundError):
        NgramLM.load(tmp_path / "nope")


def test_version_1_files_still_load(tmp_path):
    """A file as version 1 wrote it: add-α, whitespace tokens, no smoothing fields."""
    lm = NgramLM(n=2, alpha=0.2).fit(DOCS)
    doc = json.loads(lm.save(tmp_path).read_text())
    v1 = {k: doc[k] for k in ("format", "n", "alpha", "vocab", "ctx_keys", "ctx_start", "pair_words", "pair_counts")}
    (tmp_path / FILENAME).write_text(json.dumps({**v1, "version": 1}))
    back = NgramLM.load(tmp_path)
    assert back.smoothing == "add_alpha" and back.tokenizer == "whitespace"
    assert back.logprobs(DOCS) == lm.logprobs(DOCS)
    (tmp_path / FILENAME).write_text(json.dumps({**v1, "version": 9}))
    with pytest.raises(ValueError, match="version 9"):
        NgramLM.load(tmp_path)


def test_fixed_vocabulary_is_shared_across_generations():
    gen0 = NgramLM(n=2, alpha=0.1).fit(DOCS)
    gen1 = NgramLM(n=2, alpha=0.1, vocab=gen0.vocab).fit(["the cat sat"])
    assert gen1.vocab == gen0.vocab and gen1.V == gen0.V


def test_lower_alnum_tokens():
    lm = NgramLM(n=2, smoothing="kneser_ney", tokenizer="lower_alnum").fit(["The cat's mat, O'er there!", "the CAT sat"])
    assert lm.vocab[3:] == sorted({"the", "cat's", "mat", "o'er", "there", "cat", "sat"})
    assert lm.logprobs(["The Cat sat."]) == lm.logprobs(["the cat sat"])
    assert lm.num_tokens(["-- a, b --", ""]).tolist() == [2, 0]


def chi2(counts, p):
    expected = counts.sum() * p
    return (((counts - expected) ** 2) / expected).sum()


@pytest.mark.parametrize("smoothing, kwargs", SMOOTHINGS)
@pytest.mark.parametrize("dense", [False, True])
def test_sampling_matches_the_distribution(smoothing, kwargs, dense):
    lm = NgramLM(n=2, smoothing=smoothing, **kwargs).fit(DOCS)
    options = {"top_p": 0.999999999} if dense else {}  # the dense path, on (almost) the same distribution
    for prompt in ["the", "zebra"]:  # a seen and an unseen history
        draws = lm.generate(prompts=[prompt] * 20000, max_new_tokens=1, seed=1, **options)
        p = lm.distribution(lm._history_keys([prompt]))[0]
        p[2] = 0.0  # <unk> is never drawn: the rest is renormalized
        events = np.flatnonzero(p)
        counts = np.array([sum(d == (lm.vocab[i] if i != 1 else "") for d in draws) for i in events])
        assert counts.sum() == 20000
        assert chi2(counts, p[events] / p[events].sum()) < 30  # 6 degrees of freedom: p < 1e-4 under the null


def test_rejection_falls_back_to_the_exact_distribution():
    """min_new_tokens bans </s> where it takes nearly all the mass: the allowed tokens keep their ratios."""
    lm = NgramLM(n=2, smoothing="kneser_ney", discount=0.01).fit(["a"] * 5000)  # after "a": </s> with ~0.99999
    out = lm.generate(prompts=["a"] * 3000, max_new_tokens=1, min_new_tokens=1, seed=0)
    assert "" not in out and set(out) == {"a"}  # only "a" and <unk> are left; <unk> is never drawn


def test_generation_limits_and_decoding_options():
    lm = NgramLM(n=2, alpha=0.01).fit(DOCS * 10)
    out = lm.generate(50, max_new_tokens=4, min_new_tokens=2, seed=0)
    assert all(2 <= len(t.split()) <= 4 for t in out)
    assert all("<unk>" not in t and "<s>" not in t for t in out)
    assert lm.generate(prompts=["the dog"], max_new_tokens=3, do_sample=False) == ["sat"]
    assert lm.generate(prompts=["the dog"] * 3, max_new_tokens=3, top_k=1, seed=5) == ["sat"] * 3
    assert lm.generate(3, seed=7) == lm.generate(3, seed=7)
    low = NgramLM(n=2, smoothing="kneser_ney").fit(DOCS * 10).generate(prompts=["a"] * 200, max_new_tokens=1,
                                                                      temperature=0.05, seed=0)
    assert set(low) == {"cat"}  # the most likely continuation, sharpened
    with pytest.raises(ValueError, match="either num"):
        lm.generate(3, prompts=["a"])
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(3, temperature=0)


@pytest.mark.parametrize("smoothing, kwargs", SMOOTHINGS)
def test_probes(smoothing, kwargs):
    lm = NgramLM(n=2, smoothing=smoothing, **kwargs).fit(DOCS)
    top1, ent = lm.next_token_stats(["the", "zebra"])
    p = lm.distribution(lm._history_keys(["the", "zebra"]))
    assert top1.tolist() == pytest.approx(p.max(axis=1).tolist())
    assert ent.tolist() == pytest.approx((-(p[:, 1:] * np.log(p[:, 1:])).sum(axis=1)).tolist())
    if smoothing == "add_alpha":
        assert ent[1] == pytest.approx(math.log(lm.V))  # unseen history: uniform
    ppl = lm.perplexity(["the cat sat", ""])
    assert ppl[0] == pytest.approx(math.exp(-lm.logprobs(["the cat sat"])[0] / 3)) and ppl[1] == 1.0


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must"), ({"alpha": 0}, "alpha"), ({"smoothing": "good_turing"}, "smoothing"),
    ({"smoothing": "kneser_ney", "discount": 1.5}, "discount"), ({"smoothing": "jelinek_mercer"}, "jm_lambda"),
    ({"tokenizer": "bpe"}, "tokenizer"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NgramLM(**kwargs)
    with pytest.raises(ValueError, match="not fitted"):
        NgramLM().logprobs(["a"])


@pytest.mark.parametrize("cfg, key", [
    (NgramConfig(smoothing="jelinek_mercer"), "jm_lambda"),
    (NgramConfig(smoothing="add_alpha", discount=0.5), "discount"),
    (NgramConfig(smoothing="kneser_ney", discount=0.0), "discount"),
    (NgramConfig(smoothing="kneser_ney", jm_lambda=0.5), "jm_lambda"),
    (NgramConfig(smoothing="jelinek_mercer", jm_lambda=1.0), "jm_lambda"),
])
def test_config_problems_name_the_key(cfg, key):
    assert [k for k, _ in cfg.problems()] == [key]
    assert NgramConfig(smoothing="kneser_ney").problems() == []
    assert NgramConfig(smoothing="jelinek_mercer", jm_lambda=0.8, vocabulary="per_generation").problems() == []


def test_lm_eval_adapter(tmp_path):
    from lm_eval.api.instance import Instance

    from recursion.backends.ngram.harness import NgramLMEval, register

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


def test_lm_eval_adapter_honours_top_k_top_p_or_refuses(tmp_path, monkeypatch):
    """What reaches NgramLM.generate from a task's generation_kwargs: top_k/top_p as given (0 / 1.0 = off),
    greedy for temperature 0 (lm-eval's convention); an option it cannot honour is refused, never ignored."""
    from lm_eval.api.instance import Instance

    from recursion.backends.ngram.harness import NgramLMEval

    NgramLM(n=2, alpha=0.1).fit(DOCS).save(tmp_path)
    adapter = NgramLMEval(pretrained=str(tmp_path))
    seen = []
    monkeypatch.setattr(adapter.model, "generate", lambda **kw: seen.append(kw) or [""] * len(kw["prompts"]))
    ask = lambda kwargs: adapter.generate_until([Instance("generate_until", {}, ("the", kwargs), 0)])  # noqa: E731
    ask({"until": ["\n"], "do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
         "repetition_penalty": 1.0, "max_gen_toks": 9})
    ask({"do_sample": True, "temperature": 1.0, "top_k": 5, "top_p": 0.9})
    ask({"temperature": 0.0})
    picked = [{k: kw[k] for k in ("do_sample", "temperature", "top_k", "top_p", "max_new_tokens")} for kw in seen]
    assert picked == [
        {"do_sample": True, "temperature": 0.7, "top_k": 0, "top_p": 1.0, "max_new_tokens": 9},
        {"do_sample": True, "temperature": 1.0, "top_k": 5, "top_p": 0.9, "max_new_tokens": 64},
        {"do_sample": False, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "max_new_tokens": 64},
    ]
    for bad, match in [({"do_sample": True, "temperature": 1.0, "typical_p": 0.9}, "no generation option typical_p"),
                       ({"do_sample": True, "temperature": 1.0, "top_k": -1}, "top_k must be >= 0"),
                       ({"do_sample": True, "temperature": 1.0, "repetition_penalty": 1.05}, "repetition_penalty 1"),
                       ({"do_sample": True}, "temperature > 0")]:
        with pytest.raises(ValueError, match=match):
            ask(bad)


def test_lm_eval_adapter_uses_the_models_tokens(tmp_path):
    from lm_eval.api.instance import Instance

    from recursion.backends.ngram.harness import NgramLMEval

    NgramLM(n=2, smoothing="kneser_ney", tokenizer="lower_alnum").fit(["The cat sat.", "the cat sat"] * 3).save(tmp_path)
    adapter = NgramLMEval(pretrained=str(tmp_path))
    assert adapter.tokenizer_name == "collapse-ngram-lower_alnum"
    [(_, greedy)] = adapter.loglikelihood([Instance("loglikelihood", {}, ("The", " Cat, sat!"), 0)])
    assert greedy  # "Cat, sat!" is the tokens "cat sat", the greedy continuation of "the"


def test_uniform_share_is_the_floors_weight():
    kn = NgramLM(n=2, smoothing="kneser_ney").fit(["the cat sat", "the dog sat"])
    # after "the": B_2 = ½·2/2, B_1 = D_1·N1+(•)/N1+(••) = ⅔·5/6; "zebra" is an unseen history: B_2 = 1
    assert kn.uniform_share(["the"]) == pytest.approx(((1 / 4 * 5 / 9) + (1 / 2 * 5 / 9)) / 2)  # <s>→the, the→</s>
    assert kn.uniform_share(["zebra"]) == pytest.approx((1 / 4 * 5 / 9 + 5 / 9) / 2)
    add = NgramLM(n=2, alpha=1.0).fit(["the cat sat", "the dog sat"])
    assert add.uniform_share(["the"]) == pytest.approx((6 / (2 + 6) + 6 / (2 + 6)) / 2)  # αV / (c(h) + αV), V = 6



def test_score_end_scores_and_counts_the_end_token():
    """model.score_end: every transition of <s> w1 .. wn </s> (the seed notebook's), else the n words only;
    checked against add-one bigram probabilities from plain dict counts."""
    from recursion.backends.ngram import NgramModel

    train, texts = ["a b c", "a c", "b b a"], ["a b", "c", ""]
    lm = NgramLM(n=2, alpha=1.0).fit(train)
    pairs, hist = {}, {}
    for t in train:
        toks = ["<s>", *t.split(), "</s>"]
        for h, w in zip(toks, toks[1:]):
            pairs[h, w], hist[h] = pairs.get((h, w), 0) + 1, hist.get(h, 0) + 1
    V = len({w for t in train for w in t.split()}) + 2  # + </s>, <unk>

    def reference(text, end):
        toks = ["<s>", *text.split(), *(["</s>"] if end else [])]
        lp = [math.log((pairs.get((h, w), 0) + 1) / (hist.get(h, 0) + V)) for h, w in zip(toks, toks[1:])]
        return math.exp(-sum(lp) / max(len(lp), 1))

    plain, seed = NgramModel(lm), NgramModel(lm, score_end=True)
    np.testing.assert_allclose(plain.perplexity(texts), [reference(t, False) for t in texts], rtol=1e-12)
    np.testing.assert_allclose(seed.perplexity(texts), [reference(t, True) for t in texts], rtol=1e-12)
    assert seed.loglikelihood_rolling(texts)[1].tolist() == [3, 2, 1]
    assert NgramConfig(score_end=True).score_end and not NgramConfig().score_end
