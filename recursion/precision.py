"""Floating-point formats on the GPU: bf16 only where the hardware computes it natively.

``torch.cuda.is_bf16_supported()`` counts emulation: on a T4 or V100 (compute capability 7.x, the
free Colab / Kaggle GPUs) it says yes and bf16 then runs in slow emulated kernels, and vLLM refuses
bf16 outright below compute capability 8.0 (``_check_if_gpu_supports_dtype`` in vLLM's
``vllm/v1/worker/gpu_worker.py``). Here bf16 is chosen only when
``torch.cuda.is_bf16_supported(including_emulation=False)`` (compute capability >= 8.0, or ROCm):

* ``model.train.mixed_precision: auto`` → ``bf16`` where native, else ``fp16`` (automatic mixed
  precision over float32 weights, with loss scaling) on a GPU, ``no`` on the CPU;
* ``model.dtype: auto`` (the weights a LoRA arm loads) → ``bfloat16`` where native, else
  ``float32`` — never float16 weights, whose LoRA gradients the Trainer's fp16 loss scaler refuses
  to unscale; vLLM generates in the same dtype as the weights, so it never sees bf16 on such a GPU;
* an explicit ``bf16`` / ``bfloat16`` on a GPU without it is refused before any work
  (:func:`problems`), naming the GPU and the settings that work.

What was chosen is recorded in each model folder's ``lm_collapse_hf.json`` (``training``) and logged.
"""
from __future__ import annotations

from typing import Literal

Precision = Literal["bf16", "fp16", "no"]


def native_bf16() -> bool:
    """Whether the current CUDA device computes bf16 natively (False without CUDA)."""
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False))


def mixed_precision(setting: str, device: str) -> Precision:
    """The Trainer's mixed precision for ``model.train.mixed_precision`` on ``device``.

    Examples
    --------
    >>> mixed_precision("auto", "cpu"), mixed_precision("no", "cuda")
    ('no', 'no')
    """
    if setting != "auto":
        return setting  # type: ignore[return-value]
    if device != "cuda":
        return "no"
    return "bf16" if native_bf16() else "fp16"


def weights_dtype(setting: str, *, device: str, lora: bool):
    """The torch dtype the weights load in for ``model.dtype`` (``auto``: bf16 for a LoRA arm on a
    GPU with native bf16, float32 otherwise)."""
    import torch

    if setting == "auto":
        return torch.bfloat16 if (lora and device == "cuda" and native_bf16()) else torch.float32
    return getattr(torch, setting)


def describe(device: str, *, mixed: str, dtype) -> str:
    """One line for the run log: the device, whether bf16 is native, and what was chosen."""
    import torch

    name = str(dtype).removeprefix("torch.")
    if device != "cuda" or not torch.cuda.is_available():
        return f"precision: {device}, weights {name}, mixed precision {mixed}"
    major, minor = torch.cuda.get_device_capability()
    native = "native" if native_bf16() else "not native (emulated only)"
    return (f"precision: {torch.cuda.get_device_name()} (compute capability {major}.{minor}, bf16 {native}): "
            f"weights {name}, mixed precision {mixed}")


def problems(model, runtime) -> list[tuple[str, str]]:
    """Explicit bf16 settings on a visible GPU that has no native bf16: ``[(key, message)]``.

    Checked only where the run will use a GPU (``runtime.device`` not ``cpu`` and CUDA visible);
    a machine without a GPU cannot tell what the GPU nodes have.
    """
    asked = [(key, value) for key, value in (("model.train.mixed_precision", getattr(model.train, "mixed_precision", None)),
                                              ("model.dtype", getattr(model, "dtype", None)))
             if value in ("bf16", "bfloat16")]
    if not asked or getattr(runtime, "device", "auto") == "cpu":
        return []
    import torch

    if not torch.cuda.is_available() or native_bf16():
        return []
    major, minor = torch.cuda.get_device_capability()
    where = f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})"
    fix = {"model.train.mixed_precision": "use fp16 or auto", "model.dtype": "use float16, float32 or auto"}
    return [(key, f"= {value}: the GPU {where} has no native bf16 (emulated bf16 is slow, and vLLM refuses "
                  f"it below compute capability 8.0); {fix[key]}") for key, value in asked]
