"""Homogenization (mean pairwise ROUGE-L F): ``metrics.homogenization`` vs Shaib et al.'s ``diversity``
package vs a direct ``rouge_score`` loop, on the same shipped Shakespeare texts in the same run.

Two corpora, N texts each drawn with seed 0: *lines* (``collapse_tasks.corpus.lines("all")``, lines
of >= 5 words, ~9 tokens) and *speeches* (``corpus.blocks("all")``: one speech per block, ~24 tokens
on average, up to a few hundred — the length of short generations). References:

* ``diversity.homogenization_score(texts, "rougel", verbose=False)`` (v0.2.2): the N(N−1) ordered
  pairs, each through ``RougeScorer.score``, the mean rounded to 3 decimals;
* the ``rouge_score`` loop over the N(N−1)/2 unordered pairs (``RougeScorer(["rougeL"])``).

Ours is the best of ``--repeats`` runs; each reference runs once. Rows marked * time only ours and
extrapolate the references quadratically from the N = 1,000 row of the same corpus.

    python benchmarks/bench_homogenization.py            # N = 1,000 (+ ours at 10,000); writes results/homogenization.md
    python benchmarks/bench_homogenization.py --quick    # N = 200, prints only
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from importlib.metadata import version
from itertools import combinations
from pathlib import Path

import numpy as np
from _timing import best_time
from diversity import homogenization_score
from rouge_score import rouge_scorer

from collapse_tasks import corpus
from metrics import homogenization

RESULTS = Path(__file__).parent / "results" / "homogenization.md"


def rouge_loop(texts) -> float:
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return float(np.mean([scorer.score(a, b)["rougeL"].fmeasure for a, b in combinations(texts, 2)]))


def sample(pool, n, seed=0):
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), n, replace=False)]


def run(name, pool, n_texts, args, references=True):
    texts = sample(pool, n_texts)
    t_ours, ours = best_time(lambda: homogenization(texts), args.repeats)
    row = {"corpus": name, "N": n_texts, "ours": t_ours, "value": ours, "timed": references}
    if references:
        row["t_div"], row["div"] = best_time(lambda: homogenization_score(texts, "rougel", verbose=False), 1)
        row["t_loop"], row["loop"] = best_time(lambda: rouge_loop(texts), 1)
    return row


def table(rows, args):
    lines = [
        f"{os.cpu_count()} CPU cores (shared), Python {platform.python_version()}, numpy {version('numpy')}, "
        f"rouge-score {version('rouge-score')}, diversity {version('diversity')}; load average "
        f"{os.getloadavg()[0]:.1f} at the end. Ours: best of {args.repeats} runs; references: one run.",
        "",
        "| corpus | N | ours (s) | diversity (s) | rouge_score loop (s) | diversity / ours | loop / ours "
        "| homogenization | abs diff vs loop | diversity (3 decimals) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {r["corpus"]: r for r in rows if r["timed"] and r["N"] == 1_000}
    for r in rows:
        if r["timed"]:
            t_div, t_loop, star = r["t_div"], r["t_loop"], ""
            agree = f"{abs(r['value'] - r['loop']):.1e} | {r['div']:.3f}"
        elif r["corpus"] in base:
            scale = (r["N"] / 1_000) ** 2
            t_div, t_loop, star = base[r["corpus"]]["t_div"] * scale, base[r["corpus"]]["t_loop"] * scale, "*"
            agree = "— | —"
        else:
            continue
        lines.append(
            f"| {r['corpus']} | {r['N']:,}{star} | {r['ours']:.3f} | {t_div:,.1f} | {t_loop:,.1f} "
            f"| {t_div / r['ours']:,.0f}× | {t_loop / r['ours']:,.0f}× | {r['value']:.4f} | {agree} |"
        )
    if any(not r["timed"] for r in rows):
        lines += ["", "(*) Ours timed; the references extrapolated quadratically from the N = 1,000 row of the same corpus."]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 200, no results file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of ours (best is kept)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    pools = {
        "lines": corpus.lines("all"),
        "speeches": [b for b in corpus.blocks("all") if b.strip()],
    }
    rows = []
    for name, pool in pools.items():
        for n_texts, references in ([(200, True)] if args.quick else [(1_000, True), (10_000, False)]):
            rows.append(run(name, pool, n_texts, args, references))
            print(rows[-1], flush=True)
    text = table(rows, args)
    print(text)
    if not args.quick:
        command = " ".join(["python benchmarks/bench_homogenization.py", *sys.argv[1:]])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(f"# Homogenization benchmark\n\n`{command}`\n\n{text}")


if __name__ == "__main__":
    main()
