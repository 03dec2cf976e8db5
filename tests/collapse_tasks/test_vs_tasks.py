"""The Verbalized Sampling tasks ``collapse_vs_*`` and ``lm-collapse vs-demo``: prompts, per-prompt
results on hand-made answers against direct recomputations, the task set, then end to end on the
tiny GPT-2 through the real command lines."""
import json
import logging
import os
import subprocess
import sys
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest
from lm_eval.tasks._yaml_loader import load_yaml
from rouge_score import rouge_scorer

import collapse_tasks
from collapse_tasks import vs_utils
from collapse_tasks.verbalized import parse, render
from lm_collapse import vs_demo
from metrics import clipped_pair_distances, distinct_n, homogenization

TASK_DIR = Path(collapse_tasks.include_path())
VS_TASKS = ["collapse_vs_cot", "collapse_vs_direct", "collapse_vs_multi", "collapse_vs_standard", "collapse_vs_xml"]
DIVERSITY = ("cosine_diversity", "rouge_l", "one_minus_rouge_l", "distinct_2")
JOKES = [
    "Why did the coffee file a police report? It got mugged.",
    "Decaf is just coffee that has given up on its dreams.",
    "My espresso machine and I have a latte in common.",
    "The barista said my order was brewing trouble.",
    "I like my coffee like my mornings: too short and very dark.",
]


def vs_json(texts, probs) -> str:
    return json.dumps({"responses": [{"text": t, "probability": p} for t, p in zip(texts, probs)]})


def doc(form: str) -> dict:
    return vs_utils.docs(form)[0]


def config(task: str) -> dict:
    return load_yaml(TASK_DIR / f"{task}.yaml", resolve_func=True)


# ---------------------------------------------------------------- prompts and documents


def test_shipped_prompts():
    prompts = vs_utils.load_prompts()
    kinds = [p["kind"] for p in prompts]
    assert len(prompts) >= 30 and (kinds.count("joke"), kinds.count("poem"), kinds.count("story")) == (12, 10, 10)
    assert len({p["id"] for p in prompts}) == len(prompts) and len({p["prompt"] for p in prompts}) == len(prompts)
    assert "*.jsonl" in (Path(__file__).parents[2] / "setup.cfg").read_text()  # shipped as package data


def test_documents_render_each_form_with_the_metadata():
    assert doc("direct")["text"] == vs_utils.load_prompts()[0]["prompt"]
    assert "5 responses" in doc("standard")["text"] and '"reasoning"' in doc("cot")["text"]
    assert "less than 0.1." in doc("xml")["text"] and "2 rounds of 5" in doc("multi_rounds")["text"]
    custom = vs_utils.docs("multi_rounds", vs_k=3, vs_turns=4, vs_threshold="0.05", pretrained="ignored")[0]
    assert "4 rounds of 3 responses (12 in all)" in custom["text"] and (custom["k"], custom["turns"]) == (3, 4)
    assert "less than 0.05." in vs_utils.docs("xml", vs_threshold=0.05)[0]["text"]
    for bad in ({"vs_k": 0}, {"vs_k": 2.5}, {"vs_turns": "two"}, {"vs_turns": None}):
        with pytest.raises(ValueError, match="must be a positive integer"):
            vs_utils.docs("standard", **bad)
    with pytest.raises(ValueError, match=r"vs_threshold must be a number in \(0, 1.0\], got 10"):
        vs_utils.docs("xml", vs_threshold=10)
    with pytest.raises(ValueError, match="unknown form"):
        vs_utils.docs("multi")


def test_parse_every_round_of_multi():
    first, second = vs_json(JOKES[:3], [0.3, 0.2, 0.1]), vs_json(JOKES[3:], [0.1, 0.05])
    rounds = f"Round 1:\n```json\n{first}\n```\nRound 2:\n```json\n{second}\n```"
    assert [c.text for c in parse(rounds, every=True).candidates] == JOKES
    assert parse(rounds, every=True).status == "ok" and [c.text for c in parse(rounds).candidates] == JOKES[:3]
    truncated = vs_json(JOKES[:3], [0.3, 0.2, 0.1]) + "\n" + vs_json(JOKES[3:], [0.1, 0.05])[:-30]
    parsed = parse(truncated, every=True)
    assert parsed.status == "partial" and [c.text for c in parsed.candidates] == JOKES[:4]
    with pytest.raises(ValueError, match="turns must be >= 1"):
        render("multi_rounds", "x", turns=0)


# ---------------------------------------------------------------- per-prompt results


def test_well_formed_json_with_five_candidates():
    probs = [0.4, 0.25, 0.15, 0.12, 0.08]
    fenced = "```json\n" + vs_json(JOKES[::-1], probs) + "\n```"
    out = vs_utils.process_results(doc("standard"), [[vs_json(JOKES, probs), fenced]])
    texts = JOKES + JOKES[::-1]
    assert out["parse_failure_rate"] == 0 and out["num_candidates"] == 10
    assert out["mean_probability"] == pytest.approx(0.2)
    assert out["rouge_l"] == pytest.approx(homogenization(texts))
    assert out["one_minus_rouge_l"] == pytest.approx(1 - out["rouge_l"])
    assert out["distinct_2"] == distinct_n(texts, 2)
    pairs = clipped_pair_distances(vs_utils.embed(texts))
    assert out["cosine_diversity"] == [pytest.approx(pairs.sum()), 45]


def test_cosine_diversity_pools_every_pair_of_every_prompt_as_the_authors_do():
    """Their avg_diversity: the mean of the pair values of all prompts (a prompt with more answers
    weighs more), not the mean of per-prompt means."""
    few, many = JOKES[:2], JOKES
    items = [vs_utils.process_results(doc("direct"), [texts])["cosine_diversity"] for texts in (few, many)]
    values = np.concatenate([clipped_pair_distances(vs_utils.embed(t)) for t in (few, many)])
    assert [n for _, n in items] == [1, 10]
    assert vs_utils.agg_cosine_diversity([*items, None]) == pytest.approx(values.mean(), abs=1e-12)
    assert vs_utils.diversity(many)["cosine_diversity"] == pytest.approx(values[1:].mean(), abs=1e-12)


def test_garbage_is_a_counted_parse_failure_never_an_empty_answer():
    out = vs_utils.process_results(doc("xml"), [["Sure! Here is a joke: why did the", vs_json(JOKES, [0.05] * 5)]])
    assert out["parse_failure_rate"] == 0.5 and out["num_candidates"] == 5 and out["mean_probability"] == pytest.approx(0.05)
    assert out["rouge_l"] == pytest.approx(homogenization(JOKES))
    out = vs_utils.process_results(doc("standard"), [["garbage", "{\"responses\": []}"]])
    assert out == {**dict.fromkeys(DIVERSITY), "parse_failure_rate": 1.0, "num_candidates": 0, "mean_probability": None}
    one = vs_utils.process_results(doc("cot"), [[vs_json(JOKES[:1], [0.9]), "nothing"]])  # one candidate: no diversity
    assert one["num_candidates"] == 1 and one["rouge_l"] is None and one["mean_probability"] == 0.9


def test_direct_keeps_every_repeat():
    generations = [f"  {j}\n" for j in JOKES] * 2
    out = vs_utils.process_results(doc("direct"), [generations])
    assert out["parse_failure_rate"] == 0 and out["num_candidates"] == 10 and "mean_probability" not in out
    assert out["distinct_2"] == distinct_n(JOKES * 2, 2)
    assert vs_utils.process_results(doc("direct"), [["same joke"] * 3])["rouge_l"] == 1.0


def test_multi_rounds_pools_every_round():
    answer = vs_json(JOKES[:2], [0.5, 0.5]) + "\n" + vs_json(JOKES[2:], [0.2, 0.2, 0.1])
    out = vs_utils.process_results(doc("multi_rounds"), [[answer]])
    assert out["num_candidates"] == 5 and out["parse_failure_rate"] == 0 and out["mean_probability"] == pytest.approx(0.3)


def test_aggregations_average_the_prompts_that_have_a_value(caplog):
    assert vs_utils.agg_rouge_l([0.2, None, 0.4]) == pytest.approx(0.3)
    with caplog.at_level(logging.WARNING):
        values = {name: getattr(vs_utils, f"agg_{name}")([None, None]) for name in vs_utils.EMPTY}
    assert vs_utils.agg_cosine_diversity([[0.5, 1], None, [1.5, 3]]) == pytest.approx(0.5)
    collapsed = dict.fromkeys(("cosine_diversity", "one_minus_rouge_l", "distinct_2", "mean_probability"), 0.0)
    assert values == vs_utils.EMPTY == {**collapsed, "rouge_l": 1.0}
    assert "no prompt has a value" in caplog.text


def test_docstring_examples():
    import doctest

    assert doctest.testmod(vs_utils).failed == 0


# ---------------------------------------------------------------- the task set


@pytest.mark.parametrize("task", VS_TASKS)
def test_metric_list_is_what_process_results_returns(task):
    cfg = config(task)
    form = cfg["custom_dataset"]()["test"][0]["form"]
    document = doc(form)
    returned = cfg["process_results"](document, [["a b c", "d e f"][: cfg["repeats"]]])
    assert set(returned) == {m["metric"] for m in cfg["metric_list"]}
    assert cfg["filter_list"][0]["name"] == "none" and cfg["generation_kwargs"]["until"] == []
    assert cfg["repeats"] * (1 if form == "direct" else 5 * (2 if form == "multi_rounds" else 1)) == 10  # N = 10


def test_task_yamls_load_and_the_tag_expands_to_the_five_tasks():
    tm = collapse_tasks.task_manager(include_defaults=False)
    assert "collapse_vs" in tm.all_tags and "collapse_vs" not in load_yaml(TASK_DIR / "collapse.yaml")["task"]
    loaded = tm.load(["collapse_vs"])
    assert sorted(loaded["tasks"]) == VS_TASKS and not loaded["groups"]
    direct = loaded["tasks"]["collapse_vs_direct"]
    assert direct.config.repeats == 10 and len(direct.eval_docs) == len(vs_utils.load_prompts())
    assert tm.match_tasks(["collapse_vs*"]) == ["collapse_vs", *VS_TASKS]
    assert collapse_tasks.only_ours(["collapse_vs"])


# ---------------------------------------------------------------- vs-demo without a model


class EchoLM:
    """Stands in for an lm-eval LM: a chat template, and canned answers that record their contexts."""

    max_length = 4096

    def __init__(self, vs_answer: str):
        self.vs_answer, self.contexts = vs_answer, []

    def apply_chat_template(self, messages, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    def generate_until(self, requests, disable_tqdm=False):
        self.contexts += [r.args[0] for r in requests]
        return [self.vs_answer if "probability" in r.args[0] else " Why? Because. " for r in requests]


def test_vs_demo_run_parses_samples_and_prints_each_side():
    lm = EchoLM(vs_json(JOKES, [0.5, 0.2, 0.1, 0.1, 0.1]))
    result = vs_demo.run(lm, "Tell me a joke about coffee.", num_direct=3, seed=7)
    assert result.direct == ["Why? Because."] * 3 and result.parsed.status == "ok" and result.sampled in result.parsed.candidates
    assert result.sampled == vs_demo.run(EchoLM(lm.vs_answer), "Tell me a joke about coffee.", num_direct=3, seed=7).sampled
    assert result.scores["direct"]["rouge_l"] == 1.0 and result.scores["vs"]["rouge_l"] < 0.5
    text = vs_demo.format_result(result)
    for section in ("DIRECT", "VERBALIZED SAMPLING (standard, k=5)", "parse status: ok (json), 5 candidates",
                    "p=0.500", "SAMPLED", "diversity: semantic"):
        assert section in text


def test_vs_demo_scores_are_the_tasks_diversity(monkeypatch):
    texts = ["A joke about coffee and cups.", "A joke about tea.", "A pun on milk, in two words."]
    notes = []
    assert vs_demo._scores(texts, notes) == vs_utils.diversity(texts) and notes == []

    missing = "embeddings need sentence-transformers: pip install 'lm-collapse[embeddings]'"

    def no_extra(texts):
        raise ImportError(missing)

    monkeypatch.setattr(vs_utils, "embed", no_extra)  # the extra not installed: the lexical scores, and a note
    scores = vs_demo._scores(texts, notes)
    assert scores["cosine_diversity"] is None and scores == vs_utils.diversity(texts, semantic=False)
    assert scores["rouge_l"] is not None and notes == [missing]


def test_vs_demo_multi_is_a_real_conversation():
    lm = EchoLM(vs_json(JOKES[:2], [0.5, 0.5]))
    result = vs_demo.run(lm, "Tell me a joke about coffee.", form="multi", k=2, num_direct=2, turns=3)
    assert len(result.vs_answers) == 3 and result.parsed.candidates and len(result.parsed.candidates) == 6
    last = lm.contexts[-1]  # the third turn sees both earlier answers and two follow-up requests
    assert last.count("<assistant>" + lm.vs_answer) == 2 and last.count("Sample 2 alternative responses") == 2
    assert last.startswith("<user>Generate 6 responses")  # k × turns in all, k per turn


def test_vs_demo_reports_a_failed_parse_and_prompt_ids():
    result = vs_demo.run(EchoLM("I cannot do JSON."), "x", num_direct=2, form="xml")
    text = vs_demo.format_result(result)
    assert result.parsed.status == "failed" and result.sampled is None
    assert "parse status: failed" in text and "I cannot do JSON." in text and "instruction-tuned" in text
    assert vs_demo.resolve_prompt("poem_03") == next(p["prompt"] for p in vs_utils.load_prompts() if p["id"] == "poem_03")
    assert vs_demo.resolve_prompt(None) == vs_utils.load_prompts()[0]["prompt"]
    with pytest.raises(ValueError, match="unknown form"):
        vs_demo.run(EchoLM(""), "x", form="json")


# ---------------------------------------------------------------- end to end, real command lines

BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def run(cmd, cwd):
    return subprocess.run([str(BIN / cmd[0]), *map(str, cmd[1:])], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_lm_collapse_eval_collapse_vs_end_to_end(tiny_gpt2, tmp_path):
    out = tmp_path / "out"
    proc = run(["lm-collapse", "eval", "--model", "hf", "--model_args", f"pretrained={tiny_gpt2}", "--tasks", "collapse_vs",
                "--apply_chat_template", "--limit", 3, "--device", "cpu", "--batch_size", 8,
                "--gen_kwargs", "max_gen_toks=16", "--log_samples", "--output_path", out], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    results = json.loads(results_file.read_text())
    for task in VS_TASKS:
        reported = {k.partition(",")[0]: v for k, v in results["results"][task].items() if "," in k and "_stderr" not in k}
        assert set(reported) == {m["metric"] for m in results["configs"][task]["metric_list"]}, task
        (samples_file,) = out.rglob(f"samples_{task}_*.jsonl")
        docs = [json.loads(line) for line in samples_file.read_text().splitlines()]
        assert len(docs) == 3
        for d in docs:  # the tiny model's chat template was applied
            context = d["arguments"]["gen_args_0"]["arg_0"]
            assert context.startswith("user: ") and context.endswith("assistant:")
        generations = [d["filtered_resps"][0] for d in docs]
        assert all(len(g) == results["configs"][task]["repeats"] for g in generations)
        if task == "collapse_vs_direct":
            assert reported["parse_failure_rate"] == 0 and reported["num_candidates"] == 10
            scorer = rouge_scorer.RougeScorer(["rougeL"])
            per_prompt = [[t.strip() for t in g] for g in generations]
            rouge = [np.mean([scorer.score(a, b)["rougeL"].fmeasure for a, b in permutations(p, 2)]) for p in per_prompt]
            assert reported["rouge_l"] == pytest.approx(np.mean(rouge), abs=1e-12)
            assert reported["distinct_2"] == pytest.approx(np.mean([distinct_n(p, 2) for p in per_prompt]), abs=1e-12)
            assert 0 < reported["cosine_diversity"] <= 1
        else:  # the tiny model writes no JSON and no XML: the failure rate says so
            every = task == "collapse_vs_multi"
            failed = [np.mean([not parse(t, every=every).ok for t in g]) for g in generations]
            assert reported["parse_failure_rate"] == pytest.approx(np.mean(failed), abs=1e-12)
            assert reported["parse_failure_rate"] >= 0.9, task


@pytest.mark.slow
def test_vs_demo_command_line(tiny_gpt2, tmp_path):
    proc = run(["lm-collapse", "vs-demo", "--model_args", f"pretrained={tiny_gpt2}", "--device", "cpu", "--num-direct", 3,
                "--form", "xml", "--prompt", "story_02", "--gen_kwargs", "max_gen_toks=16"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for section in ("Prompt: Write a very short story", "Chat template: applied", "DIRECT: the prompt as is, sampled 3 times",
                    "diversity: semantic", "VERBALIZED SAMPLING (xml, k=5)", "parse status: failed"):
        assert section in proc.stdout, (section, proc.stdout)

    bad = ["lm-collapse", "vs-demo", "--device", "cpu"]
    proc = run([*bad, "--model_args", f"pretrained={tmp_path}/missing"], tmp_path)
    assert proc.returncode == 2 and "no such model folder" in proc.stderr
    proc = run([*bad, "--model", "no-such-model", "--model_args", f"pretrained={tiny_gpt2}"], tmp_path)
    assert proc.returncode == 2 and "no-such-model" in proc.stderr
    proc = run([*bad, "--model_args", f"pretrained={tiny_gpt2},dtype=float33"], tmp_path)
    assert proc.returncode == 2 and "could not load --model hf" in proc.stderr, proc.stderr[-2000:]
