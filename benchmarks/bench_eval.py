"""``lm-collapse eval`` vs plain ``lm_eval --include_path``, and the cost of the generation task's aggregation.

1. Start-up, one run each in a fresh process, on the tiny GPT-2 of ``tests/tiny_models.py`` (built
   once into a temporary folder): ``--tasks collapse --limit 1 --gen_kwargs max_gen_toks=4`` on CPU,
   so the wall time is almost all start-up (imports, task index, task set-up). Median of
   ``--repeats`` runs, the two commands alternated.
2. Per-call overhead in-process (what a driver scoring many checkpoints pays per call): building a
   ``TaskManager`` and loading the ``collapse`` tasks, with and without lm-eval's built-in index,
   after one untimed warm-up (imports); best of ``--repeats``.
3. Aggregation of ``collapse_gen_shakespeare`` at 5,000 generations: 1,250 prompts × K = 4, the
   "generations" being real held-out lines; ``process_results`` over every prompt, then every
   aggregation of the task's ``metric_list``, timed one by one. NLTK's Self-BLEU on the same
   1,000-text sample shows what the O(N²) path would cost (full run only).

    python benchmarks/bench_eval.py            # 3 start-up runs per command
    python benchmarks/bench_eval.py --quick    # 1 run per command, no NLTK row
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _timing import results_file

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
N_GENERATIONS, K = 5000, 4


def tiny_models():
    spec = importlib.util.spec_from_file_location("tiny_models", ROOT / "tests" / "tiny_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wall(cmd: list[str], cwd: str) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return elapsed


def startup(model: Path, repeats: int, cwd: str) -> dict[str, float]:
    import collapse_tasks

    common = ["--model", "hf", "--model_args", f"pretrained={model}", "--tasks", "collapse", "--limit", "1",
              "--gen_kwargs", "max_gen_toks=4", "--device", "cpu"]
    commands = {
        "lm-collapse eval": [str(BIN / "lm-collapse"), "eval", *common],
        "lm_eval --include_path": [str(BIN / "lm_eval"), *common, "--include_path", collapse_tasks.include_path()],
    }
    times = {name: [] for name in commands}
    for _ in range(repeats):
        for name, cmd in commands.items():
            times[name].append(wall(cmd, cwd))
    return {name: statistics.median(t) for name, t in times.items()}


def per_call(repeats: int) -> dict[str, float]:
    import collapse_tasks

    collapse_tasks.task_manager(include_defaults=False).load(["collapse"])  # imports and caches warm
    out = {}
    for label, defaults in (("ours only", False), ("with built-ins", True)):
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            collapse_tasks.task_manager(include_defaults=defaults).load(["collapse"])
            times.append(time.perf_counter() - start)
        out[label] = min(times)
    return out


def aggregation(quick: bool) -> list[tuple[str, float]]:
    from lm_eval.tasks._yaml_loader import load_yaml

    import collapse_tasks
    from collapse_tasks import corpus, gen_utils

    cfg = load_yaml(Path(collapse_tasks.include_path()) / "collapse_gen_shakespeare.yaml", resolve_func=True)
    lines = corpus.lines("heldout")[:N_GENERATIONS]
    prompts = [lines[i : i + K] for i in range(0, N_GENERATIONS, K)]
    rows = []
    start = time.perf_counter()
    per_doc = [cfg["process_results"]({}, [p]) for p in prompts]
    rows.append(("process_results (per prompt, incl. within-prompt scores)", time.perf_counter() - start))
    for m in cfg["metric_list"]:
        name, agg = m["metric"], m["aggregation"]
        items = [d[name] for d in per_doc]
        start = time.perf_counter()
        if callable(agg):
            agg(items)
        else:  # lm-eval's "mean"
            sum(items) / len(items)
        label = f"{name} (incl. the index of the training plays, built once)" if name.startswith("memorization") else name
        rows.append((label, time.perf_counter() - start))
    if not quick:
        import numpy as np
        from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

        from metrics import tokenize

        texts = [t for p in prompts for t in p]
        picked = np.sort(np.random.default_rng(0).choice(len(texts), gen_utils.SELF_BLEU_SAMPLE, replace=False))
        sample = [tokenize(texts[i]) for i in picked]
        smooth = SmoothingFunction().method1
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            [sentence_bleu(sample[:i] + sample[i + 1 :], h, smoothing_function=smooth) for i, h in enumerate(sample)]
        rows.append(("(reference) NLTK Self-BLEU-4 on the same 1,000-text sample", time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one start-up run per command, no NLTK row")
    parser.add_argument("--repeats", type=int, default=3, help="start-up runs per command (default 3)")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats

    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_models().build_tiny_gpt2(Path(tmp) / "tiny_gpt2")
        starts = startup(model, repeats, tmp)
    calls = per_call(repeats)
    agg = aggregation(args.quick)

    ours, plain = starts["lm-collapse eval"], starts["lm_eval --include_path"]
    lines = [
        "# `lm-collapse eval` benchmark",
        "",
        f"`python benchmarks/bench_eval.py{' --quick' if args.quick else ''}`",
        "",
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}; load average "
        f"{os.getloadavg()[0]:.1f} at the end (a shared machine slows both sides).",
        "",
        f"## Start-up: `--tasks collapse --limit 1` on the tiny GPT-2, CPU (median of {repeats})",
        "",
        "| command | wall time (s) |",
        "|---|---:|",
        f"| `lm-collapse eval` | {ours:.1f} |",
        f"| `lm_eval --include_path ...` | {plain:.1f} |",
        f"| **ratio** | **{plain / ours:.1f}× faster** |",
        "",
        f"## Per-call overhead in-process: `TaskManager` + loading `collapse` (best of {repeats}, imports warm)",
        "",
        "| index | time (s) |",
        "|---|---:|",
        *(f"| {label} | {t:.2f} |" for label, t in calls.items()),
        f"| **ratio** | **{calls['with built-ins'] / calls['ours only']:.0f}×** |",
        "",
        f"## Aggregation of `collapse_gen_shakespeare` at {N_GENERATIONS:,} generations ({N_GENERATIONS // K:,} prompts × {K})",
        "",
        "| step | time (s) |",
        "|---|---:|",
        *(f"| {label} | {t:.3f} |" for label, t in agg),
        f"| **total (ours)** | **{sum(t for label, t in agg if not label.startswith('(reference)')):.2f}** |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    results_file("eval.md", args.quick).write_text(text)


if __name__ == "__main__":
    main()
