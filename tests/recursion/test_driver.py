"""The driver end to end on the n-gram back end: artifacts, regimes side by side, kill and resume."""
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from recursion.artifacts import read_jsonl, read_texts, read_training_texts, record_prompt
from recursion.driver import run_experiment

CONFIG = """
name: tiny
generations: 3
seeds: [0, 1]
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 300}
generate: {num_docs: 200, decoding: {max_new_tokens: 20}}
eval: {enabled: false}
probes: {num_prompts: 20}
arms:
  replace: {}
  surprise: {filter: {name: surprise, keep: 0.5}, regime: {name: mix, fraction: 0.2}}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(CONFIG)
    return path


def snapshot(root: Path) -> dict[str, bytes]:
    """Every artifact of a run, byte for byte, except records of how it ran: the manifest, the
    environment (threads follow the machine's load), and lm-eval's dates and durations (its
    ``results`` are compared)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in ("manifest.json", "environment.json"):
            data = p.read_bytes()
            if p.name == "lm_eval.json":
                data = json.dumps(json.loads(data)["results"], sort_keys=True).encode()
            out[str(p.relative_to(root))] = data
    return out


def test_artifacts(config, tmp_path):
    folders = run_experiment(config, tmp_path / "run", log=lambda s: None)
    assert [f.relative_to(tmp_path / "run").as_posix() for f in folders] == [
        "replace/seed_0", "replace/seed_1", "surprise/seed_0", "surprise/seed_1"]
    rep = tmp_path / "run/replace/seed_0"
    manifest = json.loads((rep / "manifest.json").read_text())
    assert {"versions", "git_commit", "seed", "stages"} <= set(manifest)
    environment = json.loads((rep / "environment.json").read_text())
    assert {"torch", "transformers", "lm_eval", "numpy"} <= set(environment["versions"]) and environment["cpu"]
    assert environment["torch_threads"] >= 1
    assert len(manifest["stages"]) == 3 * 6  # data, train, generate, select, probes, diversity (eval disabled)
    for g in range(3):
        gen = rep / f"gen_{g:02d}"
        assert (gen / "model/ngram.json").exists()
        assert len(read_texts(gen / "synthetic.jsonl")) == 200
        probes = json.loads((gen / "probes.json").read_text())
        assert len(probes["gen0_perplexity"]) == 200 and probes["num_prompts"] == 20
    assert read_training_texts(rep / "gen_01") == read_texts(rep / "gen_00/selected.jsonl")  # replace
    # later generations reference their training rows instead of copying them
    assert not (rep / "gen_01/train.jsonl").exists()
    assert json.loads((rep / "gen_01/train_sources.json").read_text())["parts"] == [
        {"file": "gen_00/selected.jsonl", "rows": None}]
    sur = tmp_path / "run/surprise/seed_0"
    selected = read_jsonl(sur / "gen_00/selected.jsonl")
    assert len(selected) == 100 and all("index" in r for r in selected)
    train = read_training_texts(sur / "gen_01")  # mix: 60 fresh real + the 100 kept (fewer than 240 asked)
    assert len(train) == 160 and train[60:] == [r["text"] for r in selected]
    assert not set(train[:60]) & set(read_texts(sur / "gen_00/train.jsonl"))  # the fresh fold is new real text
    assert train[:60] == read_texts(sur / "gen_01/fresh.jsonl")
    datasets = pytest.importorskip("datasets")
    assert datasets.load_dataset("json", data_files=str(rep / "gen_00/synthetic.jsonl"), split="train").num_rows == 200
    # replicas differ, a rerun changes nothing
    assert snapshot(rep) != snapshot(tmp_path / "run/replace/seed_1")
    before = snapshot(tmp_path / "run")
    run_experiment(config, tmp_path / "run", log=lambda s: None)
    assert snapshot(tmp_path / "run") == before


def test_changed_config_is_refused(config, tmp_path):
    run_experiment(config, tmp_path / "run", log=lambda s: None, overrides=["generations=1"])
    with pytest.raises(ValueError, match="different config"):
        run_experiment(config, tmp_path / "run", log=lambda s: None, overrides=["generations=1", "model.alpha=0.5"])
    with pytest.raises(FileNotFoundError, match="--resume"):
        run_experiment(config, tmp_path / "nothing", resume=True)


def _run_and_kill(config, run_dir, kill_after_stages):
    """Start `lm-collapse run`, SIGKILL it as soon as it reports `kill_after_stages` finished stages."""
    proc = subprocess.Popen([sys.executable, "-m", "lm_collapse.cli", "run", str(config), "--run-dir", str(run_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
    done = 0
    for line in proc.stdout:
        done += "done in" in line
        if done >= kill_after_stages:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    return proc.returncode


@pytest.mark.slow
def test_sigkill_at_any_stage_then_resume_gives_identical_results(config, tmp_path):
    text = CONFIG.replace("seeds: [0, 1]", "seeds: [0]").replace("eval: {enabled: false}", "eval: {tasks: [collapse], limit: 3}")
    config.write_text(text)
    reference = tmp_path / "reference"
    run_experiment(config, reference, log=lambda s: None)
    killed = tmp_path / "killed"
    for k in (1, 3, 5, 8, 13, 19, 26, 33):  # kill points spread over stages, generations and arms
        rc = _run_and_kill(config, killed, k)
        assert rc in (-signal.SIGKILL, 0)
    done = subprocess.run([sys.executable, "-m", "lm_collapse.cli", "run", str(config), "--run-dir", str(killed), "--resume"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert snapshot(killed) == snapshot(reference)


SELECT = """
name: sel
generations: 3
seeds: [0]
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 40}
regime: {name: accumulate_select}
filter: {name: surprise, top_k: 10}
generate: {prompt: real_prefix, prefix_tokens: 3, keep_prompt: true, resample_prompts: true, num_docs: 15,
           decoding: {max_new_tokens: 6, min_new_tokens: 2}}
eval: {enabled: false}
probes: {num_prompts: 5}
arms:
  surplexity: {}
  fresh: {regime: {pool: real}, filter: {name: random}}
  synlast: {regime: {pool: last}, filter: {name: random}}
"""


def test_accumulate_select_chooses_top_k_of_the_accumulated_pool(tmp_path):
    """Gambetta et al.'s loop: every generation's documents (prompt + continuation) join the pool; the
    filter chooses top_k of the pool (all / real / last generation) under the last model."""
    import numpy as np

    from recursion.backends.ngram import NgramBackend, NgramConfig
    from recursion.config import DataConfig, ProbesConfig
    from recursion.data import prepare, real_data

    (tmp_path / "c.yaml").write_text(SELECT)
    folders = dict(zip(("surplexity", "fresh", "synlast"), run_experiment(tmp_path / "c.yaml", tmp_path / "run",
                                                                          log=lambda s: None)))
    real = real_data(prepare(DataConfig(num_train=40), ProbesConfig(num_prompts=5)), seed=0).train
    for arm, folder in folders.items():
        first = read_texts(folder / "gen_00/train.jsonl")
        assert set(first) <= set(real) and len(first) == 10  # generation 0: top_k random real documents
        for g in range(3):
            synthetic = read_jsonl(folder / f"gen_{g:02d}/synthetic.jsonl")
            assert len(synthetic) == 15 and all(set(r) == {"text", "prompt_chars"} for r in synthetic)
            assert all(r["text"].startswith(record_prompt(r)) and r["text"] != record_prompt(r) for r in synthetic)
            assert read_texts(folder / f"gen_{g:02d}/selected.jsonl") == [r["text"] for r in synthetic]  # all kept
        train = read_texts(folder / "gen_02/train.jsonl")
        assert len(train) == 10
        if arm == "fresh":
            assert set(train) <= set(real)
        if arm == "synlast":
            assert set(train) <= set(read_texts(folder / "gen_01/synthetic.jsonl"))
    folder = folders["surplexity"]
    pool = real + read_texts(folder / "gen_00/synthetic.jsonl")
    ppl = NgramBackend(NgramConfig(n=2, alpha=0.05)).load(folder / "gen_00/model").perplexity(pool)
    top = sorted(np.argsort(-np.asarray(ppl), kind="stable")[:10])
    assert read_texts(folder / "gen_01/train.jsonl") == [pool[i] for i in top]
    prompts = [{record_prompt(r) for r in read_jsonl(folder / f"gen_{g:02d}/synthetic.jsonl")} for g in range(2)]
    assert prompts[0] != prompts[1]  # drawn anew each generation


def test_train_prefix_prompts_with_the_documents_the_generation_trained_on(tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG.replace("generate: {num_docs: 200,", "generate: {prompt: train_prefix, "
                                                    "prefix_tokens: 2, num_docs: 200,").split("arms:")[0])
    [folder, _] = run_experiment(tmp_path / "c.yaml", tmp_path / "run", log=lambda s: None)
    for g in (0, 1):
        heads = {" ".join(t.split()[:2]) for t in read_training_texts(folder / f"gen_{g:02d}")}
        records = read_jsonl(folder / f"gen_{g:02d}/synthetic.jsonl")
        assert {r["prompt"] for r in records} <= heads  # gen 1: prefixes of gen 0's synthetic lines, not real ones
