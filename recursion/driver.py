"""The recursion driver: for g = 0 .. G-1, build data → train → score → generate → select → probe →
measure the data (the training set and the synthetic pool, :mod:`recursion.data_diversity`).

:func:`run_replica` is the whole loop: every stage of :data:`recursion.stages.STAGES` in turn
(:func:`run_stage`), each a call into the module that owns it, which writes its outputs into the
run folder (:mod:`recursion.rundir`) before it is recorded as done, with the size and sha256 of
each file. Rerunning the same command (or ``--resume``) skips finished stages whose files are
intact and redoes any other, so a run killed at any moment loses at most the stage in flight.
Every stage draws its randomness from ``(seed, generation, stage)`` alone, so a resumed run gives
the same numbers as one that never stopped.

:func:`run_experiment` checks everything a run needs before it creates a folder: the config, the
data (files read, hub datasets and the validation split loaded, training set and probes sized), what
the plug-ins load (each one's ``preflight``: a classifier's labels, a sentence embedder), the lm-eval tasks (built,
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
from contextlib import nullcontext
from pathlib import Path

from . import scoring
from .artifacts import MANIFEST, MODEL, disk_usage, gen_dir, gen_name, read_texts, replica_dir
from .backends import backend_class
from .checkpoints import prune, stale_generations
from .config import Experiment, TransformConfig
from .data import Source, load_pool, prepare, real_data, validation_texts
from .environment import write_environment
from .loader import PLUGIN_BLOCKS, experiment_from_dict, load_config, to_dict
from .ranks import Ranks, rank
from .rundir import RunDir, RunFolderError, RunLock, check_compatible, check_folder, read_manifest
from .runtime import set_threads
from .stages import STAGES, Context, Stage, keeps_gen0, models_read, planned_stages, stage_inputs


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


def _human(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f} MB" if num_bytes < 1e9 else f"{num_bytes / 1e9:.2f} GB"


def replica_config(exp: Experiment, seed: int, arm: str, overrides=()) -> dict:
    """What a replica folder records as its config (``config.yaml``); ``overrides``, the ``--set``
    pairs applied to the config file, are recorded as ``overrides`` (a record, never compared on resume)."""
    config = {**to_dict(dataclasses.replace(exp, seeds=(seed,))), "arm": arm}
    return {**config, "overrides": list(overrides)} if overrides else config


def default_config(exp: Experiment, arm: str) -> dict:
    """Every key at its default (for the same back end and plug-ins): a key added since a run
    started is accepted at this value."""
    plugins = {key: {"name": getattr(exp, key).name} for key in PLUGIN_BLOCKS}
    defaults = experiment_from_dict({"name": exp.name, "model": {"backend": exp.backend}, **plugins}, errors=[])
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
    ctx = Context(exp, path, seed, make_backend(exp), real_data(source, seed=seed) if ranks.main else None,
                  source.validation, ranks)
    written: dict[int, int] = {}
    for g in range(exp.generations):
        ctx.g = g
        for stage in STAGES:
            if stage.enabled(exp):
                run_stage(stage, ctx, run)
        if ranks.main:
            written[g] = disk_usage(ctx.gen(g))  # before retention deletes this generation's model
    if ranks.main:  # the replica is finished: final retention, and what it left on disk
        retain(ctx, run, finished=True)
        sizes = ", ".join(f"{gen_name(g)} {_human(b)}" for g, b in written.items())
        log(f"[{path.parent.name}/{path.name}] disk written per generation: {sizes}; kept: {_human(disk_usage(path))}")
    return run


def run_stage(stage: Stage, ctx: Context, run: RunDir | None) -> None:
    """Run ``stage`` of generation ``ctx.g`` unless the manifest records it: rank 0 alone, except a
    stage that ``trains``, which every rank runs when rank 0 says so (checkpoint retention follows it)."""
    name, main = f"{gen_name(ctx.g)}/{stage.name}", ctx.ranks.main
    pending = main and not run.done(name)
    if ctx.ranks.agree(pending) if stage.trains else pending:
        outputs = stage.outputs(ctx)  # and what the stage says it wrote, as it is recorded
        with run.stage(name, outputs) if main else nullcontext():
            outputs += stage.run(ctx) or []
    if stage.trains and main:
        retain(ctx, run, finished=False)


def retain(ctx: Context, run: RunDir, *, finished: bool) -> None:
    """Checkpoint retention: drop the model folders no stage still to run needs (``checkpoints.keep``)."""
    exp = ctx.exp
    trained = exp.generations - 1 if finished else ctx.g
    run.forget(prune(ctx.path, stale_generations(exp.checkpoints.keep, trained=trained, generations=exp.generations,
                                                 gen0=keeps_gen0(exp), finished=finished)))


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
        for key, registry in PLUGIN_BLOCKS.items():
            registry[getattr(exp, key).name].preflight(exp)
        for stage in STAGES:
            if stage.enabled(exp):
                stage.preflight(exp)
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
        edit = f", transform {exp.transform.name}" if exp.transform != TransformConfig() else ""
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
    base = {"pretrained": exp.model.pretrained} if hasattr(backend_class(exp.backend), "load_base") else {}
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
        if fresh := exp.regime.fresh_per_generation(sources[arm].num_train):
            sources[arm].check_fresh(fresh, exp.generations)
        if exp.generate.prompt == "task" and exp.generate.prompts_file and not read_texts(exp.generate.prompts_file):
            raise ValueError(f"generate.prompts_file {exp.generate.prompts_file}: no prompts (the file is empty)")
    return sources
