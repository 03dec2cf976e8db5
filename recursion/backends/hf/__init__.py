"""Hugging Face back ends: causal LMs trained from scratch, or fine-tuned from a pretrained model.

* ``hf_scratch`` (Gerstgrasser et al. 2024): a GPT-2- or Llama-shaped model built from the config.
  Generation 0 trains a byte-level BPE tokenizer on its training texts; every later generation
  copies that tokenizer unchanged and trains fresh weights.
* ``hf_finetune``: a pretrained model (hub id, local folder, or a GGUF file, which is dequantized),
  fully fine-tuned or with a LoRA adapter (peft). ``init: base`` restarts every generation from the
  pretrained weights (Shumailov et al. 2024, Guo et al. 2024); ``init: previous`` continues from the
  last generation's weights or adapter (Gambetta et al.).

The package, by job: :mod:`~recursion.backends.hf.config` (the ``model:`` blocks and the checks
made before any work), :mod:`~recursion.backends.hf.model` (:class:`HFModel`, the loaded model
every stage uses), :mod:`~recursion.backends.hf.training` (token rows, schedules, the Trainer),
:mod:`~recursion.backends.hf.tokenizer` (generation 0's BPE tokenizer),
:mod:`~recursion.backends.hf.folders` (saving and loading model folders, pretrained and GGUF
models); this module holds the two back end classes.

Devices: ``runtime.device: auto`` trains and runs on the GPU when one is present (mixed precision
``bf16`` where the GPU has it natively, else ``fp16`` over float32 weights: :mod:`recursion.precision`),
else on the CPU with the torch threads the driver sets
(:func:`recursion.runtime.set_threads`: ``runtime.threads``, default the cores not busy with other
processes). Training on
several GPUs is the Trainer's own data parallelism:
``accelerate launch --num_processes 4 -m lm_collapse.cli run CONFIG.yaml`` — every process trains,
rank 0 alone saves and runs every other stage (:mod:`recursion.ranks`); ``train.global_batch_size``
fixes the sequences per optimizer step whatever the number of processes (gradient accumulation =
global / (batch_size × processes)), and a multi-process launch without it is refused.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ... import precision
from ...ranks import Ranks
from .config import DEFAULT_LR, HFFinetuneConfig, HFScratchConfig, experiment_problems, validation_problems
from .folders import load, load_pretrained, read_meta, resolve_pretrained, save
from .model import HFModel
from .tokenizer import fast_tokenizer, train_tokenizer
from .training import fit


# -- devices ---------------------------------------------------------------------------------------
def _device(runtime) -> str:
    import torch

    want = getattr(runtime, "device", "auto") if runtime is not None else "auto"
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device is cuda but torch sees no GPU; use device: auto or cpu")
    if want == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return want


def _report_to(runtime) -> tuple[str, ...]:
    return tuple(getattr(runtime, "report_to", ()) or ()) if runtime is not None else ()


class HFBackend:
    """What both Hugging Face back ends share: their checks of the experiment, and the blocks they are built from."""

    @classmethod
    def experiment_problems(cls, exp) -> list[tuple[str, str]]:
        return validation_problems(exp) + experiment_problems(exp)

    def __init__(self, cfg, runtime=None, checkpoints=None):
        self.cfg, self.runtime = cfg, runtime
        self.save_dtype = getattr(checkpoints, "dtype", "auto")


class HFScratchBackend(HFBackend):
    """Trains a fresh GPT-2- or Llama-shaped model each generation (see the module docstring)."""

    config_class = HFScratchConfig

    def model_config(self, vocab_size: int, **special_ids):
        """The ``transformers`` config of the configured shape for a vocabulary of ``vocab_size``."""
        from transformers import GPT2Config, LlamaConfig

        c = self.cfg
        if c.arch == "gpt2":
            return GPT2Config(vocab_size=vocab_size, n_positions=c.n_positions, n_embd=c.n_embd, n_layer=c.n_layer,
                              n_head=c.n_head, n_inner=c.n_inner, resid_pdrop=c.dropout, embd_pdrop=c.dropout,
                              attn_pdrop=c.dropout, tie_word_embeddings=c.tie_embeddings, **special_ids)
        return LlamaConfig(vocab_size=vocab_size, max_position_embeddings=c.n_positions, hidden_size=c.n_embd,
                           intermediate_size=c.n_inner or 4 * c.n_embd, num_hidden_layers=c.n_layer,
                           num_attention_heads=c.n_head, num_key_value_heads=c.n_head, attention_dropout=c.dropout,
                           tie_word_embeddings=c.tie_embeddings, **special_ids)

    def build_model(self, tokenizer):
        """An untrained model of the configured shape for ``tokenizer`` (seed it first)."""
        from transformers import AutoModelForCausalLM

        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        return AutoModelForCausalLM.from_config(self.model_config(len(tokenizer), **ids))

    def shared_tokenizer(self, texts: Sequence[str]):
        """Generation 0's tokenizer: trained by rank 0 alone, and handed to the other ranks of an
        ``accelerate launch`` (its JSON, broadcast), so every rank trains with the tokenizer that is saved."""
        from tokenizers import Tokenizer

        ranks = Ranks.from_env(cpu=getattr(self.runtime, "device", "auto") == "cpu")  # the driver's process group
        tokenizer = train_tokenizer(texts, vocab_size=self.cfg.vocab_size, model_max_length=self.cfg.n_positions,
                                    min_frequency=self.cfg.tokenizer_min_frequency) if ranks.main else None
        serialized = ranks.agree(tokenizer.backend_tokenizer.to_str() if ranks.main else None)
        return tokenizer if ranks.main else fast_tokenizer(Tokenizer.from_str(serialized), self.cfg.n_positions)

    def train(self, texts: Sequence[str], out_dir: Path, *, previous: Path | None, seed: int,
              validation: Sequence[str] | None = None) -> None:
        from transformers import AutoTokenizer, set_seed

        texts = list(texts)
        if not texts:
            raise ValueError("cannot train on no texts")
        if previous is None:
            tokenizer = self.shared_tokenizer(texts)
        else:
            read_meta(previous)  # a clear error if the previous generation's folder is missing
            tokenizer = AutoTokenizer.from_pretrained(previous)
        set_seed(seed)
        model = self.build_model(tokenizer)
        history, layout = fit(model, tokenizer, texts, self.cfg.train, seed=seed, device=_device(self.runtime),
                              default_lr=DEFAULT_LR["scratch"], out_dir=out_dir, report_to=_report_to(self.runtime),
                              validation=validation)
        save(model, tokenizer, out_dir, {"kind": "full", "backend": "hf_scratch"}, history, layout, self.save_dtype)

    def load(self, path: Path) -> HFModel:
        return load(path, device=_device(self.runtime), batch_size=self.cfg.eval_batch_size,
                    vllm=self.cfg if self.cfg.engine == "vllm" else None)


class HFFinetuneBackend(HFBackend):
    """Fine-tunes a pretrained model each generation, fully or with LoRA (see the module docstring)."""

    config_class = HFFinetuneConfig

    def __init__(self, cfg: HFFinetuneConfig, runtime=None, checkpoints=None):
        super().__init__(cfg, runtime, checkpoints)
        self.trust_remote_code = cfg.trust_remote_code or bool(getattr(runtime, "trust_remote_code", False))

    @property
    def kind(self) -> str:
        return "full" if self.cfg.lora is None else "lora"

    def _base(self):
        c = self.cfg
        return {"pretrained": c.pretrained, "gguf_file": c.gguf_file, "revision": c.revision,
                "trust_remote_code": self.trust_remote_code}

    def _dtype(self, device: str):
        return precision.weights_dtype(self.cfg.dtype, device=device, lora=self.cfg.lora is not None)

    def train(self, texts: Sequence[str], out_dir: Path, *, previous: Path | None, seed: int,
              validation: Sequence[str] | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

        texts = list(texts)
        if not texts:
            raise ValueError("cannot train on no texts")
        device = _device(self.runtime)
        dtype = self._dtype(device)
        resume = self.cfg.init == "previous" and previous is not None
        if resume:
            meta = read_meta(previous)
            if meta.get("kind") != self.kind:
                raise ValueError(f"init: previous, but {previous} holds a {meta.get('kind')} model and this config "
                                 f"trains {self.kind} (lora: {self.cfg.lora is not None})")
        set_seed(seed)
        if resume and self.kind == "full":
            model = AutoModelForCausalLM.from_pretrained(previous, dtype=dtype, trust_remote_code=self.trust_remote_code)
            tokenizer = AutoTokenizer.from_pretrained(previous, trust_remote_code=self.trust_remote_code)
        else:
            model, tokenizer = load_pretrained(**self._base(), dtype=dtype)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if self.kind == "lora":
            model = self._adapter(model, previous if resume else None)
        history, layout = fit(model, tokenizer, texts, self.cfg.train, seed=seed, device=device,
                              default_lr=DEFAULT_LR[self.kind], out_dir=out_dir, report_to=_report_to(self.runtime),
                              validation=validation)
        save(model, tokenizer, out_dir, {"kind": self.kind, "backend": "hf_finetune", "base": self._base(),
                                         "init": self.cfg.init}, history, layout, self.save_dtype)

    def _adapter(self, model, previous: Path | None):
        from peft import LoraConfig as PeftLoraConfig
        from peft import PeftModel, get_peft_model

        if previous is not None:
            return PeftModel.from_pretrained(model, previous, is_trainable=True)
        lora = self.cfg.lora
        targets = lora.target_modules
        if targets == ("all-linear",):
            targets = "all-linear"
        config = PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                target_modules=list(targets) if isinstance(targets, tuple) else targets,
                                task_type="CAUSAL_LM", base_model_name_or_path=resolve_pretrained(self.cfg.pretrained))
        return get_peft_model(model, config)

    def load(self, path: Path) -> HFModel:
        return load(path, device=_device(self.runtime), batch_size=self.cfg.eval_batch_size,
                    dtype=self._dtype(_device(self.runtime)), trust_remote_code=self.trust_remote_code,
                    vllm=self.cfg if self.cfg.engine == "vllm" else None)

    def load_base(self) -> HFModel:
        """The pretrained model itself, untouched (ToEdit's ``transform.prior: base``)."""
        device = _device(self.runtime)
        model, tokenizer = load_pretrained(**self._base(), dtype=self._dtype(device))
        return HFModel(model.to(device), tokenizer, batch_size=self.cfg.eval_batch_size)
