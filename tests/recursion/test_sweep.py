"""``lm-collapse sweep`` on a local Ray instance (CPU): two tiny n-gram replicas at once, each in its
own Ray worker, into the usual run folder; a second sweep skips them; the report reads the result."""
from __future__ import annotations

import json
import os

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


def test_two_replicas_at_once_then_skipped_then_reported(tmp_path, local_ray):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    outcomes = sweep(cfg, tmp_path / "run", log=lambda s: None)
    assert [(o.replica, o.status, o.generations) for o in outcomes] == [
        ("default/seed_0", "done", "2/2"), ("default/seed_1", "done", "2/2")]
    manifests = [json.loads((o.path / "manifest.json").read_text()) for o in outcomes]
    assert [m["seed"] for m in manifests] == [0, 1]
    # each replica ran in a Ray worker, not here, and the two overlapped in time
    spans = [(min(s["finished"] for s in m["stages"].values()), max(s["finished"] for s in m["stages"].values()))
             for m in manifests]
    assert spans[0][0] <= spans[1][1] and spans[1][0] <= spans[0][1]
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
