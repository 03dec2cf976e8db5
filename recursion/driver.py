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
from pathlib import Path

import numpy as np

from . import scoring
from .artifacts import (
    LM_EVAL,
    MODEL,
    PROBES,
    SELECTED,
    SYNTHETIC,
    TRAIN,
    atomic_write_text,
    gen_name,
    read_jsonl,
    read_texts,
    replica_dir,
    write_jsonl,
)
from .backends import backend_class
from .config import Experiment, FilterConfig, load_config, to_dict
from .data import real_data, split_prompt, validation_texts
from .filters import select
from .probes import run_probes
from .regimes import selection_pool, training_set
from .rundir import RunDir

STAGES = ("data", "train", "eval", "generate", "select", "probes")


def make_backend(exp: Experiment):
    return backend_class(exp.backend)(exp.model, exp.runtime)


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


def generation_prompts(exp: Experiment, model, docs: list[str], n: int, rng: np.random.Generator) -> list[str] | None:
    """Prompts of the synthetic documents: none (from BOS), prefixes of ``docs`` (the real training
    documents, or this generation's for ``train_prefix``), or task prompts.

    ``n`` prompts from the source documents in order (cycling), or, with ``generate.resample_prompts``,
    drawn at random by ``rng`` — without replacement while there are enough (Gambetta et al. draw
    each generation's prompts anew)."""
    mode = exp.generate.prompt
    if mode == "unconditional":
        return None
    if mode == "task" and exp.generate.prompts_file:
        docs = read_texts(exp.generate.prompts_file)
    order = (rng.choice(len(docs), size=n, replace=n > len(docs)) if exp.generate.resample_prompts
             else np.arange(n) % len(docs))
    docs = [docs[i] for i in order]
    if mode in ("real_prefix", "train_prefix"):
        return [model.truncate(t, exp.generate.prefix_tokens) for t in docs]
    return docs if exp.generate.prompts_file else [split_prompt(t, exp.data.prompt_end) for t in docs]


def synthetic_records(prompts: list[str] | None, texts: list[str], *, keep_prompt: bool) -> list[dict]:
    """The synthetic documents of one generation: ``{"text"}`` from BOS, or ``{"text", "prompt"}`` where
    the text is the continuation alone or, with ``keep_prompt``, prompt + continuation."""
    if prompts is None:
        return [{"text": t} for t in texts]
    return [{"text": p + t if keep_prompt else t, "prompt": p} for t, p in zip(texts, prompts)]


def _needs_model(name: str) -> bool:
    return name in ("surprise", "low_surprise")


def run_replica(exp: Experiment, path: str | Path, *, seed: int, arm: str = "default", log=print) -> RunDir:
    """Run (or resume) one replica of one arm into ``path``."""
    run = RunDir(path, {**to_dict(dataclasses.replace(exp, seeds=(seed,))), "arm": arm}, seed=seed, log=log)
    set_threads(exp.runtime.threads)
    backend = make_backend(exp)
    models = _Models(backend)
    real = real_data(exp.data, seed=seed, num_probe_prompts=exp.probes.num_prompts)
    validation = validation_texts(exp.data) if exp.data.validation_split else None

    def todo(g: int, stage: str) -> bool:
        return not run.done(f"{gen_name(g)}/{stage}")

    for g in range(exp.generations):
        gdir = run.gen(g)
        model_dir = gdir / MODEL

        if todo(g, "data"):
            with run.stage(f"{gdir.name}/data"):
                rng = np.random.default_rng(stage_seed(seed, g, "data"))
                selected = lambda k: read_texts(run.gen(k) / SELECTED)  # noqa: E731
                if exp.regime.name == "accumulate_select":  # the filter chooses top_k of the accumulated pool
                    pool = selection_pool(exp.regime.pool, g, real=real.train, selected=selected) if g else real.train
                    name = exp.filter.name if g else "random"
                    kept = select(name, pool, keep=1.0, top_k=exp.filter.top_k, rng=rng,
                                  model=models.get(run.gen(g - 1) / MODEL) if _needs_model(name) else None)
                    texts = [pool[i] for i in kept]
                else:
                    texts = training_set(exp.regime.name, g, real=real.train, fresh=real.fresh,
                                         fraction=exp.regime.fraction, selected=selected, rng=rng)
                write_jsonl(gdir / TRAIN, ({"text": t} for t in texts))

        if todo(g, "train"):
            with run.stage(f"{gdir.name}/train"):
                tmp = gdir / "model.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                backend.train(read_texts(gdir / TRAIN), tmp, previous=run.gen(g - 1) / MODEL if g else None,
                              seed=stage_seed(seed, g, "train"), **({"validation": validation} if validation else {}))
                shutil.rmtree(model_dir, ignore_errors=True)
                os.replace(tmp, model_dir)

        if exp.eval.enabled and todo(g, "eval"):
            with run.stage(f"{gdir.name}/eval"):
                results = scoring.evaluate(models.get(model_dir), exp.eval, seed=stage_seed(seed, g, "eval"),
                                           model_dir=model_dir)
                scoring.write_results(gdir / LM_EVAL, results)

        if todo(g, "generate"):
            with run.stage(f"{gdir.name}/generate"):
                model = models.get(model_dir)
                docs = read_texts(gdir / TRAIN) if exp.generate.prompt == "train_prefix" else real.train
                n = num_docs(exp, len(docs))
                prompts = generation_prompts(exp, model, docs, n, np.random.default_rng(stage_seed(seed, g, "generate")))
                texts = model.generate(num=None if prompts else n, prompts=prompts, decoding=exp.generate.decoding,
                                       seed=stage_seed(seed, g, "generate"))
                write_jsonl(gdir / SYNTHETIC, synthetic_records(prompts, texts, keep_prompt=exp.generate.keep_prompt))

        if todo(g, "select"):
            with run.stage(f"{gdir.name}/select"):
                pool = read_jsonl(gdir / SYNTHETIC)
                f = exp.filter if exp.regime.name != "accumulate_select" else FilterConfig()  # it filters at data
                kept = select(f.name, [r["text"] for r in pool], keep=f.keep, top_k=f.top_k,
                              model=models.get(model_dir), rng=np.random.default_rng(stage_seed(seed, g, "select")))
                write_jsonl(gdir / SELECTED, ({**pool[i], "index": int(i)} for i in kept))

        if exp.probes.enabled and todo(g, "probes"):
            with run.stage(f"{gdir.name}/probes"):
                model = models.get(model_dir)
                prompts = [model.truncate(p, exp.probes.prompt_tokens) for p in real.probe_prompts]
                result = run_probes(model, models.get(run.gen(0) / MODEL), read_texts(gdir / SYNTHETIC), prompts)
                atomic_write_text(gdir / PROBES, json.dumps(result))
    return run


def run_experiment(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), resume: bool = False,
                   dry_run: bool = False, log=print) -> list[Path]:
    """Every arm × seed of an experiment YAML, each into ``RUN/<arm>/seed_<s>/``; returns their folders."""
    arms = load_config(config, list(overrides))
    first = next(iter(arms.values()))
    root = Path(run_dir) if run_dir is not None else Path("runs") / first.name
    if resume and not root.exists():
        raise FileNotFoundError(f"--resume: no run folder {root} to resume")
    for exp in arms.values():
        if exp.eval.enabled:
            scoring.check_tasks(exp.eval.tasks)
    plan = [(arm, exp, seed, replica_dir(root, arm, seed)) for arm, exp in arms.items() for seed in exp.seeds]
    for arm, exp, seed, path in plan:
        log(f"{arm} seed {seed}: {exp.backend}, {exp.generations} generations, regime {exp.regime.name}, "
            f"filter {exp.filter.name} -> {path}")
    if dry_run:
        return [p for *_, p in plan]
    for arm, exp, seed, path in plan:
        run_replica(exp, path, seed=seed, arm=arm, log=log)
    return [p for *_, p in plan]
