"""The recursion driver: for g = 0 .. G-1, build data → train → score → generate → select → probe.

:func:`run_replica` is the whole loop, top to bottom; each stage is a call into the module that
owns it, and writes its outputs into the run folder (:mod:`recursion.rundir`) before it is
recorded as done. Rerunning the same command (or ``--resume``) skips finished stages, so a run
killed at any moment loses at most the stage in flight. Every stage draws its randomness from
``(seed, generation, stage)`` alone, so a resumed run gives the same numbers as one that never
stopped.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from . import scoring
from .artifacts import (
    FRESH,
    LM_EVAL,
    LM_EVAL_SAMPLES,
    MANIFEST,
    MODEL,
    PROBES,
    SELECTED,
    SYNTHETIC,
    TRAIN,
    atomic_write_text,
    disk_usage,
    gen_dir,
    gen_name,
    read_jsonl,
    read_texts,
    read_training_texts,
    replica_dir,
    synthetic_record,
    write_jsonl,
    write_train_sources,
)
from .backends import backend_class
from .checkpoints import prune, stale_generations
from .config import Experiment, load_config, to_dict
from .data import RealData, real_data, split_prompt
from .filters import select
from .probes import run_probes
from .ranks import Ranks, rank
from .regimes import real_share, training_parts
from .rundir import RunDir

STAGES = ("data", "train", "eval", "generate", "select", "probes")


def planned_stages(exp: Experiment) -> list[str]:
    """Every stage a finished replica of ``exp`` has recorded in its manifest, in order."""
    skip = {"eval"} if not exp.eval.enabled else set()
    skip |= {"probes"} if not exp.probes.enabled else set()
    return [f"{gen_name(g)}/{s}" for g in range(exp.generations) for s in STAGES if s not in skip]


def replica_finished(exp: Experiment, path: str | Path) -> bool:
    """Whether the replica folder ``path`` holds every stage of ``exp`` (read from its manifest)."""
    try:
        stages = json.loads((Path(path) / MANIFEST).read_text())["stages"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return all(s in stages for s in planned_stages(exp))


def make_backend(exp: Experiment):
    return backend_class(exp.backend)(exp.model, exp.runtime, checkpoints=exp.checkpoints)


def stage_seed(seed: int, g: int, stage: str) -> int:
    """The seed of one stage of one generation: a function of (seed, g, stage) only."""
    return int(np.random.SeedSequence([seed, g, STAGES.index(stage)]).generate_state(1)[0])


def set_threads(threads: int | None) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads or os.cpu_count() or 1)


class _Models:
    """Loads each model folder once; keeps generation 0's (for the probes) and the current one."""

    def __init__(self, backend):
        self.backend, self.cache = backend, {}

    def get(self, path: Path):
        if path not in self.cache:
            keep = {p: m for p, m in self.cache.items() if p.parent.name == gen_name(0)}
            self.cache = {**keep, path: self.backend.load(path)}
        return self.cache[path]


def num_docs(exp: Experiment, n_real: int) -> int:
    """Synthetic documents per generation: configured, or enough that the filter keeps ~n_real."""
    if exp.generate.num_docs is not None:
        return exp.generate.num_docs
    return n_real if exp.filter.top_k is not None else math.ceil(n_real / exp.filter.keep)


def generation_prompts(exp: Experiment, model, real_train: list[str], n: int) -> list[str] | None:
    """Prompts of the synthetic documents: none (from BOS), real prefixes, or task prompts."""
    mode = exp.generate.prompt
    if mode == "unconditional":
        return None
    if mode == "real_prefix":
        source = [model.truncate(t, exp.generate.prefix_tokens) for t in real_train]
    elif exp.generate.prompts_file:
        source = read_texts(exp.generate.prompts_file)
    else:
        source = [split_prompt(t, exp.data.separator) for t in real_train]
    return [source[i % len(source)] for i in range(n)]


def write_training_set(exp: Experiment, g: int, gdir: Path, real: RealData, *, seed: int) -> None:
    """Generation ``g``'s training set: generation 0's real documents written out (``train.jsonl``),
    later ones as a reference to the rows of earlier files (``train_sources.json``), so an
    accumulating pool is never copied; ``mix``'s fresh real documents are written (``fresh.jsonl``)."""
    if g == 0:
        write_jsonl(gdir / TRAIN, ({"text": t} for t in real.train))
        return
    parts = training_parts(
        exp.regime.name, g, n_real=len(real.train), fraction=exp.regime.fraction,
        n_selected=lambda k: len(read_texts(gen_dir(gdir.parent, k) / SELECTED)),
        rng=np.random.default_rng(stage_seed(seed, g, "data")),
    )
    files = {"real": f"{gen_name(0)}/{TRAIN}", "fresh": f"{gdir.name}/{FRESH}"}
    for (kind, k), _ in parts:
        if kind == "fresh":
            write_jsonl(gdir / FRESH, ({"text": t} for t in real.fresh(k, real_share(len(real.train), exp.regime.fraction))))
    write_train_sources(gdir, [(files.get(kind) or f"{gen_name(k)}/{SELECTED}", rows) for (kind, k), rows in parts])


def _human(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes < 1e9 else f"{num_bytes / 1e9:.2f} GB"


def run_replica(exp: Experiment, path: str | Path, *, seed: int, arm: str = "default", log=print) -> RunDir | None:
    """Run (or resume) one replica of one arm into ``path``.

    Under ``accelerate launch`` every process trains; rank 0 alone runs every other stage and
    keeps the run folder (:mod:`recursion.ranks`); the other ranks return ``None``.
    """
    path = Path(path)
    ranks = Ranks.from_env(cpu=exp.runtime.device == "cpu")
    run = RunDir(path, {**to_dict(dataclasses.replace(exp, seeds=(seed,))), "arm": arm}, seed=seed, log=log) \
        if ranks.main else None
    set_threads(exp.runtime.threads)
    backend = make_backend(exp)
    models = _Models(backend)
    real = real_data(exp.data, seed=seed, num_probe_prompts=exp.probes.num_prompts) if ranks.main else None
    written: dict[int, int] = {}

    def todo(g: int, stage: str) -> bool:
        """Whether this process runs the stage: training on every rank when rank 0 says so, the rest on rank 0."""
        pending = ranks.main and not run.done(f"{gen_name(g)}/{stage}")
        return ranks.agree(pending) if stage == "train" else pending

    for g in range(exp.generations):
        gdir = gen_dir(path, g)
        model_dir = gdir / MODEL

        if todo(g, "data"):
            with run.stage(f"{gdir.name}/data"):
                write_training_set(exp, g, gdir, real, seed=seed)

        if todo(g, "train"):
            with run.stage(f"{gdir.name}/train") if ranks.main else nullcontext():
                tmp = gdir / "model.tmp"
                if ranks.main:
                    shutil.rmtree(tmp, ignore_errors=True)
                backend.train(read_training_texts(gdir), tmp, previous=gen_dir(path, g - 1) / MODEL if g else None,
                              seed=stage_seed(seed, g, "train"))
                if ranks.main:  # only rank 0 saved into tmp
                    shutil.rmtree(model_dir, ignore_errors=True)
                    os.replace(tmp, model_dir)

        if ranks.main:  # checkpoint retention: drop the model folders no stage still to run needs
            prune(path, stale_generations(exp.checkpoints.keep, trained=g, generations=exp.generations,
                                          probes=exp.probes.enabled, finished=False))

        if exp.eval.enabled and todo(g, "eval"):
            with run.stage(f"{gdir.name}/eval"):
                results = scoring.evaluate(models.get(model_dir), exp.eval, seed=stage_seed(seed, g, "eval"),
                                           samples_dir=gdir / LM_EVAL_SAMPLES)
                scoring.write_results(gdir / LM_EVAL, results)

        if todo(g, "generate"):
            with run.stage(f"{gdir.name}/generate"):
                model = models.get(model_dir)
                n = num_docs(exp, len(real.train))
                prompts = generation_prompts(exp, model, real.train, n)
                texts = model.generate(num=None if prompts else n, prompts=prompts, decoding=exp.generate.decoding,
                                       seed=stage_seed(seed, g, "generate"))
                # (prompt, text) documents keep their shape: the prompt is part of the document
                write_jsonl(gdir / SYNTHETIC, (synthetic_record(t, p, prompt_in_text=bool(exp.data.prompt_field))
                                               for t, p in zip(texts, prompts or [None] * len(texts))))

        if todo(g, "select"):
            with run.stage(f"{gdir.name}/select"):
                pool = read_jsonl(gdir / SYNTHETIC)
                kept = select(exp.filter.name, [r["text"] for r in pool], keep=exp.filter.keep, top_k=exp.filter.top_k,
                              model=models.get(model_dir), rng=np.random.default_rng(stage_seed(seed, g, "select")))
                write_jsonl(gdir / SELECTED, ({**pool[i], "index": int(i)} for i in kept))

        if exp.probes.enabled and todo(g, "probes"):
            with run.stage(f"{gdir.name}/probes"):
                model = models.get(model_dir)
                prompts = [model.truncate(p, exp.probes.prompt_tokens) for p in real.probe_prompts]
                result = run_probes(model, models.get(run.gen(0) / MODEL), read_texts(gdir / SYNTHETIC), prompts)
                atomic_write_text(gdir / PROBES, json.dumps(result))

        if ranks.main:
            written[g] = disk_usage(gdir)  # before retention deletes this generation's model

    if ranks.main:  # the replica is finished: final retention, and what it left on disk
        prune(path, stale_generations(exp.checkpoints.keep, trained=exp.generations - 1, generations=exp.generations,
                                      probes=exp.probes.enabled, finished=True))
        sizes = ", ".join(f"{gen_name(g)} {_human(b)}" for g, b in written.items())
        log(f"[{path.parent.name}/{path.name}] disk written per generation: {sizes}; kept: {_human(disk_usage(path))}")
    return run


def plan_replicas(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), resume: bool = False,
                  arm: str | None = None, seed: int | None = None) -> list[tuple[str, Experiment, int, Path]]:
    """``(arm, experiment, seed, folder)`` of every replica to run: all arms × seeds, or the one
    ``arm`` and/or ``seed`` asked for (an error names the valid ones)."""
    arms = load_config(config, list(overrides))
    first = next(iter(arms.values()))
    root = Path(run_dir) if run_dir is not None else Path("runs") / first.name
    if resume and not root.exists():
        raise FileNotFoundError(f"--resume: no run folder {root} to resume")
    if arm is not None and arm not in arms:
        raise ValueError(f"--arm {arm!r} is not an arm of {config}; arms: {', '.join(arms)}")
    chosen = {a: e for a, e in arms.items() if arm is None or a == arm}
    if seed is not None and not any(seed in e.seeds for e in chosen.values()):
        valid = sorted({s for e in chosen.values() for s in e.seeds})
        raise ValueError(f"--seed {seed} is not a seed of {config}{f' (arm {arm})' if arm else ''}; seeds: "
                         f"{', '.join(map(str, valid))}")
    for exp in chosen.values():
        if exp.eval.enabled:
            scoring.check_tasks(exp.eval.tasks)
    return [(a, exp, s, replica_dir(root, a, s)) for a, exp in chosen.items() for s in exp.seeds if seed is None or s == seed]


def run_experiment(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), resume: bool = False,
                   dry_run: bool = False, arm: str | None = None, seed: int | None = None, log=print) -> list[Path]:
    """Every arm × seed of an experiment YAML (or the one ``arm`` / ``seed`` asked for), each into
    ``RUN/<arm>/seed_<s>/``; returns their folders."""
    plan = plan_replicas(config, run_dir, overrides=overrides, resume=resume, arm=arm, seed=seed)
    if rank() != 0:  # under accelerate launch, rank 0 speaks for the launch
        log = lambda line: None
    for a, exp, s, path in plan:
        log(f"{a} seed {s}: {exp.backend}, {exp.generations} generations, regime {exp.regime.name}, "
            f"filter {exp.filter.name} -> {path}")
    if dry_run:
        return [p for *_, p in plan]
    for a, exp, s, path in plan:
        run_replica(exp, path, seed=s, arm=a, log=log)
    return [p for *_, p in plan]
