"""One replica's run folder: its manifest and the bookkeeping of finished stages.

The folder's layout is :mod:`recursion.artifacts`'s.

A stage counts as done only once its outputs are completely written (each write is atomic) *and*
the manifest says so; a stage interrupted at any moment is simply run again.
"""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import yaml

from .artifacts import CONFIG, MANIFEST, atomic_write_text, gen_dir

LIBRARIES = ("lm-collapse", "lm_eval", "torch", "transformers", "peft", "datasets", "numpy", "tokenizers")


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


class RunDir:
    """A replica's folder. ``with run.stage("gen_01/train"):`` runs a stage and records it."""

    def __init__(self, path: str | Path, config: dict, *, seed: int, log=print):
        self.path = Path(path)
        self.log = log
        self.manifest_path = self.path / MANIFEST
        text = yaml.safe_dump(config, sort_keys=False)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if self.manifest_path.exists():
            for stale in self.path.rglob(".*.tmp"):  # half-written files of a killed run
                stale.unlink()
            self.manifest = json.loads(self.manifest_path.read_text())
            if self.manifest.get("config_sha256") != digest:
                raise ValueError(
                    f"{self.path} holds a run of a different config; use another --run-dir "
                    "(or delete the folder) to start over"
                )
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.path / CONFIG, text)
            self.manifest = {
                "config_sha256": digest,
                "seed": seed,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "versions": versions(),
                "git_commit": git_commit(),
                "stages": {},
            }
            self._save()

    def _save(self) -> None:
        atomic_write_text(self.manifest_path, json.dumps(self.manifest, indent=2))

    def done(self, name: str) -> bool:
        return name in self.manifest["stages"]

    def gen(self, g: int) -> Path:
        return gen_dir(self.path, g)

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        self.manifest["stages"][name] = {"seconds": round(seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self._save()
        self.log(f"[{self.path.parent.name}/{self.path.name}] {name} done in {seconds:.1f} s")
