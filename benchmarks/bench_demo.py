"""`lm-collapse demo` wall time, alone and beside one other CPU-bound process.

Runs the demo twice, each time into a fresh folder (a rerun into the same folder would resume and
skip the work): once as the machine is, then beside a busy-loop process started before and killed
after it (what a laptop running one other job looks like). Records the load average at each
start, the cores, the torch threads the demo chose (``recursion.runtime.free_cores``), the time
of each experiment, the tiny GPT-2's mean generation length (lm-eval's ``mean_length`` of
``collapse_gen_shakespeare``) and whether the two runs gave the same lm-eval results. Targets
(issue 10): ≤ 10 min alone on 2 cores, about twice that beside one busy process.

Usage: ``python benchmarks/bench_demo.py [--quick] [--alone-only] [--keep DIR]``; writes
``benchmarks/results/demo.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recursion.artifacts import LM_EVAL, find_replicas, generation_dirs
from recursion.runtime import usable_cores

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT_LINE = re.compile(r"^(?P<name>\w+): (?P<clock>\d+ min \d+ s|\d+ s), report ")


def _seconds(clock: str) -> int:
    m = re.match(r"(?:(\d+) min )?(\d+) s", clock)
    return int(m[1] or 0) * 60 + int(m[2])


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def mean_lengths(out: Path) -> dict[str, float]:
    """``arm → mean_length`` of collapse_gen_shakespeare, averaged over the tiny GPT-2's generations."""
    found = {}
    for rep in find_replicas(out / "tiny_gpt2_regimes"):
        values = []
        for _, gdir in generation_dirs(rep):
            results = json.loads((gdir / LM_EVAL).read_text())["results"]
            values.append(results["collapse_gen_shakespeare"]["mean_length,none"])
        found[rep.parent.name] = sum(values) / len(values) if values else float("nan")
    return found


def all_results(out: Path) -> dict[str, dict]:
    """``replica/gen → lm-eval results`` of every checkpoint of both experiments."""
    return {f"{rep.relative_to(out)}/{gdir.name}": json.loads((gdir / LM_EVAL).read_text())["results"]
            for rep in find_replicas(out) for _, gdir in generation_dirs(rep) if (gdir / LM_EVAL).exists()}


def run_demo(out: Path, quick: bool) -> dict:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lm_collapse.cli", "demo", "--out", str(out), *(["--quick"] if quick else [])],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"demo failed:\n{proc.stderr[-3000:]}")
    parts = {m["name"]: _seconds(m["clock"]) for line in proc.stdout.splitlines() if (m := EXPERIMENT_LINE.match(line))}
    threads = re.findall(r"torch threads: (\d+)", (out / "demo.log").read_text()) if (out / "demo.log").exists() else []
    return {"wall": wall, "load": load, "parts": parts, "lengths": mean_lengths(out), "results": all_results(out),
            "console_lines": len(proc.stdout.splitlines()), "threads": sorted(set(threads))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the CI smoke size (lm-collapse demo --quick)")
    ap.add_argument("--alone-only", action="store_true", help="skip the run beside a busy process")
    ap.add_argument("--keep", metavar="DIR", help="run into DIR/alone and DIR/busy (new folders) and keep them")
    args = ap.parse_args()
    command = f"python benchmarks/bench_demo.py{' --quick' if args.quick else ''}"
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        if any((root / name).exists() for name in ("alone", "busy")):
            raise SystemExit(f"{root}/alone or {root}/busy exists: the demo would resume instead of running")
        runs["alone"] = run_demo(root / "alone", args.quick)
        if not args.alone_only:
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(60)  # a job that has been running a while: the 1-minute load average shows it
                runs["beside one busy process"] = run_demo(root / "busy", args.quick)
            finally:
                busy.kill()
                busy.wait()
    names = list(dict.fromkeys(n for r in runs.values() for n in r["parts"]))
    lines = ["# `lm-collapse demo` wall time", "", f"`{command}` (`lm-collapse demo{' --quick' if args.quick else ''}`, "
             f"each run into a fresh folder); {usable_cores()} usable cores, Python {sys.version.split()[0]}.", "",
             "| condition | load average at start | torch threads chosen | total | " + " | ".join(names) + " | console lines |",
             "|---|---:|---:|---:|" + "---:|" * len(names) + "---:|"]
    for cond, r in runs.items():
        lines.append(f"| {cond} | {r['load']:.2f} | {', '.join(r['threads']) or '?'} | **{_clock(r['wall'])}** | "
                     + " | ".join(_clock(r["parts"].get(n, 0)) for n in names) + f" | {r['console_lines']} |")
    if len(runs) == 2:
        a, b = runs.values()
        lines += ["", f"Beside one busy process: {b['wall'] / a['wall']:.2f}× the time alone (target: about 2× or less)."]
        same = [k for k in a["results"] if a["results"][k] == b["results"].get(k)]
        lines += ["", f"The two runs' lm-eval results are identical for {len(same)} of {len(a['results'])} checkpoints "
                  "(every metric of every task; the configs fix their torch threads where it matters)."]
    lengths = runs["alone"]["lengths"]
    if lengths:
        lines += ["", "Tiny GPT-2, mean generation length in `collapse_gen_shakespeare` (lm-eval `mean_length`, words, "
                  "mean over generations): " + ", ".join(f"{arm} {v:.1f}" for arm, v in lengths.items()) + "."]
    lines += ["", "The load average includes the other users of a shared machine: compare the two rows of one run, "
              "not runs taken at different times."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "benchmarks" / "results" / "demo.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
