"""``lm-collapse report``: tables, figures and samples of one or more runs, tied together in ``report.md``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from recursion.artifacts import atomic_write_text
from recursion.rundir import check_folder

from . import plots, tables
from .collect import Collection, collect
from .header import header_lines
from .labels import GROUPS, grouped, label
from .pitfalls import reading_notes
from .samples import samples_markdown

FORMATS = ("md", "latex", "csv")


@dataclass
class Report:
    path: Path  # report.md
    key_table: str  # the side-by-side table, Markdown
    files: list[Path]
    problems: list[str]
    cells: dict  # (arm, metric, generation) -> tables.Cell, the numbers behind every table
    arms: list[str]
    sizes: str = ""  # the sizes note (how the run's sizes differ from its config file)
    notes: list[str] = field(default_factory=list)  # "Reading these numbers": warnings that apply to this run


def sizes_note(col: Collection) -> str:
    """One line: the overrides of the config file the replicas ran with (the demo's size reductions)."""
    from ..sizes import is_size

    if not col.replicas:
        return ""
    pairs = list(dict.fromkeys(p for r in col.replicas for p in r.overrides))
    if not pairs:
        return "**Sizes:** as the config file sets them (no overrides)."
    shown = ", ".join(f"`{p}`" for p in pairs)
    if all(is_size(p) for p in pairs):
        return f"**Sizes:** reduced from the config file's, every other setting as shipped: {shown}."
    return f"**Settings changed from the config file** (`--set`): {shown}."


def glossary(metrics: list[str]) -> list[str]:
    """Markdown lines: what each metric shown measures, its unit and which direction is better."""
    names: dict = {}
    for m in metrics:
        if (lab := label(m)).group != "other":
            names.setdefault(lab, []).append(m.rpartition("/")[2])
    lines = []
    for lab, ms in names.items():
        better = f"; {lab.better} is better" if lab.better else ""
        lines.append(f"- {', '.join(f'`{m}`' for m in dict.fromkeys(ms))}: {lab.name}" + (f" ({lab.unit})" if lab.unit else "")
                     + better)
    return lines


def build_report(run_dirs: list[str | Path], out: str | Path | None = None, *, formats=FORMATS, plots_on: bool = True,
                 arm_order: list[str] | None = None) -> Report:
    """Read every replica under ``run_dirs`` and write the report into ``out`` (default ``RUN/report``).

    ``arm_order``: the arms in this order (e.g. the config's), others after them by folder name; the
    first is the reference of the paired differences."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    col = collect(list(run_dirs))
    if not col.replicas:  # nothing to report: say so, write nothing
        raise ValueError(col.problems[0])
    order = [a for a in arm_order or [] if a in col.arms] + [a for a in col.arms if a not in (arm_order or [])]
    col.replicas.sort(key=lambda r: order.index(r.arm))  # stable: seeds stay in order
    out = check_folder(Path(out) if out is not None else Path(run_dirs[0]) / "report", "--out")
    out.mkdir(parents=True, exist_ok=True)
    cells = tables.aggregate(col)
    metrics = tables.ordered_metrics(col.metrics)
    last = tables.last_generations(cells, col.arms)
    gens = {a: sorted({g for (aa, _, g) in cells if aa == a}) for a in col.arms}
    files: list[Path] = []

    key = tables.side_by_side(cells, col.arms, metrics, last)
    diffs = tables.differences(cells, col.arms, metrics, last)
    per_arm = [tables.arm_table(cells, a, metrics, gens[a]) for a in col.arms]
    if "md" in formats:
        shown = [t for t in (key, diffs, *per_arm) if t is not None]
        text = "\n\n".join(f"### {t.caption}\n\n{tables.to_markdown(t)}" for t in shown) + "\n"
        atomic_write_text(out / "tables.md", text)
        files.append(out / "tables.md")
    if "latex" in formats:
        tex = [tables.side_by_side(cells, col.arms, metrics, last, latex=True), diffs,
               *(tables.arm_table(cells, a, metrics, gens[a], latex=True) for a in col.arms)]
        atomic_write_text(out / "tables.tex", "\n".join(tables.to_latex(t) for t in tex if t is not None))
        files.append(out / "tables.tex")
    if "csv" in formats:
        atomic_write_text(out / "results.csv", tables.to_csv(cells))
        files.append(out / "results.csv")
        if diffs is not None:
            atomic_write_text(out / "differences.csv", tables.differences_csv(cells, col.arms, metrics, last))
            files.append(out / "differences.csv")

    figures: list[Path] = []
    if plots_on and cells:
        for group, ms in grouped(metrics).items():
            figures += plots.metric_lines(cells, col, ms, out, stem=group, title=GROUPS[group])
        figures += plots.perplexity_density(col, out)
    files += figures

    sizes = sizes_note(col)
    notes = reading_notes(cells, col, last)
    md = ["# lm-collapse report", ""]
    if sizes:
        md += [sizes, ""]
    md += header_lines(col)
    md += ["Replicas read:", ""]
    md += [f"- `{r.arm}` seed {r.seed}: generations {sorted(r.generations)} — `{r.path}`" for r in col.replicas]
    if col.problems:
        md += ["", "## What is missing or unreadable", "", *(f"- {p}" for p in col.problems)]
    md += ["", "## Arms side by side", "", key.caption + ".", "", tables.to_markdown(key), ""]
    if diffs is not None:
        md += ["### Differences between arms, paired by seed", "", diffs.caption + ".", "", tables.to_markdown(diffs), ""]
    if notes:
        md += ["### Reading these numbers", "", *(f"- {n}" for n in notes), ""]
    if gloss := glossary(metrics):
        md += ["### What the metrics measure", "", *gloss, ""]
    for a, t in zip(col.arms, per_arm):
        md += [f"## {a}", "", t.caption + ".", "", tables.to_markdown(t), ""]
    pngs = [f for f in figures if f.suffix == ".png"]
    if pngs:
        md += ["## Figures", "", *(f"![{f.stem}]({f.name})" for f in pngs), ""]
    reps = {}
    for r in col.replicas:
        reps.setdefault(r.arm, r)
    if reps:
        md += ["## Samples", ""]
        for a, r in reps.items():
            md += [f"### {a} (seed {r.seed})", "", samples_markdown(r), ""]
    md += ["## Where the numbers come from", "",
           "Every value is the mean of the `lm_eval.json` (lm-eval results) or `probes.json` files of the "
           "replicas; `results.csv` lists, for every (arm, metric, generation), each seed's value, the interval "
           "and the exact files it was read from; `differences.csv` the paired differences between arms "
           "(columns: `lm_collapse/report/tables.py`).", ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    files.insert(0, out / "report.md")
    return Report(out / "report.md", tables.to_markdown(key), files, col.problems, cells, col.arms, sizes, notes)
