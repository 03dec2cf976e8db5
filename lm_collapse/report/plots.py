"""Figures: metrics versus generation, one figure per kind (quality, diversity, probes: see
:mod:`.labels`), per arm its mean over seeds (thick line), each seed (thin lines) and the 95%
Student-t interval over seeds (shaded band, :mod:`.stats`); the title says how many seeds, or
"single seed: no interval". And the density of per-sequence perplexity
of each generation's synthetic data under the generation-0 model (Shumailov et al., Fig. 1).

Every axis says what it shows and in which unit; a quantity whose values span two decades or more
(perplexities of toy models run into millions) is drawn on a log axis; linear axes never use an
offset. Legends sit outside the axes, right of the panels. Each figure is written as PNG (for the
Markdown report) and PDF (for papers).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .collect import Collection, read_probe_series
from .labels import GROUPS, label
from .tables import seeds_note

PANEL = (3.6, 2.6)  # inches per panel
NCOLS = 3


def agg_pyplot():
    """matplotlib's pyplot on the Agg back end (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    return paths


def series_colors(plt, arms: list) -> dict:
    """The tab10 colour of each arm (or any other series key), cycled after the tenth."""
    cmap = plt.get_cmap("tab10")
    return {arm: cmap(i % 10) for i, arm in enumerate(arms)}


def spans_decades(values, decades: float = 2.0) -> bool:
    """Positive values whose largest is at least ``10 ** decades`` times the smallest."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return v.size > 1 and bool((v > 0).all()) and v.max() >= 10**decades * v.min()


def log_axis(lab, values) -> bool:
    """A log axis for a quantity that spans a decade when its label says it may, two decades otherwise."""
    return spans_decades(values, 1.0 if lab.log else 2.0)


def metric_lines(cells, col: Collection, metrics: list[str], out: Path, *, stem: str = "metrics",
                 title: str | None = None) -> list[Path]:
    """Small multiples: each metric versus generation; per arm the mean, each seed and the CI band."""
    if not metrics:
        return []
    plt = agg_pyplot()
    colors = series_colors(plt, col.arms)
    ncols = min(NCOLS, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL[0] * ncols, PANEL[1] * nrows + 0.4), squeeze=False,
                             layout="constrained")
    for ax, m in zip(axes.flat, metrics):
        lab, values = label(m), []
        for arm in col.arms:
            gs = sorted(g for (a, mm, g) in cells if a == arm and mm == m)
            if not gs:
                continue
            mean = np.array([cells[(arm, m, g)].mean for g in gs])
            half = np.array([cells[(arm, m, g)].ci95 or 0.0 for g in gs])
            ax.plot(gs, mean, marker="o", ms=3, color=colors[arm], label=arm)
            if half.any():
                ax.fill_between(gs, mean - half, mean + half, color=colors[arm], alpha=0.2, lw=0)
            seeds = sorted({s for g in gs for s in cells[(arm, m, g)].by_seed})
            for seed in seeds if len(seeds) > 1 else []:
                xs = [g for g in gs if seed in cells[(arm, m, g)].by_seed]
                ax.plot(xs, [cells[(arm, m, g)].by_seed[seed] for g in xs], color=colors[arm], lw=0.6, alpha=0.4)
            values += list(mean)
        if log_axis(lab, values):
            ax.set_yscale("log")
        else:
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        ax.set_title(m, fontsize=8.5)
        ax.set_ylabel(textwrap.fill(lab.axis, 30), fontsize=8)
        ax.set_xlabel("generation", fontsize=8)
        ax.tick_params(which="both", labelsize=7.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3, which="major")
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    note = seeds_note(cells, col.arms)
    note += " band; thin lines: seeds" if note.endswith("t-CI") else ""
    fig.suptitle(f"{title or GROUPS.get(stem, stem)} ({note})", fontsize=11)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside right upper", title="arm", fontsize=8, title_fontsize=8, frameon=False)
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def perplexity_density(col: Collection, out: Path) -> list[Path]:
    """Per arm (first replica), a histogram density of log10 perplexity of each generation's
    synthetic documents under the generation-0 model (bins over the central 99% of the values)."""
    reps = {}
    for r in col.replicas:
        reps.setdefault(r.arm, r)
    series = {arm: {g: read_probe_series(r, g) for g in sorted(r.generations)} for arm, r in reps.items()}
    series = {arm: {g: s for g, s in gs.items() if s} for arm, gs in series.items()}
    series = {arm: gs for arm, gs in series.items() if gs}
    if not series:
        return []
    plt = agg_pyplot()
    ncols = min(NCOLS, len(series))
    nrows = -(-len(series) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL[0] * ncols, PANEL[1] * nrows + 0.4), squeeze=False,
                             sharey=True, layout="constrained")
    cmap = plt.get_cmap("viridis")
    last = max(g for gs in series.values() for g in gs)
    shown = {}
    for ax, (arm, gs) in zip(axes.flat, series.items()):
        allv = np.log10(np.concatenate([np.asarray(v) for v in gs.values()]))
        lo, hi = np.percentile(allv, [0.5, 99.5])  # a few outliers must not squeeze the bulk into one bin
        bins = np.linspace(lo, hi, 40) if hi > lo else 10
        for g, values in gs.items():
            _, _, patches = ax.hist(np.log10(values), bins=bins, density=True, histtype="step", lw=1.5,
                                    color=cmap(g / max(last, 1)), label=f"gen {g}")
            shown.setdefault(g, patches[0])
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("log10 perplexity under the gen-0 model (per token)", fontsize=8)
        ax.tick_params(which="both", labelsize=7.5)
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("density", fontsize=8)
    for ax in list(axes.flat)[len(series):]:
        ax.axis("off")
    fig.suptitle("Synthetic data of each generation, scored by the generation-0 model", fontsize=11)
    order = sorted(shown)
    fig.legend([shown[g] for g in order], [f"gen {g}" for g in order], loc="outside right upper", fontsize=8,
               title="data of", title_fontsize=8, frameon=False)
    paths = _save(fig, out, "perplexity_density")
    plt.close(fig)
    return paths
