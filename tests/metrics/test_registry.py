"""The metric registry: one entry reaches metrics.score, the collapse tasks and the report."""
import inspect
from pathlib import Path

import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

import collapse_tasks
from collapse_tasks import gen_utils
from lm_collapse.report.labels import GROUPS, label
from lm_collapse.report.plots import log_axis
from lm_collapse.report.tables import ordered_metrics
from metrics import registry
from metrics.score import check_options, resolve, score


@pytest.fixture
def restored_registry():
    """The registry as it was, after the test (its readers hold the list itself, so restore it in place)."""
    saved = list(registry.METRICS)
    yield registry
    registry.METRICS[:] = saved


def longest_run(texts, n: int = 1, *, scale: float = 1.0) -> float:
    """Toy metric: ``scale`` × the number of tokens of the longest text, over ``n``."""
    return scale * max(len(t) for t in texts) / n


def test_a_toy_metric_reaches_score_tasks_and_report(restored_registry):
    registry.register(registry.Metric(
        "longest_<n>",
        compute=lambda corpus, name, n: longest_run(corpus.tokens, n, **corpus.opts(name)),
        function=longest_run,
        options=("scale",),
        higher_is_better=False,
        label="longest text over <n>",
        unit="tokens",
        log=True,
        preferred=True,
    ))
    texts = ["the cat sat on the mat", "a dog", "to be or not"]
    # metrics.score: resolved, its options checked, computed
    assert score(texts, ["longest_2", "distinct_1"])["longest_2"] == 3.0
    assert score(texts, ["longest_2"], options={"longest_2": {"scale": 2.0}}) == {"longest_2": 6.0}
    with pytest.raises(ValueError, match="its options: scale"):
        check_options(["longest_2"], {"longest_2": {"bogus": 1}})
    assert registry.lookup("longest_2").defaults() == {"scale": 1.0} and callable(resolve("longest_2"))
    # a collapse task: its aggregation over every generation and its direction, through lm-eval
    task = ConfigurableTask(config={
        "task": "toy_task",
        "custom_dataset": gen_utils.shakespeare_prompts,
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{reference}}",
        "output_type": "generate_until",
        "process_results": lambda doc, results: {"longest_2": list(results[0])},
        "metric_list": gen_utils.metric_list(("longest_2",)),
    })
    items = [task.process_results(task.eval_docs[0], [texts[:2]]), {"longest_2": texts[2:]}]
    assert task.aggregation()["longest_2"]([i["longest_2"] for i in items]) == 3.0
    assert task.higher_is_better() == {"longest_2": False} and gen_utils.higher_is_better("longest_2") is False
    # the report: label, unit, log axis, direction, and a place among the preferred metrics of the tables
    lab = label("gen_x/longest_2")
    assert (lab.axis, lab.log, lab.group, lab.better) == ("longest text over 2 (tokens)", True, "diversity", "lower")
    assert log_axis(lab, [1.0, 500.0])
    order = ordered_metrics(["probe/top1_mass_mean", "gen_x/within_distinct_2", "gen_x/longest_2", "gen_x/distinct_2"])
    assert order == ["gen_x/distinct_2", "gen_x/longest_2", "probe/top1_mass_mean", "gen_x/within_distinct_2"]


def test_register_replaces_an_entry_of_the_same_name(restored_registry):
    registry.register(registry.Metric("mean_length", higher_is_better=False))
    assert registry.lookup("mean_length").higher_is_better is False
    assert sum(m.name == "mean_length" for m in registry.METRICS) == 1
    with pytest.raises(ValueError, match="unknown metric 'mean_length'.*valid names"):
        resolve("mean_length")  # no compute: score cannot compute it


def test_every_name_has_one_entry_and_well_formed_fields():
    names = [m.name for m in registry.METRICS]
    assert len(set(names)) == len(names)
    for m in registry.METRICS:
        if m.function is not None:  # every option is a keyword of the function it calls
            assert set(m.options) <= set(inspect.signature(m.function).parameters), m.name
        assert m.group in GROUPS and (m.compute is not None or not m.options), m.name
    assert registry.lookup("self_bleu_4").defaults() == {"smoothing": "method1", "sample_size": None, "seed": 0}
    with pytest.raises(ValueError, match="n-gram order must be in"):
        registry.find("distinct_1001")
    assert registry.find("distinct_0") is None


def test_directions_agree_with_every_task_yaml():
    """Every metric a task YAML lists (the generation tasks' lists are built from the registry) has an entry,
    and the YAML's higher_is_better is the entry's."""
    listed = 0
    for path in sorted(Path(collapse_tasks.include_path()).glob("*collapse_*.yaml")):
        for m in load_yaml(path, resolve_func=True).get("metric_list", []):
            assert m["higher_is_better"] == registry.lookup(m["metric"]).higher_is_better, (path.name, m["metric"])
            listed += 1
    assert listed > 100
