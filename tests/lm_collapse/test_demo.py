"""How the demo records its sizes, shows its progress and runs its replicas; the quick demo end to end, from
the installed wheel, is tests/test_wheel.py."""
import io

import pytest
import yaml

from lm_collapse.demo import Progress
from lm_collapse.report import build_report
from recursion.driver import run_experiment


def test_size_overrides_are_recorded_in_the_resolved_config_and_the_report(tmp_path):
    config = {"name": "tiny", "generations": 1, "model": {"backend": "ngram", "n": 2},
              "data": {"source": "shakespeare", "num_train": 200},
              "generate": {"num_docs": 40, "decoding": {"max_new_tokens": 8}},
              "eval": {"enabled": False}, "probes": {"num_prompts": 4}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "two.yaml").write_text(yaml.safe_dump({**config, "generations": 2}))
    quiet = lambda _: None  # noqa: E731
    [shipped] = run_experiment(tmp_path / "tiny.yaml", tmp_path / "shipped", log=quiet)
    assert "overrides" not in yaml.safe_load((shipped / "config.yaml").read_text())
    assert "as the config file sets them" in build_report([tmp_path / "shipped"], tmp_path / "r0", plots_on=False).sizes

    [reduced] = run_experiment(tmp_path / "two.yaml", tmp_path / "reduced", overrides=["generations=1", "generate.num_docs=20"],
                               log=quiet)
    resolved = yaml.safe_load((reduced / "config.yaml").read_text())
    assert resolved["overrides"] == ["generations=1", "generate.num_docs=20"] and resolved["generations"] == 1
    report = build_report([tmp_path / "reduced"], tmp_path / "r1", plots_on=False)
    assert report.sizes.startswith("**Sizes:** reduced") and "`generate.num_docs=20`" in report.sizes
    assert report.sizes in report.path.read_text()


class _Console(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("tty", [False, True])
def test_progress_shows_one_line_per_replica_and_logs_everything(tty):
    console, logfile = _Console(tty), io.StringIO()
    # arms may differ in their stages (here, accumulate has one more: its probes)
    progress = Progress("x", {("replace", 0): 2, ("accumulate", 0): 3}, console=console, logfile=logfile)
    for message in ["replace seed 0: ngram, ...", "[replace/seed_0] torch threads: 1",
                    "[replace/seed_0] gen_00/data done in 0.1 s", "[replace/seed_0] gen_00/train done in 2.0 s",
                    "[accumulate/seed_0] gen_00/data done in 0.1 s", "[accumulate/seed_0] gen_00/train done in 1.5 s",
                    "[accumulate/seed_0] gen_00/probes done in 0.5 s"]:
        progress(message)
    assert logfile.getvalue().count("\n") == 7  # every message is in the log
    lines = console.getvalue().split("\n")
    if tty:  # one line per replica, rewritten in place as its stages finish
        assert console.getvalue().count("\r") == 5 and len(lines) == 3
        assert "accumulate seed 0: 3/3 stages (gen_00/probes)" in lines[1]
    else:
        assert lines[0].startswith("  replace seed 0: done  [1/2 replicas")
        assert lines[1].startswith("  accumulate seed 0: done  [2/2")


def test_progress_reads_a_sweeps_finished_replicas():
    """Under the demo's sweep the stage lines stay in the Ray workers: the sweep's line per replica moves the count."""
    console, logfile = _Console(False), io.StringIO()
    progress = Progress("x", {("replace", 0): 12, ("replace", 1): 12}, console=console, logfile=logfile)
    for message in ["sweep: 2 replica(s) to run, 0 finished before; CPUs per replica on {'CPU': 2.0}",
                    "sweep: replace/seed_1 done (31 s)", "sweep: replace/seed_0 skipped (finished before) (0 s)"]:
        progress(message)
    lines = console.getvalue().splitlines()
    assert lines[0].startswith("  replace seed 1: done  [1/2 replicas") and lines[1].startswith("  replace seed 0: done  [2/2")
    assert len(lines) == 2 and logfile.getvalue().count("\n") == 3


def test_replicas_run_in_turn_when_ray_does_not_start(tmp_path, monkeypatch):
    """Ray's start can time out on an overloaded machine: the demo runs the same replicas one after another."""
    ray = pytest.importorskip("ray")
    from lm_collapse.demo import run_replicas

    def refuse(*args, **kwargs):
        raise Exception("The current node timed out during startup.\nmore")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", refuse)
    config = {"name": "tiny", "generations": 1, "seeds": [0, 1], "model": {"backend": "ngram", "n": 2},
              "data": {"source": "shakespeare", "num_train": 100},
              "generate": {"num_docs": 20, "decoding": {"max_new_tokens": 8}},
              "eval": {"enabled": False}, "probes": {"enabled": False}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    lines = []
    run_replicas(tmp_path / "tiny.yaml", tmp_path / "run", ["generate.num_docs=10"], lines.append)
    assert ("Ray did not start (Exception: The current node timed out during startup.); "
            "the replicas run one after another") in lines
    for seed in (0, 1):
        assert (tmp_path / f"run/default/seed_{seed}/gen_00/data_diversity.json").exists()
        recorded = yaml.safe_load((tmp_path / f"run/default/seed_{seed}/config.yaml").read_text())
        assert "generate.num_docs=10" in recorded["overrides"]
