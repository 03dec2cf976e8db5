"""Generation × metric tables: replicas pooled to mean ± 95% CI, in Markdown, LaTeX and CSV.

Layout of Guo et al.'s tables: one row per metric, one column per generation holding the value and
an arrow for its change from the previous generation (↑ / ↓), and a last column with the change of
the last generation versus generation 0 (relative, %). A side-by-side table puts the arms (regimes,
filters) next to each other at the last generation.

The 95% confidence interval over n replicas is Student's t: mean ± t(0.975, n−1)·s/√n, s the
sample standard deviation (ddof=1); a single replica has no interval.
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .collect import Collection

# Metrics shown first, in this order (by the first substring found); everything else follows as found. The
# scale-free and length-controlled measures lead: bits per byte does not depend on the tokenizer (the word
# perplexities of toy models run into millions), and the *_at_<T> measures and unique-n are computed on a
# fixed number of n-grams, so a change in length cannot pass for a change in diversity; the length follows
# them, then the measures that move with it (distinct-n, entropy and top-10 share of every n-gram).
PREFERRED = (
    "/bits_per_byte", "/distinct_1_at_", "/distinct_2_at_", "/entropy_1_at_", "/entropy_2_at_", "/top10_share_at_",
    "/unique_n", "/mean_length", "/word_perplexity", "/tail_word_perplexity", "/byte_perplexity", "/distinct_1",
    "/distinct_2", "/distinct_3", "/one_minus_self_bleu", "/self_bleu", "/entropy", "/top10_share",
    "/compression_ratio", "/div_syn", "/div_sem", "/memorization", "probe/",
)


@dataclass(frozen=True)
class Cell:
    mean: float
    ci95: float | None  # half-width; None for one replica
    n: int
    sources: tuple[str, ...]


def ci95(values: list[float]) -> float | None:
    """Half-width of the Student-t 95% interval of the mean (None for fewer than 2 values)."""
    n = len(values)
    if n < 2:
        return None
    if max(values) == min(values):
        return 0.0  # exactly; np.std of equal floats can be 1e-16 instead
    return float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / math.sqrt(n))


def aggregate(col: Collection) -> dict[tuple[str, str, int], Cell]:
    """``(arm, metric, generation) → Cell`` pooling the replicas (seeds)."""
    groups: dict[tuple[str, str, int], list] = defaultdict(list)
    for r in col.rows:
        groups[(r.arm, r.metric, r.generation)].append(r)
    return {
        key: Cell(float(np.mean([r.value for r in rs])), ci95([r.value for r in rs]), len(rs), tuple(r.source for r in rs))
        for key, rs in groups.items()
    }


def last_generations(cells, arms: list[str]) -> dict[str, int]:
    """Each arm's last generation with any number."""
    return {a: max((g for (aa, _, g) in cells if aa == a), default=0) for a in arms}


def ordered_metrics(metrics: list[str]) -> list[str]:
    def rank(m: str):
        hits = [i for i, p in enumerate(PREFERRED) if p in m]
        return (hits[0] if hits else len(PREFERRED), metrics.index(m))

    return sorted(metrics, key=rank)


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.4g}"


def fmt_cell(cell: Cell, latex: bool = False) -> str:
    if cell.ci95 is None:
        return fmt(cell.mean)
    return f"{fmt(cell.mean)} $\\pm$ {fmt(cell.ci95)}" if latex else f"{fmt(cell.mean)} ± {fmt(cell.ci95)}"


def change(first: float, last: float) -> str:
    if first == 0:
        return "n/a"
    return f"{100 * (last - first) / abs(first):+.1f}%"


def arrow(prev: float | None, cur: float, latex: bool = False) -> str:
    if prev is None or cur == prev:
        return ""
    up = cur > prev
    return (" $\\uparrow$" if up else " $\\downarrow$") if latex else (" ↑" if up else " ↓")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str


def arm_table(cells, arm: str, metrics: list[str], generations: list[int], *, latex: bool = False) -> Table:
    """One arm: metric rows, generation columns (value and arrow), change of the last vs generation 0."""
    header = ["metric", *(f"gen {g}" for g in generations), "Δ vs gen 0"]
    rows = []
    for m in metrics:
        row, prev, first, last = [m], None, None, None
        for g in generations:
            cell = cells.get((arm, m, g))
            if cell is None:
                row.append("–")
                continue
            row.append(fmt_cell(cell, latex) + arrow(prev, cell.mean, latex))
            prev, last = cell.mean, cell.mean
            first = cell.mean if first is None else first
        row.append(change(first, last) if first is not None and last is not None and len(generations) > 1 else "–")
        rows.append(row)
    return Table(header, rows, f"{arm}: mean over replicas (± 95% CI when several); arrows: change from the previous generation")


def side_by_side(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int], *, latex: bool = False) -> Table:
    """Arms next to each other: each arm's last generation, and its change versus generation 0."""
    header = ["metric", *(f"{a} (gen {generation_of[a]})" for a in arms), *(f"{a} Δ" for a in arms)]
    rows = []
    for m in metrics:
        values, deltas = [], []
        for a in arms:
            last, first = cells.get((a, m, generation_of[a])), cells.get((a, m, 0))
            values.append(fmt_cell(last, latex) if last else "–")
            deltas.append(change(first.mean, last.mean) if first and last and generation_of[a] > 0 else "–")
        rows.append([m, *values, *deltas])
    return Table(header, rows, "Last generation of every arm, and its change versus generation 0")


def trajectory(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int]) -> Table:
    """Compact: for each arm, ``gen-0 value → last value (change)``; the demo's key table."""
    rows = []
    for m in metrics:
        row = [m]
        for a in arms:
            first, last = cells.get((a, m, 0)), cells.get((a, m, generation_of[a]))
            row.append(f"{fmt(first.mean)} → {fmt(last.mean)} ({change(first.mean, last.mean)})" if first and last else "–")
        rows.append(row)
    header = ["metric", *(f"{a} (gen 0 → {generation_of[a]})" for a in arms)]
    return Table(header, rows, "Generation 0 versus the last generation")


def to_markdown(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in t.rows]
    return "\n".join(lines)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text).replace("Δ", r"$\Delta$").replace("–", "--")


def _latex_cell(text: str) -> str:
    """Escape text but keep the math we put in on purpose ($\\pm$, $\\uparrow$, ...)."""
    parts = text.split("$")
    return "".join(latex_escape(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))


def to_latex(t: Table) -> str:
    """A booktabs ``table`` environment, ready to ``\\input``."""
    cols = "l" + "r" * (len(t.header) - 1)
    body = [" & ".join(_latex_cell(c) for c in row) + r" \\" for row in t.rows]
    return "\n".join([
        r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{cols}}}", r"\toprule",
        " & ".join(latex_escape(h) for h in t.header) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}",
        rf"\caption{{{latex_escape(t.caption)}}}", r"\end{table}", "",
    ])


def to_csv(cells) -> str:
    """Tidy CSV: one line per (arm, metric, generation) with mean, CI half-width, replicas, sources."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["arm", "metric", "generation", "mean", "ci95", "n", "sources"])
    for (arm, metric, g), c in sorted(cells.items()):
        w.writerow([arm, metric, g, repr(c.mean), "" if c.ci95 is None else repr(c.ci95), c.n, ";".join(c.sources)])
    return buf.getvalue()
