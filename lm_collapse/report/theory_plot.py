"""Figure of ``lm-collapse theory``: test error versus generation, simulated (mean and 95% CI) beside
the closed form, one colour per regime × learner."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import agg_pyplot, series_colors

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def theory_figure(records: list[dict], path: str | Path, *, title: str, null_error: float | None = None) -> Path:
    """Write the figure of :func:`recursion.theory.run`'s records to ``path`` (PNG, PDF or SVG).

    Markers with error bars: the simulated mean and its 95% CI; dashed lines: the closed form
    (where one is derived). A dotted grey line marks ``null_error``, the error of predicting 0.
    The y axis is logarithmic when the values span more than 1.5 decades; the legend sits to the
    right of the axes.
    """
    path = Path(path)
    plt = agg_pyplot()
    series: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        series.setdefault((r["regime"], r["learner"]), []).append(r)
    fig, ax = plt.subplots(figsize=(7.6, 4.0))
    values = [null_error] if null_error else []
    colors = series_colors(plt, list(series))  # tab10, cycled: every series is drawn however many there are
    for (regime, learner), rows in series.items():
        color = colors[regime, learner]
        gen = np.array([r["generation"] for r in rows])
        mean = np.array([r["test_error_sim"] for r in rows])
        lo, hi = np.array([r["test_error_sim_ci95"] for r in rows]).T
        label = regime if learner == "ols" else f"{regime} + {'adaptive ridge' if learner == 'adaptive' else learner}"
        ax.errorbar(gen, mean, yerr=[mean - lo, hi - mean], fmt="o", ms=4, capsize=2, color=color, label=label)
        theory = [r["test_error_theory"] for r in rows]
        if all(t is not None for t in theory):
            ax.plot(gen, theory, "--", color=color, lw=1.2)
            values += theory
        values += list(lo) + list(hi)
    ax.plot([], [], "--", color="black", lw=1.2, label="closed form")
    if null_error:
        ax.axhline(null_error, color="grey", ls=":", lw=1, label="predicting 0")
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 30:
        ax.set_yscale("log")
    ax.set_xlabel("generation n (fits on the labels of generation n − 1)")
    ax.set_ylabel("test error E[(xᵀŵ − xᵀw₀)²] (units of y²)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title, fontsize=10)
    from matplotlib.container import ErrorbarContainer

    handles, labels = ax.get_legend_handles_labels()
    first = [i for i, h in enumerate(handles) if isinstance(h, ErrorbarContainer)]  # the series, then the keys
    order = first + [i for i in range(len(handles)) if i not in first]
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8, loc="upper left",
              bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
