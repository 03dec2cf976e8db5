"""Recursion driver: per-stage time breakdown of the CPU configs, and lm-eval scoring overhead.

* Per-stage breakdown: runs ``configs/lab1_bigram.yaml`` and ``configs/tiny_gpt2_regimes.yaml``
  (``--quick``: fewer generations) and sums the manifest's stage timings per stage.
* Scoring overhead per checkpoint beyond model compute: the n-gram model's compute is
  negligible, so its ``eval`` stage time is the overhead of lm-eval itself (task set-up,
  request building, aggregation) with the one TaskManager and the already-loaded model reused.
  The first checkpoint also pays for building the TaskManager.

Usage: ``python benchmarks/bench_recursion.py [--quick]``; writes ``benchmarks/results/recursion.md``
(``--quick``: ``bench_out/recursion.md``).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from _timing import results_file

from recursion.artifacts import MANIFEST
from recursion.driver import run_experiment

ROOT = Path(__file__).resolve().parent.parent


def stage_times(folders: list[Path]) -> dict[str, list[float]]:
    out = defaultdict(list)
    for f in folders:
        for name, info in json.loads((f / MANIFEST).read_text())["stages"].items():
            out[name.split("/")[1]].append(info["seconds"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    lines = ["# Recursion driver", "", f"`python benchmarks/bench_recursion.py{' --quick' if args.quick else ''}`", ""]
    overrides = {
        "lab1_bigram": ["generations=3"] if args.quick else [],
        "tiny_gpt2_regimes": ["generations=2"] if args.quick else [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, over in overrides.items():
            start = time.perf_counter()
            folders = run_experiment(ROOT / "configs" / f"{name}.yaml", Path(tmp) / name, overrides=over, log=lambda s: None)
            wall = time.perf_counter() - start
            times = stage_times(folders)
            lines += [f"## {name} ({len(folders)} replicas, {wall:.1f} s wall)", "",
                      "| stage | runs | total s | mean s |", "|---|---|---|---|"]
            lines += [f"| {s} | {len(v)} | {sum(v):.2f} | {sum(v) / len(v):.3f} |" for s, v in times.items()]
            if name == "lab1_bigram":
                ev = times.get("eval", [])
                if ev:
                    lines += ["", f"Scoring overhead per checkpoint (n-gram model, compute ~0): first {ev[0]:.2f} s "
                              f"(builds the TaskManager), then mean {sum(ev[1:]) / max(len(ev) - 1, 1):.2f} s."]
            lines.append("")
    text = "\n".join(lines)
    print(text)
    out = results_file("recursion.md", args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
