"""``lm-collapse report``: tables, figures and samples of one or more runs, tied together in ``report.md``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recursion.artifacts import atomic_write_text

from . import plots, tables
from .collect import collect
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


def build_report(run_dirs: list[str | Path], out: str | Path | None = None, *, formats=FORMATS, plots_on: bool = True) -> Report:
    """Read every replica under ``run_dirs`` and write the report into ``out`` (default ``RUN/report``)."""
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown format {bad[0]!r}; choose from {', '.join(FORMATS)}")
    col = collect(list(run_dirs))
    out = Path(out) if out is not None else Path(run_dirs[0]) / "report"
    out.mkdir(parents=True, exist_ok=True)
    cells = tables.aggregate(col)
    metrics = tables.ordered_metrics(col.metrics)
    last = tables.last_generations(cells, col.arms)
    gens = {a: sorted({g for (aa, _, g) in cells if aa == a}) for a in col.arms}
    files: list[Path] = []

    key = tables.side_by_side(cells, col.arms, metrics, last)
    per_arm = [tables.arm_table(cells, a, metrics, gens[a]) for a in col.arms]
    if "md" in formats:
        text = "\n\n".join(f"### {t.caption}\n\n{tables.to_markdown(t)}" for t in [key, *per_arm]) + "\n"
        atomic_write_text(out / "tables.md", text)
        files.append(out / "tables.md")
    if "latex" in formats:
        tex = [tables.side_by_side(cells, col.arms, metrics, last, latex=True),
               *(tables.arm_table(cells, a, metrics, gens[a], latex=True) for a in col.arms)]
        atomic_write_text(out / "tables.tex", "\n".join(tables.to_latex(t) for t in tex))
        files.append(out / "tables.tex")
    if "csv" in formats:
        atomic_write_text(out / "results.csv", tables.to_csv(cells))
        files.append(out / "results.csv")

    figures: list[Path] = []
    if plots_on and cells:
        figures += plots.metric_lines(cells, col, metrics, out)
        figures += plots.perplexity_density(col, out)
        top1 = [m for m in metrics if m == "probe/top1_mass_mean"]
        figures += plots.metric_lines(cells, col, top1, out, stem="top1_mass")
        shi = [m for m in metrics if m in ("probe/train_knn_entropy", "probe/nn_distance_to_train")]
        figures += plots.metric_lines(cells, col, shi, out, stem="entropy_memorization")
    files += figures

    md = ["# lm-collapse report", ""]
    md += ["Replicas read (mean ± 95% CI over seeds where several):", ""]
    md += [f"- `{r.arm}` seed {r.seed}: generations {sorted(r.generations)} — `{r.path}`" for r in col.replicas]
    if col.problems:
        md += ["", "## What is missing or unreadable", "", *(f"- {p}" for p in col.problems)]
    md += ["", "## Arms side by side", "", tables.to_markdown(key), ""]
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
           "replicas; `results.csv` lists, for every (arm, metric, generation), the exact files it was read from.", ""]
    atomic_write_text(out / "report.md", "\n".join(md))
    files.insert(0, out / "report.md")
    return Report(out / "report.md", tables.to_markdown(key), files, col.problems, cells, col.arms)
