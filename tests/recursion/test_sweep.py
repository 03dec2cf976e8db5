"""``lm-collapse sweep`` on a local Ray instance (CPU): two tiny n-gram replicas, each a Ray task (a CPU
replica may reuse a worker), into the usual run folder; a second sweep skips them; the report reads the result. The
options a sweep refuses, fake GPUs, and a node that cannot see the run folder. The real cluster
(two raylets, a worker killed mid-replica): ``test_sweep_cluster.py``."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from collapse_tasks import corpus

ray = pytest.importorskip("ray")

from recursion.sweep import summary, sweep  # noqa: E402

pytestmark = pytest.mark.slow

CONFIG = """
name: swept
generations: 2
seeds: [0, 1]
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 200}
generate: {num_docs: 60, decoding: {max_new_tokens: 12}}
eval: {enabled: false}
probes: {num_prompts: 10}
runtime: {threads: 1}
"""


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def local_gpus():
    """A local Ray instance with two fake GPUs (resources only: nothing here uses CUDA)."""
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_replicas_then_skipped_then_reported(tmp_path, local_ray):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    outcomes = sweep(cfg, tmp_path / "run", log=lambda s: None)
    assert [(o.replica, o.status, o.generations) for o in outcomes] == [
        ("default/seed_0", "done", "2/2"), ("default/seed_1", "done", "2/2")]
    manifests = [json.loads((o.path / "manifest.json").read_text()) for o in outcomes]
    assert [m["seed"] for m in manifests] == [0, 1]
    # (whether the two overlap in time depends on how fast Ray starts each replica's fresh worker
    # process on a loaded machine: not asserted; test_each_gpu_replica_gets_a_fresh_worker_process)
    table = summary(outcomes)
    assert table.splitlines()[0] == "| replica | status | wall time | generations done |" and "default/seed_1 | done" in table

    again = sweep(cfg, tmp_path / "run", resume=True, log=lambda s: None)
    assert [o.status for o in again] == ["skipped (finished before)"] * 2

    from lm_collapse.report import build_report

    report = build_report([tmp_path / "run"], tmp_path / "report", plots_on=False)
    assert not [p for p in report.problems if "missing" in p.lower()]
    assert os.path.exists(report.path)


def test_a_failed_replica_is_reported_and_the_others_finish(tmp_path, local_ray):
    """A replica that fails while it runs (its data file vanishes after the sweep checked it) is
    reported; the other finishes. A bad config never starts: the sweep checks every replica first."""
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": line}) + "\n" for line in corpus.lines("train")[:400]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG + f"arms:\n  ok: {{}}\n  bad: {{data: {{source: 'jsonl:{data}', num_train: 200}}}}\n")

    def vanish(line):  # the plan is logged after every check, before any replica runs
        if line.startswith("bad seed 0"):
            data.unlink()

    outcomes = sweep(cfg, tmp_path / "run", overrides=["seeds=[0]"], log=vanish)
    status = {o.replica: o.status for o in outcomes}
    assert status["ok/seed_0"] == "done"
    assert status["bad/seed_0"].startswith("failed: ") and "docs.jsonl" in status["bad/seed_0"]
    cfg.write_text(CONFIG + "arms:\n  ok: {}\n  bad: {data: {source: 'jsonl:/nonexistent.jsonl'}}\n")
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        sweep(cfg, tmp_path / "run2", overrides=["seeds=[0]"], log=lambda s: None)


# -- fresh workers, options, shared storage -----------------------------------------------------------
def test_each_gpu_replica_gets_a_fresh_worker_process(local_gpus):
    """Ray reuses a worker for tasks whose GPU count comes from ``.options`` only (``ray/remote_function.py``
    sets ``max_calls=1`` for a ``num_gpus`` given to the decorator); the sweep's ``max_calls=1``
    gives every replica its own process. Two fake GPUs, six tasks."""
    from recursion.sweep import replica_task

    def pid():
        time.sleep(0.2)
        return os.getpid()

    reused = ray.get([ray.remote(pid).options(num_gpus=1).remote() for _ in range(6)])
    fresh = ray.get([replica_task(ray, pid).options(num_gpus=1).remote() for _ in range(6)])
    assert len(set(reused)) < 6  # the behaviour the sweep must avoid: a worker serves several GPU tasks
    assert len(set(fresh)) == 6


def test_replicas_ask_for_gpus_unless_the_config_runs_on_the_cpu(tmp_path, local_gpus):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("seeds: [0, 1]", "seeds: [0]").replace("generations: 2", "generations: 1")
                   + "arms:\n  gpu: {}\n  cpu: {runtime: {device: cpu, threads: 1}}\n")
    log = []
    outcomes = sweep(cfg, tmp_path / "run", log=log.append)
    assert [o.status for o in outcomes] == ["done", "done"]
    assert [line for line in log if line.startswith("sweep: 2 replica(s) to run")][0].startswith(
        "sweep: 2 replica(s) to run (1 on 1 GPU each, the rest on CPUs)")
    assert not list((tmp_path / "run").glob(".sweep-*"))  # the shared-storage marker is removed


@pytest.mark.parametrize("gpus, retries, message", [
    (2, 3, "--gpus-per-replica must be in (0, 1], got 2: a replica uses one GPU"),
    (0, 3, "--gpus-per-replica must be in (0, 1], got 0"),
    (1, -1, "--retries must be >= 0, got -1"),
])
def test_options_a_sweep_cannot_honour_are_one_line(tmp_path, capsys, gpus, retries, message):
    from lm_collapse.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    assert main(["sweep", str(cfg), "--run-dir", str(tmp_path / "run"), "--gpus-per-replica", str(gpus),
                 "--retries", str(retries)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lm-collapse sweep: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_a_node_that_cannot_see_the_run_folder_fails_its_replica_naming_the_node(tmp_path):
    from recursion.loader import load_config
    from recursion.sweep import _run_one

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    exp = load_config(cfg)["default"]
    status, _ = _run_one(exp, str(tmp_path / "run/default/seed_0"), 0, "default", [], 1, str(tmp_path / "run/.sweep-x"))
    assert status.startswith(f"failed: node {socket.gethostname()} (") and "cannot see the run folder" in status
    assert "storage every node shares" in status and not (tmp_path / "run").exists()
