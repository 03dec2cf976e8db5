"""``lm-collapse eval`` and plain ``lm_eval --include_path``: argument handling, then end to end on
the tiny GPT-2 (and its LoRA adapter) through the real command lines."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from lm_eval._cli import HarnessCLI
from lm_eval.api.metrics import bits_per_byte, weighted_perplexity

import collapse_tasks
from collapse_tasks import corpus, gen_utils, ppl_utils
from lm_collapse.cli import main as cli_main
from lm_collapse.eval import check_model_paths
from lm_collapse.eval import main as eval_main
from metrics.memorization import memorization
from metrics.score import score
from metrics.self_bleu import self_bleu

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def executed(monkeypatch):
    """Run :func:`lm_collapse.eval.main` with lm-eval's ``execute`` replaced by a recorder."""
    import lm_eval.tasks

    seen = {}

    def execute(self, args):
        seen["args"], seen["task_manager"] = args, lm_eval.tasks.TaskManager

    monkeypatch.setattr(HarnessCLI, "execute", execute)
    monkeypatch.setattr("lm_collapse.eval._hub_cached", lambda repo_id: True)  # "gpt2" as if in the hub cache

    def run(*argv):
        assert eval_main(list(argv)) == 0
        assert lm_eval.tasks.TaskManager is seen["original"]
        return seen

    seen["original"] = lm_eval.tasks.TaskManager
    return run


def test_our_tasks_only_skip_the_builtin_index(executed):
    seen = executed("--model", "hf", "--model_args", "pretrained=gpt2", "--tasks", "collapse", "collapse_gen_*")
    args = seen["args"]
    assert args.command == "run" and args.tasks == ["collapse", "collapse_gen_*"]
    assert args.include_path == [collapse_tasks.include_path()]
    assert issubclass(seen["task_manager"], seen["original"]) and seen["task_manager"] is not seen["original"]
    tm = seen["task_manager"](include_path=args.include_path)
    assert "hellaswag" not in tm.all_tasks and "collapse" in tm.all_groups


def test_builtin_tasks_keep_the_full_index_and_user_paths(executed, tmp_path):
    seen = executed("--tasks", "collapse,hellaswag", "--include_path", str(tmp_path))
    assert seen["task_manager"] is seen["original"]
    assert seen["args"].include_path == [collapse_tasks.include_path(), str(tmp_path)]
    assert executed("ls", "tasks")["task_manager"] is seen["original"]


def test_our_metrics_and_models_are_registered(executed):
    from lm_eval.api.registry import get_metric, get_model

    executed("--tasks", "collapse")
    assert get_metric("distinct_2") is gen_utils.passthrough
    assert get_model("collapse-ngram").__name__ == "NgramLMEval"
    assert get_model("hf").__name__ == "HFLM"  # lm-eval's own models are still there


@pytest.mark.parametrize("model_args", ["pretrained=/no/such/model", {"pretrained": "gpt2", "peft": "./no_adapter"}])
def test_missing_model_folder_is_a_clear_error(model_args):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        check_model_paths(model_args)


def test_hub_ids_are_left_to_lm_eval_when_cached(tmp_path, monkeypatch):
    monkeypatch.setattr("lm_collapse.eval._hub_cached", lambda repo_id: True)
    check_model_paths({"pretrained": "gpt2", "peft": "org/adapter"})
    check_model_paths(f"pretrained={tmp_path}")
    check_model_paths(None)


def test_missing_relative_folder_or_uncached_hub_id_fail_before_loading(tmp_path, monkeypatch):
    """``my_runs/ckpt`` under a folder that exists is a path; offline, a hub id must be in the cache."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_runs").mkdir()
    with pytest.raises(FileNotFoundError, match="pretrained=my_runs/ckpt: no such model folder"):
        check_model_paths("pretrained=my_runs/ckpt")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set but the hub cache has no model 'nobody/ckpt'"):
        check_model_paths("pretrained=nobody/ckpt")


def test_cli_errors_exit_2_with_the_message(capsys, tmp_path):
    assert cli_main(["eval", "--model", "hf", "--model_args", f"pretrained={tmp_path}/missing", "--tasks", "collapse"]) == 2
    assert f"pretrained={tmp_path}/missing: no such model folder" in capsys.readouterr().err
    assert cli_main(["eval", "--model", "hf"]) == 2
    assert "no task given: pass --tasks" in capsys.readouterr().err


# ---------------------------------------------------------------- end to end, real command lines


def run(cmd, cwd):
    proc = subprocess.run([str(BIN / cmd[0]), *map(str, cmd[1:])], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    return proc


def outputs(out_dir: Path) -> tuple[dict, dict[str, list[dict]]]:
    (results,) = out_dir.rglob("results_*.json")
    samples = {}
    for path in out_dir.rglob("samples_*.jsonl"):
        task = path.name.removeprefix("samples_").rpartition("_")[0]
        samples[task] = [json.loads(line) for line in path.read_text().splitlines()]
    return json.loads(results.read_text()), samples


def reported(results: dict, task: str) -> dict[str, float]:
    return {k.partition(",")[0]: v for k, v in results["results"][task].items() if "," in k and "_stderr" not in k}


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-15)


@pytest.mark.slow
def test_lm_collapse_eval_end_to_end(tiny_gpt2, tmp_path):
    out = tmp_path / "out"
    proc = run(["lm-collapse", "eval", "--model", "hf", "--model_args", f"pretrained={tiny_gpt2}", "--tasks", "collapse",
                "--limit", 5, "--device", "cpu", "--batch_size", 8, "--gen_kwargs", "max_gen_toks=24,temperature=0.9",
                "--log_samples", "--output_path", out], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, samples = outputs(out)
    configs = results["configs"]
    for task in collapse_tasks.OFFLINE_TASKS:
        assert set(reported(results, task)) == {m["metric"] for m in configs[task]["metric_list"]}, task

    # perplexity: lm-eval's aggregations of the logged (loglikelihood, count) pairs
    ppl = reported(results, "collapse_ppl_shakespeare")
    docs = samples["collapse_ppl_shakespeare"]
    assert len(docs) == 5
    assert ppl["word_perplexity"] == pytest.approx(weighted_perplexity([tuple(d["word_perplexity"]) for d in docs]))
    assert ppl["bits_per_byte"] == pytest.approx(bits_per_byte([tuple(d["bits_per_byte"]) for d in docs]))
    tail = ppl_utils.tail_word_perplexity([tuple(d["word_perplexity"]) for d in docs])
    assert ppl["tail_word_perplexity"] == pytest.approx(tail)

    # generation: K = 4 samples per prompt with the --gen_kwargs asked, metrics recomputed from the logged texts
    gen = reported(results, "collapse_gen_shakespeare")
    docs = samples["collapse_gen_shakespeare"]
    assert len(docs) == 5
    for d in docs:
        assert len(d["resps"][0]) == 4 and d["filtered_resps"][0] == d["resps"][0]
        kwargs = d["arguments"]["gen_args_0"]["arg_1"]
        assert kwargs["max_gen_toks"] == 24 and kwargs["temperature"] == 0.9 and kwargs["do_sample"] is True
    per_prompt = [[t.strip() for t in d["filtered_resps"][0]] for d in docs]
    texts = [t for p in per_prompt for t in p]
    names = [n for n in gen if n in gen_utils.CORPUS_METRICS and not n.startswith(("one_minus", "unique_n", "self_bleu"))
             and "_at_" not in n]
    expected = score(texts, names)
    for name in (n for n in gen if "_at_" in n):  # on 1,000 drawn n-grams; nan when the generations hold fewer
        try:
            expected[name] = score(texts, [name])[name]
        except ValueError:
            expected[name] = math.nan
    try:
        expected["unique_n"] = score(texts, ["unique_n"], options={"unique_n": {"sample_size": 1000}})["unique_n"]
    except ValueError:  # fewer than 1000 n-grams: the task reports nan
        expected["unique_n"] = math.nan
    expected["self_bleu_4"] = self_bleu(texts, 4, sample_size=1000)
    expected["one_minus_self_bleu_4"] = 1 - expected["self_bleu_4"]
    expected["memorization_8"] = memorization(texts, list(corpus.works("train").values()), 8).rate
    expected["within_self_bleu_4"] = float(np.mean([self_bleu(p, 4) for p in per_prompt]))
    expected["within_distinct_2"] = float(np.mean([d["within_distinct_2"] for d in docs]))
    assert set(expected) == set(gen)
    for name, value in expected.items():
        assert same(gen[name], value), (name, gen[name], value)


@pytest.mark.slow
def test_plain_lm_eval_include_path_with_a_lora_adapter(tiny_gpt2, tiny_lora, tmp_path):
    out = tmp_path / "out"
    proc = run(["lm_eval", "--model", "hf", "--model_args", f"pretrained={tiny_gpt2},peft={tiny_lora}",
                "--include_path", collapse_tasks.include_path(),
                "--tasks", "collapse_ppl_shakespeare,collapse_gen_shakespeare_full",
                "--limit", 3, "--device", "cpu", "--batch_size", 8, "--gen_kwargs", "max_gen_toks=16", "--output_path", out],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results, _ = outputs(out)
    assert results["config"]["model_args"]["peft"] == str(tiny_lora)
    for task in ("collapse_ppl_shakespeare", "collapse_gen_shakespeare_full"):
        values = reported(results, task)
        assert set(values) == {m["metric"] for m in results["configs"][task]["metric_list"]}
    full = reported(results, "collapse_gen_shakespeare_full")
    assert 0 < full["div_syn"] <= 1 and 0 < full["div_sem"] <= 1


@pytest.mark.slow
def test_builtin_and_our_tasks_in_one_call(tmp_path):
    proc = run(["lm-collapse", "eval", "validate", "--tasks", "collapse,collapse_gen_xsum,hellaswag,arc_easy"], cwd=tmp_path)
    assert proc.returncode == 0 and "All tasks found" in proc.stdout, proc.stdout + proc.stderr[-2000:]


@pytest.mark.slow
def test_cli_bad_input(tiny_gpt2, tmp_path):
    model = ["lm-collapse", "eval", "--model", "hf", "--model_args"]
    proc = run([*model, f"pretrained={tmp_path}/nothing", "--tasks", "collapse"], tmp_path)
    assert proc.returncode == 2 and "no such model folder" in proc.stderr
    proc = run([*model, f"pretrained={tiny_gpt2}", "--tasks", "collapse_nope"], tmp_path)
    assert proc.returncode == 2 and "Tasks not found: collapse_nope" in proc.stderr
