"""Run folders: checksums verified on reopening, dependent stages redone, the lock, config changes."""
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from recursion.rundir import RunDir, RunFolderError, RunLock, check_compatible, config_changes

CONFIG = {"name": "x", "generations": 2, "model": {"backend": "ngram", "n": 2}}
INPUTS = {"b": ["a"], "c": ["b"], "d": []}  # c reads b, which reads a


def open_run(path, config=CONFIG, log=None):
    return RunDir(path, config, seed=0, log=log or (lambda s: None), inputs=lambda name: INPUTS.get(name, []))


def do(run, name, text):
    with run.stage(name, [run.path / f"{name}.txt"]):
        (run.path / f"{name}.txt").write_text(text)


def test_damaged_files_are_redone_and_their_readers_only_if_they_changed(tmp_path):
    run = open_run(tmp_path)
    for name in "abcd":
        do(run, name, f"output of {name}")
    (tmp_path / "a.txt").write_text("output of")  # truncated
    log = []
    run = open_run(tmp_path, log=log.append)
    assert [n for n in "abcd" if not run.done(n)] == ["a"] and "a.txt has 9 bytes, 11 were written: redoing a" in log[0]
    do(run, "a", "output of a")  # redone to the same bytes: b and c stand
    assert all(run.done(n) for n in "abcd")
    (tmp_path / "a.txt").write_text("output of A")  # same size, other bytes
    run = open_run(tmp_path)
    assert not run.done("a")
    do(run, "a", "a different output")  # redone to other bytes: b is stale, then c once b changes
    assert [n for n in "abcd" if not run.done(n)] == ["b"]
    do(run, "b", "b, from the new a")
    assert [n for n in "abcd" if not run.done(n)] == ["c"]


def test_a_run_killed_before_the_redo_still_redoes_the_readers(tmp_path):
    run = open_run(tmp_path)
    for name in "abc":
        do(run, name, f"output of {name}")
    (tmp_path / "a.txt").write_text("output of A")  # damaged
    open_run(tmp_path)  # finds it, drops a ... and is killed before a is redone
    run = open_run(tmp_path)  # the next run has only the manifest to go by
    assert [n for n in "abc" if not run.done(n)] == ["a"]
    assert json.loads((tmp_path / "manifest.json").read_text())["redo"]["a"]["files"]["a.txt"]["size"] == 11
    do(run, "a", "a different output")
    assert [n for n in "abc" if not run.done(n)] == ["b"]  # b was built from the old a
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest["redo"]) == ["b"]  # recorded in the same write as a
    run = open_run(tmp_path)
    do(run, "b", "b, from the new a")
    assert [n for n in "abc" if not run.done(n)] == ["c"]
    do(run, "c", "output of c")  # the same bytes as before: nothing more to redo
    assert all(run.done(n) for n in "abc") and "redo" not in json.loads((tmp_path / "manifest.json").read_text())


def test_missing_file_is_redone(tmp_path):
    run = open_run(tmp_path)
    do(run, "d", "x")
    os.remove(tmp_path / "d.txt")
    assert not open_run(tmp_path).done("d")


def test_config_changes_are_named_and_generations_may_grow(tmp_path):
    open_run(tmp_path)
    changed = {**CONFIG, "model": {"backend": "ngram", "n": 3}, "seeds": [1]}
    # no stage finished yet (the run failed at once): the corrected config takes the folder over
    assert check_compatible(tmp_path, changed) == "no stage had finished: the new config replaces the old one"
    do(open_run(tmp_path), "a", "x")
    with pytest.raises(RunFolderError, match=r"different config \(model.n: 2 -> 3; seeds: \(absent\) -> \[1\]\)"):
        open_run(tmp_path, changed)
    assert check_compatible(tmp_path, {**CONFIG, "generations": 5}) == "extending the run: generations 2 -> 5"
    with pytest.raises(RunFolderError, match="generations: 2 -> 1"):
        check_compatible(tmp_path, {**CONFIG, "generations": 1})
    run = open_run(tmp_path, {**CONFIG, "generations": 5})
    assert run.manifest["config"]["generations"] == 5
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["generations"] == 5
    # a key added to the config since: accepted at its default
    assert config_changes(CONFIG, {**CONFIG, "probes": {"split": None}}, {"probes": {"split": None}}) == ([], False)


def test_a_run_folder_of_the_previous_format_resumes(tmp_path):
    """Format 1: the manifest held the config's digest only, and no files."""
    text = yaml.safe_dump(CONFIG, sort_keys=False)
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "manifest.json").write_text(json.dumps({
        "config_sha256": hashlib.sha256(text.encode()).hexdigest(), "seed": 0, "stages": {"a": {"seconds": 1.0}}}))
    new = {**CONFIG, "probes": {"prompts_file": None}}  # a field added since, at its default
    run = RunDir(tmp_path, new, seed=0, log=lambda s: None, defaults={"probes": {"prompts_file": None}})
    assert run.done("a") and run.manifest["config"] == new


@pytest.mark.parametrize("content", ['{"stages": ', "[1, 2]", ""])
def test_corrupt_manifest_is_named(tmp_path, content):
    open_run(tmp_path)
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(RunFolderError, match=f"{tmp_path / 'manifest.json'}"):
        open_run(tmp_path)


def test_a_file_in_place_of_the_folder(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(RunFolderError, match="run is a file, not a folder"):
        open_run(tmp_path / "run" / "arm" / "seed_0")


def test_lock_refuses_a_live_process_and_takes_over_a_dead_ones(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        with pytest.raises(RunFolderError, match=f"in use by process {sleeper.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()
    log = []
    with RunLock(tmp_path, log=log.append):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
        assert f"taking over the lock of process {sleeper.pid}" in log[0]
    assert not (tmp_path / ".lock").exists()
    (tmp_path / ".lock").write_text("1 some-other-host\n")  # another machine's process: cannot tell, refuse
    with pytest.raises(RunFolderError, match="in use by process 1 on some-other-host"):
        RunLock(tmp_path).acquire()


def test_taking_over_a_stale_lock_never_removes_a_fresh_one(tmp_path):
    lock = RunLock(tmp_path, log=lambda s: None)
    (tmp_path / ".lock").write_text(f"999999999 {os.uname().nodename}\n")  # a dead process's
    fresh = f"{os.getppid()} {os.uname().nodename}\n"  # another process took it over meanwhile

    def check_then_race():
        (tmp_path / ".lock").write_text(fresh)
        return 999999999

    lock.check = check_then_race
    lock._stale_or_refuse()
    assert (tmp_path / ".lock").read_text() == fresh and sorted(p.name for p in tmp_path.iterdir()) == [".lock"]
    with pytest.raises(RunFolderError, match=f"in use by process {os.getppid()}"):
        RunLock(tmp_path).acquire()


# -- locks that survive dead processes and hosts: the heartbeat ------------------------------------
def age_lock(folder, seconds):
    """Make the lock file's heartbeat (its modification time) ``seconds`` old."""
    then = time.time() - seconds
    os.utime(folder / ".lock", (then, then))


def test_a_dead_hosts_lock_is_taken_over_once_its_heartbeat_is_stale_and_a_live_one_refused(tmp_path):
    (tmp_path / ".lock").write_text("4242 dead-node\n")
    age_lock(tmp_path, 299)  # another host, heartbeat 299 s old: could still be at work
    with pytest.raises(RunFolderError, match=r"in use by process 4242 on dead-node \(lock file .*, heartbeat 299 s "
                                             r"ago\); .* once its heartbeat is 300 s old, or now with --break-lock"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text() == "4242 dead-node\n"
    age_lock(tmp_path, 301)
    log = []
    with RunLock(tmp_path, log=log.append):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    assert log == [f"[{tmp_path}] taking over the lock of process 4242 on dead-node (heartbeat 301 s old, stale after 300 s)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing left behind


def test_break_lock_takes_another_hosts_lock_and_names_it_but_never_a_running_local_process(tmp_path):
    (tmp_path / ".lock").write_text("4242 other-node\n")  # fresh heartbeat
    log = []
    with RunLock(tmp_path, log=log.append, break_lock=True):
        pass
    assert log == [f"[{tmp_path}] taking over the lock of process 4242 on other-node (--break-lock)"]
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(f"{sleeper.pid} {os.uname().nodename}\n")
        with pytest.raises(RunFolderError, match=f"in use by process {sleeper.pid} .*; wait for it to finish \\(or stop it\\)$"):
            RunLock(tmp_path, break_lock=True).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_holder_refreshes_its_heartbeat_and_stops_when_its_lock_is_taken(tmp_path):
    lock = RunLock(tmp_path, log=lambda s: None, heartbeat=0.05)
    lost = []
    lock.on_lost = lambda: lost.append(True)
    with lock:
        age_lock(tmp_path, 1000)
        deadline = time.time() + 10
        while time.time() - (tmp_path / ".lock").stat().st_mtime > 60 and time.time() < deadline:
            time.sleep(0.05)
        assert time.time() - (tmp_path / ".lock").stat().st_mtime < 60  # refreshed: a live lock is never stale
        assert not lost
        (tmp_path / ".lock").write_text("4242 other-node\n")  # taken over (this process looked dead)
        while not lost and time.time() < deadline:
            time.sleep(0.05)
        assert lost == [True]
    assert (tmp_path / ".lock").read_text() == "4242 other-node\n"  # release leaves the new holder's lock


def test_a_retry_waits_for_another_hosts_lock_to_go_stale(tmp_path):
    (tmp_path / ".lock").write_text("4242 dead-node\n")
    start = time.monotonic()
    with RunLock(tmp_path, log=lambda s: None, wait=10, stale_after=0.5):
        assert (tmp_path / ".lock").read_text().split()[0] == str(os.getpid())
    assert 0.4 < time.monotonic() - start < 9
