"""The recursion driver: for g = 0 .. G-1, build data → train → score → generate → select → probe →
measure the data (the training set and the synthetic pool, :mod:`recursion.data_diversity`).

:func:`run_replica` is the whole loop, top to bottom; each stage is a call into the module that
owns it, and writes its outputs into the run folder (:mod:`recursion.rundir`) before it is
recorded as done, with the size and sha256 of each file. Rerunning the same command (or
``--resume``) skips finished stages whose files are intact and redoes any other, so a run killed
at any moment loses at most the stage in flight. Every stage draws its randomness from
``(seed, generation, stage)`` alone, so a resumed run gives the same numbers as one that never
stopped.

:func:`run_experiment` checks everything a run needs before it creates a folder: the config, the
data (files read, hub datasets and the validation split loaded, training set and probes sized), the
models the filters load (the classifier's labels, the sentence embedder), the lm-eval tasks (built,
extras checked), every replica folder (a folder, not a file; its config compatible; no other
process at work in it). ``--dry-run`` stops after those checks.

Under ``accelerate launch`` every process trains; rank 0 alone runs every other stage, holds the
locks and keeps the run folder (:mod:`recursion.ranks`). Model folders no stage still needs are
deleted per ``checkpoints.keep`` (:mod:`recursion.checkpoints`); a generation's training set is a
reference to the rows of earlier files where it can be (``train_sources.json``).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from contextlib import nullcontext
from functools import partial
from pathlib import Path

import numpy as np

from . import scoring
from .artifacts import (
    DATA_DIVERSITY,
    EDITED,
    EDITS,
    FRESH,
    HELDOUT,
    LM_EVAL,
    LM_EVAL_SAMPLES,
    MANIFEST,
    MODEL,
    PROBES,
    SELECTED,
    SYNTHETIC,
    TRAIN,
    TRAIN_SOURCES,
    atomic_write_text,
    disk_usage,
    gen_dir,
    gen_name,
    honour_umask,
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
from .config import Experiment, FilterConfig
from .data import RealData, Source, load_pool, prepare, real_data, split_prompt, validation_texts
from .data_diversity import data_diversity
from .environment import write_environment
from .filters import Lazy, check_classifier, check_embeddings, select
from .loader import experiment_from_dict, load_config, to_dict
from .probes import embedding_diagnostics, run_probes
from .ranks import Ranks, rank
from .regimes import real_share, selection_pool, training_parts
from .rundir import RunDir, RunFolderError, RunLock, check_compatible, check_folder, read_manifest
from .runtime import set_threads
from .transforms import summary, toedit

# "diversity" last: a stage's seed is a function of its index here (stage_seed), so new stages go at the end
STAGES = ("data", "train", "eval", "generate", "select", "probes", "diversity")


def planned_stages(exp: Experiment) -> list[str]:
    """Every stage a finished replica of ``exp`` has recorded in its manifest, in order."""
    skip = {"eval"} if not exp.eval.enabled else set()
    skip |= {"probes"} if not exp.probes.enabled else set()
    return [f"{gen_name(g)}/{s}" for g in range(exp.generations) for s in STAGES if s not in skip]


def generations_done(exp: Experiment, path: str | Path) -> int:
    """Generations of the replica at ``path`` whose every planned stage its manifest records."""
    try:
        stages = json.loads((Path(path) / MANIFEST).read_text())["stages"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    planned = planned_stages(exp)
    return sum(all(s in stages for s in planned if s.startswith(f"{gen_name(g)}/")) for g in range(exp.generations))


def replica_finished(exp: Experiment, path: str | Path) -> bool:
    """Whether the replica folder ``path`` holds every stage of ``exp`` (read from its manifest)."""
    return generations_done(exp, path) == exp.generations


def stage_inputs(name: str) -> list[str]:
    """The stages whose outputs stage ``name`` (``gen_03/select``) reads: redone with other bytes,
    they make it run again (:class:`recursion.rundir.RunDir`)."""
    gen, _, stage = name.partition("/")
    g = int(gen.removeprefix("gen_"))
    # A training set after generation 0 may only *reference* rows of earlier files (train_sources.json,
    # the same bytes whatever those files hold): whoever reads the training set reads those files too.
    pool = [(k, "select") for k in range(g)] + ([(0, "data")] if g else [])
    reads = {
        # regimes hand on earlier generations' selections; accumulate_select scores them with the last model
        "data": pool + ([(g - 1, "train")] if g else []),
        "train": [(g, "data")] + pool + ([(g - 1, "train")] if g else []),  # the previous model (vocabulary, init)
        "eval": [(g, "train")],
        "generate": [(g, "train"), (g, "data")] + pool,  # train_prefix prompts come from the training set
        # ToEdit edits with generation 0's model (or this one), the previous selection as input
        "select": [(g, "generate"), (g, "train"), (0, "train")] + ([(g - 1, "select")] if g else []),
        "probes": [(g, "train"), (0, "train"), (g, "generate"), (g, "data"), (0, "data")] + pool,  # held out, train set
        "diversity": [(g, "data"), (g, "generate"), (g, "train")] + pool,  # the n-gram floor share: this model
    }[stage]
    return list(dict.fromkeys(f"{gen_name(k)}/{s}" for k, s in reads))


def reads_gen0_model(exp: Experiment) -> bool:
    """Whether selection loads generation 0's model (the acceptability filter's generation-0
    perplexity, ToEdit's ``prior: gen0``); the probes always do."""
    return ((exp.filter.name == "acceptability" and exp.filter.scorer == "gen0_perplexity")
            or (exp.transform.name == "toedit" and exp.transform.prior == "gen0"))


def models_read(exp: Experiment, name: str) -> list[int]:
    """The generations whose model folders stage ``name`` loads (checkpoint retention must keep them)."""
    gen, _, stage = name.partition("/")
    g = int(gen.removeprefix("gen_"))
    gen0 = [0] if reads_gen0_model(exp) else []
    return {
        "data": [g - 1, *gen0] if g and exp.regime.name == "accumulate_select" else [],  # it selects at data
        "train": [g - 1] if g else [],  # the vocabulary or tokenizer, and the weights under init: previous
        "eval": [g], "generate": [g], "select": [g, *gen0], "probes": [g, 0],
        "diversity": [g] if exp.backend == "ngram" else [],  # the floor share of its samples
    }[stage]


def deleted_models(exp: Experiment, path: Path, done) -> str | None:
    """A problem when a stage still to run loads a model folder that checkpoint retention deleted
    (a finished ``keep: last`` replica extended with more generations, or a pruned generation's stage
    redone for a damaged file): the model cannot come back without retraining what it grew from."""
    for name in planned_stages(exp):
        if name in done:
            continue
        for k in models_read(exp, name):
            if f"{gen_name(k)}/train" in done and not (gen_dir(path, k) / MODEL).exists():
                return (f"{path}: {name} is still to run and loads {gen_name(k)}/{MODEL}/, which checkpoints.keep: "
                        f"{exp.checkpoints.keep} deleted; run it in another --run-dir (with keep: all to extend runs)")
    return None


def make_backend(exp: Experiment):
    return backend_class(exp.backend)(exp.model, exp.runtime, checkpoints=exp.checkpoints)


def stage_seed(seed: int, g: int, stage: str, *stream: int) -> int:
    """The seed of one stage of one generation: a function of (seed, g, stage) only; ``stream``
    gives a stage further independent seeds."""
    return int(np.random.SeedSequence([seed, g, STAGES.index(stage), *stream]).generate_state(1)[0])


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


def num_docs(exp: Experiment, n_docs: int) -> int:
    """Synthetic documents per generation: ``generate.num_docs``, else enough that the filter keeps
    about ``n_docs`` — the real training documents, or, for ``prompt: train_prefix``, this
    generation's training set (one continuation per block trained on, growing under ``accumulate``)."""
    if exp.generate.num_docs is not None:
        return exp.generate.num_docs
    return n_docs if exp.filter.top_k is not None else math.ceil(n_docs / exp.filter.keep)


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


def write_training_set(exp: Experiment, g: int, gdir: Path, real: RealData, models: _Models, *, seed: int) -> list[Path]:
    """Generation ``g``'s training set; returns the files written.

    Generation 0's real documents are written out (``train.jsonl``), as are ``accumulate_select``'s
    chosen documents (the filter picks them from the accumulated pool under generation g-1's model);
    every other regime's set is a reference to the rows of earlier files (``train_sources.json``), so
    an accumulating pool is never copied; ``mix``'s fresh real documents are written (``fresh.jsonl``).
    Whichever form an earlier run left is removed first: it would be read in place of the new one.
    """
    for earlier in (gdir / TRAIN, gdir / TRAIN_SOURCES):
        earlier.unlink(missing_ok=True)
    rng = np.random.default_rng(stage_seed(seed, g, "data"))
    replica = gdir.parent
    if g == 0 and exp.regime.name != "accumulate_select":
        write_jsonl(gdir / TRAIN, ({"text": t} for t in real.train))
        return [gdir / TRAIN]
    if exp.regime.name == "accumulate_select":  # the filter chooses top_k of the accumulated pool
        selected = lambda k: read_texts(gen_dir(replica, k) / SELECTED)  # noqa: E731
        pool = selection_pool(exp.regime.pool, g, real=real.train, selected=selected) if g else real.train
        name = exp.filter.name if g else "random"
        kept = select(name, pool, keep=1.0, top_k=exp.filter.top_k, rng=rng, config=exp.filter,
                      model=Lazy(partial(models.get, gen_dir(replica, g - 1) / MODEL)) if g else None,
                      gen0_model=Lazy(partial(models.get, gen_dir(replica, 0) / MODEL)) if g else None)
        write_jsonl(gdir / TRAIN, ({"text": pool[i]} for i in kept))
        return [gdir / TRAIN]
    parts = training_parts(
        exp.regime.name, g, n_real=len(real.train), fraction=exp.regime.fraction,
        n_selected=lambda k: len(read_texts(gen_dir(replica, k) / SELECTED)), rng=rng,
    )
    files = {"real": f"{gen_name(0)}/{TRAIN}", "fresh": f"{gdir.name}/{FRESH}"}
    written = [gdir / TRAIN_SOURCES]
    for (kind, k), _ in parts:
        if kind == "fresh":
            write_jsonl(gdir / FRESH, ({"text": t} for t in real.fresh(k, real_share(len(real.train), exp.regime.fraction))))
            written.append(gdir / FRESH)
    write_train_sources(gdir, [(files.get(kind) or f"{gen_name(k)}/{SELECTED}", rows) for (kind, k), rows in parts])
    return written


def _human(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes < 1e9 else f"{num_bytes / 1e9:.2f} GB"


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


def replica_config(exp: Experiment, seed: int, arm: str, overrides=()) -> dict:
    """What a replica folder records as its config (``config.yaml``); ``overrides``, the ``--set``
    pairs applied to the config file, are recorded as ``overrides`` (a record, never compared on resume)."""
    config = {**to_dict(dataclasses.replace(exp, seeds=(seed,))), "arm": arm}
    return {**config, "overrides": list(overrides)} if overrides else config


def default_config(exp: Experiment, arm: str) -> dict:
    """Every key at its default (for the same back end): a key added since a run started is
    accepted at this value."""
    defaults = experiment_from_dict({"name": exp.name, "model": {"backend": exp.backend}}, errors=[])
    return {**to_dict(defaults), "arm": arm}


def run_replica(exp: Experiment, path: str | Path, *, seed: int, arm: str = "default", overrides=(), log=print,
                source: Source | None = None, break_lock: bool = False, lock_wait: float = 0.0) -> RunDir | None:
    """Run (or resume) one replica of one arm into ``path``; ``source``: the corpus, already prepared;
    ``overrides``: the ``--set`` pairs, recorded in its ``config.yaml``; ``break_lock``, ``lock_wait``:
    :class:`~recursion.rundir.RunLock`'s ``break_lock`` and ``wait``.

    Under ``accelerate launch`` every process trains; rank 0 alone runs every other stage, holds
    the lock and keeps the run folder; the other ranks return ``None``."""
    ranks = Ranks.from_env(cpu=exp.runtime.device == "cpu")
    source = prepare(exp.data, exp.probes) if source is None else source  # every rank trains on its validation texts
    with RunLock(path, log, break_lock=break_lock, wait=lock_wait) if ranks.main else nullcontext():
        return _run_generations(exp, Path(path), seed=seed, arm=arm, overrides=overrides, log=log, source=source,
                                ranks=ranks)


def _run_generations(exp: Experiment, path: Path, *, seed: int, arm: str, overrides, log, source: Source,
                     ranks: Ranks) -> RunDir | None:
    run = RunDir(path, replica_config(exp, seed, arm, overrides), seed=seed, log=log, inputs=stage_inputs,
                 defaults=default_config(exp, arm)) if ranks.main else None
    if ranks.main and (problem := deleted_models(exp, path, run.manifest["stages"])):
        raise RunFolderError(problem)
    threads = set_threads(exp.runtime.threads)
    if ranks.main:
        log(f"[{arm}/seed_{seed}] torch threads: {threads}")
        if not replica_finished(exp, path):  # where the numbers still to come are computed
            write_environment(path, threads)
    backend = make_backend(exp)
    models = _Models(backend)
    real = real_data(source, seed=seed) if ranks.main else None
    validation = source.validation
    written: dict[int, int] = {}

    def todo(g: int, stage: str) -> bool:
        """Whether this process runs the stage: training on every rank when rank 0 says so, the rest on rank 0."""
        pending = ranks.main and not run.done(f"{gen_name(g)}/{stage}")
        return ranks.agree(pending) if stage == "train" else pending

    def retain(trained: int, finished: bool) -> None:
        """Checkpoint retention: drop the model folders no stage still to run needs (``checkpoints.keep``)."""
        run.forget(prune(path, stale_generations(exp.checkpoints.keep, trained=trained, generations=exp.generations,
                                                 gen0=exp.probes.enabled or reads_gen0_model(exp), finished=finished)))

    for g in range(exp.generations):
        gdir = gen_dir(path, g)
        model_dir = gdir / MODEL

        if todo(g, "data"):
            outputs = [path / HELDOUT] if g == 0 and real.heldout else []  # filled in as they are written
            with run.stage(f"{gdir.name}/data", outputs):
                if outputs:
                    write_jsonl(path / HELDOUT, ({"text": t} for t in real.heldout))
                outputs += write_training_set(exp, g, gdir, real, models, seed=seed)

        if todo(g, "train"):
            with run.stage(f"{gdir.name}/train", [model_dir]) if ranks.main else nullcontext():
                tmp = gdir / "model.tmp"
                if ranks.main:
                    shutil.rmtree(tmp, ignore_errors=True)
                backend.train(read_training_texts(gdir), tmp, previous=gen_dir(path, g - 1) / MODEL if g else None,
                              seed=stage_seed(seed, g, "train"), **({"validation": validation} if validation else {}))
                if ranks.main:  # only rank 0 saved into tmp
                    honour_umask(tmp)
                    shutil.rmtree(model_dir, ignore_errors=True)
                    os.replace(tmp, model_dir)

        if ranks.main:
            retain(g, finished=False)

        if exp.eval.enabled and todo(g, "eval"):
            samples = [gdir / LM_EVAL_SAMPLES] if exp.eval.log_samples else []
            with run.stage(f"{gdir.name}/eval", [gdir / LM_EVAL, *samples]):
                results = scoring.evaluate(models.get(model_dir), exp.eval, seed=stage_seed(seed, g, "eval"),
                                           model_dir=model_dir, samples_dir=gdir / LM_EVAL_SAMPLES)
                scoring.write_results(gdir / LM_EVAL, results)

        if todo(g, "generate"):
            with run.stage(f"{gdir.name}/generate", [gdir / SYNTHETIC]):
                model = models.get(model_dir)
                docs = read_training_texts(gdir) if exp.generate.prompt == "train_prefix" else real.train
                n = num_docs(exp, len(docs))
                prompts = generation_prompts(exp, model, docs, n, np.random.default_rng(stage_seed(seed, g, "generate")))
                texts = model.generate(num=None if prompts else n, prompts=prompts, decoding=exp.generate.decoding,
                                       seed=stage_seed(seed, g, "generate"))
                write_jsonl(gdir / SYNTHETIC, (synthetic_record(t, p, prompt_in_text=exp.generate.keep_prompt)
                                               for t, p in zip(texts, prompts or [None] * len(texts))))

        if todo(g, "select"):
            toedit_on = exp.transform.name == "toedit"
            outputs = [gdir / SELECTED] + ([gdir / EDITED, gdir / EDITS] if toedit_on else [])
            with run.stage(f"{gdir.name}/select", outputs):
                pool = edit_real(exp, models, run, real.train, g, seed) if toedit_on else read_jsonl(gdir / SYNTHETIC)
                f = exp.filter if exp.regime.name != "accumulate_select" else FilterConfig()  # it filters at data
                kept = select(f.name, [r["text"] for r in pool], keep=f.keep, top_k=f.top_k,
                              model=Lazy(partial(models.get, model_dir)), config=f,
                              gen0_model=Lazy(partial(models.get, run.gen(0) / MODEL)),
                              rng=np.random.default_rng(stage_seed(seed, g, "select")))
                write_jsonl(gdir / SELECTED, ({**pool[i], "index": int(i)} for i in kept))

        if exp.probes.enabled and todo(g, "probes"):
            with run.stage(f"{gdir.name}/probes", [gdir / PROBES]):
                model = models.get(model_dir)
                prompts = [model.truncate(p, exp.probes.prompt_tokens) for p in real.probe_prompts]
                result = run_probes(model, models.get(run.gen(0) / MODEL), read_texts(gdir / SYNTHETIC), prompts,
                                    heldout=real.heldout)
                if exp.probes.embedding_diagnostics:
                    result.update(embedding_diagnostics(
                        read_training_texts(gdir), read_texts(gdir / SYNTHETIC), embedder=exp.probes.embedder,
                        sample_size=exp.probes.embedding_sample, rng=np.random.default_rng(stage_seed(seed, g, "probes"))))
                atomic_write_text(gdir / PROBES, json.dumps(result))

        if todo(g, "diversity"):
            with run.stage(f"{gdir.name}/diversity", [gdir / DATA_DIVERSITY]):
                pool = read_texts(gdir / SYNTHETIC)
                floor = models.get(model_dir).floor_share(pool) if exp.backend == "ngram" else None
                doc = data_diversity(read_training_texts(gdir), pool, floor_share=floor)
                atomic_write_text(gdir / DATA_DIVERSITY, json.dumps(doc, indent=1) + "\n")

        if ranks.main:
            written[g] = disk_usage(gdir)  # before retention deletes this generation's model

    if ranks.main:  # the replica is finished: final retention, and what it left on disk
        retain(exp.generations - 1, finished=True)
        sizes = ", ".join(f"{gen_name(g)} {_human(b)}" for g, b in written.items())
        log(f"[{path.parent.name}/{path.name}] disk written per generation: {sizes}; kept: {_human(disk_usage(path))}")
    return run


Plan = list[tuple[str, Experiment, int, Path]]  # (arm, experiment, seed, replica folder)


def plan_replicas(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), resume: bool = False,
                  arm: str | None = None, seed: int | None = None, break_lock: bool = False,
                  log=print) -> tuple[Path, Plan, dict[str, Source]]:
    """The run folder, ``(arm, experiment, seed, folder)`` of every replica to run — all arms × seeds,
    or the one ``arm`` and/or ``seed`` asked for (an error names the valid ones) — and each arm's
    corpus, after every check of the module docstring; logs the plan. Writes nothing."""
    arms = load_config(config, list(overrides))
    first = next(iter(arms.values()))
    if run_dir is not None and not str(run_dir).strip():
        raise ValueError("--run-dir is empty; name a folder (default: runs/<name>)")
    root = check_folder(Path(run_dir) if run_dir is not None else Path("runs") / first.name, "--run-dir")
    if resume and not root.exists():
        raise FileNotFoundError(f"--resume: no run folder {root} to resume")
    if arm is not None and arm not in arms:
        raise ValueError(f"--arm {arm!r} is not an arm of {config}; arms: {', '.join(arms)}")
    arms = {a: e for a, e in arms.items() if arm is None or a == arm}
    if seed is not None and not any(seed in e.seeds for e in arms.values()):
        valid = sorted({s for e in arms.values() for s in e.seeds})
        raise ValueError(f"--seed {seed} is not a seed of {config}{f' (arm {arm})' if arm else ''}; seeds: "
                         f"{', '.join(map(str, valid))}")
    checks = {(exp.eval.tasks, json.dumps(task_metadata(exp), sort_keys=True)) for exp in arms.values() if exp.eval.enabled}
    for tasks, metadata in sorted(checks):
        scoring.check_tasks(tasks, json.loads(metadata))
    for exp in arms.values():
        check_embeddings(exp)
        check_classifier(exp)
    sources = prepare_sources(arms)
    plan = [(a, exp, s, replica_dir(root, a, s)) for a, exp in arms.items() for s in exp.seeds if seed is None or s == seed]
    main = rank() == 0  # under accelerate launch, rank 0 speaks for the launch and holds the locks
    for a, exp, s, path in plan:
        extends = None
        if main:
            RunLock(path, log, break_lock=break_lock).check()
            extends = check_compatible(path, replica_config(exp, s, a), defaults=default_config(exp, a))
            if extends and (problem := deleted_models(exp, path, read_manifest(path / MANIFEST)["stages"])):
                raise RunFolderError(problem)
        edit = f", transform {exp.transform.name}" if exp.transform.name != "none" else ""
        log(f"{a} seed {s}: {exp.backend}, {exp.generations} generations, regime {exp.regime.name}{edit}, "
            f"filter {exp.filter.name}, {sources[a].num_train} real training documents -> {path}"
            + (f" ({extends})" if extends else ""))
    return root, plan, sources


def run_experiment(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), resume: bool = False,
                   dry_run: bool = False, arm: str | None = None, seed: int | None = None, break_lock: bool = False,
                   log=print) -> list[Path]:
    """Every arm × seed of an experiment YAML (or the one ``arm`` / ``seed`` asked for), each into
    ``RUN/<arm>/seed_<s>/``; returns their folders.

    Everything is checked before the first folder is created (see the module docstring);
    ``dry_run`` stops there. Each replica is locked while it runs, not the experiment's folder, so
    several processes (``--arm A`` and ``--arm B``, one per GPU) run into one folder at once.
    """
    if rank() != 0:  # under accelerate launch, rank 0 speaks for the launch
        log = lambda line: None  # noqa: E731
    root, plan, sources = plan_replicas(config, run_dir, overrides=overrides, resume=resume, arm=arm, seed=seed,
                                        break_lock=break_lock, log=log)
    if dry_run:
        return [p for *_, p in plan]
    for a, exp, s, path in plan:
        run_replica(exp, path, seed=s, arm=a, overrides=list(overrides), log=log, source=sources[a],
                    break_lock=break_lock)
    return [p for *_, p in plan]


def task_metadata(exp: Experiment) -> dict:
    """What the tasks are told before any model is trained: ``eval.metadata``, and the pretrained
    model a fine-tune starts from (whose tokenizer every generation keeps), as ``pretrained``."""
    base = {"pretrained": exp.model.pretrained} if exp.backend == "hf_finetune" else {}
    return {**base, **(exp.eval.metadata or {})}


def prepare_sources(arms: dict[str, Experiment]) -> dict[str, Source]:
    """Each arm's corpus, loaded once per distinct ``data`` block and checked, with its prompt files."""
    corpora: dict = {}
    sources = {}
    for arm, exp in arms.items():
        if exp.data not in corpora:
            corpora[exp.data] = load_pool(exp.data), validation_texts(exp.data) if exp.data.validation_split else None
        pool, validation = corpora[exp.data]
        sources[arm] = prepare(exp.data, exp.probes, pool=pool, validation=validation)
        if exp.regime.name == "mix":
            sources[arm].check_fresh(real_share(sources[arm].num_train, exp.regime.fraction), exp.generations)
        if exp.generate.prompt == "task" and exp.generate.prompts_file and not read_texts(exp.generate.prompts_file):
            raise ValueError(f"generate.prompts_file {exp.generate.prompts_file}: no prompts (the file is empty)")
    return sources
