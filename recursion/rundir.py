"""One replica's run folder: its manifest, the bookkeeping of finished stages, and its lock.

The folder's layout is :mod:`recursion.artifacts`'s.

A stage counts as done only once its outputs are completely written (each write is atomic) *and*
the manifest says so, with the size and sha256 of every file the stage wrote; a stage
interrupted at any moment is simply run again. When a folder is opened again (a rerun, or
``--resume``), every finished stage's files are checked against the manifest: a missing,
truncated or altered file makes its stage run again (never read), and when the redone stage's
files come out different from the recorded ones, the finished stages that read them
(``inputs``, given by the driver) run again too. A folder holds one config: opening it with
another names the keys that differ, except that ``generations`` may grow (the added
generations run; nothing else is redone), a key added to the config since the run started is
accepted at its default value, and a folder where no stage had finished (a run that failed at
once) takes the new config.

:class:`RunLock` keeps two processes out of one replica folder (several processes may run the
replicas of one experiment folder side by side): a lock file holding the owner's PID and host,
refreshed by a heartbeat; a second process refuses, naming it; the lock of a process that no longer
exists, or whose heartbeat stopped (a dead host), is taken over.
"""
from __future__ import annotations

import _thread
import hashlib
import json
import os
import platform
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import yaml

from .artifacts import CONFIG, LOCK, MANIFEST, UNRECORDED, atomic_write_text, gen_dir

LIBRARIES = ("lm-collapse", "lm_eval", "torch", "transformers", "peft", "datasets", "numpy", "tokenizers")
#: Version of the manifest's layout (2: the config and every stage's files recorded).
FORMAT = 2


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked: a file in its place, another config, a corrupt
    manifest, another process at work in it."""


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def check_folder(path: str | os.PathLike, what: str = "run folder") -> Path:
    """``path``, after checking that it (and every parent that exists) is a folder, not a file, and
    that it (or the nearest folder that exists) is writable."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise RunFolderError(f"{what} {path} is a file, not a folder" if p == path
                                     else f"{what} {path}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):  # a read-only folder (or file system) is refused before any work
                inside = "" if p == path else " (nothing can be made in it)"
                raise RunFolderError(f"{what} {path}: {p} is not writable{inside}")
            break
    return path


# -- files and checksums --------------------------------------------------------------------------
def file_record(path: Path) -> dict:
    """``{"size": bytes, "sha256": hex}`` of one file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"size": path.stat().st_size, "sha256": digest.hexdigest()}


def files_of(root: Path, outputs: Iterable[Path]) -> dict[str, dict]:
    """The record of every file of ``outputs`` (files, or folders walked; :data:`~recursion.artifacts.UNRECORDED`
    names aside), keyed by path relative to ``root``."""
    out = {}
    for path in outputs:
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in UNRECORDED) if path.is_dir() else [path]
        for f in files:
            out[f.relative_to(root).as_posix()] = file_record(f)
    return out


def damage(root: Path, files: dict[str, dict]) -> str | None:
    """What is wrong with recorded files (the first problem found), or ``None`` when all are intact."""
    for rel, want in files.items():
        path = root / rel
        if not path.is_file():
            return f"{rel} is missing"
        size = path.stat().st_size
        if size != want["size"]:
            return f"{rel} has {size} bytes, {want['size']} were written"
        if file_record(path)["sha256"] != want["sha256"]:
            return f"{rel} differs from what was written (sha256)"
    return None


# -- configs --------------------------------------------------------------------------------------
def _flat(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict) and tree:
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def config_changes(old: dict, new: dict, defaults: dict | None = None) -> tuple[list[str], bool]:
    """``(differences, extends)`` between a folder's config and a new one.

    ``differences`` names every key that changed (``key: old -> new``), except ``generations``
    growing (then ``extends`` is True), keys absent from ``old`` whose new value is their
    default (a field added since the run started), keys absent from ``new`` in a plug-in block
    whose ``name`` is unchanged (an option that plug-in does not have: folders written before each
    plug-in had its own options recorded every filter's, regime's and transform's options in one
    block), and ``overrides`` (a record of the ``--set`` pairs that produced the config, not part of it).

    Examples
    --------
    >>> config_changes({"generations": 3, "model": {"n": 2}}, {"generations": 5, "model": {"n": 3}})
    (['model.n: 2 -> 3'], True)
    >>> config_changes({"a": 1}, {"a": 1, "b": None}, defaults={"b": None})
    ([], False)
    >>> config_changes({"filter": {"name": "surprise", "tau": 1.4}}, {"filter": {"name": "surprise"}})
    ([], False)
    >>> config_changes({"filter": {"name": "threshold_decay", "tau": 1.4}}, {"filter": {"name": "surprise"}})
    (["filter.name: 'threshold_decay' -> 'surprise'", 'filter.tau: 1.4 -> (absent)'], False)
    """
    old, new, defaults = _flat(json.loads(json.dumps(old))), _flat(json.loads(json.dumps(new))), _flat(defaults or {})
    changes, extends = [], False
    for key in sorted(set(old) | set(new)):
        if (key in old and key in new and old[key] == new[key]) or key.split(".")[0] == "overrides":
            continue
        if key == "generations" and isinstance(old.get(key), int) and isinstance(new.get(key), int) and new[key] > old[key]:
            extends = True
        elif key not in old and key in defaults and new[key] == defaults[key]:
            continue
        elif key not in old:
            changes.append(f"{key}: (absent) -> {new[key]!r}")
        elif key not in new and _same_plugin(old, new, key):
            continue
        elif key not in new:
            changes.append(f"{key}: {old[key]!r} -> (absent)")
        else:
            changes.append(f"{key}: {old[key]!r} -> {new[key]!r}")
    return changes, extends


def _same_plugin(old: dict, new: dict, key: str) -> bool:
    """Whether ``key`` (flat, ``filter.tau``) lies in a block that names the same plug-in in ``old`` and ``new``."""
    block = key.rpartition(".")[0]
    name = f"{block}.name"
    return bool(block) and name in old and old.get(name) == new.get(name)


# -- the lock -------------------------------------------------------------------------------------
#: Seconds between two refreshes of a held lock (its file's modification time: the heartbeat).
HEARTBEAT = 30.0
#: A lock whose heartbeat is older than this (seconds) is abandoned: its holder is gone (a dead
#: process, a host that no longer answers) or stopped, and the lock may be taken over.
STALE_AFTER = 300.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class RunLock:
    """``with RunLock(folder):`` — the folder is this process's until the block ends: a lease.

    The lock file holds ``PID HOST``; its holder refreshes the file's modification time every
    ``heartbeat`` seconds (a thread). Another process's lock is refused, naming its PID, host and the
    age of its heartbeat, unless it is abandoned, and then taken over (moved aside first, so two
    processes taking over one lock at once cannot remove each other's): a process of this host that
    no longer exists, or a heartbeat older than ``stale_after`` seconds (any host: a dead node).
    ``break_lock`` takes over another host's live-looking lock too (never that of a running process
    of this host); ``wait`` (seconds) waits that long for another host's lock to be released or go
    stale before refusing (a Ray retry on another node while the dead node's heartbeat is still young).
    A holder that finds its lock taken over (it was stopped, or cut off from the shared storage, past
    ``stale_after``) stops its main thread (``KeyboardInterrupt``) at its next heartbeat.
    """

    def __init__(self, folder: str | os.PathLike, log=print, *, break_lock: bool = False, wait: float = 0.0,
                 heartbeat: float = HEARTBEAT, stale_after: float = STALE_AFTER):
        self.folder, self.log = Path(folder), log
        self.file = self.folder / LOCK
        self.host = socket.gethostname()
        self.mine = f"{os.getpid()} {self.host}"
        self.break_lock, self.wait, self.heartbeat, self.stale_after = break_lock, wait, heartbeat, stale_after
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.on_lost = _thread.interrupt_main  # what the heartbeat does when the lock was taken over

    def holder(self) -> tuple[int | None, str | None, float] | None:
        """``(pid, host, heartbeat age in seconds)`` of the lock file, ``None`` when there is none."""
        try:
            owner = self.file.read_text().split()
            age = time.time() - self.file.stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            return None
        pid = int(owner[0]) if owner and owner[0].isdigit() else None
        return pid, (owner[1] if len(owner) > 1 else None), age

    def _abandoned(self, pid: int | None, host: str | None, age: float) -> str | None:
        """Why the lock of ``pid`` on ``host`` may be taken over, ``None`` when its holder may be at work."""
        here = host in (None, self.host)
        if pid is None:
            return "an unreadable lock"
        if here and pid == os.getpid():
            return "this process's own"
        if here and not _alive(pid):
            return "no longer running"
        if age > self.stale_after:
            return f"heartbeat {age:.0f} s old, stale after {self.stale_after:.0f} s"
        if self.break_lock and not here:
            return "--break-lock"
        return None

    def check(self) -> int | None:
        """The PID in the lock file, if any; :class:`RunFolderError` when a live holder has it."""
        held = self.holder()
        if held is None:
            return None
        pid, host, age = held
        if self._abandoned(pid, host, age) is None:
            here = host in (None, self.host)
            where = "" if here else f" on {host}"
            hint = ("wait for it to finish (or stop it)" if here else
                    f"wait for it to finish; if that host is down, the lock is taken over once its heartbeat is "
                    f"{self.stale_after:.0f} s old, or now with --break-lock")
            raise RunFolderError(f"{self.folder} is in use by process {pid}{where} (lock file {self.file}, heartbeat "
                                 f"{age:.0f} s ago); {hint}")
        return pid

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        # written whole, then linked: no reader sees an empty lock (host in the name: PIDs repeat across hosts)
        mine = self.folder / f"{LOCK}-{self.host}-{os.getpid()}"
        mine.write_text(self.mine + "\n")
        deadline = time.monotonic() + self.wait
        try:
            while True:
                try:
                    os.link(mine, self.file)
                    break
                except FileExistsError:
                    try:
                        self._stale_or_refuse()
                    except RunFolderError:
                        if time.monotonic() >= deadline:
                            raise
                        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))
        finally:
            mine.unlink()
        self._stop.clear()
        self._beat = threading.Thread(target=self._keep, name=f"heartbeat {self.file}", daemon=True)
        self._beat.start()

    def _stale_or_refuse(self) -> None:
        try:
            stale = self.file.read_text()
        except FileNotFoundError:  # released meanwhile
            return
        held = self.holder()
        if held is None:
            return
        self.check()
        why = self._abandoned(*held) or "gone since it was read"  # (a holder that died between the two reads)
        if held[0] != os.getpid():
            where = f" on {held[1]}" if held[1] not in (None, self.host) else ""
            self.log(f"[{self.folder}] taking over the lock of process {held[0]}{where} ({why})")
        # Rename, then look: only the stale lock is removed. Two processes taking over the same stale
        # lock at once cannot delete each other's fresh one; the one that moved a fresh (or refreshed)
        # lock aside puts it back and, on its next try, finds it held.
        aside = self.folder / f"{LOCK}-stale-{self.host}-{os.getpid()}"
        try:
            os.replace(self.file, aside)
        except FileNotFoundError:
            return
        refreshed = why.startswith("heartbeat") and time.time() - aside.stat().st_mtime <= self.stale_after
        if aside.read_text() != stale or refreshed:
            try:
                os.link(aside, self.file)
            except FileExistsError:
                pass
        aside.unlink()

    def _keep(self) -> None:
        """The heartbeat: refresh the lock file's time while it is this process's; stop the main thread
        when another process took it over."""
        while not self._stop.wait(self.heartbeat):
            owner = None
            for _ in range(2):  # a taker moving the lock aside to look at it puts a live one back at once
                try:
                    owner = self.file.read_text().strip()
                    break
                except FileNotFoundError:
                    time.sleep(1.0)
                except OSError:  # a passing error of the file system: the next beat tries again
                    owner = self.mine
                    break
            if self._stop.is_set():
                return
            if owner != self.mine:
                self.log(f"[{self.folder}] this process's lock was taken over ({owner or 'removed'}): stopping")
                self.on_lost()
                return
            try:
                os.utime(self.file)
            except OSError:
                pass

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        try:
            if self.file.read_text().strip() == self.mine:
                self.file.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# -- the run folder -------------------------------------------------------------------------------
def read_manifest(path: Path) -> dict:
    """A replica's manifest; :class:`RunFolderError` naming the file when it is not one."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise RunFolderError(f"{path} is unreadable ({e}); move the folder aside (or delete it) to start over") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("stages"), dict):
        raise RunFolderError(f"{path} is not an lm-collapse manifest (no 'stages'); move the folder aside to start over")
    for part in ("stages", "redo"):
        for name, record in (manifest.get(part) or {}).items():
            if (problem := _record_problem(record)) is not None:
                raise RunFolderError(f"{path} is a corrupt manifest ({part} {name!r}: {problem}); move the folder aside "
                                     "(or delete it) to start over")
    return manifest


def _record_problem(record) -> str | None:
    """What is malformed in a stage record ``{"seconds": .., "files": {rel: {"size": int, "sha256": hex}}}``."""
    if not isinstance(record, dict):
        return f"a stage record must be an object, got {type(record).__name__}"
    files = record.get("files") or {}  # (none recorded: an early format)
    if not isinstance(files, dict):
        return "'files' must be an object"
    for rel, want in files.items():
        if not (isinstance(want, dict) and isinstance(want.get("size"), int) and isinstance(want.get("sha256"), str)):
            return f"file {rel!r} needs an integer 'size' and a 'sha256'"
    return None


def _stored_config(path: Path, manifest: dict) -> dict | None:
    if isinstance(manifest.get("config"), dict):
        return manifest["config"]
    try:  # manifests before format 2 hold only the config's digest
        stored = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return stored if isinstance(stored, dict) else None


def _config_text(config: dict) -> tuple[str, str]:
    text = yaml.safe_dump(config, sort_keys=False)
    return text, hashlib.sha256(text.encode()).hexdigest()


def check_compatible(path: str | os.PathLike, config: dict, *, defaults: dict | None = None) -> str | None:
    """Whether the replica folder ``path`` can run ``config``: raises :class:`RunFolderError` naming the
    keys that differ; returns a note when it would extend the run, or take over a folder where no
    stage had finished (``None`` otherwise). Writes nothing."""
    path = check_folder(path)
    if not (path / MANIFEST).exists():
        return None
    manifest = read_manifest(path / MANIFEST)
    if manifest.get("config_sha256") == _config_text(config)[1]:
        return None
    if not manifest["stages"]:  # a run that failed before its first stage finished holds no work
        return "no stage had finished: the new config replaces the old one"
    stored = _stored_config(path, manifest)
    if stored is None:
        raise RunFolderError(f"{path} holds a run of a different config (its {CONFIG} is unreadable); use another "
                             "--run-dir (or delete the folder) to start over")
    changes, extends = config_changes(stored, config, defaults)
    if changes:
        raise RunFolderError(f"{path} holds a run of a different config ({'; '.join(changes)}); use another --run-dir "
                             "(or delete the folder) to start over; only generations may grow on a rerun")
    return f"extending the run: generations {stored.get('generations')} -> {config.get('generations')}" if extends else None


class RunDir:
    """A replica's folder. ``with run.stage("gen_01/train", outputs):`` runs a stage and records it.

    ``inputs(name)`` lists the stages whose outputs stage ``name`` reads (default: none).
    Open it inside :class:`RunLock`: opening removes half-written files and checks the recorded ones.
    """

    def __init__(self, path: str | Path, config: dict, *, seed: int, log=print,
                 inputs: Callable[[str], Iterable[str]] | None = None, defaults: dict | None = None):
        self.path = check_folder(path)
        self.log = log
        self.inputs = inputs or (lambda name: ())
        self.manifest_path = self.path / MANIFEST
        text, digest = _config_text(config)
        if self.manifest_path.exists():
            extends = check_compatible(self.path, config, defaults=defaults)
            for stale in self.path.rglob(".*.tmp"):  # half-written files of a killed run
                stale.unlink()
            self.manifest = read_manifest(self.manifest_path)
            if self.manifest.get("config_sha256") != digest:
                if extends:
                    self.log(f"[{self._name}] {extends}")
                atomic_write_text(self.path / CONFIG, text)
                self.manifest.update(config_sha256=digest, config=json.loads(json.dumps(config)))
                self._save()
            self._verify()
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path / CONFIG, text)
            self.manifest = {
                "format": FORMAT,
                "config_sha256": digest,
                "config": json.loads(json.dumps(config)),
                "seed": seed,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": versions(),
                "git_commit": git_commit(),
                "stages": {},
            }
            self._save()

    @property
    def _name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    def _save(self) -> None:
        atomic_write_text(self.manifest_path, json.dumps(self.manifest, indent=2))

    def _verify(self) -> None:
        """Every finished stage's files as recorded; a damaged stage is to be redone."""
        for name, record in list(self.manifest["stages"].items()):
            problem = damage(self.path, record.get("files") or {})
            if problem:
                self.log(f"[{self._name}] {problem}: redoing {name}")
                self._drop(name)

    def _drop(self, name: str) -> None:
        self._undo(name)
        self._save()

    def _undo(self, name: str) -> None:
        """Take stage ``name`` out of the done stages, keeping its record under ``redo`` in the
        manifest: a run killed before the stage is redone still compares the redone files with
        the ones its readers were built from."""
        record = self.manifest["stages"].pop(name)
        self.manifest.setdefault("redo", {}).setdefault(name, record)

    def done(self, name: str) -> bool:
        return name in self.manifest["stages"]

    def forget(self, folders: Iterable[Path]) -> None:
        """Stop checking the files of ``folders``, deleted on purpose (checkpoint retention): their
        stages stay done, and a resume does not redo them for the files that are gone."""
        prefixes = [Path(f).relative_to(self.path).as_posix() + "/" for f in folders]
        if not prefixes:
            return
        for record in self.manifest["stages"].values():
            files = record.get("files") or {}
            gone = [rel for rel in files if rel.startswith(tuple(prefixes))]
            for rel in gone:
                del files[rel]
            if gone:
                record["deleted"] = sorted({*record.get("deleted", []), *(rel.split("/")[0] + "/" + rel.split("/")[1]
                                                                           for rel in gone)})
        self._save()

    def gen(self, g: int) -> Path:
        return gen_dir(self.path, g)

    @contextmanager
    def stage(self, name: str, outputs: Iterable[Path] = ()):
        """Run the block as stage ``name``; record it, with every file of ``outputs``, when it completes."""
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        files = files_of(self.path, outputs)
        self.manifest["stages"][name] = {"seconds": round(seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                         "files": files}
        old = self.manifest.get("redo", {}).pop(name, None)
        stale = []
        if old is not None and old.get("files") != files:  # redone with other bytes: its readers are stale
            stale = [r for r in self.manifest["stages"] if name in self.inputs(r)]
            for reader in stale:
                self._undo(reader)
        if not self.manifest.get("redo"):
            self.manifest.pop("redo", None)
        self._save()  # the stage and its stale readers in one write
        self.log(f"[{self._name}] {name} done in {seconds:.1f} s")
        for reader in stale:
            self.log(f"[{self._name}] {name} changed: redoing {reader}")
