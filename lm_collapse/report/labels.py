"""What each metric is, for readers: its axis label and unit, its scale, the figure it belongs to.

A task metric (``<task>/<metric>``, see :mod:`.collect`) is labelled from its entry in
:mod:`metrics.registry` (label, unit, log axis, figure, direction). The quantities the registry does
not hold — the driver's probes (``probe/<name>``) and ``toedit/`` shares — are labelled by
:data:`OTHERS`, a pattern of the name to a :class:`Label` (the first pattern found in the name wins).
A metric neither names gets a plain label in the ``other`` figure.
"""
from __future__ import annotations

from dataclasses import dataclass

from metrics.registry import find

#: Figures, in the order the report shows them, with their titles.
GROUPS = {
    "quality": "Quality on held-out real text",
    "diversity": "Diversity of the generations",
    "probes": "Probes of the models",
    "other": "Other metrics",
}


@dataclass(frozen=True)
class Label:
    name: str  # what the axis says
    unit: str  # "" when the quantity has none
    log: bool  # a log axis (the values span decades)
    group: str  # a key of GROUPS
    better: str = ""  # "higher" / "lower" when one direction is better, for the glossary

    @property
    def axis(self) -> str:
        return f"{self.name} ({self.unit})" if self.unit else self.name


#: Labels of what is not a task metric: probes and toedit shares.
OTHERS: tuple[tuple[str, Label], ...] = (
    ("probe/heldout_perplexity", Label("held-out perplexity", "per token", True, "quality", "lower")),
    ("probe/gen0_perplexity", Label("gen-0 model's perplexity of the synthetic data", "per token", True, "probes")),
    ("probe/top1_mass", Label("top-1 next-token probability", "probability", False, "probes")),
    ("probe/next_token_entropy", Label("next-token entropy", "nats", False, "probes")),
    ("probe/train_knn_entropy", Label("kNN entropy of the training set", "nats", False, "probes", "higher")),
    ("probe/nn_distance_to_train", Label("distance to the nearest training text", "", False, "probes")),
    ("toedit/", Label("share of tokens", "fraction", False, "other")),
)


def task_metric(name: str) -> str:
    """The metric of a report name: ``gen_x/distinct_2 [filter]`` → ``distinct_2``.

    Examples
    --------
    >>> task_metric("gen_shakespeare/distinct_2 [top]"), task_metric("ppl_x/word_perplexity")
    ('distinct_2', 'word_perplexity')
    """
    return name.rpartition("/")[2].partition(" [")[0]


def label(metric: str) -> Label:
    """The :class:`Label` of a metric name (a plain one, group ``other``, when nothing labels it)."""
    for pattern, lab in OTHERS:
        if pattern in metric:
            return lab
    found = find(task_metric(metric)) if "/" in metric and not metric.startswith("probe/") else None
    if found and found[0].label is not None:
        entry = found[0]
        better = "" if entry.descriptive else ("higher" if entry.higher_is_better else "lower")
        return Label(entry.axis_label(task_metric(metric)), entry.unit, entry.log, entry.group, better)
    return Label(metric.rpartition("/")[2].replace("_", " "), "", False, "other")


def grouped(metrics: list[str]) -> dict[str, list[str]]:
    """Metrics by figure, in :data:`GROUPS` order, each group in the given order; empty groups left out."""
    out = {g: [m for m in metrics if label(m).group == g] for g in GROUPS}
    return {g: ms for g, ms in out.items() if ms}
