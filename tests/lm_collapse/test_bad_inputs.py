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
     "l.txt:1: not valid utf-8 text (byte 0xef); convert it (e.g. iconv -f latin-1 -t utf-8), or give `lm-collapse "
     "metrics` its --encoding"),
    ("metrics", "unknown encoding", lambda t: metrics_args(t, "--encoding", "klingon"), "unknown encoding 'klingon'"),
    ("metrics", "malformed JSONL line", lambda t: ["metrics", str(write(t / "m.jsonl", '{"text": "a b"}\n{"text": \n'))],
     "m.jsonl:2: not valid JSON"),
    ("metrics", "JSONL without the field", lambda t: ["metrics", str(write(t / "f.jsonl", '{"body": "a b"}\n'))],
     "f.jsonl:1: the record has no field 'text'; its fields: body"),
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


# -- issue 18: the rest of the bad-input table ------------------------------------------------------
def jsonl_source(tmp_path, name: str, text: str, *settings, extra=()):
    """``run`` with ``data.source: jsonl:`` a file of 300 good records around ``text`` (written as is)."""
    good = "".join(json.dumps({"text": f"real document number {i} of it"}) + "\n" for i in range(300))
    path = write(tmp_path / name, text.replace("GOOD", good))
    return run_args(tmp_path, f"data.source=jsonl:{path}", *settings, extra=extra)


def arms_config(tmp_path, arms: str):
    return ["run", str(config_file(tmp_path, NO_EVAL + f"arms:\n{arms}")), "--run-dir", str(tmp_path / "new_run"),
            "--dry-run"]


ALIAS_BOMB = ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, "
                                                             f"*{p}, *{p}]\n" for p, c in zip("abcdef", "bcdefg")))
CASES += [
    # a JSONL corpus whose lines are not objects, or whose text is not a string
    ("run", "JSONL: a JSON array saved as .jsonl",
     lambda t: jsonl_source(t, "arr.jsonl", json.dumps([{"text": "a b c d e f"}] * 300) + "\n"),
     "arr.jsonl:1: a JSONL line must be a JSON object ({\"text\": ...}), got an array"),
    ("run", "JSONL: a scalar first line", lambda t: jsonl_source(t, "s.jsonl", "5\nGOOD"),
     "s.jsonl:1: a JSONL line must be a JSON object ({\"text\": ...}), got a number"),
    ("run", "JSONL: a list in the middle", lambda t: jsonl_source(t, "m.jsonl", "GOOD[1, 2]\nGOOD"),
     "m.jsonl:301: a JSONL line must be a JSON object ({\"text\": ...}), got an array"),
    ("run", "JSONL: text null after the first", lambda t: jsonl_source(t, "n.jsonl", 'GOOD{"text": null}\n'),
     "n.jsonl:301: field 'text' is null, not a string"),
    ("run", "JSONL: text a number", lambda t: jsonl_source(t, "n.jsonl", 'GOOD{"text": 7}\n'),
     "n.jsonl:301: field 'text' is a number, not a string"),
    ("run", "JSONL: text missing", lambda t: jsonl_source(t, "n.jsonl", 'GOOD{"body": "x"}\n'),
     "n.jsonl:301: the record has no field 'text'; its fields: body"),
    ("metrics", "JSONL: a JSON array saved as .jsonl",
     lambda t: ["metrics", str(write(t / "a.jsonl", '[{"text": "a b"}, {"text": "c d"}]\n'))],
     "a.jsonl:1: a JSONL line must be a JSON object"),
    ("run", "Latin-1 JSONL: the hint names no option run lacks",
     lambda t: run_args(t, "data.source=jsonl:" + str(write(t / "l.jsonl", '{"text": "caf\xe9 au lait"}\n'.encode("latin-1")))),
     "l.jsonl:1: not valid utf-8 text (byte 0xe9); convert it (e.g. iconv -f latin-1 -t utf-8), or give `lm-collapse metrics`"),
    # names used as folders
    ("run", "arm ../x", lambda t: arms_config(t, "  ../x: {}\n"), "arm = '../x' is not a folder name"),
    ("run", "arm an absolute path", lambda t: arms_config(t, "  /tmp/x: {}\n"), "arm = '/tmp/x' is not a folder name"),
    ("run", "name ../../x", lambda t: run_args(t, "name=../../x", extra=["--dry-run"]), "name = '../../x' is not a folder name"),
    ("run", "arms 5 and '5'", lambda t: arms_config(t, "  5: {}\n  '5': {regime: {name: accumulate}}\n"),
     "arms 5 and '5' would share the folder '5'; rename one"),
    # --dry-run said "ready" for runs that then failed
    ("run", "generations 10^9", lambda t: run_args(t, "generations=1000000000", extra=["--dry-run"]),
     "generations must be <= 10000 (the most a config may ask for)"),
    ("run", "negative seed", lambda t: run_args(t, "seeds=[-1]"), "seeds = [-1]: a seed must be >= 0"),
    # YAML
    ("run", "alias bomb in eval.metadata",
     lambda t: ["run", str(config_file(t, NO_EVAL.replace("eval: {enabled: false}", "eval:\n  enabled: false\n  metadata:\n"
                                                          + "".join("    " + line + "\n" for line in ALIAS_BOMB.splitlines())))),
                "--run-dir", str(t / "new_run"), "--dry-run"],
     "tiny.yaml:12: its aliases expand to more than 100,000 values (an alias bomb?)"),
    ("run", "duplicate key", lambda t: ["run", str(config_file(t, NO_EVAL + "generations: 3\n")), "--dry-run"],
     "tiny.yaml:10:1: YAML error: key 'generations' is given twice (first on line 3); keep one"),
    ("run", "--set with a duplicate key", lambda t: run_args(t, "model={n: 2, n: 3}"),
     "--set model:1:8: YAML error: key 'n' is given twice (first on line 1)"),
    ("run", "--run-dir ''", lambda t: ["run", str(config_file(t)), "--run-dir", ""], "--run-dir is empty"),
    # text inputs
    ("metrics", "/dev/zero", lambda t: ["metrics", "/dev/zero"],
     "/dev/zero looks binary (it holds NUL bytes, the first at byte 0)"),
    ("metrics", "NUL after the first 8 KB", lambda t: ["metrics", str(write(t / "late.txt", b"a b c\n" * 3000 + b"\0\n"))],
     "late.txt looks binary (it holds NUL bytes, the first at byte 18000)"),
    ("metrics", "n-gram order out of range", lambda t: metrics_args(t, "--metrics", "distinct_99999999999999999999"),
     "metric 'distinct_99999999999999999999': the n-gram order must be in [1, 1000]"),
    ("metrics", "--metrics ,", lambda t: metrics_args(t, "--metrics", ","), "--metrics ',' names no metric"),
    ("metrics", "hub-offline embedder", lambda t: metrics_args(t, "--metrics", "div_sem", "--option",
                                                             "embed.model_name=nobody/no-embedder"),
     "sentence embedder 'nobody/no-embedder' cannot be loaded (not a local folder, not in the hub cache"),
    ("metrics", "unique_n.ns not a list", lambda t: metrics_args(t, "--metrics", "unique_n", "--option", "unique_n.ns=5"),
     "ns must list n-gram orders, e.g. [1, 2, 3], got 5"),
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
    assert [len(m["stages"]) for m in manifests] == [12, 12]  # 2 generations x (data, train, generate, select, probes, diversity)
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
        elif not name.endswith(("manifest.json", "environment.json")):  # records of how it ran
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
    added = ("data", "diversity", "eval", "generate", "probes", "select", "train")
    assert sorted(set(after) - set(stages)) == [f"gen_02/{s}" for s in added]
    assert any("extending the run: generations 2 -> 3" in line for line in log)
    assert "generations: 3" in (run / "default/seed_0/config.yaml").read_text()


@pytest.mark.slow
def test_missing_extra_is_an_install_hint_before_any_generation(tmp_path):
    """`pip install -e .` alone (no sentence-transformers / spaCy): the VS and _full tasks say what to install."""
    from recursion.backends.ngram.lm import NgramLM

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


# -- issue 18: run folders and files ----------------------------------------------------------------
def test_a_read_only_run_folder_is_refused_by_the_dry_run(tmp_path, monkeypatch, capsys):
    """A folder nothing can be written into fails the checks, not the first write (root ignores the
    mode bits, so there os.access is told what a read-only mount would say)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real(p, mode))
    try:
        for target in (folder, folder / "run"):
            assert main(["run", str(config_file(tmp_path)), "--run-dir", str(target), "--dry-run"]) == 2
            err = capsys.readouterr().err.strip()
            assert err.startswith(f"lm-collapse run: error: --run-dir {target}: {folder} is not writable") and "\n" not in err
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("damage, problem", [
    (lambda stages: stages.update({"gen_00/data": "done"}), "stages 'gen_00/data': a stage record must be an object, got str"),
    (lambda stages: stages["gen_00/train"].update(files=[1]), "stages 'gen_00/train': 'files' must be an object"),
    (lambda stages: stages["gen_00/train"]["files"].update({"gen_00/model/ngram.json": {"size": "12"}}),
     "stages 'gen_00/train': file 'gen_00/model/ngram.json' needs an integer 'size' and a 'sha256'"),
])
def test_a_malformed_stage_or_file_record_is_a_corrupt_manifest(run_copy, damage, problem, capsys):
    config, run = run_copy
    path = run / "default/seed_0/manifest.json"
    manifest = json.loads(path.read_text())
    damage(manifest["stages"])
    path.write_text(json.dumps(manifest))
    before = snapshot(run)
    for extra in (["--dry-run"], []):
        assert main(["run", str(config), "--run-dir", str(run), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"lm-collapse run: error: {path} is a corrupt manifest ({problem}); move the folder aside (or "
                       "delete it) to start over")
    assert snapshot(run) == before


@pytest.mark.parametrize("errno", [28, 27])  # ENOSPC (disk full), EFBIG (file too large)
def test_a_write_that_fails_names_the_file(tmp_path, monkeypatch, capsys, errno):
    def fail(fd):
        raise OSError(errno, os.strerror(errno))

    monkeypatch.setattr(os, "fsync", fail)
    assert main(["run", str(config_file(tmp_path)), "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"lm-collapse run: error: {tmp_path / 'run/default/seed_0/config.yaml'}: {os.strerror(errno)}"
    assert not [p for p in (tmp_path / "run").rglob("*.tmp")]  # no half-written file left


def test_files_of_a_run_honour_the_umask(tmp_path):
    """Written atomically (mkstemp makes 0600) or not, every file of a run folder is 0666 less the umask:
    readable by the group under umask 022 or 027, as save_pretrained's files are."""
    from recursion.driver import run_experiment

    for mask in (0o022, 0o027):
        old = os.umask(mask)
        try:
            run_experiment(config_file(tmp_path), tmp_path / f"run{mask:o}", log=quiet)
        finally:
            os.umask(old)
        modes = {str(p.relative_to(tmp_path)): p.stat().st_mode & 0o777 for p in (tmp_path / f"run{mask:o}").rglob("*")
                 if p.is_file()}
        assert len(modes) > 10 and set(modes.values()) == {0o666 & ~mask}, modes


def test_a_utf8_byte_order_mark_is_read_not_refused(tmp_path, capsys):
    """A JSONL saved with a BOM (Windows editors): json's own error suggested "utf-8-sig", an option
    nothing has; it reads as UTF-8."""
    path = write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + "".join(
        json.dumps({"text": f"real document number {i} of it"}) + "\n" for i in range(400)).encode())
    assert read_jsonl(path)[0] == {"text": "real document number 0 of it"}
    assert main(["run", str(config_file(tmp_path)), "--run-dir", str(tmp_path / "r"), "--set", f"data.source=jsonl:{path}",
                 "--dry-run"]) == 0


def test_metrics_undefined_on_a_corpus_are_said_so(tmp_path, capsys):
    """A file of punctuation only has no word token: distinct-n, TTR, entropies and top-k share are 0/0 —
    ``undefined`` in the table, ``null`` in the JSON (the lexical functions keep their documented 0.0)."""
    from metrics.lexical import distinct_n

    path = write(tmp_path / "p.txt", "!!! ...\n?? ,,\n")
    assert main(["metrics", str(path), "--format", "json", "--quiet"]) == 0
    row = json.loads(capsys.readouterr().out)[str(path)]
    undefined = {"distinct_1", "distinct_2", "distinct_3", "ttr", "entropy_1", "top10_share"}
    assert {m for m, v in row.items() if v is None} == undefined
    assert row["mean_length"] == 0.0 and row["compression_ratio"] > 0
    assert main(["metrics", str(path), "--metrics", "distinct_1,mean_length", "--quiet"]) == 0
    assert "| undefined | 0.0000 |" in capsys.readouterr().out
    assert distinct_n(["!!!"], 1) == 0.0


@pytest.mark.slow
def test_a_retrained_hf_model_with_the_same_weights_redoes_nothing_after_it(tmp_path):
    """A truncated generation-0 checkpoint is retrained; its weights come out byte-identical, and the
    Trainer's wall times (model/train_times.json) are not recorded, so no later stage is redone. Every
    file of the HF run folder, model.safetensors included, has the umask's mode."""
    from recursion.driver import run_experiment

    config = config_file(tmp_path, NO_EVAL.replace("model: {backend: ngram, n: 2, alpha: 0.05}",
                                                   "model: {backend: hf_scratch, n_layer: 1, n_embd: 16, n_head: 2, "
                                                   "n_positions: 32, vocab_size: 300, train: {max_steps: 3, batch_size: 8, "
                                                   "block_size: 16}}\nruntime: {threads: 1}")
                         .replace("max_new_tokens: 12", "max_new_tokens: 4").replace("num_docs: 60", "num_docs: 16"))
    old = os.umask(0o027)
    try:
        run_experiment(config, tmp_path / "run", log=quiet)
    finally:
        os.umask(old)
    replica = tmp_path / "run/default/seed_0"
    modes = {str(p.relative_to(replica)): p.stat().st_mode & 0o777 for p in replica.rglob("*") if p.is_file()}
    assert set(modes.values()) == {0o640}, modes  # model.safetensors too (safetensors writes it 0600)
    weights = replica / "gen_00/model/model.safetensors"
    reference = {k: v for k, v in snapshot(replica).items() if not k.endswith(("manifest.json", "train_times.json"))}
    assert json.loads((replica / "gen_00/model/train_times.json").read_text())[-1]["train_runtime"] > 0
    weights.write_bytes(weights.read_bytes()[:1000])
    log = []
    run_experiment(config, tmp_path / "run", log=log.append)
    assert any("gen_00/model/model.safetensors has 1000 bytes" in line and "redoing gen_00/train" in line for line in log)
    redone = [line for line in log if " done in " in line]
    assert len(redone) == 1 and "gen_00/train" in redone[0], log
    assert {k: v for k, v in snapshot(replica).items() if k in reference} == reference
