"""Generation × metric tables: seeds pooled to mean ± 95% CI, in Markdown, LaTeX and CSV.

Layout of Guo et al.'s tables: one row per metric, one column per generation holding the value and
an arrow for its change from the previous generation (↑ / ↓), and a last column with the change of
the last generation versus generation 0 (relative, %). A side-by-side table puts the arms (regimes,
filters) next to each other at the last generation, and a differences table gives each arm minus
the first arm, paired by seed.

Every interval is a 95% Student-t interval over seeds (:mod:`.stats`): a value is the mean over
seeds ± the half-width ``t(0.975, n−1)·s/√n``; a change versus generation 0 and an arrow are
computed per seed, then the interval over seeds; an arm difference is paired by seed. A change
or difference whose interval contains 0 is printed as "no detectable change/difference", with
no sign and no arrow. A table from one seed says "single seed: no interval" in its header.

``results.csv`` (:func:`to_csv`) has one line per (arm, metric, generation): ``n`` (seeds),
``mean``, ``ci95`` (half-width), ``ci_low``, ``ci_high``; ``change_pct``, ``change_pct_low``,
``change_pct_high`` (change versus generation 0 in % of each seed's generation-0 value, mean and
interval over seeds); one ``seed_<s>`` column per seed with that seed's value; ``sources`` (the
files read, ``;``-separated). ``differences.csv`` (:func:`differences_csv`) has one line per
(arm, metric): ``reference`` (the first arm), ``generation``, ``n`` (seeds both ran), ``mean``,
``ci_low``, ``ci_high`` of ``arm − reference`` paired by seed, and ``spans_zero``. Empty fields:
no value (an interval of one seed, a change from 0).
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass

from metrics.registry import METRICS, find

from .collect import Collection
from .labels import task_metric
from .stats import Interval, change, paired_difference, t_interval


@dataclass(frozen=True)
class Cell:
    """One (arm, metric, generation): each seed's value and the interval over seeds."""

    by_seed: dict[int, float]  # seed -> value
    sources: tuple[str, ...]
    interval: Interval

    @property
    def mean(self) -> float:
        return self.interval.mean

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95% t-interval; None for one seed."""
        return self.interval.half

    @property
    def n(self) -> int:
        return self.interval.n


def aggregate(col: Collection) -> dict[tuple[str, str, int], Cell]:
    """``(arm, metric, generation) → Cell``: each seed's value and their t-interval."""
    groups: dict[tuple[str, str, int], list] = defaultdict(list)
    for r in col.rows:
        groups[(r.arm, r.metric, r.generation)].append(r)
    cells = {}
    for key, rs in groups.items():
        rs = sorted(rs, key=lambda r: r.seed)
        cells[key] = Cell({r.seed: r.value for r in rs}, tuple(r.source for r in rs), t_interval([r.value for r in rs]))
    return cells


def seeds_note(cells, arms: list[str]) -> str:
    """How many seeds the values of ``arms`` pool: ``single seed: no interval``, ``3 seeds, 95% t-CI``."""
    ns = sorted({c.n for (a, _, _), c in cells.items() if a in arms}) or [1]
    if ns[-1] == 1:
        return "single seed: no interval"
    count = f"{ns[0]}" if ns[0] == ns[-1] else f"{ns[0]}–{ns[-1]}"
    return f"{count} seeds, 95% t-CI"


def last_generations(cells, arms: list[str]) -> dict[str, int]:
    """Each arm's last generation with any number."""
    return {a: max((g for (aa, _, g) in cells if aa == a), default=0) for a in arms}


def ordered_metrics(metrics: list[str]) -> list[str]:
    """The preferred metrics of :mod:`metrics.registry` first, in its order (a pattern's names by their
    numbers), then the probes, then everything else as found. The scale-free and length-controlled
    measures lead: bits per byte does not depend on the tokenizer (the word perplexities of toy models
    run into millions), and the ``*_at_<T>`` measures and unique-n are computed on a fixed number of
    n-grams, so a change in length cannot pass for a change in diversity; the length follows them,
    then the measures that move with it (distinct-n, entropy and top-10 share of every n-gram).

    Examples
    --------
    >>> ordered_metrics(["probe/top1_mass_mean", "g/within_distinct_2", "g/distinct_2", "g/distinct_1_at_1000"])
    ['g/distinct_1_at_1000', 'g/distinct_2', 'probe/top1_mass_mean', 'g/within_distinct_2']
    """
    preferred = [m for m in METRICS if m.preferred]

    def rank(m: str):
        found = find(task_metric(m)) if "/" in m and not m.startswith("probe/") else None
        if found and found[0] in preferred:
            return (preferred.index(found[0]), tuple(found[1].values()), metrics.index(m))
        return (len(preferred) + (0 if m.startswith("probe/") else 1), (), metrics.index(m))

    return sorted(metrics, key=rank)


def fmt(x: float) -> str:
    if x == 0:
        return "0"
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.4g}"


def fmt_cell(cell: Cell, latex: bool = False) -> str:
    if cell.ci95 is None:
        return fmt(cell.mean)
    return f"{fmt(cell.mean)} $\\pm$ {fmt(cell.ci95)}" if latex else f"{fmt(cell.mean)} ± {fmt(cell.ci95)}"


def fmt_interval(iv: Interval | None, *, percent: bool = False, what: str = "difference") -> str:
    """A change or difference: ``+1.2 [+0.4, +2.0]``; one seed: ``+1.2``; an interval containing 0:
    ``no detectable <what> (CI spans 0: −0.3 to +0.5)``, never a signed value; None: ``n/a``.

    Examples
    --------
    >>> fmt_interval(Interval(1.5, 0.5, 2.5, 3)), fmt_interval(Interval(-12.34, -20.0, -4.5, 3), percent=True)
    ('+1.5 [+0.5, +2.5]', '-12.3% [-20.0%, -4.5%]')
    >>> fmt_interval(Interval(0.1, -0.2, 0.4, 3)), fmt_interval(Interval(0.1, None, None, 1))
    ('no detectable difference (CI spans 0: -0.2 to +0.4)', '+0.1')
    """
    if iv is None:
        return "n/a"

    def signed(x: float) -> str:
        text = f"{x:+.1f}%" if percent else ("+" if x > 0 else "") + fmt(x)
        return "0" if x == 0 and not percent else text

    if iv.lo is None:
        return signed(iv.mean)
    if iv.lo == iv.hi == 0:
        return f"no {what} (0 in every seed)"
    if iv.spans_zero:
        return f"no detectable {what} (CI spans 0: {signed(iv.lo)} to {signed(iv.hi)})"
    return f"{signed(iv.mean)} [{signed(iv.lo)}, {signed(iv.hi)}]"


def fmt_change(first: Cell, last: Cell) -> str:
    """Change of ``last`` versus ``first`` in % of each seed's first value, with its interval over seeds
    (``n/a`` from a first value of 0, unless nothing changed)."""
    relative = change(first.by_seed, last.by_seed, relative=True)
    absolute = change(first.by_seed, last.by_seed)
    if relative is None and absolute and {absolute.mean, absolute.lo, absolute.hi} <= {0, None}:
        return fmt_interval(absolute, what="change")
    return fmt_interval(relative, percent=True, what="change")


def arrow(prev: Cell | None, cur: Cell, latex: bool = False) -> str:
    """↑ / ↓ for the change from the previous generation, per seed; none when its interval contains 0."""
    if prev is None:
        return ""
    iv = change(prev.by_seed, cur.by_seed)
    if iv is None or iv.mean == 0 or iv.spans_zero:
        return ""
    up = iv.mean > 0
    return (" $\\uparrow$" if up else " $\\downarrow$") if latex else (" ↑" if up else " ↓")


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str


def arm_table(cells, arm: str, metrics: list[str], generations: list[int], *, latex: bool = False) -> Table:
    """One arm: metric rows, generation columns (value and arrow), change of the last vs generation 0."""
    header = [f"metric ({seeds_note(cells, [arm])})", *(f"gen {g}" for g in generations), "Δ vs gen 0"]
    rows = []
    for m in metrics:
        row, prev, first, last = [m], None, None, None
        for g in generations:
            cell = cells.get((arm, m, g))
            if cell is None:
                row.append("–")
                continue
            row.append(fmt_cell(cell, latex) + arrow(prev, cell, latex))
            prev = last = cell
            first = cell if first is None else first
        row.append(fmt_change(first, last) if first is not None and len(generations) > 1 else "–")
        rows.append(row)
    return Table(header, rows, f"{arm}: mean over seeds (± 95% t-CI when several); arrows: change from the previous "
                               "generation (per seed; none when its CI spans 0)")


def side_by_side(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int], *, latex: bool = False) -> Table:
    """Arms next to each other: each arm's last generation, and its change versus generation 0."""
    header = [f"metric ({seeds_note(cells, arms)})", *(f"{a} (gen {generation_of[a]})" for a in arms),
              *(f"{a} Δ" for a in arms)]
    rows = []
    for m in metrics:
        values, deltas = [], []
        for a in arms:
            last, first = cells.get((a, m, generation_of[a])), cells.get((a, m, 0))
            values.append(fmt_cell(last, latex) if last else "–")
            deltas.append(fmt_change(first, last) if first and last and generation_of[a] > 0 else "–")
        rows.append([m, *values, *deltas])
    return Table(header, rows, "Last generation of every arm, and its change versus generation 0 (per seed, in %)")


def differences(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int]) -> Table | None:
    """Each arm minus the first arm at their last common generation, paired by seed (None for one arm)."""
    if len(arms) < 2:
        return None
    ref, others = arms[0], arms[1:]
    gens = {a: min(generation_of[a], generation_of[ref]) for a in others}
    header = [f"metric ({seeds_note(cells, arms)})", *(f"{a} − {ref} (gen {gens[a]})" for a in others)]
    rows = []
    for m in metrics:
        row = [m]
        for a in others:
            mine, theirs = cells.get((a, m, gens[a])), cells.get((ref, m, gens[a]))
            row.append(fmt_interval(paired_difference(mine.by_seed, theirs.by_seed)) if mine and theirs else "–")
        rows.append(row)
    return Table(header, rows, f"Each arm minus {ref}, paired by seed (the arms of a seed share its generation-0 "
                               "model): mean [95% t-CI] of the per-seed differences")


def trajectory(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int]) -> Table:
    """Compact: for each arm, ``gen-0 value → last value (change)``; the demo's key table."""
    rows = []
    for m in metrics:
        row = [m]
        for a in arms:
            first, last = cells.get((a, m, 0)), cells.get((a, m, generation_of[a]))
            row.append(f"{fmt_cell(first)} → {fmt_cell(last)} ({fmt_change(first, last)})" if first and last else "–")
        rows.append(row)
    header = [f"metric ({seeds_note(cells, arms)})", *(f"{a} (gen 0 → {generation_of[a]})" for a in arms)]
    return Table(header, rows, "Generation 0 versus the last generation")


def to_markdown(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in t.rows]
    return "\n".join(lines)


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)
    return text.replace("Δ", r"$\Delta$").replace("–", "--").replace("±", r"$\pm$").replace("−", "$-$")


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
    """``results.csv``: one line per (arm, metric, generation); the columns are in the module docstring."""
    seeds = sorted({s for c in cells.values() for s in c.by_seed})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["arm", "metric", "generation", "n", "mean", "ci95", "ci_low", "ci_high", "change_pct", "change_pct_low",
                "change_pct_high", *(f"seed_{s}" for s in seeds), "sources"])
    for (arm, metric, g), c in sorted(cells.items()):
        first = cells.get((arm, metric, 0))
        delta = change(first.by_seed, c.by_seed, relative=True) if first and g > 0 else None
        w.writerow([arm, metric, g, c.n, *_numbers(c.mean, c.ci95, c.interval.lo, c.interval.hi),
                    *(_numbers(delta.mean, delta.lo, delta.hi) if delta else ["", "", ""]),
                    *_numbers(*(c.by_seed.get(s) for s in seeds)), ";".join(c.sources)])
    return buf.getvalue()


def differences_csv(cells, arms: list[str], metrics: list[str], generation_of: dict[str, int]) -> str:
    """``differences.csv``: each arm minus the first, paired by seed; the columns are in the module docstring."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["arm", "reference", "metric", "generation", "n", "mean", "ci_low", "ci_high", "spans_zero"])
    for a in arms[1:]:
        g = min(generation_of[a], generation_of[arms[0]])
        for m in metrics:
            mine, theirs = cells.get((a, m, g)), cells.get((arms[0], m, g))
            if mine and theirs and (iv := paired_difference(mine.by_seed, theirs.by_seed)):
                w.writerow([a, arms[0], m, g, iv.n, *_numbers(iv.mean, iv.lo, iv.hi), iv.spans_zero])
    return buf.getvalue()


def _numbers(*values: float | None) -> list[str]:
    """Exact (``repr``) numbers for a CSV; ``None`` as an empty field."""
    return ["" if v is None else repr(float(v)) for v in values]
