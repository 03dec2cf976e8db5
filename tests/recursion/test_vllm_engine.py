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
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from collapse_tasks import corpus  # noqa: E402
from recursion.backends import vllm_engine  # noqa: E402
from recursion.backends.base import Decoding  # noqa: E402
from recursion.backends.hf import HFScratchBackend  # noqa: E402
from recursion.backends.hf.config import HFScratchConfig, TrainConfig  # noqa: E402
from recursion.backends.hf.model import HFModel, VllmSource  # noqa: E402
from recursion.config import RuntimeConfig  # noqa: E402
from recursion.loader import ConfigError, experiment_from_dict  # noqa: E402

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
    assert model.vllm == VllmSource(folder, merge=False, gpu_memory_utilization=0.6, kv_cache_memory_bytes=None,
                                    enforce_eager=True)
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
                           "max_model_len": model.context, "gpu_memory_utilization": 0.6, "enforce_eager": True,
                           "trust_remote_code": False}
    assert call["env"] == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_BATCH_INVARIANT": None}  # no GPU: no capability
    assert model.last_vllm.settings["gpu_memory_utilization"] == 0.6 and model.last_vllm.startup_seconds >= 0
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


# -- memory, start-up lock, determinism -----------------------------------------------------------
GiB = 1 << 30


@given(free=st.integers(0, 200 * GiB), total=st.integers(1 * GiB, 200 * GiB),
       cap=st.none() | st.floats(0.01, 1.0))
def test_memory_share_never_asks_more_than_is_free_nor_more_than_the_cap(free, total, cap):
    free = min(free, total)
    if free <= vllm_engine.HEADROOM:
        with pytest.raises(RuntimeError, match="vLLM cannot start: .* free on the GPU"):
            vllm_engine.memory_share(free, total, cap=cap)
        return
    share = vllm_engine.memory_share(free, total, cap=cap)
    assert 0 < share <= 1
    assert share * total <= free - vllm_engine.HEADROOM or share == 0.001  # vLLM's start-up check passes
    assert cap is None or share <= max(cap, 0.001)


@pytest.fixture
def clean_env(monkeypatch):
    """vLLM's variables and the replica share absent, restored after the test (run_request sets them)."""
    for name in (*vllm_engine.DETERMINISTIC_ENV, *vllm_engine.BATCH_INVARIANT_ENV, vllm_engine.SHARE_ENV):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def fake_gpu(monkeypatch, *, free: int, total: int, capability=(9, 0), uuid="GPU-fake-0"):
    """torch.cuda as a GPU of ``total`` bytes with ``free`` of them free, without one."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (free, total))
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: type("P", (), {
        "uuid": uuid, "major": capability[0], "minor": capability[1], "total_memory": total})())


def request(**kw) -> vllm_engine.Request:
    return vllm_engine.Request(model=kw.pop("model", "m"), prompts=[[1, 2]], decoding=Decoding(max_new_tokens=2), seed=3,
                               eos_ids=[0], suppress_ids=[], dtype="float32", context=64, **kw)


@pytest.mark.parametrize("capability, invariant", [((7, 5), None), ((8, 0), "1"), ((9, 0), "1")])
def test_the_engine_is_sized_from_free_memory_and_set_deterministic(fake_vllm, folder, monkeypatch, clean_env,
                                                                    capability, invariant):
    """In this process (as the spawned one runs it): free 41 of 80 GiB -> share (41 - 1) / 80 = 0.5;
    the replica's share caps it; vLLM's reproducibility variables are set before it starts."""
    fake_gpu(monkeypatch, free=41 * GiB, total=80 * GiB, capability=capability)
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", "[[5]]")
    result = vllm_engine.run_request(request(model=str(folder)))
    [call] = fake_vllm()
    assert call["llm"]["gpu_memory_utilization"] == 0.5 and call["llm"]["enforce_eager"] is True
    assert "kv_cache_memory_bytes" not in call["llm"]
    assert call["env"] == {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_BATCH_INVARIANT": invariant}
    assert result.token_ids == [[5]] and "gpu_memory_utilization 0.5" in result.describe()

    monkeypatch.setenv(vllm_engine.SHARE_ENV, "0.25")  # a sweep packing 4 replicas per GPU
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "0")  # the user's own setting wins
    vllm_engine.run_request(request(model=str(folder), gpu_memory_utilization=0.3, kv_cache_memory_bytes=2 * GiB))
    call = fake_vllm()[-1]
    assert call["llm"]["gpu_memory_utilization"] == 0.25 and call["llm"]["kv_cache_memory_bytes"] == 2 * GiB
    assert call["env"]["VLLM_BATCH_INVARIANT"] == "0"


def test_no_free_memory_is_a_message_not_a_vllm_traceback(fake_vllm, folder, monkeypatch, clean_env):
    fake_gpu(monkeypatch, free=GiB // 2, total=16 * GiB)
    with pytest.raises(RuntimeError, match=r"vLLM cannot start: 0.5 GiB free on the GPU of 16.0 GiB"):
        vllm_engine.run_request(request(model=str(folder)))
    assert fake_vllm() == []


def test_the_startup_lock_is_exclusive_per_gpu_and_released_after(tmp_path):
    import fcntl

    with vllm_engine.startup_lock("GPU-a") as path, open(path, "a") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a second engine start on GPU-a waits
        with vllm_engine.startup_lock("GPU-b"):  # another GPU does not
            pass
    with open(path, "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_every_loaded_model_waits_on_the_cpu_while_vllm_runs(fake_vllm, folder, monkeypatch):
    """The generating model and generation 0's (kept for the probes) are handed to gpu_released."""
    backend = HFScratchBackend(HFScratchConfig(engine="vllm"), RuntimeConfig(device="cpu"))
    model, gen0 = backend.load(folder), backend.load(folder)
    handed = []
    real = vllm_engine.gpu_released
    monkeypatch.setattr(vllm_engine, "gpu_released", lambda models: handed.extend(models) or real(models))
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", "[[5]]")
    model.generate(prompts=["hi"], decoding=Decoding(max_new_tokens=2), seed=0)
    assert any(m is model.model for m in handed) and any(m is gen0.model for m in handed)


def test_gpu_released_parks_gpu_models_on_the_cpu_and_brings_them_back():
    moves = []

    class Module:  # a torch module on a GPU, as far as gpu_released can tell
        def __init__(self, device):
            self.device = torch.device(device)

        def to(self, device):
            moves.append((self, str(device)))
            self.device = torch.device(device)

    on_gpu, on_cpu = Module("cuda:1"), Module("cpu")
    with vllm_engine.gpu_released([on_gpu, on_cpu]):
        assert on_gpu.device.type == "cpu" and moves == [(on_gpu, "cpu")]
    assert moves == [(on_gpu, "cpu"), (on_gpu, "cuda:1")] and str(on_gpu.device) == "cuda:1"


def test_refused_before_any_work_a_kv_budget_too_big_and_a_share_above_the_replicas(fake_vllm, monkeypatch):
    monkeypatch.setattr(vllm_engine, "_visible_gpu_bytes", lambda: 16 * GiB)
    with pytest.raises(ConfigError, match=r"model.kv_cache_memory_bytes = 17179869184 does not fit .* 16.0 GiB"):
        experiment_from_dict(exp_dict(kv_cache_memory_bytes=16 * GiB))
    exp = experiment_from_dict(exp_dict(kv_cache_memory_bytes=2 * GiB, gpu_memory_utilization=0.5))
    [(key, message)] = vllm_engine.share_problems(exp, 0.25)
    assert key == "model.gpu_memory_utilization" and "--gpus-per-replica 0.25" in message
    assert vllm_engine.share_problems(exp, 1) == [] and vllm_engine.share_problems(exp, 0.5) == []
    assert [k for k, _ in vllm_engine.share_problems(exp, 0.15)] == ["model.gpu_memory_utilization",
                                                                    "model.kv_cache_memory_bytes"]  # 2 + 1 GiB > 0.15 x 16
    auto = experiment_from_dict(exp_dict())
    assert auto.model.gpu_memory_utilization is None and vllm_engine.share_problems(auto, 0.25) == []
    with pytest.raises(ConfigError, match="kv_cache_memory_bytes must be >= 1048576"):
        experiment_from_dict(exp_dict(kv_cache_memory_bytes=5))


def test_a_sweep_refuses_a_share_above_the_replicas_before_starting_ray(fake_vllm, monkeypatch, tmp_path):
    pytest.importorskip("ray")
    from recursion import sweep

    exp = experiment_from_dict(exp_dict(gpu_memory_utilization=0.5))
    monkeypatch.setattr(sweep, "plan_replicas", lambda *a, **k: (tmp_path, [("a", exp, 0, tmp_path / "a/seed_0")], {}))
    monkeypatch.setattr(__import__("ray"), "init",
                        lambda *a, **k: pytest.fail("Ray started before the check"))
    with pytest.raises(ConfigError, match=r"arms.a: model.gpu_memory_utilization = 0.5 is more than this replica's "
                                          r"share of the GPU \(--gpus-per-replica 0.25\)"):
        sweep.sweep("x.yaml", tmp_path, gpus_per_replica=0.25)


def test_an_engine_that_hangs_at_exit_is_killed_after_its_answer(fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_OUTPUT", json.dumps([[5, 6]]))
    monkeypatch.setenv("FAKE_VLLM_HANG_AT_EXIT", "1")
    request = vllm_engine.Request(model=str(FAKE), prompts=[[1], [1, 2]], decoding=Decoding(), seed=0, eos_ids=[2],
                                  suppress_ids=[], dtype="float32", context=64)
    start = time.monotonic()
    assert vllm_engine.generate_token_ids(request, exit_wait=1).token_ids == [[5, 6], [5, 6]]
    assert time.monotonic() - start < 120  # the hanging process was killed, not waited for (an hour)
    assert len(fake_vllm()) == 1


def test_an_engine_error_reaches_the_caller(fake_vllm, monkeypatch):
    request = vllm_engine.Request(model=str(FAKE / "missing"), prompts=[[1]], decoding=Decoding(), seed=0, eos_ids=[2],
                                  suppress_ids=[], dtype="float32", context=64)
    with pytest.raises(FileNotFoundError, match="missing"):  # raised in the vLLM process, raised again here
        vllm_engine.generate_token_ids(request)
