"""The driver end to end with the Hugging Face back ends, every checkpoint scored by lm-eval."""
import json

import pytest

from recursion.artifacts import read_texts, read_training_texts
from recursion.driver import run_experiment

pytestmark = pytest.mark.slow

COMMON = """
generations: 2
data: {{num_train: 200}}
generate: {{num_docs: 24, decoding: {{max_new_tokens: 12, min_new_tokens: 2, batch_size: 24}}}}
eval: {{tasks: [collapse], limit: 2, batch_size: 8, gen_kwargs: "max_gen_toks=8"}}
probes: {{num_prompts: 8, prompt_tokens: 4}}
runtime: {{threads: 2}}
{arms}
"""


def run(tmp_path, model_block: str, arms: str):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: t\n" + model_block + COMMON.format(arms=arms))
    return run_experiment(cfg, tmp_path / "run", log=lambda s: None)


def check_replica(folder, generations=2):
    for g in range(generations):
        gen = folder / f"gen_{g:02d}"
        results = json.loads((gen / "lm_eval.json").read_text())["results"]
        assert results["collapse_ppl_shakespeare"]["word_perplexity,none"] > 1
        assert "distinct_2,none" in results["collapse_gen_shakespeare"]
        probes = json.loads((gen / "probes.json").read_text())
        assert len(probes["gen0_perplexity"]) == len(read_texts(gen / "synthetic.jsonl"))


def test_scratch_gpt2_regimes_and_surprise(tmp_path):
    model = """model:
  backend: hf_scratch
  n_layer: 1
  n_embd: 32
  n_head: 2
  n_positions: 64
  vocab_size: 300
  train: {max_steps: 10, batch_size: 8, block_size: 32}
"""
    arms = """arms:
  accumulate_subsample: {regime: {name: accumulate_subsample}}
  surprise: {filter: {name: surprise, keep: 0.5}}
"""
    folders = run(tmp_path, model, arms)
    for f in folders:
        check_replica(f)
    # generation 1 reuses generation 0's tokenizer unchanged
    a = folders[0]
    assert (a / "gen_00/model/tokenizer.json").read_text() == (a / "gen_01/model/tokenizer.json").read_text()
    assert len(read_training_texts(a / "gen_01")) == 200  # fixed budget
    assert len(read_texts(folders[1] / "gen_00/selected.jsonl")) == 12


def test_finetune_lora_continuing_and_keep_real(tmp_path, tiny_gpt2):
    model = f"""model:
  backend: hf_finetune
  pretrained: {tiny_gpt2}
  init: previous
  lora: {{r: 4, alpha: 8, target_modules: [c_attn]}}
  train: {{max_steps: 4, batch_size: 8, block_size: 32}}
"""
    [folder] = run(tmp_path, model, "regime: {name: keep_real, fraction: 0.25}\n")
    check_replica(folder)
    assert (folder / "gen_01/model/adapter_config.json").exists()
    train = read_training_texts(folder / "gen_01")
    assert sum(t in set(read_texts(folder / "gen_00/train.jsonl")) for t in train) >= 50
