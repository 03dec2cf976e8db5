"""Bad input never costs a run: every entry point × every bad input of issue 9 gives one line on
stderr naming the problem, exit status 2, no traceback, and loses or half-writes nothing.

Each row of :data:`CASES` is (entry point, what is wrong, a setup that returns the arguments, the
expected message); :func:`test_one_line_error` runs it through ``lm_collapse.cli.main`` and checks
the folder it touched is byte-identical afterwards (or, for a new run folder, was never created).
The run-folder faults that are *repaired* rather than refused (a truncated artifact, a cut
selection, a stale lock, more generations) are the tests below the table. Everything runs on the
n-gram back end at toy sizes, offline.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lm_collapse.cli import main
from recursion.artifacts import read_jsonl, read_training_texts

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """
name: tiny
generations: 2
seeds: [0]
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 200}
generate: {num_docs: 60, decoding: {max_new_tokens: 12}}
eval: {tasks: [collapse_ppl_shakespeare], limit: 2}
probes: {num_prompts: 10}
"""


def quiet(_line):
    pass


@pytest.fixture(autouse=True)
def lm_eval_logs_to_the_real_stderr():
    """lm-eval's log handler, made once per process by `eval`, would keep the (then closed) stderr of the
    test that made it: point it at the process's own stderr, outside what a test captures."""
    import logging

    for handler in logging.getLogger("lm_eval").handlers:
        if type(handler) is logging.StreamHandler and getattr(handler.stream, "closed", False):
            handler.stream = sys.__stderr__  # (setStream would flush the closed one)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished two-generation run (config, folder) made once; tests work on copies."""
    from recursion.driver import run_experiment

    root = tmp_path_factory.mktemp("finished")
    config = root / "tiny.yaml"
    config.write_text(CONFIG)
    run_experiment(config, root / "run", log=quiet)
    return config, root / "run"


@pytest.fixture
def run_copy(finished, tmp_path):
    config, run = finished
    shutil.copytree(run, tmp_path / "run")
    return config, tmp_path / "run"


def snapshot(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- the table ------------------------------------------------------------------------------------
NO_EVAL = CONFIG.replace("eval: {tasks: [collapse_ppl_shakespeare], limit: 2}", "eval: {enabled: false}")


def write(path: Path, data) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def lines_file(tmp_path):
    return write(tmp_path / "gen.txt", "the cat sat on the mat\nthe dog ran off\n")


def config_file(tmp_path, text=NO_EVAL):
    return write(tmp_path / "tiny.yaml", text)


def corpus_jsonl(tmp_path, n):
    return write(tmp_path / f"corpus{n}.jsonl", "".join(json.dumps({"text": f"real document number {i} of it"}) + "\n"
                                                         for i in range(n)))


def run_args(tmp_path, *settings, extra=()):
    """``run`` of the tiny config into a new folder, with ``--set`` of each setting."""
    sets = [arg for kv in settings for arg in ("--set", kv)]
    return ["run", str(config_file(tmp_path)), "--run-dir", str(tmp_path / "new_run"), *sets, *extra]


def metrics_args(tmp_path, *args):
    return ["metrics", str(lines_file(tmp_path)), *args]


CASES = [
    # metrics
    ("metrics", "missing file", lambda t: ["metrics", str(t / "nope.txt")], "no such file: "),
    ("metrics", "empty file", lambda t: ["metrics", str(write(t / "e.txt", ""))], "e.txt: no texts (the file is empty)"),
    ("metrics", "binary file", lambda t: ["metrics", str(write(t / "b.bin", b"\x7fELF\x00\x01\x02" * 50))], "looks binary"),
    ("metrics", "Latin-1 file", lambda t: ["metrics", str(write(t / "l.txt", "na\xefve caf\xe9\n".encode("latin-1")))],
     "l.txt:1: not valid utf-8 text (byte 0xef); give its encoding (e.g. --encoding latin-1)"),
    ("metrics", "unknown encoding", lambda t: metrics_args(t, "--encoding", "klingon"), "unknown encoding 'klingon'"),
    ("metrics", "malformed JSONL line", lambda t: ["metrics", str(write(t / "m.jsonl", '{"text": "a b"}\n{"text": \n'))],
     "m.jsonl:2: not valid JSON"),
    ("metrics", "JSONL without the field", lambda t: ["metrics", str(write(t / "f.jsonl", '{"body": "a b"}\n'))],
     "record 1 has no field 'text'"),
    ("metrics", "a folder", lambda t: ["metrics", str(t)], "is a folder, not a file"),
    ("metrics", "unknown metric", lambda t: metrics_args(t, "--metrics", "distinct_2,dictinct_3"),
     "unknown metric 'dictinct_3'; valid names:"),
    ("metrics", "unknown option", lambda t: metrics_args(t, "--option", "self_bleu_4.bogus=1"),
     "option self_bleu_4.bogus: self_bleu_4 has no option 'bogus'; its options: smoothing, sample_size, seed"),
    ("metrics", "option of a metric not asked", lambda t: metrics_args(t, "--option", "nope_metric.x=1"),
     "option nope_metric.*: 'nope_metric' is not among the metrics asked"),
    ("metrics", "malformed option", lambda t: metrics_args(t, "--option", "self_bleu_4=3"), "--option expects METRIC.KEY=VALUE"),
    ("metrics", "bad option value", lambda t: metrics_args(t, "--metrics", "self_bleu_4", "--option", "self_bleu_4.smoothing=m9"),
     "gen.txt: unknown smoothing 'm9'"),
    ("metrics", "missing reference",
     lambda t: metrics_args(t, "--metrics", "memorization_4", "--reference", str(t / "train.txt")), "no such file: "),
    # run
    ("run", "missing config", lambda t: ["run", str(t / "nope.yaml")], "no config file"),
    ("run", "config is a folder", lambda t: ["run", str(t)], "is a folder, not a config file"),
    ("run", "YAML syntax error",
     lambda t: ["run", str(write(t / "bad.yaml", "name: x\nmodel: {backend: ngram\ngenerations: 3\n"))],
     "bad.yaml:3:12: YAML syntax error: expected ',' or '}', but got ':'"),
    ("run", "--set not YAML", lambda t: run_args(t, "generations=["), "--set generations=[: '[' is not a YAML value"),
    ("run", "--set bad value", lambda t: run_args(t, "model.alpha=-1", extra=["--dry-run"]), "model.alpha must be > 0"),
    ("run", "--set wrong type", lambda t: run_args(t, "generations=abc"), "generations must be int, got 'abc'"),
    ("run", "--set unknown key", lambda t: run_args(t, "generate.num_doc=5"), "did you mean 'num_docs'?"),
    ("run", "--set KEY without =", lambda t: run_args(t, "generations"), "--set expects KEY=VALUE"),
    ("run", "run folder is a file", lambda t: ["run", str(config_file(t)), "--run-dir", str(write(t / "afile", "x"))],
     "afile is a file, not a folder"),
    ("run", "data file missing", lambda t: run_args(t, f"data.source=jsonl:{t / 'typo.jsonl'}"), "typo.jsonl"),
    ("run", "data source typo", lambda t: run_args(t, "data.source=shakespear"), "data.source = 'shakespear' is not valid"),
    ("run", "hub data offline", lambda t: run_args(t, "data.source=hf:nobody/no_such_dataset"),
     "the Hugging Face hub cannot be reached (offline?"),
    ("run", "150 documents for 100 + 200 probes",
     lambda t: run_args(t, f"data.source=jsonl:{corpus_jsonl(t, 150)}", "data.num_train=100", "probes.num_prompts=200"),
     "data.num_train = 100 and probes.num_prompts = 200 (held out) need 300 documents"),
    ("run", "too few fresh documents for mix",
     lambda t: run_args(t, f"data.source=jsonl:{corpus_jsonl(t, 250)}", "data.num_train=100", "probes.num_prompts=50",
                        "regime.name=mix", "regime.fraction=0.5", "generations=4"),
     "regime 'mix' needs 50 fresh real documents in each of generations 1..3 (150 in all), but data.source"),
    ("run", "unknown eval task", lambda t: run_args(t, "eval.enabled=true", "eval.tasks=[collapse_ppl_shakespear]"),
     "no lm-eval task named 'collapse_ppl_shakespear'; did you mean collapse_ppl_shakespeare"),
    ("run", "hub eval task offline", lambda t: run_args(t, "eval.enabled=true", "eval.tasks=[collapse_ppl_wikitext2]"),
     "offline?"),
    ("run", "--resume without a folder", lambda t: run_args(t, extra=["--resume"]), "--resume: no run folder"),
    ("run", "missing generate.prompts_file",
     lambda t: run_args(t, "generate.prompt=task", f"generate.prompts_file={t / 'p.txt'}"), "no such file"),
    # report
    ("report", "missing folder", lambda t: ["report", str(t / "nope")], "no run folder"),
    ("report", "empty folder", lambda t: ["report", str(t)], "no replica (folder with manifest.json) under"),
    ("report", "unknown format", lambda t: ["report", str(t), "--format", "docx"], "unknown format 'docx'"),
    # eval
    ("eval", "relative missing model folder",
     lambda t: ["eval", "--model", "hf", "--model_args", "pretrained=my_runs/ckpt", "--tasks", "collapse"],
     "pretrained=my_runs/ckpt: no such model folder"),
    ("eval", "uncached hub model offline",
     lambda t: ["eval", "--model", "hf", "--model_args", "pretrained=nobody/no-model", "--tasks", "collapse"],
     "the hub cache has no model 'nobody/no-model'"),
    ("eval", "no task", lambda t: ["eval", "--model", "hf"], "no task given: pass --tasks"),
    # demo, vs-demo
    ("demo", "output is a file", lambda t: ["demo", "--out", str(write(t / "afile", "x")), "--quick"], "is a file, not a folder"),
    ("vs-demo", "missing model folder", lambda t: ["vs-demo", "--model_args", "pretrained=my_runs/ckpt"], "no such model folder"),
    ("vs-demo", "bad --k", lambda t: ["vs-demo", "--k", "0"], "--k must be >= 1"),
    ("vs-demo", "bad --threshold", lambda t: ["vs-demo", "--threshold", "2"], "--threshold must be in (0, 1]"),
    ("vs-demo", "unknown model", lambda t: ["vs-demo", "--model", "no-such-model", "--model_args", f"pretrained={t}"],
     "no-such-model"),
]


@pytest.mark.parametrize("entry, what, make_args, expected", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_one_line_error(entry, what, make_args, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_runs").mkdir()  # so my_runs/ckpt is a local path, as in the issue
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(key, "1")
    args = make_args(tmp_path)
    before = snapshot(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line.lower()]  # progress bars and logs aside
    assert "Traceback" not in err and len(lines) == 1 and err.strip().splitlines()[-1] == lines[0], err
    assert lines[0].startswith(f"lm-collapse {entry}: error: ") and expected in lines[0], lines[0]
    assert snapshot(tmp_path) == before  # nothing written, nothing lost
    assert not (tmp_path / "new_run").exists()


def test_the_real_command_line_prints_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lm_collapse.cli", "run", str(config_file(tmp_path)), "--set", "generations=["],
                          capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_compression_ratio_is_the_same_on_every_call(tmp_path, capsys):
    path = write(tmp_path / "g.txt", "".join(f"line {i} of the text {i % 7}\n" for i in range(300)))
    values = []
    for _ in range(2):
        assert main(["metrics", str(path), "--metrics", "compression_ratio", "--format", "json", "--quiet"]) == 0
        values.append(json.loads(capsys.readouterr().out)[str(path)]["compression_ratio"])
        time.sleep(1.1)  # the gzip header's clock would differ by a second
    assert values[0] == values[1]


def test_latin1_reads_with_its_encoding(tmp_path, capsys):
    path = write(tmp_path / "l.txt", "na\xefve caf\xe9 au lait\nle caf\xe9 est chaud\n".encode("latin-1"))
    assert main(["metrics", str(path), "--encoding", "latin-1", "--metrics", "distinct_1", "--quiet"]) == 0


def test_a_typo_in_the_data_source_leaves_no_folder_behind(tmp_path, capsys):
    """The corrected config then runs (before: the typo's manifest refused it)."""
    config = config_file(tmp_path)
    assert main(["run", str(config), "--run-dir", str(tmp_path / "r"), "--set", "data.source=jsonl:corpus.jsonl"]) == 2
    assert not (tmp_path / "r").exists()
    corpus_jsonl(tmp_path, 400)
    source = f"data.source=jsonl:{tmp_path / 'corpus400.jsonl'}"
    assert main(["run", str(config), "--run-dir", str(tmp_path / "r"), "--set", source, "--set", "generations=1"]) == 0


# -- run folders: refused without loss -------------------------------------------------------------
def test_corrupt_manifest_is_named(run_copy, capsys):
    config, run = run_copy
    manifest = run / "default/seed_0/manifest.json"
    manifest.write_text('{"stages": \n')
    before = snapshot(run)
    assert main(["run", str(config), "--run-dir", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"lm-collapse run: error: {manifest} is unreadable (") and "\n" not in err
    assert snapshot(run) == before


def test_changed_config_names_the_keys(run_copy, capsys):
    config, run = run_copy
    before = snapshot(run)
    assert main(["run", str(config), "--run-dir", str(run), "--resume", "--set", "model.alpha=0.5",
                 "--set", "generate.decoding.max_new_tokens=20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds a run of a different config (generate.decoding.max_new_tokens: 12 -> 20; model.alpha: 0.05 -> 0.5)" in err
    assert snapshot(run) == before
    assert main(["run", str(config), "--run-dir", str(run), "--resume", "--dry-run", "--set", "model.alpha=0.5"]) == 2


def test_a_folder_in_use_is_refused_naming_the_process(run_copy, capsys):
    config, run = run_copy
    replica = run / "default/seed_0"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (replica / ".lock").write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        before = snapshot(run)
        for extra in ([], ["--dry-run"], ["--break-lock"]):  # --break-lock never overrides a running local process
            assert main(["run", str(config), "--run-dir", str(run), *extra]) == 2
            err = capsys.readouterr().err.strip()
            assert f"is in use by process {sleeper.pid}" in err and "\n" not in err
        assert snapshot(run) == before
    finally:
        sleeper.kill()
        sleeper.wait()
    # its process gone, the lock is stale: taken over, and the finished run is left as it was
    assert main(["run", str(config), "--run-dir", str(run)]) == 0
    assert not (replica / ".lock").exists() and snapshot(run) == {k: v for k, v in before.items() if not k.endswith(".lock")}


def test_a_dead_hosts_lock_needs_no_manual_deletion(run_copy, capsys):
    """Another host's lock: refused while its heartbeat is young, naming host and --break-lock; taken
    over by --break-lock at once (naming the holder), or by anyone once the heartbeat is stale."""
    config, run = run_copy
    lock = run / "default/seed_0/.lock"
    lock.write_text("4242 dead-node\n")
    assert main(["run", str(config), "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is in use by process 4242 on dead-node" in err and "--break-lock" in err and "\n" not in err
    assert main(["run", str(config), "--run-dir", str(run), "--break-lock"]) == 0
    assert "taking over the lock of process 4242 on dead-node (--break-lock)" in capsys.readouterr().out
    lock.write_text("4242 dead-node\n")
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    assert main(["run", str(config), "--run-dir", str(run)]) == 0
    assert "taking over the lock of process 4242 on dead-node (heartbeat 36" in capsys.readouterr().out
    assert not lock.exists()


@pytest.mark.slow
def test_two_processes_on_one_replica_one_per_arm_into_one_folder(tmp_path):
    """While `run --arm a` works (here: stopped mid-run, holding its replica), `run --arm b` runs into the
    same folder to the end; a second `run --arm a` refuses, naming the first's PID; the first then finishes."""
    import signal

    config = write(tmp_path / "tiny.yaml", NO_EVAL + "arms:\n  a: {}\n  b: {model: {alpha: 0.1}}\n")
    cmd = [sys.executable, "-m", "lm_collapse.cli", "run", str(config), "--run-dir", str(tmp_path / "run")]
    first = subprocess.Popen([*cmd, "--arm", "a"], env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        for line in first.stdout:  # it holds its replica once it reports a stage
            if "done in" in line:
                first.send_signal(signal.SIGSTOP)
                break
        other_arm = subprocess.run([*cmd, "--arm", "b"], env=ENV, cwd=ROOT, capture_output=True, text=True)
        assert other_arm.returncode == 0, other_arm.stderr
        same_arm = subprocess.run([*cmd, "--arm", "a"], env=ENV, cwd=ROOT, capture_output=True, text=True)
        assert same_arm.returncode == 2 and "Traceback" not in same_arm.stderr
        replica = tmp_path / "run/a/seed_0"
        assert same_arm.stderr.startswith(f"lm-collapse run: error: {replica} is in use by process {first.pid} (lock file "
                                          f"{replica / '.lock'}, heartbeat ")
        assert same_arm.stderr.strip().endswith("s ago); wait for it to finish (or stop it)")
    finally:
        first.send_signal(signal.SIGCONT)
        first.stdout.read()
        assert first.wait() == 0
    manifests = [json.loads((tmp_path / f"run/{arm}/seed_0/manifest.json").read_text()) for arm in "ab"]
    assert [len(m["stages"]) for m in manifests] == [10, 10]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["a", "b"]  # no lock left at the root


# -- run folders: damage detected and repaired -----------------------------------------------------
@pytest.mark.parametrize("artifact", ["gen_01/synthetic.jsonl", "gen_00/lm_eval.json", "gen_01/model/ngram.json"])
def test_truncated_artifact_of_a_finished_run_is_redone(finished, run_copy, artifact, capsys):
    config, run = run_copy
    reference = snapshot(finished[1])
    path = run / "default/seed_0" / artifact
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert main(["run", str(config), "--run-dir", str(run), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"{artifact} has " in out and "redoing" in out
    after = snapshot(run)
    for name, data in reference.items():  # redone to the same bytes; nothing else changed
        if name.endswith("lm_eval.json"):  # dates and timings aside
            assert json.loads(after[name])["results"] == json.loads(data)["results"], name
        elif not name.endswith("manifest.json"):
            assert after[name] == data, name


def test_cut_selection_is_redone_before_the_next_generation_trains(tmp_path, capsys):
    """selected.jsonl cut at a line break, then more generations: the next one trains on all of it."""
    from recursion.driver import run_experiment

    config = config_file(tmp_path, NO_EVAL.replace("num_docs: 60", "num_docs: 500"))
    run_experiment(config, tmp_path / "reference", overrides=["generations=2"], log=quiet)
    run_experiment(config, tmp_path / "run", overrides=["generations=1"], log=quiet)
    selected = tmp_path / "run/default/seed_0/gen_00/selected.jsonl"
    lines = selected.read_text().splitlines(keepends=True)
    selected.write_text("".join(lines[:100]))  # a clean cut: still valid JSONL, 100 of 500 records
    log = []
    run_experiment(config, tmp_path / "run", overrides=["generations=2"], log=log.append)  # extend the run
    assert any("gen_00/selected.jsonl has" in line and "redoing gen_00/select" in line for line in log)
    assert len(read_jsonl(selected)) == 500
    ref, got = tmp_path / "reference/default/seed_0/gen_01", tmp_path / "run/default/seed_0/gen_01"
    assert read_training_texts(got) == read_training_texts(ref) and len(read_training_texts(got)) == 500


def test_a_selection_redone_with_other_bytes_retrains_the_generations_that_referenced_it(tmp_path):
    """Generation 1's training set only references gen_00/selected.jsonl (train_sources.json, the same
    bytes whatever the file holds): when the selection is redone differently, its model is retrained."""
    from recursion.driver import run_experiment

    config = config_file(tmp_path, NO_EVAL)
    run_experiment(config, tmp_path / "run", overrides=["generations=2"], log=quiet)
    manifest_path = tmp_path / "run/default/seed_0/manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # as if the selection had been written by a nondeterministic decoder: a rerun gives other bytes
    manifest["stages"]["gen_00/select"]["files"]["gen_00/selected.jsonl"]["sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    log = []
    run_experiment(config, tmp_path / "run", overrides=["generations=2"], log=log.append)
    for stage in ("data", "train", "generate", "select", "probes"):
        assert f"[default/seed_0] gen_00/select changed: redoing gen_01/{stage}" in log, stage


def test_more_generations_extend_a_finished_run(finished, run_copy):
    from recursion.driver import run_experiment

    config, run = run_copy
    manifest = run / "default/seed_0/manifest.json"
    stages = json.loads(manifest.read_text())["stages"]
    log = []
    run_experiment(config, run, overrides=["generations=3"], resume=True, log=log.append)
    after = json.loads(manifest.read_text())["stages"]
    assert {k: v for k, v in after.items() if k in stages} == stages  # nothing redone
    assert sorted(set(after) - set(stages)) == [f"gen_02/{s}" for s in ("data", "eval", "generate", "probes", "select", "train")]
    assert any("extending the run: generations 2 -> 3" in line for line in log)
    assert "generations: 3" in (run / "default/seed_0/config.yaml").read_text()


@pytest.mark.slow
def test_missing_extra_is_an_install_hint_before_any_generation(tmp_path):
    """`pip install -e .` alone (no sentence-transformers / spaCy): the VS and _full tasks say what to install."""
    from recursion.backends.ngram import NgramLM

    NgramLM(2, alpha=0.01).fit(["the cat sat on the mat", "a dog ran away"]).save(tmp_path / "model")
    for missing, task, hint in (("sentence_transformers", "collapse_vs", "pip install 'lm-collapse[embeddings]'"),
                                ("spacy", "collapse_gen_shakespeare_full", "pip install 'lm-collapse[spacy]'")):
        code = (f"import sys; sys.modules[{missing!r}] = None\n"
                "from lm_collapse.cli import main\n"
                f"sys.exit(main(['eval', '--model', 'collapse-ngram', '--model_args', 'pretrained={tmp_path / 'model'}', "
                f"'--tasks', {task!r}, '--limit', '2']))")
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
        seconds = time.perf_counter() - start
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("lm-collapse eval: error: ") and hint in last
        assert "Running generate_until requests" not in done.stderr and seconds < 60
