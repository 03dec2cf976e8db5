"""The warmup is ``warmup_ratio`` of the optimizer steps on every transformers version: the Trainer
receives an integer step count (transformers 4.x reads ``warmup_steps`` only as a count, 5.x a
value below 1 as a ratio)."""
from __future__ import annotations

import pytest

pytest.importorskip("torch")

from collapse_tasks import corpus  # noqa: E402
from recursion.backends.hf import HFScratchBackend  # noqa: E402
from recursion.backends.hf.config import HFScratchConfig, TrainConfig  # noqa: E402
from recursion.backends.hf.tokenizer import train_tokenizer  # noqa: E402
from recursion.backends.hf.training import _pack, fit, warmup_steps  # noqa: E402
from recursion.config import RuntimeConfig  # noqa: E402


@pytest.mark.parametrize("cfg, blocks, world, expected", [
    (TrainConfig(warmup_ratio=0.1, batch_size=8, epochs=1), 80, 1, 1),  # 10 steps
    (TrainConfig(warmup_ratio=0.1, batch_size=8, epochs=1), 81, 1, 2),  # 11 steps: a partial last batch counts
    (TrainConfig(warmup_ratio=0.1, batch_size=8, grad_accum=3, epochs=2), 81, 1, 1),  # ceil(11 / 3) × 2 = 8
    (TrainConfig(warmup_ratio=0.25, batch_size=4, epochs=1.5), 64, 2, 3),  # 8 batches per process, 12 steps
    (TrainConfig(warmup_ratio=0.3, max_steps=7, epochs=100), 10**6, 1, 3),  # max_steps wins
    (TrainConfig(warmup_ratio=0.0), 1000, 1, 0),
])
def test_warmup_steps_count(cfg, blocks, world, expected):
    assert warmup_steps(cfg, blocks, world_size=world) == expected


def test_the_trainer_warms_up_for_that_many_steps(tmp_path):
    """The learning rate peaks after exactly ``warmup_steps`` optimizer steps, then decays linearly."""
    train = TrainConfig(epochs=2, batch_size=4, block_size=32, warmup_ratio=0.3, logging_steps=1, learning_rate=1e-3)
    cfg = HFScratchConfig(n_layer=1, n_embd=16, n_head=2, n_positions=32, vocab_size=300, train=train)
    backend = HFScratchBackend(cfg, RuntimeConfig(device="cpu", threads=1))
    texts = corpus.lines("train")[:60]
    tokenizer = train_tokenizer(texts, vocab_size=300, model_max_length=32)
    model = backend.build_model(tokenizer)
    steps = warmup_steps(train, len(_pack(tokenizer, texts, 32, "documents")))
    log, _ = fit(model, tokenizer, texts, train, seed=0, device="cpu", default_lr=1e-3, out_dir=tmp_path / "model")
    # the rate logged at step s is the one step s used: after s - 1 scheduler steps
    rates = [(r["step"], r["learning_rate"]) for r in log if r.get("learning_rate") is not None]
    total = rates[-1][0]
    assert steps == 11 and total == 36  # ceil(0.3 × 36): 2 epochs of 18 batches
    assert max(rates, key=lambda sr: sr[1]) == (steps + 1, pytest.approx(1e-3))
    assert rates[1] == (2, pytest.approx(1e-3 / steps))  # linear from 0
