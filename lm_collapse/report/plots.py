"""Figures: metrics versus generation (one line per arm, 95% CI bands), the density of per-sequence
perplexity under the generation-0 model (Shumailov et al., Fig. 1), top-1 next-token mass.

Each figure is written as PNG (for the Markdown report) and PDF (for papers).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .collect import Collection, read_probe_series


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    return paths


def metric_lines(cells, col: Collection, metrics: list[str], out: Path, *, stem: str = "metrics") -> list[Path]:
    """Small multiples: each metric versus generation, a line per arm with its CI band."""
    plt = _pyplot()
    if not metrics:
        return []
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        for arm in col.arms:
            gs = sorted(g for (a, mm, g) in cells if a == arm and mm == m)
            if not gs:
                continue
            mean = np.array([cells[(arm, m, g)].mean for g in gs])
            ax.plot(gs, mean, marker="o", ms=3, label=arm)
            half = np.array([cells[(arm, m, g)].ci95 or 0.0 for g in gs])
            if half.any():
                ax.fill_between(gs, mean - half, mean + half, alpha=0.2)
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("generation")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = min(len(labels), 4) or 1
    top = 1 - 0.3 * -(-len(labels) // ncol) / fig.get_figheight()  # room for the legend's rows (0.3 in each)
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=ncol, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, top))
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def perplexity_density(col: Collection, out: Path) -> list[Path]:
    """Per arm (first replica), a histogram density of log10 perplexity of each generation's
    synthetic documents under the generation-0 model."""
    plt = _pyplot()
    reps = {}
    for r in col.replicas:
        reps.setdefault(r.arm, r)
    series = {arm: {g: read_probe_series(r, g) for g in sorted(r.generations)} for arm, r in reps.items()}
    series = {arm: {g: s for g, s in gs.items() if s} for arm, gs in series.items()}
    series = {arm: gs for arm, gs in series.items() if gs}
    if not series:
        return []
    fig, axes = plt.subplots(1, len(series), figsize=(4.5 * len(series), 3.2), squeeze=False, sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, (arm, gs) in zip(axes.flat, series.items()):
        allv = np.log10(np.concatenate([np.asarray(v) for v in gs.values()]))
        bins = np.linspace(allv.min(), allv.max(), 40) if allv.max() > allv.min() else 10
        for i, (g, values) in enumerate(gs.items()):
            ax.hist(np.log10(values), bins=bins, density=True, histtype="step", lw=1.5,
                    color=cmap(i / max(len(gs) - 1, 1)), label=f"gen {g}")
        ax.set_title(arm, fontsize=10)
        ax.set_xlabel("log10 perplexity under the gen-0 model")
        ax.grid(alpha=0.3)
    axes.flat[0].set_ylabel("density")
    axes.flat[-1].legend(fontsize=8)
    fig.tight_layout()
    paths = _save(fig, out, "perplexity_density")
    plt.close(fig)
    return paths
