"""``lm-collapse demo``: collapse seen on a laptop in minutes.

Runs two shipped experiments on the shipped Shakespeare corpus, every generation scored by the
``collapse`` lm-eval tasks, and writes a report for each:

* ``configs/lab1_bigram.yaml`` — Lab 1: a word bigram model retrained on its own samples, with
  the arms the YAML lists (pure synthetic, accumulate, a surprise filter, ...);
* ``configs/tiny_gpt2_regimes.yaml`` — a tiny GPT-2 from scratch under replace / accumulate /
  accumulate-subsample / the surprise filter.

A config is the experiment: the demo runs the shipped YAMLs as they are, except for their sizes.
:data:`DEMO` (and, for the CI smoke run, :data:`QUICK`) say which sizes it reduces — generations,
document counts (scaled together in every arm), ``eval.limit``, training steps, probe prompts, seeds;
:func:`lm_collapse.sizes.check_sizes` refuses anything else, or any size made larger, before any
work. The reductions are printed, recorded as ``overrides`` in each replica's ``config.yaml``, and
stated under the title of each report.

Every config ships ``seeds: [0, 1, 2]``, so the demo runs three replicas of every arm (``--quick``:
seed 0 only). They run as
``lm-collapse sweep`` runs them (:func:`recursion.sweep.sweep`: one Ray task per replica, one CPU and
one torch thread each, as many at once as the machine has cores — two on a 2-core laptop), or,
where Ray is not installed, one after another (:func:`recursion.driver.run_experiment`). Either
way each replica's numbers are those ``lm-collapse run`` gives: every stage draws its randomness
from (seed, generation, stage), and one torch thread fixes the order of floating-point sums.

The console shows one progress line per replica and the key tables of each experiment (each number
with its 95% t-interval over seeds; each arm minus the first, paired by seed); everything
else (the driver's per-stage lines, lm-eval's and transformers' messages, progress bars, the
trainer's losses, Ray's) goes to ``OUT/demo.log``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import sysconfig
import time
from pathlib import Path

from .report import build_report
from .report.tables import differences, last_generations, ordered_metrics, to_markdown, trajectory
from .sizes import check_sizes, describe, size_overrides

KEY_METRICS = (
    "ppl_shakespeare/bits_per_byte",
    "ppl_shakespeare/word_perplexity",
    "probe/heldout_perplexity",
    "gen_shakespeare/distinct_2_at_1000",  # length-controlled (metrics.length_controlled): read these first
    "gen_shakespeare/entropy_1_at_1000",
    "gen_shakespeare/one_minus_self_bleu_4",
    "gen_shakespeare/mean_length",
    "gen_shakespeare/distinct_2",  # moves with the length: beside it
    "probe/top1_mass_mean",
    "data_pool/word_types",  # the data each generation hands on (recursion.data_diversity)
    "data_pool/distinct_2",
    "data_pool/floor_share",
)
LOG_FILE = "demo.log"  # in the demo's output folder, beside the experiments' run folders

# Size reductions per shipped config (see lm_collapse.sizes): a size key -> its new value, and
# "documents" -> a factor applied to every document count the YAML sets, in every arm.
# Every config runs its 3 seeds: Lab 1 with 100 lm-eval documents per task (at 50, generation 0's
# 4 x 50 short samples hold fewer than the 1,000 bigrams distinct_2_at_1000 draws); the tiny GPT-2 at a tenth
# of its documents and training steps (the same epochs), 20 of its 50 lm-eval documents and 3 of its
# 4 generations, so that the 24 replicas, two at a time, fit 10 minutes on 2 cores
# (benchmarks/bench_demo.py measures it; the time is in the README).
DEMO: dict[str, dict] = {
    "lab1_bigram": {"eval.limit": 100},
    "tiny_gpt2_regimes": {"generations": 3, "documents": 0.1, "model.train.max_steps": 40, "eval.limit": 20},
}
# The smoke run (--quick): seed 0 only, one replica per arm (the report then says "single seed: no interval").
QUICK: dict[str, dict] = {
    "lab1_bigram": {"generations": 2, "documents": 0.15, "eval.limit": 5, "probes.num_prompts": 20, "seeds": [0]},
    "tiny_gpt2_regimes": {"generations": 2, "documents": 0.05, "model.train.max_steps": 20, "eval.limit": 3,
                          "probes.num_prompts": 20, "seeds": [0]},
}
NOISY_LOGGERS = ("lm_eval", "transformers", "datasets", "accelerate", "torch")

_DONE = re.compile(r"^\[(?P<replica>[^\]]+)\] (?P<stage>\S+) done in [\d.]+ s$")
_SWEPT = re.compile(r"^sweep: (?P<replica>\S+) (done|skipped) ")  # recursion.sweep's line for a finished replica


def configs_dir() -> Path:
    """``configs/`` of a source checkout, else the copy installed under ``<prefix>/share``."""
    for candidate in (Path(__file__).resolve().parent.parent / "configs",
                      Path(sysconfig.get_paths()["data"]) / "share" / "lm-collapse" / "configs",
                      Path(sys.prefix) / "share" / "lm-collapse" / "configs"):
        if (candidate / "lab1_bigram.yaml").exists():
            return candidate
    raise FileNotFoundError("the shipped configs/ folder was not found (run from a source checkout)")


class Progress:
    """The driver's ``log``: every message to the log file, one console line per finished replica
    (on a terminal, one line per replica rewritten as its stages finish)."""

    def __init__(self, name: str, stages: dict[tuple[str, int], int], *, console, logfile):
        """``stages``: ``{(arm, seed): number of stages the replica runs}``."""
        self.name, self.console, self.logfile = name, console, logfile
        self.replicas = {f"{arm}/seed_{seed}": f"{arm} seed {seed}" for arm, seed in stages}
        self.stages = {f"{arm}/seed_{seed}": n for (arm, seed), n in stages.items()}
        self.done: dict[str, int] = {}
        self.start = time.perf_counter()
        self.tty = console.isatty()

    def __call__(self, message: str) -> None:
        print(message, file=self.logfile, flush=True)
        swept = _SWEPT.match(message)
        if swept and swept["replica"] in self.replicas:  # a sweep reports replicas, not their stages
            key = swept["replica"]
            self.done[key] = self.stages[key]
            finished = len([k for k, v in self.done.items() if v >= self.stages[k]])
            print(f"  {self.replicas[key]}: done  [{finished}/{len(self.replicas)} replicas, "
                  f"{_clock(time.perf_counter() - self.start)}]", file=self.console, flush=True)
            return
        hit = _DONE.match(message)
        if not hit or hit["replica"] not in self.replicas:
            return
        key = hit["replica"]
        self.done[key] = self.done.get(key, 0) + 1
        n, total = self.done[key], self.stages[key]
        finished = len([k for k, v in self.done.items() if v >= self.stages[k]])
        head = f"  {self.replicas[key]}: {n}/{total} stages ({hit['stage']})"
        tail = f"  [{finished}/{len(self.replicas)} replicas, {_clock(time.perf_counter() - self.start)}]"
        if self.tty:
            print(f"\r\033[K{head}{tail}", end="\n" if n >= total else "", file=self.console, flush=True)
        elif n >= total:
            print(f"  {self.replicas[key]}: done{tail}", file=self.console, flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


@contextlib.contextmanager
def quiet(logfile):
    """Send everything written to stdout and stderr (library logging, warnings, progress bars, the
    trainer's loss lines) to ``logfile``; yields a text stream on the real stdout, for progress."""
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    console = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8")
    for fd in saved:
        os.dup2(logfile.fileno(), fd)
    try:
        yield console
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        console.close()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def without_progress_bars() -> None:
    """Import tqdm with bars off by default (it reads ``TQDM_*`` defaults once, when first imported),
    so the trainer's and the loaders' bars stay out of the log; no effect if tqdm is already imported."""
    if "tqdm" in sys.modules:
        return
    before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        import tqdm.std  # noqa: F401
    finally:
        if before is None:
            del os.environ["TQDM_DISABLE"]
        else:
            os.environ["TQDM_DISABLE"] = before


def run_replicas(config: Path, run_dir: Path, overrides: list[str], log) -> None:
    """Every replica of one experiment: Ray tasks as ``lm-collapse sweep`` runs them (see the module
    docstring), else one after another where Ray is not installed or does not start. A failed replica
    stops the demo."""
    from recursion.driver import run_experiment

    try:
        import ray
    except ImportError:
        run_experiment(config, run_dir, overrides=overrides, log=log)
        return
    from recursion.sweep import sweep

    if not ray.is_initialized():  # its own local instance: never a cluster someone started on this machine
        try:
            ray.init(address="local", include_dashboard=False)
        except Exception as e:  # Ray's start can time out on an overloaded machine: the same runs, in turn
            log(f"Ray did not start ({type(e).__name__}: {str(e).splitlines()[0]}); the replicas run one after another")
            run_experiment(config, run_dir, overrides=overrides, log=log)
            return
    failed = [o for o in sweep(config, run_dir, overrides=overrides, log=log) if o.status.startswith("failed")]
    if failed:
        raise RuntimeError(f"{config.name} {failed[0].replica} {failed[0].status} (details in {LOG_FILE})")


def _stop_ray() -> None:
    """Shut down the local Ray instance a sweep started (its workers hold memory)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def run_demo(out: str | Path = "demo_out", *, quick: bool = False, log=print) -> list[Path]:
    """Run both experiments into ``out``, write their reports, print the key tables; returns report paths."""
    without_progress_bars()
    from recursion.loader import load_config, read_yaml
    from recursion.rundir import check_folder
    from recursion.stages import planned_stages

    out = check_folder(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    sizes = QUICK if quick else DEMO
    plans = {}
    for name, spec in sizes.items():  # every size checked before any work
        config = configs_dir() / f"{name}.yaml"
        overrides = size_overrides(read_yaml(config) or {}, spec)
        plans[name] = (config, overrides, check_sizes(config, overrides))
    reports = []
    start = time.perf_counter()
    with open(out / LOG_FILE, "a", encoding="utf-8") as logfile, contextlib.ExitStack() as stack:
        stack.callback(_stop_ray)  # also when a replica fails
        log(f"Demo: {len(plans)} experiments into {out}/ (library output: {out / LOG_FILE})")
        for name, (config, overrides, changes) in plans.items():
            arms = load_config(config, overrides)
            first = next(iter(arms.values()))
            log(f"\n=== {name} ({config.name}: {len(arms)} arms × {len(first.seeds)} seed(s) × "
                f"{first.generations} generations) ===")
            log(f"  sizes reduced by the demo: {describe(changes)}")
            t0 = time.perf_counter()
            print(f"\n=== {name}: {config} with {overrides} ===", file=logfile, flush=True)
            with quiet(logfile) as console:
                progress = Progress(name, {(a, s): len(planned_stages(e)) for a, e in arms.items() for s in e.seeds},
                                    console=console, logfile=logfile)
                run_replicas(config, out / name, overrides, progress)
                if name == list(plans)[-1]:
                    _stop_ray()  # in the log's quiet, like its start
                report = build_report([out / name], out / name / "report", arm_order=list(arms))
            reports.append(report.path)
            found = list(dict.fromkeys(m for (_, m, _) in report.cells))
            key = [m for m in KEY_METRICS if m in found] or ordered_metrics(found)[:6]
            log(f"\n{name}: {_clock(time.perf_counter() - t0)}, report {report.path}\n")
            last = last_generations(report.cells, report.arms)
            log(to_markdown(trajectory(report.cells, report.arms, key, last)))
            if (diffs := differences(report.cells, report.arms, key, last)) is not None:
                log(f"\n{diffs.caption}:\n\n{to_markdown(diffs)}")
            if report.notes:
                log("\nReading these numbers:\n" + "\n".join(f"- {n}" for n in report.notes))
    log(f"\nDemo finished in {_clock(time.perf_counter() - start)}. Reports:")
    for r in reports:
        log(f"  {r}")
    return reports
