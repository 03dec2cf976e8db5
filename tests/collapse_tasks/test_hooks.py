"""The task hooks on the shipped text: documents, prompts, per-document results, aggregations."""
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lm_eval.api.metrics import bits_per_byte, weighted_perplexity
from lm_eval.tasks._yaml_loader import load_yaml
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as lm_eval_wikitext_results

import collapse_tasks
from collapse_tasks import corpus, gen_utils, ppl_utils
from metrics import distinct_n, tokenize
from metrics.memorization import memorization
from metrics.score import score
from metrics.self_bleu import self_bleu

TASK_DIR = Path(collapse_tasks.include_path())
TASKS = sorted(p.stem for p in TASK_DIR.glob("collapse_*.yaml") if not p.stem.startswith("collapse_vs_"))
VS_TASKS = sorted(p.stem for p in TASK_DIR.glob("collapse_vs_*.yaml"))  # tested in test_vs_tasks.py
GEN_TASKS = [t for t in TASKS if t.startswith("collapse_gen_")]
PPL_TASKS = [t for t in TASKS if t.startswith("collapse_ppl_")]


def config(task: str) -> dict:
    return load_yaml(TASK_DIR / f"{task}.yaml", resolve_func=True)


@pytest.fixture(scope="module")
def generations(shakespeare_lines):
    """Real held-out lines standing in for K = 4 generations of 50 prompts."""
    lines = shakespeare_lines[:200]
    return [lines[i : i + 4] for i in range(0, 200, 4)]


# ---------------------------------------------------------------- the task set


def test_task_manager_without_builtins_knows_every_task():
    tm = collapse_tasks.task_manager(include_defaults=False)
    assert tm.all_groups == ["collapse"]
    tags = ["collapse_gen", "collapse_ppl", "collapse_vs"]
    assert tm.all_tags == tags
    assert tm.all_subtasks == sorted(TASKS + VS_TASKS) and len(TASKS) == 14
    assert collapse_tasks.our_task_names() == tuple(sorted(["collapse", *tags, *TASKS, *VS_TASKS]))


def test_group_is_the_offline_tasks_and_the_glob_matches_no_group():
    assert load_yaml(TASK_DIR / "collapse.yaml")["task"] == list(collapse_tasks.OFFLINE_TASKS)
    tm = collapse_tasks.task_manager(include_defaults=False)
    matched = tm.match_tasks(["collapse_*"])
    assert set(TASKS) <= set(matched) and not set(matched) & set(tm.all_groups)


@pytest.mark.parametrize(
    ("specs", "ours"),
    [
        (["collapse"], True),
        (["collapse_gen_shakespeare", "collapse_ppl"], True),
        (["collapse_*"], True),
        (["collapse,collapse_gen_xsum"], True),
        (["collapse", "hellaswag"], False),
        (["*"], False),
        (["collapse_nope"], False),
        (["collapse_nope_*"], False),
        (["tasks/my_task.yaml"], False),
        ([], False),
    ],
)
def test_only_ours(specs, ours):
    assert collapse_tasks.only_ours(specs) is ours


def test_data_resolves_from_the_package_whatever_the_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert len(ppl_utils.shakespeare_documents()["test"]) == 450
    assert len(gen_utils.shakespeare_prompts()["test"]) == gen_utils.NUM_PROMPTS


# ---------------------------------------------------------------- perplexity


def test_passages_cover_the_held_out_plays_in_order():
    for name, text in corpus.works("heldout").items():
        docs = ppl_utils.passages(text)
        assert all(len(d.split()) >= ppl_utils.DOC_MIN_WORDS for d in docs)
        blocks = [b.strip() for b in text.split("\n\n") if b.strip()]
        assert "\n\n".join(docs) == "\n\n".join(blocks), name
    docs = ppl_utils.shakespeare_documents()["test"]
    assert len(docs) == 450 and sum(len(d["text"].split()) for d in docs) == 131_641
    assert docs[0]["work"] == "julius_caesar"


def test_ppl_counts_are_lm_evals_wikitext_counts():
    for text in ["To be, or not  to be:\nthat is", " lead and  trail ", "é ü 漢字"]:
        ours = ppl_utils.process_results({"text": text}, [-12.5])
        theirs = lm_eval_wikitext_results({"page": text}, [-12.5])
        assert {k: ours[k] for k in theirs} == theirs
        assert ours["tail_word_perplexity"] == theirs["word_perplexity"]
        assert ppl_utils.wikitext_process_results({"page": text}, [-12.5]) == ours


def test_ppl_yaml_aggregations_are_lm_evals():
    cfg = config("collapse_ppl_shakespeare")
    aggs = {m["metric"]: m["aggregation"] for m in cfg["metric_list"]}
    assert aggs["word_perplexity"] == aggs["byte_perplexity"] == "weighted_perplexity"
    assert aggs["bits_per_byte"] == "bits_per_byte"
    assert aggs["tail_word_perplexity"] is ppl_utils.tail_word_perplexity
    assert all(m["higher_is_better"] is False for m in cfg["metric_list"])


pairs = st.lists(  # (loglikelihood, words) with a per-word loss of 0.001 to 50 nats
    st.tuples(st.floats(1e-3, 50.0), st.integers(1, 500)).map(lambda t: (-t[0] * t[1], t[1])), min_size=1, max_size=60
)


@given(pairs, st.floats(0.01, 1.0))
@settings(max_examples=200, deadline=None)
def test_tail_word_perplexity_against_brute_force(items, fraction):
    k = math.ceil(fraction * len(items))
    worst = sorted(range(len(items)), key=lambda i: (items[i][0] / items[i][1], i))[:k]  # worst first
    expected = math.exp(-sum(items[i][0] for i in worst) / sum(items[i][1] for i in worst))
    got = ppl_utils.tail_word_perplexity(items, fraction=fraction)
    assert got == pytest.approx(expected, rel=1e-9)
    assert got >= weighted_perplexity(items) * (1 - 1e-9)  # the tail is never easier than the mean
    assert ppl_utils.tail_word_perplexity(items, fraction=1.0) == pytest.approx(weighted_perplexity(items), rel=1e-9)


def test_tail_word_perplexity_bad_input():
    with pytest.raises(ValueError, match="at least one document"):
        ppl_utils.tail_word_perplexity([])
    with pytest.raises(ValueError, match="fraction"):
        ppl_utils.tail_word_perplexity([(-1.0, 1)], fraction=0.0)
    assert bits_per_byte([(-math.log(2), 1)]) == pytest.approx(1.0)  # lm-eval's, used as is


# ---------------------------------------------------------------- generation: prompts and results


def test_shakespeare_prompts():
    docs = gen_utils.shakespeare_prompts()["test"]
    assert len(docs) == 500 and docs[:] == gen_utils.shakespeare_prompts()["test"][:]
    speeches = {re.sub(r"\s+", " ", b) for b in corpus.blocks("heldout")}
    for doc in docs:
        speaker, _, opening = doc["prompt"].partition("\n")
        assert re.fullmatch(r"[A-Z][A-Z0-9 ,.'&-]*\.", speaker)
        assert len(opening.split()) == gen_utils.PROMPT_WORDS and doc["reference"]
        assert re.sub(r"\s+", " ", f"{doc['prompt']} {doc['reference']}") in speeches


@pytest.mark.parametrize("task", TASKS)
def test_metric_list_is_what_process_results_returns(task):
    cfg = config(task)
    listed = [m["metric"] for m in cfg["metric_list"]]
    assert len(set(listed)) == len(listed)
    if task == "collapse_ppl_wikitext2_blocks":  # loglikelihood of a block after its first token
        returned = cfg["process_results"]({"num_tokens": 63}, [(-1.0, False)])
        assert returned == {"token_perplexity": (-1.0, 63)}
    elif task in PPL_TASKS:
        doc = {"text": "a b", "page": "a b"}
        returned = cfg["process_results"](doc, [-1.0])
    else:  # the Guo et al. tasks' documents carry their task options
        returned = cfg["process_results"]({"metric_options": "{}"}, [["a b c", "d e f"]])
        assert cfg["repeats"] == 4 and cfg["filter_list"][0]["name"] == "none"
        assert cfg["generation_kwargs"]["do_sample"] is True
    assert set(returned) == set(listed)
    for m in cfg["metric_list"]:
        if callable(m["aggregation"]) and task in GEN_TASKS:
            assert m["aggregation"].__name__ == m["metric"]
            assert m["higher_is_better"] == gen_utils.higher_is_better(m["metric"])


def test_memorization_only_where_a_training_text_exists():
    for task in GEN_TASKS:
        has = any(m["metric"].startswith("memorization_") for m in config(task)["metric_list"])
        assert has == task.startswith("collapse_gen_shakespeare")
    full = {m["metric"] for m in config("collapse_gen_shakespeare_full")["metric_list"]}
    assert full == {m["metric"] for m in config("collapse_gen_shakespeare")["metric_list"]} | {"div_syn", "div_sem"}


def test_keep_all_keeps_every_sample():
    assert gen_utils.keep_all(iter([("a", "b"), ("c", "d")]), [{}, {}]) == [["a", "b"], ["c", "d"]]


def test_within_prompt_hand_computed():
    samples = [" the cat sat", "the cat ran\n", "a dog barked"]
    out = gen_utils.process_results({}, [samples])
    assert out["distinct_2"] == ["the cat sat", "the cat ran", "a dog barked"]
    assert out["within_distinct_2"] == pytest.approx((3 / 4 + 1 + 1) / 3)
    assert out["within_self_bleu_4"] == self_bleu([tokenize(s) for s in samples], 4)


def test_aggregations_equal_metrics_on_all_generations(generations):
    results = [gen_utils.process_results_shakespeare({}, [g]) for g in generations]
    texts = [t.strip() for g in generations for t in g]
    for name in results[0]:
        items = [r[name] for r in results]
        if name.startswith("within_"):
            continue
        got = gen_utils.AGGREGATIONS[name](items)
        if name == "memorization_8":
            expected = memorization(texts, list(corpus.works("train").values()), 8).rate
        elif name == "one_minus_self_bleu_4":
            expected = 1 - self_bleu(texts, 4, sample_size=gen_utils.SELF_BLEU_SAMPLE)
        elif name == "unique_n":
            expected = score(texts, [name], options={name: {"sample_size": gen_utils.UNIQUE_N_SAMPLE}})[name]
        else:
            expected = score(texts, [name])[name]
        assert got == expected, name
    pairs = [np.mean([distinct_n([tokenize(a), tokenize(b)], 2) for i, a in enumerate(g) for b in g[i + 1 :]])
             for g in generations]
    assert np.mean([r["within_distinct_2"] for r in results]) == pytest.approx(np.mean(pairs))


def test_self_bleu_is_computed_at_a_fixed_sample(shakespeare_lines):
    lines = shakespeare_lines[:1500]
    items = [lines[i : i + 3] for i in range(0, 1500, 3)]
    assert gen_utils.AGGREGATIONS["self_bleu_4"](items) == self_bleu(lines, 4, sample_size=1000, seed=0)
    assert gen_utils.AGGREGATIONS["one_minus_self_bleu_4"](items) == 1 - gen_utils.AGGREGATIONS["self_bleu_4"](items)


def test_empty_and_whitespace_generations_are_zero_length_texts(caplog):
    out = gen_utils.process_results_shakespeare({}, [["", "   ", "\n\t"]])
    assert out["distinct_1"] == ["", "", ""]
    assert out["within_distinct_2"] == 0.0 and out["within_self_bleu_4"] == 0.0
    items = [out["distinct_1"]] * 3
    for name in ("distinct_1", "distinct_2", "entropy_1", "top10_share", "mean_length", "self_bleu_4", "memorization_8"):
        assert gen_utils.AGGREGATIONS[name](items) == 0.0, name
    assert gen_utils.AGGREGATIONS["one_minus_self_bleu_4"](items) == 1.0
    assert math.isfinite(gen_utils.AGGREGATIONS["compression_ratio"](items))
    with caplog.at_level(logging.WARNING, logger="collapse_tasks.gen_utils"):
        assert math.isnan(gen_utils.AGGREGATIONS["unique_n"](items))
    assert "unique_n is nan" in caplog.text and "sample_size=1000" in caplog.text
    # mixed with real text, an empty generation only adds a zero length
    mixed = [["to be or not to be", ""], ["that is the question", " "]]
    assert gen_utils.AGGREGATIONS["mean_length"](mixed) == (6 + 4) / 4


def test_one_sample_per_prompt_is_an_error():
    with pytest.raises(ValueError, match="repeats >= 2"):
        gen_utils.process_results({}, [["only one"]])


def test_any_metric_name_of_the_registry_resolves(generations):
    items = generations
    texts = [t for g in generations for t in g]
    assert gen_utils.corpus_aggregation("distinct_4")(items) == distinct_n(texts, 4)
    assert (gen_utils.corpus_aggregation("normalized_entropy_2")(items)
            == score(texts, ["normalized_entropy_2"])["normalized_entropy_2"])
    assert gen_utils.corpus_aggregation("one_minus_self_bleu_2")(items) == 1 - self_bleu(texts, 2)


@pytest.mark.parametrize("name", ["distinct_x", "distinctive", "one_minus_distinct_2", "self_bleu_0"])
def test_unknown_metric_name_is_a_clear_error(name):
    with pytest.raises(ValueError, match="valid names|one_minus_ applies"):
        gen_utils.corpus_aggregation(name)


def test_task_asking_for_an_unknown_metric_fails_at_load(tmp_path):
    (tmp_path / "my_task.yaml").write_text(
        f"include: {TASK_DIR / '_collapse_gen.yaml'}\n"
        "task: my_collapse_task\n"
        "custom_dataset: !function collapse_tasks.gen_utils.shakespeare_prompts\n"
        "metric_list:\n"
        "  - {metric: distinct_9x, aggregation: !function collapse_tasks.gen_utils.distinct_9x, higher_is_better: true}\n"
    )
    tm = collapse_tasks.task_manager(include_defaults=False, extra_paths=[tmp_path])
    with pytest.raises(AttributeError, match="distinct_9x"):
        tm.load(["my_collapse_task"])


def test_registered_metrics_serve_a_task_without_process_results():
    from lm_eval.api.registry import get_metric, get_metric_aggregation, is_higher_better
    from lm_eval.api.task import ConfigurableTask

    collapse_tasks.register_metrics()
    collapse_tasks.register_metrics()  # idempotent
    assert get_metric("distinct_2") is gen_utils.passthrough
    assert is_higher_better("self_bleu_4") is False and is_higher_better("distinct_2") is True
    task = ConfigurableTask(config={
        "task": "user_task",
        "custom_dataset": gen_utils.shakespeare_prompts,
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "output_type": "generate_until",
        "metric_list": [{"metric": "distinct_2"}, {"metric": "memorization_8"}],
    })
    doc = task.eval_docs[0]
    per_doc = task.process_results(doc, ["the cat sat on the mat"])
    assert per_doc == {"distinct_2": "the cat sat on the mat", "memorization_8": "the cat sat on the mat"}
    items = ["the cat sat on the mat", "the cat ran"]
    assert task.aggregation()["distinct_2"](items) == get_metric_aggregation("distinct_2")(items) == distinct_n(items, 2)


@pytest.mark.parametrize("module", ["collapse_tasks", *(f"collapse_tasks.{m}" for m in ("ppl_utils", "gen_utils", "hub_utils"))])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
