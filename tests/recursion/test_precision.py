"""bf16 only where the GPU computes it natively (recursion/precision.py), with torch.cuda faked.

Reference: torch's own rule — compute capability >= 8.0 has native bf16; below it
``torch.cuda.is_bf16_supported()`` still says yes by emulation (here: the emulation probe faked to
succeed, as on a T4), and vLLM refuses bf16 below 8.0.
"""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from recursion import precision  # noqa: E402
from recursion.backends.hf.config import HFFinetuneConfig, LoraConfig, TrainConfig  # noqa: E402
from recursion.config import RuntimeConfig  # noqa: E402

GPUS = {"Tesla T4": (7, 5), "Tesla V100-SXM2-16GB": (7, 0), "NVIDIA A100-SXM4-40GB": (8, 0), "NVIDIA H100": (9, 0)}


@pytest.fixture(params=list(GPUS))
def gpu(request, monkeypatch):
    """torch.cuda as the named GPU; emulated bf16 'works' (torch's probe faked to succeed)."""
    name = request.param
    major, minor = GPUS[name]
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: name)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (major, minor))
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: type("P", (), {"major": major, "minor": minor})())
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda *a: True)
    return name, major >= 8


def test_emulated_bf16_is_not_native(gpu):
    name, native = gpu
    assert torch.cuda.is_bf16_supported()  # torch's default counts emulation: yes on every one of them
    assert precision.native_bf16() is native


def test_auto_chooses_bf16_where_native_else_fp16_mixed_precision_over_float32_weights(gpu):
    name, native = gpu
    assert precision.mixed_precision("auto", "cuda") == ("bf16" if native else "fp16")
    assert precision.weights_dtype("auto", device="cuda", lora=True) == (torch.bfloat16 if native else torch.float32)
    assert precision.weights_dtype("auto", device="cuda", lora=False) == torch.float32
    assert precision.mixed_precision("auto", "cpu") == "no" and precision.mixed_precision("fp16", "cuda") == "fp16"
    line = precision.describe("cuda", mixed=precision.mixed_precision("auto", "cuda"),
                              dtype=precision.weights_dtype("auto", device="cuda", lora=True))
    assert line.startswith(f"precision: {name} (compute capability {GPUS[name][0]}.{GPUS[name][1]}, bf16 "
                           + ("native" if native else "not native (emulated only)"))
    assert line.endswith("weights bfloat16, mixed precision bf16" if native else "weights float32, mixed precision fp16")


def test_explicit_bf16_is_refused_before_any_work_where_not_native(gpu):
    name, native = gpu
    model = HFFinetuneConfig(dtype="bfloat16", lora=LoraConfig(), train=TrainConfig(mixed_precision="bf16"))
    found = precision.problems(model, RuntimeConfig())
    if native:
        assert found == []
        return
    assert [k for k, _ in found] == ["model.train.mixed_precision", "model.dtype"]
    assert all(f"{name} (compute capability" in m and "no native bf16" in m for _, m in found)
    assert "use fp16 or auto" in found[0][1] and "use float16, float32 or auto" in found[1][1]
    assert precision.problems(model, RuntimeConfig(device="cpu")) == []  # a CPU run never uses the GPU
    assert precision.problems(HFFinetuneConfig(), RuntimeConfig()) == []  # auto adapts


def test_without_a_gpu_nothing_is_refused_and_everything_is_float32():
    model = HFFinetuneConfig(dtype="bfloat16", train=TrainConfig(mixed_precision="bf16"))
    if torch.cuda.is_available():
        pytest.skip("a real GPU is visible")
    assert precision.problems(model, RuntimeConfig()) == []  # a CPU head node cannot tell what the GPU nodes have
    assert not precision.native_bf16()
    assert precision.describe("cpu", mixed="no", dtype=torch.float32) == "precision: cpu, weights float32, mixed precision no"


def test_the_config_loader_refuses_it_with_one_line(gpu):
    from recursion.loader import ConfigError, experiment_from_dict

    name, native = gpu
    spec = {"name": "x", "model": {"backend": "hf_finetune", "pretrained": "some/model", "dtype": "bfloat16"}}
    if native:
        assert experiment_from_dict(spec).model.dtype == "bfloat16"
        return
    with pytest.raises(ConfigError, match=r"model.dtype = bfloat16: the GPU .* has no native bf16"):
        experiment_from_dict(spec)
