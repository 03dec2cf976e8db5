"""``lm-collapse sweep`` through Ray's cluster path on one machine: ``ray start --head`` and a second
``ray start --address`` (two raylets, one fake GPU each), the sweep a separate ``lm-collapse sweep
--address`` process (``ray.init(address=...)``, not a local instance). One replica's worker is
killed (SIGKILL) mid-replica: Ray reruns it (``--retries``), the rerun takes over the dead
process's lock and resumes, and every artifact comes out byte-identical to an uninterrupted run.

Ray is bound to the loopback address: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray take
127.0.0.1 as the node address (``ray start`` otherwise replaces 127.0.0.1 by the machine's outward
address, ``ray/_private/services.py`` ``resolve_ip_for_localhost``), and its servers then listen
on 127.0.0.1 only. That setting also makes ``ray start --address`` refuse to start a second node
(``ray/scripts/scripts.py``: "Multi-node Ray clusters are not supported"), so the second node is
``ray start`` run by :data:`SECOND_NODE`, which lets it start and keeps its address 127.0.0.1.
Every Ray process of the test runs in a session of its own, ended by its process group in any case
(never ``ray stop``, which would end every Ray of this user).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("ray")

from recursion.driver import run_experiment  # noqa: E402

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RAY = shutil.which("ray", path=os.path.dirname(sys.executable)) or "ray"
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1",
       "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),  # the test's nodes and driver only
       "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

#: ``ray start`` for the second node on 127.0.0.1 (see the module docstring).
SECOND_NODE = ("import sys, ray._private.ray_constants as c, ray._private.services as s; c.ENABLE_RAY_CLUSTER = True; "
               "s.get_node_ip_address = lambda address=None: '127.0.0.1'; from ray.scripts.scripts import main; "
               "sys.argv[0] = 'ray'; main()")

CONFIG = """
name: cluster
generations: 6
seeds: [0, 1]
model: {backend: ngram, n: 3, alpha: 0.05}
data: {num_train: 400}
generate: {num_docs: 300, decoding: {max_new_tokens: 24}}
eval: {enabled: false}
probes: {num_prompts: 10}
runtime: {threads: 1}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, done, timeout: float, log: Path, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline or (proc is not None and proc.poll() is not None):
            raise AssertionError(f"{what} not within {timeout:.0f} s; log:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def end_session(proc: subprocess.Popen) -> None:
    """End ``proc`` and every process of its session (the Ray daemons it started)."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            continue


def leftovers(temp: str) -> list[int]:
    """PIDs of this user's processes that name the test's Ray folder (started by the test's raylets)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if temp.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@contextmanager
def two_raylets(tmp_path: Path):
    """A head node and a second node on 127.0.0.1, 1 CPU and 1 fake GPU each; yields the address."""
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's unix sockets live under it
    port = free_port()
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--num-gpus", "1", "--temp-dir", temp,
              "--disable-usage-stats", "--block"]
    nodes = []
    try:
        for name, start in (("head", [RAY, "start", "--head", "--port", str(port), "--include-dashboard", "false"]),
                            ("second", [sys.executable, "-c", SECOND_NODE, "start", "--address", f"127.0.0.1:{port}"])):
            log = tmp_path / f"ray_{name}.log"
            with open(log, "w") as out:
                nodes.append(subprocess.Popen([*start, *common], env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
            wait_for(f"ray start ({name})", lambda log=log: "Ray runtime started" in log.read_text(), 240, log,
                     nodes[-1])
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(nodes):
            end_session(node)
        for pid in leftovers(temp):  # a worker that left the session: ours by its folder
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def snapshot(replica: Path) -> dict[str, bytes]:
    """Every file of a replica but its timings (manifest.json) and its machine (environment.json)."""
    return {str(p.relative_to(replica)): p.read_bytes() for p in sorted(replica.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "environment.json")}


def test_two_raylets_a_worker_killed_mid_replica_resumes_to_identical_results(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text(CONFIG)
    reference = tmp_path / "reference"
    run_experiment(config, reference, log=lambda s: None)
    run = tmp_path / "run"
    with two_raylets(tmp_path) as address:
        out = tmp_path / "sweep.log"
        with open(out, "w") as log:
            sweep = subprocess.Popen([sys.executable, "-m", "lm_collapse.cli", "sweep", str(config), "--run-dir",
                                      str(run), "--address", address], env=ENV, cwd=tmp_path, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            replica = run / "default/seed_0"

            def mid_replica() -> bool:  # a stage recorded, the replica not finished, its worker holding the lock
                try:
                    stages = json.loads((replica / "manifest.json").read_text())["stages"]
                    return 2 <= len(stages) < 6 * 6 and (replica / ".lock").exists()
                except (OSError, ValueError):
                    return False

            wait_for("replica seed_0 under way", mid_replica, 300, out)
            worker = int((replica / ".lock").read_text().split()[0])
            os.kill(worker, signal.SIGKILL)
            assert sweep.wait(600) == 0, out.read_text()[-3000:]
        finally:
            end_session(sweep)
        text = out.read_text()
    assert f"taking over the lock of process {worker} (no longer running)" in text
    assert "sweep: 2 replica(s) to run (2 on 1 GPU each" in text and "'GPU': 2.0" in text  # both nodes' GPUs
    for seed in (0, 1):
        got, want = run / f"default/seed_{seed}", reference / f"default/seed_{seed}"
        # 6 generations x (data, train, generate, select, probes, diversity)
        assert len(json.loads((got / "manifest.json").read_text())["stages"]) == 6 * 6
        assert snapshot(got) == snapshot(want)
