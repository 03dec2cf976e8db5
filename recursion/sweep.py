"""``lm-collapse sweep``: every replica (arm × seed) of an experiment as its own Ray task, one per GPU.

Ray schedules; nothing here does. Each replica is one Ray task that asks for ``num_gpus`` GPUs
(``--gpus-per-replica``, in (0, 1], default 1) — or, with ``runtime.device: cpu`` or on a cluster
that has no GPU when the replica is submitted, ``num_cpus`` = the config's
``runtime.threads`` (1 if unset), torch then using that many threads — and runs
:func:`recursion.driver.run_replica` for its (arm, seed), with the sweep's ``--set`` overrides
recorded as a ``run`` records them, in its own worker process, into the usual ``RUN/<arm>/seed_<s>/`` folder, so
``lm-collapse report RUN`` reads a sweep like any run. Ray starts as many tasks at once as the
resources allow and queues the rest.

* One machine: ``ray.init()`` starts a local Ray instance over the visible GPUs
  (``CUDA_VISIBLE_DEVICES`` chooses them); each task sees only its own GPU.
* Several machines: ``--address ray://HEAD:10001`` (Ray Client) or ``--address auto`` (on a node of a
  running cluster). Every node needs this package installed and the run folder on a shared file
  system, because each replica writes its folder where it runs: the folder is sent as an absolute
  path, and each task first looks for a marker file the sweep wrote there; a node that cannot see
  it fails that replica in one line naming the node.

Each GPU replica runs in a fresh worker process (``max_calls=1``; a CPU replica may reuse one, see
:func:`replica_task`): a worker that ran one replica exits,
so the next never inherits its CUDA context, its cached memory or a GPU binding that
``CUDA_VISIBLE_DEVICES`` no longer names (Ray sets that only for a GPU count given to
``@ray.remote`` itself, not to ``.options``). A replica whose worker or node dies is rerun by Ray
(``--retries``, default 3) and resumes where it stopped: the dead process's lock is taken over at
once on its own host, or once its heartbeat is stale on another (:class:`~recursion.rundir.RunLock`).

A replica whose manifest records every stage of its config is skipped (not even scheduled); an
unfinished one resumes where it stopped (the driver's own resume). A failed replica is reported
and does not stop the others. The summary table at the end: replica, status, wall time,
generations done.
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .artifacts import atomic_write_text
from .backends.vllm_engine import SHARE_ENV, share_problems
from .driver import generations_done, plan_replicas, replica_finished
from .loader import ConfigError
from .rundir import HEARTBEAT, STALE_AFTER

INSTALL_HINT = "pip install 'lm-collapse[sweep]'"
#: How long a rerun replica waits for the lock of its dead first attempt on another node to go stale.
LOCK_WAIT = STALE_AFTER + 2 * HEARTBEAT


@dataclass(frozen=True)
class Outcome:
    """What became of one replica of a sweep."""

    replica: str  # <arm>/seed_<s>
    status: str  # done, skipped (finished before), failed: <error>
    seconds: float
    generations: str  # "done/planned"
    path: Path


def check_options(gpus_per_replica: float, retries: int) -> None:
    """One line for a ``--gpus-per-replica`` or ``--retries`` a sweep cannot honour."""
    if not 0 < gpus_per_replica <= 1:
        raise ValueError(f"--gpus-per-replica must be in (0, 1], got {gpus_per_replica:g}: a replica uses one GPU "
                         "(several GPUs for one replica: accelerate launch ... run --arm A --seed S)")
    if retries < 0:
        raise ValueError(f"--retries must be >= 0, got {retries}")


def replica_task(ray, body, *, gpu: bool = True):
    """``body`` as a Ray task. On a GPU every call gets a fresh worker process (``max_calls=1``), whatever
    its ``.options`` (a GPU count given there alone lets Ray reuse workers, with the last replica's CUDA
    context and device binding). A CPU replica may reuse a worker: it carries nothing of a device, the
    driver sets its torch threads and every stage's seed afresh, and each fresh worker would pay the
    imports of torch, transformers and lm-eval again."""
    return ray.remote(max_calls=1)(body) if gpu else ray.remote(body)


def _node() -> str:
    import ray

    return f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"


def _run_one(exp, path: str, seed: int, arm: str, overrides: list[str], cpus: int | None, marker: str,
             break_lock: bool = False) -> tuple[str, float]:
    """Body of a replica's Ray task (a fresh Ray worker process on a GPU): ``("done" | "failed: ...", seconds)``.
    ``cpus``: the CPUs Ray gave the task (on a machine without GPUs): torch uses no more threads;
    ``marker``: the file the sweep wrote into the run folder, which this node must see."""
    from .driver import run_replica

    if not os.path.isfile(marker):
        return (f"failed: node {_node()} cannot see the run folder {os.path.dirname(marker)} (no {os.path.basename(marker)}"
                "): a multi-node sweep needs the run folder on storage every node shares"), 0.0
    if cpus is not None:
        os.environ["OMP_NUM_THREADS"] = str(cpus)  # the cap runtime.set_threads honours
    start = time.perf_counter()
    try:
        run_replica(exp, path, seed=seed, arm=arm, overrides=overrides, break_lock=break_lock, lock_wait=LOCK_WAIT)
    except Exception as e:  # reported in the summary; the other replicas go on
        return f"failed: {type(e).__name__}: {e}", time.perf_counter() - start
    return "done", time.perf_counter() - start


def sweep(config: str | Path, run_dir: str | Path | None = None, *, overrides=(), address: str | None = None,
          gpus_per_replica: float = 1, resume: bool = False, retries: int = 3, break_lock: bool = False,
          log=print) -> list[Outcome]:
    """Run every replica of ``config`` as a Ray task (see the module docstring); returns one
    :class:`Outcome` per replica, in plan order."""
    check_options(gpus_per_replica, retries)
    try:
        import ray
    except ImportError:
        raise ValueError(f"lm-collapse sweep needs Ray: {INSTALL_HINT}") from None
    root, plan, _ = plan_replicas(config, run_dir, overrides=overrides, resume=resume, break_lock=break_lock,
                                  log=log)  # every check first
    root = root.absolute()  # what every node opens
    if problems := list(dict.fromkeys(f"arms.{arm}: {key} {message}" for arm, exp, _, _ in plan
                                      for key, message in share_problems(exp, gpus_per_replica))):
        raise ConfigError("\n".join(problems))
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False)
    tasks = {gpu: replica_task(ray, _run_one, gpu=gpu) for gpu in (True, False)}
    root.mkdir(parents=True, exist_ok=True)
    marker = root / f".sweep-{socket.gethostname()}-{os.getpid()}"
    atomic_write_text(marker, "a sweep is running; each replica's node checks that it sees this file\n")
    try:
        return _run(ray, tasks, plan, marker, gpus_per_replica=gpus_per_replica, overrides=list(overrides),
                    retries=retries, break_lock=break_lock, log=log)
    finally:
        marker.unlink(missing_ok=True)


def _run(ray, tasks, plan, marker: Path, *, gpus_per_replica: float, overrides: list[str], retries: int,
         break_lock: bool, log) -> list[Outcome]:
    outcomes: dict[int, Outcome] = {}
    pending = {}
    on_gpus = 0
    for i, (arm, exp, seed, path) in enumerate(plan):
        name = f"{arm}/seed_{seed}"
        if replica_finished(exp, path):
            outcomes[i] = Outcome(name, "skipped (finished before)", 0.0, f"{exp.generations}/{exp.generations}", path)
            continue
        # GPUs when the cluster has any now (read again for each replica) and the config does not ask for the CPU
        gpu = exp.runtime.device != "cpu" and ray.cluster_resources().get("GPU", 0) > 0
        on_gpus += gpu
        cpus = None if gpu else exp.runtime.threads or 1
        resources = {"num_gpus": gpus_per_replica} if gpu else {"num_cpus": cpus}
        if gpu and gpus_per_replica < 1:  # vLLM's memory is capped at the replica's share (vllm_engine.SHARE_ENV)
            resources["runtime_env"] = {"env_vars": {SHARE_ENV: str(gpus_per_replica)}}
        ref = tasks[gpu].options(max_retries=retries, **resources).remote(exp, str(path.absolute()), seed, arm, overrides,
                                                                   cpus, str(marker), break_lock)
        pending[ref] = (i, name, exp, path)
    log(f"sweep: {len(pending)} replica(s) to run ({on_gpus} on {gpus_per_replica:g} GPU each, the rest on CPUs), "
        f"{len(outcomes)} finished before; cluster: {ray.cluster_resources()}")
    while pending:
        [ref], _ = ray.wait(list(pending), num_returns=1)
        i, name, exp, path = pending.pop(ref)
        try:
            status, seconds = ray.get(ref)
        except Exception as e:  # the worker died (out of memory, killed) more often than --retries: Ray's error
            status, seconds = f"failed: {type(e).__name__}: {e}".splitlines()[0], 0.0
        outcomes[i] = Outcome(name, status, seconds, f"{generations_done(exp, path)}/{exp.generations}", path)
        log(f"sweep: {name} {status} ({seconds:.0f} s)")
    return [outcomes[i] for i in sorted(outcomes)]


def summary(outcomes: list[Outcome]) -> str:
    """The Markdown table printed at the end of a sweep."""
    rows = ["| replica | status | wall time | generations done |", "|---|---|---|---|"]
    rows += [f"| {o.replica} | {o.status} | {o.seconds:.1f} s | {o.generations} |" for o in outcomes]
    return "\n".join(rows)
