"""What each metric is, for readers: its axis label and unit, its scale, the figure it belongs to.

One table, :data:`METRICS`, maps a pattern of the metric name (``<task>/<metric>`` or
``probe/<name>``, see :mod:`.collect`) to a :class:`Label`; the first pattern found in the name
wins, so longer, more specific patterns come first. A metric no pattern names gets a plain label
in the ``other`` figure.
"""
from __future__ import annotations

from dataclasses import dataclass

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


METRICS: tuple[tuple[str, Label], ...] = (
    ("/tail_word_perplexity", Label("word perplexity, worst 10% of documents", "per word", True, "quality", "lower")),
    ("/word_perplexity", Label("word perplexity", "per word", True, "quality", "lower")),
    ("/byte_perplexity", Label("byte perplexity", "per byte", True, "quality", "lower")),
    ("/bits_per_byte", Label("bits per byte", "bits/byte", False, "quality", "lower")),
    ("probe/heldout_perplexity", Label("held-out perplexity", "per token", True, "quality", "lower")),
    ("probe/gen0_perplexity", Label("gen-0 model's perplexity of the synthetic data", "per token", True, "probes")),
    ("probe/top1_mass", Label("top-1 next-token probability", "probability", False, "probes")),
    ("probe/next_token_entropy", Label("next-token entropy", "nats", False, "probes")),
    ("probe/train_knn_entropy", Label("kNN entropy of the training set", "nats", False, "probes", "higher")),
    ("probe/nn_distance_to_train", Label("distance to the nearest training text", "", False, "probes")),
    ("/distinct_1_at_", Label("distinct-1 of a fixed sample of words", "fraction", False, "diversity", "higher")),
    ("/distinct_2_at_", Label("distinct-2 of a fixed sample of bigrams", "fraction", False, "diversity", "higher")),
    ("/entropy_1_at_", Label("word entropy of a fixed sample of words", "bits", False, "diversity", "higher")),
    ("/entropy_2_at_", Label("bigram entropy of a fixed sample of bigrams", "bits", False, "diversity", "higher")),
    ("/top10_share_at_", Label("share of the 10 most frequent words, fixed sample", "fraction", False, "diversity", "lower")),
    ("/within_distinct_", Label("distinct-2 within a prompt's samples", "fraction", False, "diversity", "higher")),
    ("/within_self_bleu", Label("Self-BLEU-4 within a prompt's samples", "fraction", False, "diversity", "lower")),
    ("/distinct_", Label("distinct-n", "fraction of n-grams", False, "diversity", "higher")),
    ("/unique_n", Label("unique-n (sampled n-grams)", "fraction", False, "diversity", "higher")),
    ("/one_minus_self_bleu", Label("1 − Self-BLEU-4", "fraction", False, "diversity", "higher")),
    ("/self_bleu", Label("Self-BLEU-4", "fraction", False, "diversity", "lower")),
    ("/entropy_", Label("n-gram entropy", "bits", False, "diversity", "higher")),
    ("/top10_share", Label("share of the 10 most frequent words", "fraction", False, "diversity", "lower")),
    ("/compression_ratio", Label("gzip compression ratio", "raw / compressed bytes", False, "diversity", "lower")),
    ("/mean_length", Label("generation length", "words", False, "diversity")),
    ("/memorization", Label("generations copying 8 words of the training plays", "fraction", False, "diversity", "lower")),
    ("/div_syn", Label("syntactic diversity (Div_syn)", "", False, "diversity", "higher")),
    ("/div_sem", Label("semantic diversity (Div_sem)", "", False, "diversity", "higher")),
    ("toedit/", Label("share of tokens", "fraction", False, "other")),
)


def label(metric: str) -> Label:
    """The :class:`Label` of a metric name (a plain one, group ``other``, when no pattern matches)."""
    for pattern, lab in METRICS:
        if pattern in metric:
            return lab
    return Label(metric.rpartition("/")[2].replace("_", " "), "", False, "other")


def grouped(metrics: list[str]) -> dict[str, list[str]]:
    """Metrics by figure, in :data:`GROUPS` order, each group in the given order; empty groups left out."""
    out = {g: [m for m in metrics if label(m).group == g] for g in GROUPS}
    return {g: ms for g, ms in out.items() if ms}
