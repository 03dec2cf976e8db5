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
from functools import partial
from pathlib import Path

import numpy as np

from . import scoring
from .artifacts import (
    EDITED,
    EDITS,
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
from .config import Experiment, load_config, to_dict
from .data import real_data, split_prompt
from .filters import Lazy, check_embeddings, select
from .probes import embedding_diagnostics, run_probes
from .regimes import training_set
from .rundir import RunDir
from .transforms import summary, toedit

STAGES = ("data", "train", "eval", "generate", "select", "probes")


def make_backend(exp: Experiment):
    return backend_class(exp.backend)(exp.model, exp.runtime)


def stage_seed(seed: int, g: int, stage: str, *stream: int) -> int:
    """The seed of one stage of one generation: a function of (seed, g, stage) only; ``stream``
    gives a stage further independent seeds."""
    return int(np.random.SeedSequence([seed, g, STAGES.index(stage), *stream]).generate_state(1)[0])


def set_threads(threads: int | None) -> None:
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads or os.cpu_count() or 1)


class _Models:
    """Loads each model folder once; keeps generation 0's (for the probes) and the current one."""

    def __init__(self, backend):
        self.backend, self.cache, self.fixed = backend, {}, {}

    def get(self, path: Path):
        if path not in self.cache:
            keep = {p: m for p, m in self.cache.items() if p.parent.name == gen_name(0)}
            self.cache = {**keep, path: self.backend.load(path)}
        return self.cache[path]

    def prior(self, name: str, run: RunDir, g: int):
        """ToEdit's ``transform.prior``: generation 0's model, this generation's, the pretrained base
        (``hf_finetune``), or a checkpoint folder (both loaded once per run)."""
        if name in ("gen0", "current"):
            return self.get(run.gen(0 if name == "gen0" else g) / MODEL)
        if name not in self.fixed:
            self.fixed[name] = self.backend.load_base() if name == "base" else self.backend.load(Path(name).expanduser())
        return self.fixed[name]


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


def edit_real(exp: Experiment, models: _Models, run: RunDir, real_train: list[str], g: int, seed: int) -> list[dict]:
    """ToEdit's pool for generation ``g``'s select stage (``transform: toedit``): ``transform.input``
    edited by ``transform.prior``, written to ``edited.jsonl`` (text, source index, token counts)
    with the shares of edited tokens in ``edits.json``."""
    cfg, gdir = exp.transform, run.gen(g)
    docs = real_train if cfg.input == "real" or g == 0 else read_texts(run.gen(g - 1) / SELECTED)
    edited = toedit(models.prior(cfg.prior, run, g), docs, cfg, seed=stage_seed(seed, g, "select", 1))
    records = [{"text": e.text, "source": i, "tokens": e.tokens, "resampled": e.resampled, "changed": e.changed,
                "dropped": e.dropped} for i, e in enumerate(edited)]
    write_jsonl(gdir / EDITED, records)
    atomic_write_text(gdir / EDITS, json.dumps({"prior": cfg.prior, "input": cfg.input, **summary(edited)}))
    return records


def run_replica(exp: Experiment, path: str | Path, *, seed: int, arm: str = "default", log=print) -> RunDir:
    """Run (or resume) one replica of one arm into ``path``."""
    run = RunDir(path, {**to_dict(dataclasses.replace(exp, seeds=(seed,))), "arm": arm}, seed=seed, log=log)
    set_threads(exp.runtime.threads)
    backend = make_backend(exp)
    models = _Models(backend)
    real = real_data(exp.data, seed=seed, num_probe_prompts=exp.probes.num_prompts)

    def todo(g: int, stage: str) -> bool:
        return not run.done(f"{gen_name(g)}/{stage}")

    for g in range(exp.generations):
        gdir = run.gen(g)
        model_dir = gdir / MODEL

        if todo(g, "data"):
            with run.stage(f"{gdir.name}/data"):
                texts = training_set(
                    exp.regime.name, g, real=real.train, fresh=real.fresh, fraction=exp.regime.fraction,
                    selected=lambda k: read_texts(run.gen(k) / SELECTED),
                    rng=np.random.default_rng(stage_seed(seed, g, "data")),
                )
                write_jsonl(gdir / TRAIN, ({"text": t} for t in texts))

        if todo(g, "train"):
            with run.stage(f"{gdir.name}/train"):
                tmp = gdir / "model.tmp"
                shutil.rmtree(tmp, ignore_errors=True)
                backend.train(read_texts(gdir / TRAIN), tmp, previous=run.gen(g - 1) / MODEL if g else None,
                              seed=stage_seed(seed, g, "train"))
                shutil.rmtree(model_dir, ignore_errors=True)
                os.replace(tmp, model_dir)

        if exp.eval.enabled and todo(g, "eval"):
            with run.stage(f"{gdir.name}/eval"):
                results = scoring.evaluate(models.get(model_dir), exp.eval, seed=stage_seed(seed, g, "eval"))
                scoring.write_results(gdir / LM_EVAL, results)

        if todo(g, "generate"):
            with run.stage(f"{gdir.name}/generate"):
                model = models.get(model_dir)
                n = num_docs(exp, len(real.train))
                prompts = generation_prompts(exp, model, real.train, n)
                texts = model.generate(num=None if prompts else n, prompts=prompts, decoding=exp.generate.decoding,
                                       seed=stage_seed(seed, g, "generate"))
                if prompts is None:
                    records = [{"text": t} for t in texts]
                elif exp.data.prompt_field:  # (prompt, text) documents keep their shape
                    records = [{"text": p + t, "prompt": p} for t, p in zip(texts, prompts)]
                else:
                    records = [{"text": t, "prompt": p} for t, p in zip(texts, prompts)]
                write_jsonl(gdir / SYNTHETIC, records)

        if todo(g, "select"):
            with run.stage(f"{gdir.name}/select"):
                pool = edit_real(exp, models, run, real.train, g, seed) if exp.transform.name == "toedit" \
                    else read_jsonl(gdir / SYNTHETIC)
                kept = select(exp.filter.name, [r["text"] for r in pool], keep=exp.filter.keep, top_k=exp.filter.top_k,
                              model=Lazy(partial(models.get, model_dir)), config=exp.filter,
                              gen0_model=Lazy(partial(models.get, run.gen(0) / MODEL)),
                              rng=np.random.default_rng(stage_seed(seed, g, "select")))
                write_jsonl(gdir / SELECTED, ({**pool[i], "index": int(i)} for i in kept))

        if exp.probes.enabled and todo(g, "probes"):
            with run.stage(f"{gdir.name}/probes"):
                model = models.get(model_dir)
                prompts = [model.truncate(p, exp.probes.prompt_tokens) for p in real.probe_prompts]
                result = run_probes(model, models.get(run.gen(0) / MODEL), read_texts(gdir / SYNTHETIC), prompts)
                if exp.probes.embedding_diagnostics:
                    result.update(embedding_diagnostics(
                        read_texts(gdir / TRAIN), read_texts(gdir / SYNTHETIC), embedder=exp.probes.embedder,
                        sample_size=exp.probes.embedding_sample, rng=np.random.default_rng(stage_seed(seed, g, "probes"))))
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
        check_embeddings(exp)
    plan = [(arm, exp, seed, replica_dir(root, arm, seed)) for arm, exp in arms.items() for seed in exp.seeds]
    for arm, exp, seed, path in plan:
        edit = f", transform {exp.transform.name}" if exp.transform.name != "none" else ""
        log(f"{arm} seed {seed}: {exp.backend}, {exp.generations} generations, regime {exp.regime.name}{edit}, "
            f"filter {exp.filter.name} -> {path}")
    if dry_run:
        return [p for *_, p in plan]
    for arm, exp, seed, path in plan:
        run_replica(exp, path, seed=seed, arm=arm, log=log)
    return [p for *_, p in plan]
