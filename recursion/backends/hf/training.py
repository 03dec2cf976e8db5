"""Training of both Hugging Face back ends: :func:`fit` trains a model in place with the
``transformers`` :class:`~transformers.Trainer` on token rows built by
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
``best.ckpt``).

``runtime.report_to`` hands the Trainer's logs to the loggers transformers supports (tensorboard
event files go to ``gen_XX/tensorboard/``).
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ... import precision
from ...artifacts import TENSORBOARD
from ...ranks import rank, world_size
from .config import TrainConfig


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


def fit(model, tokenizer, texts: Sequence[str], cfg: TrainConfig, *, seed: int, device: str, default_lr: float,
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
