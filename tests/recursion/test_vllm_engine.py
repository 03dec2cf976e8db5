"""``model.engine: vllm`` on a CPU, against a fake ``vllm`` package that records its calls.

The fake (``fake_vllm/vllm``) is importable by path, so the engine's spawned process loads it as it
would load vLLM; it writes what it was asked (LLM arguments, token-id prompts, per-request
SamplingParams) to a log file and answers with canned token ids. References: the HF path's own
request building (``HFModel.encode``, the start token, truncation to the context) and decoder.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from collapse_tasks import corpus  # noqa: E402
from recursion.backends import vllm_engine  # noqa: E402
from recursion.backends.base import Decoding  # noqa: E402
from recursion.backends.hf import HFModel, HFScratchBackend, HFScratchConfig, TrainConfig, VllmSource  # noqa: E402
from recursion.config import ConfigError, RuntimeConfig, experiment_from_dict  # noqa: E402

FAKE = Path(__file__).with_name("fake_vllm")


@pytest.fixture
def fake_vllm(monkeypatch, tmp_path):
    """The fake vllm importable here and in spawned processes; returns a reader of its call log."""
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setitem(sys.modules, "vllm", importlib.import_module("vllm"))
    log = tmp_path / "vllm_calls.jsonl"
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))

    def calls() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    return calls


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vllm_model")
    cfg = HFScratchConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64, vocab_size=300,
                          train=TrainConfig(max_steps=2, batch_size=4, block_size=32))
    HFScratchBackend(cfg, RuntimeConfig(device="cpu")).train(corpus.lines("train")[:100], root / "model", previous=None, seed=0)
    return root / "model"


def exp_dict(**model) -> dict:
    return {"name": "x", "model": {"backend": "hf_scratch", "engine": "vllm", **model}}


# -- refused at load time ---------------------------------------------------------------------------
def test_refused_without_vllm_with_the_install_hint(monkeypatch):
    monkeypatch.setattr(vllm_engine.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"model.engine = vllm but the vllm package is not installed: "
                                          r"pip install 'lm-collapse\[vllm\]'"):
        experiment_from_dict(exp_dict())


def test_beam_search_and_cpu_are_refused_pointing_at_engine_hf(fake_vllm):
    with pytest.raises(ConfigError) as e:
        experiment_from_dict({**exp_dict(), "runtime": {"device": "cpu"}, "generate": {"decoding": {
            "do_sample": False, "num_beams": 5, "repetition_penalty": 3.0, "min_new_tokens": 64, "max_new_tokens": 64}}})
    assert [p.split(" = ")[0] for p in e.value.problems] == ["generate.decoding.num_beams", "model.engine"]
    assert all("engine: hf" in p for p in e.value.problems)
    assert "beam search has no repetition penalty and no minimum length" in e.value.problems[0]
    exp = experiment_from_dict({**exp_dict(), "generate": {"decoding": {"temperature": 0.7, "top_p": 0.9}}})
    assert exp.model.engine == "vllm"  # sampling decoders are accepted


# -- the requests ---------------------------------------------------------------------------------
def test_requests_match_the_hf_path_and_come_back_through_its_decoder(fake_vllm, folder, monkeypatch):
    cfg = HFScratchConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64, vocab_size=300, engine="vllm",
                          gpu_memory_utilization=0.6)
    model = HFScratchBackend(cfg, RuntimeConfig(device="cpu")).load(folder)
    assert model.vllm == VllmSource(folder, merge=False, gpu_memory_utilization=0.6)
    eos = model.eos_ids[0]
    words = model.encode(["the king is dead and the queen"])[0]
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", json.dumps([words[:3] + [eos] + words[3:5], words[:4]]))
    prompts = ["To be, or not to be", "A horse! " * 40, ""]  # the second is cut to the context
    d = Decoding(max_new_tokens=16, min_new_tokens=2, temperature=0.8, top_p=0.9, top_k=40, repetition_penalty=1.1)
    monkeypatch.setenv("MASTER_PORT", "29999")  # as under accelerate launch: vLLM must not join the launch
    texts = model.generate(prompts=prompts, decoding=d, seed=11)

    [call] = fake_vllm()
    assert call["pid"] != os.getpid() and call["launch_env"] == []  # vLLM ran in its own process, out of the launch
    room = model.context - d.max_new_tokens - 1
    assert call["prompts"] == [[model.start_id] + ids[-room:] for ids in model.encode(prompts)]
    assert call["llm"] == {"model": str(folder), "tokenizer": str(folder), "seed": 11, "dtype": "float32",
                           "max_model_len": model.context, "gpu_memory_utilization": 0.6, "trust_remote_code": False}
    assert [p["seed"] for p in call["params"]] == vllm_engine.request_seeds(11, 3)
    first = call["params"][0]
    assert {k: first[k] for k in ("n", "temperature", "top_p", "top_k", "repetition_penalty", "min_tokens", "max_tokens",
                                  "ignore_eos", "stop_token_ids", "detokenize", "skip_special_tokens")} == {
        "n": 1, "temperature": 0.8, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1, "min_tokens": 2, "max_tokens": 16,
        "ignore_eos": True, "stop_token_ids": model.eos_ids, "detokenize": False, "skip_special_tokens": True}
    assert {int(t) for t in first["logit_bias"]} == set(model.suppressed_ids)
    # canned ids decoded as the HF path decodes: cut at EOS, read after the prompt
    canned = [words[:3] + [eos] + words[3:5], words[:4], words[:3] + [eos] + words[3:5]]
    assert texts == [model._decode_new(p[1:], new) for p, new in zip(call["prompts"], canned)]
    # the same seed gives the same requests; unconditional documents are [start] prompts
    assert model.generate(prompts=prompts, decoding=d, seed=11) == texts
    model.generate(num=4, decoding=Decoding(do_sample=False, max_new_tokens=8), seed=3)
    greedy = fake_vllm()[-1]
    assert greedy["prompts"] == [[model.start_id]] * 4
    assert {(p["temperature"], p["top_k"], p["top_p"]) for p in greedy["params"]} == {(0.0, 0, 1.0)}


def test_a_lora_model_is_handed_over_as_merged_weights(fake_vllm, folder, monkeypatch, tmp_path):
    base = HFScratchBackend(HFScratchConfig(), RuntimeConfig(device="cpu")).load(folder)
    stage_dir = tmp_path / "gen_01"
    stage_dir.mkdir()
    model = HFModel(base.model, base.tokenizer, vllm=VllmSource(stage_dir / "model", merge=True))
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", json.dumps([[base.eos_ids[0]]]))
    assert model.generate(prompts=["hello"], decoding=Decoding(max_new_tokens=4), seed=0) == [""]
    [call] = fake_vllm()
    merged = Path(call["llm"]["model"])
    assert merged.parent == stage_dir and {"config.json", "model.safetensors", "tokenizer.json"} <= set(call["model_files"])
    assert not merged.exists() and list(stage_dir.iterdir()) == []  # removed after the stage


def test_an_engine_that_hangs_at_exit_is_killed_after_its_answer(fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", json.dumps([[5, 6]]))
    monkeypatch.setenv("FAKE_VLLM_HANG_AT_EXIT", "1")
    request = vllm_engine.Request(model=str(FAKE), prompts=[[1], [1, 2]], decoding=Decoding(), seed=0, eos_ids=[2],
                                  suppress_ids=[], dtype="float32", context=64)
    start = time.monotonic()
    assert vllm_engine.generate_token_ids(request, exit_wait=1) == [[5, 6], [5, 6]]
    assert time.monotonic() - start < 120  # the hanging process was killed, not waited for (an hour)
    assert len(fake_vllm()) == 1


def test_an_engine_error_reaches_the_caller(fake_vllm, monkeypatch):
    request = vllm_engine.Request(model=str(FAKE / "missing"), prompts=[[1]], decoding=Decoding(), seed=0, eos_ids=[2],
                                  suppress_ids=[], dtype="float32", context=64)
    with pytest.raises(FileNotFoundError, match="missing"):  # raised in the vLLM process, raised again here
        vllm_engine.generate_token_ids(request)
