"""A tiny Hugging Face run under ``accelerate launch`` with two processes (CPU, gloo): both train
(data parallel), rank 0 alone runs every other stage and writes the run folder.

``accelerate launch --cpu --num_processes 2`` starts a single process unless an MPI launcher is
configured (accelerate's simple launcher), so the test launches with ``--multi_gpu``: torchrun's
two processes, which on a machine without GPUs (or with ``runtime.device: cpu``) join a gloo group.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

pytest.importorskip("accelerate")
torch = pytest.importorskip("torch")

from recursion.artifacts import read_texts, read_training_texts  # noqa: E402
from recursion.loader import load_config  # noqa: E402
from recursion.stages import planned_stages  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = """
name: ddp
generations: 2
seeds: [0]
model:
  backend: hf_scratch
  n_layer: 1
  n_embd: 32
  n_head: 2
  n_positions: 64
  vocab_size: 300
  train: {max_steps: 3, batch_size: 2, global_batch_size: 8, block_size: 32, logging_steps: 1}
data: {num_train: 64}
generate: {num_docs: 16, decoding: {max_new_tokens: 8, batch_size: 16}}
eval: {tasks: [collapse_ppl_shakespeare], limit: 2, batch_size: 4}
probes: {num_prompts: 4, prompt_tokens: 4}
runtime: {device: cpu, threads: 1}
checkpoints: {keep: last}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(*args, cwd):
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    return subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
                           "-m", "lm_collapse.cli", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


def test_two_processes_train_and_rank_0_runs_every_other_stage_once(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    done = launch("run", str(cfg), "--run-dir", str(tmp_path / "run"), cwd=os.getcwd())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    folder = tmp_path / "run/default/seed_0"
    manifest = json.loads((folder / "manifest.json").read_text())
    exp = load_config(cfg)["default"]
    assert list(manifest["stages"]) == planned_stages(exp)
    out = done.stdout + done.stderr
    for stage in planned_stages(exp):  # each stage reported once: by rank 0
        assert out.count(f"] {stage} done in") == 1, stage
    # both processes trained: the global batch of 8 = 2 per device x 2 processes x 2 accumulation steps
    meta = json.loads((folder / "gen_01/model/lm_collapse_hf.json").read_text())
    assert meta["training"] == {"processes": 2, "per_device_batch_size": 2, "grad_accum": 2, "global_batch_size": 8,
                                "mixed_precision": "no", "weights_dtype": "float32"}
    # valid artifacts: one model folder left (keep: last), loadable; scores; synthetic data; no leftovers
    assert sorted(p.parent.name for p in folder.glob("gen_*/model")) == ["gen_01"]
    from recursion.backends.hf import HFScratchBackend

    model = HFScratchBackend(exp.model, exp.runtime).load(folder / "gen_01/model")
    assert model.perplexity(["to be or not to be"])[0] > 1
    for g in range(2):
        results = json.loads((folder / f"gen_0{g}/lm_eval.json").read_text())["results"]
        assert results["collapse_ppl_shakespeare"]["word_perplexity,none"] > 1
        assert len(read_texts(folder / f"gen_0{g}/synthetic.jsonl")) == 16
    assert len(read_training_texts(folder / "gen_01")) == 16
    assert not list(folder.rglob("*.tmp"))


def test_a_global_batch_the_processes_do_not_divide_is_refused(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("global_batch_size: 8", "global_batch_size: 6"))
    done = launch("run", str(cfg), "--run-dir", str(tmp_path / "run"), cwd=os.getcwd())
    assert done.returncode != 0
    assert "model.train.global_batch_size (6) must be a multiple of batch_size × processes (2 × 2 = 4)" in done.stderr
    assert not (tmp_path / "run").exists()
