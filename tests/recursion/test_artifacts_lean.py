"""Lean artifacts: checkpoint retention and dtype, training sets by reference, the prompt stored once,
the disk summary, lm-eval samples per checkpoint, and the config keys that control them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from recursion.artifacts import read_jsonl, read_texts, read_training_texts, record_prompt, write_jsonl, write_train_sources
from recursion.checkpoints import stale_generations
from recursion.config import CheckpointsConfig
from recursion.driver import replica_finished, run_experiment
from recursion.loader import ConfigError, experiment_from_dict, load_config

CONFIG = """
name: lean
generations: 4
seeds: [0]
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 200}
generate: {num_docs: 100, decoding: {max_new_tokens: 12}}
eval: {enabled: false}
probes: {num_prompts: 10}
"""


def run(tmp_path, *overrides, text=CONFIG, log=None):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    lines = []
    [folder] = run_experiment(cfg, tmp_path / "run", overrides=list(overrides), log=log or lines.append)
    return folder, lines


def models(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("gen_*/model"))


@pytest.mark.parametrize("keep, left", [("all", ["gen_00", "gen_01", "gen_02", "gen_03"]),
                                        ("last", ["gen_03"]), ("none_but_final", ["gen_03"])])
def test_keep_leaves_the_documented_model_folders(tmp_path, keep, left):
    folder, lines = run(tmp_path, f"checkpoints.keep={keep}", "regime.name=accumulate")
    assert models(folder) == left
    probes = json.loads((folder / "gen_03/probes.json").read_text())  # generation 0's model scored gen 3's data
    assert len(probes["gen0_perplexity"]) == 100
    assert any("disk written per generation: gen_00" in line and "kept:" in line for line in lines)


def test_last_deletes_a_model_as_soon_as_no_stage_needs_it(tmp_path):
    seen = []

    def log(line):  # after each stage: which model folders exist
        seen.append((line.split("] ")[-1].split(" done")[0], models(tmp_path / "run/default/seed_0")))

    run(tmp_path, "checkpoints.keep=last", log=log)
    during = dict(seen)
    assert during["gen_02/train"] == ["gen_00", "gen_01", "gen_02"]  # gen 1 is pruned right after this stage
    assert during["gen_02/eval" if "gen_02/eval" in during else "gen_02/generate"] == ["gen_00", "gen_02"]
    assert during["gen_03/probes"] == ["gen_00", "gen_03"]  # gen 0 is the probes' reference to the end
    assert stale_generations("last", trained=2, generations=4, gen0=False, finished=False) == [0, 1]


def test_last_keeps_generation_0_while_a_filter_scores_with_it(tmp_path):
    """Probes off, but the acceptability filter ranks every generation's samples by generation 0's
    perplexity: its model stays until the last selection (before, a resume at generation 2 failed)."""
    seen = []

    def log(line):
        seen.append((line.split("] ")[-1].split(" done")[0], models(tmp_path / "run/default/seed_0")))

    folder, _ = run(tmp_path, "checkpoints.keep=last", "probes.enabled=false", "filter.name=acceptability",
                    "filter.keep=0.5", log=log)
    assert dict(seen)["gen_03/select"] == ["gen_00", "gen_03"] and models(folder) == ["gen_03"]


def test_a_pruned_run_that_needs_a_deleted_model_is_refused_before_any_work(tmp_path):
    folder, _ = run(tmp_path, "generations=2", "checkpoints.keep=last")
    before = json.loads((folder / "manifest.json").read_text())["stages"]
    with pytest.raises(ValueError, match=r"gen_02/probes is still to run and loads gen_00/model/, which "
                                         r"checkpoints.keep: last deleted; run it in another --run-dir"):
        run(tmp_path, "generations=3", "checkpoints.keep=last")  # more generations: the probes need gen 0
    assert json.loads((folder / "manifest.json").read_text())["stages"] == before
    (folder / "gen_00/synthetic.jsonl").write_text("")  # a stage of a pruned generation to redo
    with pytest.raises(ValueError, match=r"gen_00/generate is still to run and loads gen_00/model/"):
        run(tmp_path, "generations=2", "checkpoints.keep=last")


def test_pools_are_referenced_not_copied(tmp_path):
    folder, _ = run(tmp_path, "regime.name=accumulate_subsample")
    g3 = json.loads((folder / "gen_03/train_sources.json").read_text())
    assert [p["file"] for p in g3["parts"]] == ["gen_00/train.jsonl", "gen_00/selected.jsonl", "gen_01/selected.jsonl",
                                                "gen_02/selected.jsonl"]
    texts = read_training_texts(folder / "gen_03")
    pool = read_texts(folder / "gen_00/train.jsonl")
    pool += [t for g in range(3) for t in read_texts(folder / f"gen_0{g}/selected.jsonl")]
    assert len(texts) == 200 and set(texts) <= set(pool)
    assert sorted(p.name for p in folder.glob("gen_0[1-3]/*.jsonl")) == sorted(["synthetic.jsonl", "selected.jsonl"] * 3)


def test_a_redone_data_stage_leaves_one_form_of_the_training_set(tmp_path):
    folder, _ = run(tmp_path, "generations=2")
    expected = read_training_texts(folder / "gen_01")
    write_jsonl(folder / "gen_01/train.jsonl", [{"text": "left by a run of the previous format"}])
    (folder / "gen_01/train_sources.json").write_text("{}")  # damaged: the data stage is redone
    run(tmp_path, "generations=2")
    assert not (folder / "gen_01/train.jsonl").exists() and read_training_texts(folder / "gen_01") == expected


def test_train_sources_errors_name_the_file(tmp_path):
    write_jsonl(tmp_path / "gen_00/selected.jsonl", [{"text": "a"}, {"text": "b"}])
    write_train_sources(tmp_path / "gen_01", [("gen_00/selected.jsonl", [1, 0]), ("gen_00/selected.jsonl", None)])
    assert read_training_texts(tmp_path / "gen_01") == ["b", "a", "a", "b"]
    write_train_sources(tmp_path / "gen_02", [("gen_00/selected.jsonl", [5])])
    with pytest.raises(ValueError, match="row 5 of gen_00/selected.jsonl does not exist"):
        read_training_texts(tmp_path / "gen_02")
    with pytest.raises(FileNotFoundError, match="neither train.jsonl nor train_sources.json"):
        read_training_texts(tmp_path / "gen_09")


def test_prompt_is_stored_once(tmp_path):
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, [{"title": f"Title {i}", "body": f"word {i} " * 8} for i in range(60)])
    text = CONFIG.replace("data: {num_train: 200}", f"data: {{source: 'jsonl:{data}', field: body, prompt_field: title, "
                                                    "num_train: 40, separator: ' :: '}")
    text = text.replace("generate: {", "generate: {prompt: task, keep_prompt: true, ")
    text = text.replace("probes: {num_prompts: 10}", "probes: {num_prompts: 5}")
    folder, _ = run(tmp_path, "generations=1", text=text)
    records = read_jsonl(folder / "gen_00/synthetic.jsonl")
    assert all(set(r) == {"text", "prompt_chars"} for r in records)
    assert all(record_prompt(r).startswith("Title ") and record_prompt(r).endswith(" :: ") for r in records)


def test_eval_log_samples_keeps_lm_evals_samples_per_checkpoint(tmp_path):
    text = CONFIG.replace("eval: {enabled: false}", "eval: {tasks: [collapse_gen_shakespeare], limit: 2, log_samples: true}")
    folder, _ = run(tmp_path, "generations=2", text=text)
    for g in range(2):
        samples = folder / f"gen_0{g}/lm_eval_samples"
        [task_file] = samples.rglob("samples_collapse_gen_shakespeare_*.jsonl")
        assert len(read_jsonl(task_file)) == 2 and list(samples.rglob("results_*.json"))
        assert "samples" not in json.loads((folder / f"gen_0{g}/lm_eval.json").read_text())
    assert not list(folder.rglob("*.tmp"))


def test_config_keys_are_validated(tmp_path):
    exp = experiment_from_dict({"name": "x", "checkpoints": {"keep": "last", "dtype": "bfloat16"},
                                "model": {"backend": "hf_scratch"}, "runtime": {"report_to": []}})
    assert exp.checkpoints == CheckpointsConfig(keep="last", dtype="bfloat16")
    with pytest.raises(ConfigError) as e:
        experiment_from_dict({"name": "x", "checkpoints": {"keep": "some", "dtype": "int8"}})
    assert [p.split(" = ")[0] for p in e.value.problems] == ["checkpoints.keep", "checkpoints.dtype"]
    with pytest.raises(ConfigError) as e:  # the n-gram back end has no Trainer and no weights to cast
        experiment_from_dict({"name": "x", "checkpoints": {"dtype": "float16"}, "runtime": {"report_to": ["wandb"]}})
    assert [p.split(" ")[0] for p in e.value.problems] == ["runtime.report_to", "checkpoints.dtype"]


def test_report_to_is_checked_against_the_installed_transformers(monkeypatch):
    pytest.importorskip("transformers")
    from transformers.integrations import integration_utils

    with pytest.raises(ConfigError, match=r"runtime.report_to = 'nope' is not a logger of transformers .*; choose from: .*wandb"):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch"}, "runtime": {"report_to": ["nope"]}})
    monkeypatch.setattr(integration_utils, "get_available_reporting_integrations", lambda: [])
    with pytest.raises(ConfigError, match=r"runtime.report_to = 'tensorboard' needs its package installed"):
        experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch"}, "runtime": {"report_to": ["tensorboard"]}})
    monkeypatch.setattr(integration_utils, "get_available_reporting_integrations", lambda: ["tensorboard"])
    exp = experiment_from_dict({"name": "x", "model": {"backend": "hf_scratch"}, "runtime": {"report_to": ["tensorboard"]}})
    assert exp.runtime.report_to == ("tensorboard",)


def test_one_replica_by_arm_and_seed(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("seeds: [0]", "seeds: [0, 1]") + "arms:\n  a: {}\n  b: {regime: {name: accumulate}}\n")
    folders = run_experiment(cfg, tmp_path / "run", overrides=["generations=1"], arm="b", seed=1, log=lambda s: None)
    assert [f.relative_to(tmp_path / "run").as_posix() for f in folders] == ["b/seed_1"]
    assert sorted(p.relative_to(tmp_path / "run").as_posix() for p in (tmp_path / "run").glob("*/seed_*")) == ["b/seed_1"]
    assert replica_finished(load_config(cfg, ["generations=1"])["b"], folders[0])
    with pytest.raises(ValueError, match="--arm 'c' is not an arm of .*; arms: a, b"):
        run_experiment(cfg, tmp_path / "run", arm="c")
    with pytest.raises(ValueError, match="--seed 2 is not a seed of .*; seeds: 0, 1"):
        run_experiment(cfg, tmp_path / "run", seed=2)


def test_hf_models_are_saved_as_safetensors_in_the_checkpoint_dtype(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors import safe_open

    from collapse_tasks import corpus
    from recursion.backends.hf import HFScratchBackend
    from recursion.backends.hf.config import HFScratchConfig, TrainConfig
    from recursion.config import RuntimeConfig

    cfg = HFScratchConfig(n_layer=1, n_embd=32, n_head=2, n_positions=64, vocab_size=300,
                          train=TrainConfig(max_steps=2, batch_size=4, global_batch_size=8, block_size=32))
    backend = HFScratchBackend(cfg, RuntimeConfig(device="cpu"), checkpoints=CheckpointsConfig(dtype="bfloat16"))
    backend.train(corpus.lines("train")[:100], tmp_path / "m", previous=None, seed=0)
    with safe_open(tmp_path / "m/model.safetensors", "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    meta = json.loads((tmp_path / "m/lm_collapse_hf.json").read_text())
    assert meta["saved_dtype"] == "bfloat16"
    assert meta["training"] == {"processes": 1, "per_device_batch_size": 4, "grad_accum": 2, "global_batch_size": 8,
                                "mixed_precision": "no", "weights_dtype": "float32"}
    assert backend.load(tmp_path / "m").perplexity(["to be or not to be"])[0] > 1
