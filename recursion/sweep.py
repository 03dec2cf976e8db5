"""``lm-collapse sweep``: every replica (arm × seed) of an experiment as its own Ray task, one per GPU.

Ray schedules; nothing here does. Each replica is one Ray task that asks for ``num_gpus`` GPUs
(``--gpus-per-replica``, default 1) — or, on a cluster without GPUs, ``num_cpus`` = the config's
``runtime.threads`` (1 if unset), torch then using that many threads — and runs
:func:`recursion.driver.run_replica` for its (arm, seed), with the sweep's ``--set`` overrides
recorded as a ``run`` records them, in its own worker process, into the usual ``RUN/<arm>/seed_<s>/`` folder, so
``lm-collapse report RUN`` reads a sweep like any run. Ray starts as many tasks at once as the
resources allow and queues the rest.

* One machine: ``ray.init()`` starts a local Ray instance over the visible GPUs
  (``CUDA_VISIBLE_DEVICES`` chooses them); each task sees only its own GPU.
* Several machines: ``--address ray://HEAD:10001`` (Ray Client) or ``--address auto`` (on a node of a
  running cluster). Every node needs this package installed and the run folder on a shared file
  system, because each replica writes its folder where it runs.

A replica whose manifest records every stage of its config is skipped (not even scheduled); an
unfinished one resumes where it stopped (the driver's own resume). A failed replica is reported
and does not stop the others. The summary table at the end: replica, status, wall time,
generations done.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .backends.vllm_engine import SHARE_ENV, share_problems
from .config import ConfigError
from .driver import generations_done, plan_replicas, replica_finished

INSTALL_HINT = "pip install 'lm-collapse[sweep]'"


@dataclass(frozen=True)
class Outcome:
    """What became of one replica of a sweep."""

    replica: str  # <arm>/seed_<s>
    status: str  # done, skipped (finished before), failed: <error>
    seconds: float
    generations: str  # "done/planned"
    path: Path


def _run_one(exp, path: str, seed: int, arm: str, overrides: list[str], cpus: int | None) -> tuple[str, float]:
    """Body of a replica's Ray task (in a Ray worker process): ``("done" | "failed: ...", seconds)``.
    ``cpus``: the CPUs Ray gave the task (on a machine without GPUs): torch uses no more threads."""
    from .driver import run_replica

    if cpus is not None:
        os.environ["OMP_NUM_THREADS"] = str(cpus)  # the cap runtime.set_threads honours
    start = time.perf_counter()
    try:
        run_replica(exp, path, seed=seed, arm=arm, overrides=overrides)
    except Exception as e:  # reported in the summary; the other replicas go on
        return f"failed: {type(e).__name__}: {e}", time.perf_counter() - start
    return "done", time.perf_counter() - start


def sweep(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), address: str | None = None,
          gpus_per_replica: float = 1, resume: bool = False, log=print) -> list[Outcome]:
    """Run every replica of ``config`` as a Ray task (see the module docstring); returns one
    :class:`Outcome` per replica, in plan order."""
    try:
        import ray
    except ImportError:
        raise ValueError(f"lm-collapse sweep needs Ray: {INSTALL_HINT}") from None
    _, plan, _ = plan_replicas(config, run_dir, overrides=overrides, resume=resume, log=log)  # every check first
    if problems := list(dict.fromkeys(f"arms.{arm}: {key} {message}" for arm, exp, _, _ in plan
                                      for key, message in share_problems(exp, gpus_per_replica))):
        raise ConfigError("\n".join(problems))
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(_run_one)
    outcomes: dict[int, Outcome] = {}
    pending = {}
    for i, (arm, exp, seed, path) in enumerate(plan):
        name = f"{arm}/seed_{seed}"
        if replica_finished(exp, path):
            outcomes[i] = Outcome(name, "skipped (finished before)", 0.0, f"{exp.generations}/{exp.generations}", path)
            continue
        cpus = None if gpus else exp.runtime.threads or 1
        resources = {"num_gpus": gpus_per_replica} if gpus else {"num_cpus": cpus}
        if gpus and gpus_per_replica < 1:  # vLLM's memory is capped at the replica's share (vllm_engine.SHARE_ENV)
            resources["runtime_env"] = {"env_vars": {SHARE_ENV: str(gpus_per_replica)}}
        pending[task.options(max_retries=0, **resources).remote(exp, str(path), seed, arm, list(overrides), cpus)] = (
            i, name, exp, path)
    log(f"sweep: {len(pending)} replica(s) to run, {len(outcomes)} finished before; "
        f"{'%g GPU' % gpus_per_replica if gpus else 'CPUs'} per replica on {ray.cluster_resources()}")
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        i, name, exp, path = pending.pop(ref)
        try:
            status, seconds = ray.get(ref)
        except Exception as e:  # the worker died (out of memory, killed): Ray's error
            status, seconds = f"failed: {type(e).__name__}: {e}".splitlines()[0], 0.0
        outcomes[i] = Outcome(name, status, seconds, f"{generations_done(exp, path)}/{exp.generations}", path)
        log(f"sweep: {name} {status} ({seconds:.0f} s)")
    return [outcomes[i] for i in sorted(outcomes)]


def summary(outcomes: list[Outcome]) -> str:
    """The Markdown table printed at the end of a sweep."""
    rows = ["| replica | status | wall time | generations done |", "|---|---|---|---|"]
    rows += [f"| {o.replica} | {o.status} | {o.seconds:.1f} s | {o.generations} |" for o in outcomes]
    return "\n".join(rows)
