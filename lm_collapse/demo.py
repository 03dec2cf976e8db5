"""``lm-collapse demo``: collapse seen on a laptop in minutes.

Runs two shipped experiments on the shipped Shakespeare corpus, every generation scored by the
``collapse`` lm-eval tasks, and writes a report for each:

* ``lab1_bigram`` — Lab 1: a word bigram model retrained on its own samples (pure synthetic),
  against keeping the 30% most surprising samples, and accumulating real + synthetic data;
* ``tiny_gpt2_regimes`` — a tiny GPT-2 from scratch under replace / accumulate /
  accumulate-subsample / the surprise filter.

The demo sizes are set here (``DEMO`` and, for the CI smoke run, ``QUICK``) as ``--set``
overrides of the configs, so the configs themselves stay the full experiments.
"""
from __future__ import annotations

import sys
import sysconfig
import time
from pathlib import Path

from recursion.driver import run_experiment

from .report import build_report
from .report.tables import last_generations, ordered_metrics, to_markdown, trajectory

KEY_METRICS = (
    "ppl_shakespeare/word_perplexity",
    "ppl_shakespeare/tail_word_perplexity",
    "gen_shakespeare/distinct_2",
    "gen_shakespeare/one_minus_self_bleu_4",
    "gen_shakespeare/entropy_1",
    "probe/top1_mass_mean",
)

# Sizes that fit in a few minutes on 2 CPU cores and still show the effect.
DEMO = {
    "lab1_bigram": [
        "model.alpha=0.000001",
        "generate.decoding.min_new_tokens=5",
        "arms.accumulate.regime.name=accumulate",
    ],
    "tiny_gpt2_regimes": [
        "generations=3", "data.num_train=3000", "generate.num_docs=3000", "arms.surprise.generate.num_docs=6000",
    ],
}
QUICK = {
    "lab1_bigram": DEMO["lab1_bigram"] + [
        "generations=2", "generate.num_docs=300", "arms.surprise30.generate.num_docs=1000", "eval.limit=5",
        "probes.num_prompts=20",
    ],
    "tiny_gpt2_regimes": [
        "generations=2", "data.num_train=300", "generate.num_docs=60", "arms.surprise.generate.num_docs=120",
        "model.train.max_steps=20", "model.vocab_size=400", "eval.limit=3", "eval.gen_kwargs=max_gen_toks=16",
        "generate.decoding.max_new_tokens=16", "probes.num_prompts=20",
    ],
}


def configs_dir() -> Path:
    """``configs/`` of a source checkout, else the copy installed under ``<prefix>/share``."""
    for candidate in (Path(__file__).resolve().parent.parent / "configs",
                      Path(sysconfig.get_paths()["data"]) / "share" / "lm-collapse" / "configs",
                      Path(sys.prefix) / "share" / "lm-collapse" / "configs"):
        if (candidate / "lab1_bigram.yaml").exists():
            return candidate
    raise FileNotFoundError("the shipped configs/ folder was not found (run from a source checkout)")


def run_demo(out: str | Path = "demo_out", *, quick: bool = False, log=print) -> list[Path]:
    """Run both experiments into ``out``, write their reports, print the key tables; returns report paths."""
    out = Path(out)
    sizes = QUICK if quick else DEMO
    reports = []
    start = time.perf_counter()
    for name, overrides in sizes.items():
        log(f"\n=== {name} ===")
        t0 = time.perf_counter()
        run_experiment(configs_dir() / f"{name}.yaml", out / name, overrides=overrides, log=log)
        report = build_report([out / name], out / name / "report")
        reports.append(report.path)
        found = list(dict.fromkeys(m for (_, m, _) in report.cells))
        key = [m for m in KEY_METRICS if m in found] or ordered_metrics(found)[:6]
        log(f"\n{name}: {time.perf_counter() - t0:.0f} s\n")
        log(to_markdown(trajectory(report.cells, report.arms, key, last_generations(report.cells, report.arms))))
    log(f"\nDemo finished in {time.perf_counter() - start:.0f} s. Reports:")
    for r in reports:
        log(f"  {r}")
    return reports
