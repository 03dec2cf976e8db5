"""Read run folders into tidy rows: one number per (arm, seed, generation, metric), with its source.

A replica is any folder holding a ``manifest.json`` (written by the recursion driver); its arm is
the ``arm`` of its ``config.yaml`` (else the parent folder's name), its seed the manifest's, and the
``overrides`` of the config file it ran with (``--set`` pairs, the demo's size reductions) its ``config.yaml``'s.
Numbers come from ``gen_XX/lm_eval.json`` (every numeric ``results`` entry except standard errors,
named ``<task>/<metric>`` without the ``collapse_`` prefix and ``,none`` filter) and from
``gen_XX/probes.json`` (``probe/<name>`` for the scalar summaries, Shi et al.'s embedding
diagnostics included), ``gen_XX/data_diversity.json`` (``data_train/<measure>`` and
``data_pool/<measure>``: the diversity of the generation's training set and of its synthetic pool,
:mod:`recursion.data_diversity`) and, for ToEdit runs, ``gen_XX/edits.json`` (``toedit/<share>``: the shares
of tokens resampled, changed and dropped). Anything unreadable is
recorded as a problem and skipped: a half-finished or damaged run still reports what it has.

Each (arm, seed) is one observation: a second replica of an arm and seed already read (the same
run given twice, two runs of one config) is skipped, with a problem line. Beside the numbers, a
collection holds what the report's header states: each task's decoding, read from the task
configs lm-eval saves in ``lm_eval.json`` (``configs/<task>/generation_kwargs`` for a generation
task, after every override), and each replica's ``environment.json`` (:mod:`recursion.environment`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from recursion import artifacts

PROBE_SCALARS = ("gen0_perplexity_median", "top1_mass_mean", "next_token_entropy_mean", "heldout_perplexity",
                 "train_knn_entropy", "nn_distance_to_train")
EDIT_SHARES = ("resampled_share", "changed_share", "dropped_share")


@dataclass(frozen=True)
class Row:
    arm: str
    seed: int
    generation: int
    metric: str
    value: float
    source: str  # the file the number was read from


@dataclass
class Replica:
    path: Path
    arm: str
    seed: int
    generations: list[int] = field(default_factory=list)
    planned: int | None = None
    scored: bool = True  # the config asked for lm-eval scoring
    overrides: tuple[str, ...] = ()  # ``--set`` pairs applied to the config file (the demo's size reductions)
    environment: dict | None = None  # its environment.json; None for a run made before it was written

    @property
    def name(self) -> str:
        return f"{self.arm} seed {self.seed}"


@dataclass
class Collection:
    rows: list[Row] = field(default_factory=list)
    replicas: list[Replica] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    root: Path | None = None
    decoding: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (task, decoding) -> replica names

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(r.arm for r in self.replicas))

    @property
    def metrics(self) -> list[str]:
        return list(dict.fromkeys(r.metric for r in self.rows))


def metric_name(task: str, key: str) -> str:
    """``("collapse_gen_shakespeare", "distinct_2,none")`` → ``"gen_shakespeare/distinct_2"``."""
    metric, _, filt = key.partition(",")
    name = f"{task.removeprefix('collapse_')}/{metric}"
    return name if filt in ("", "none") else f"{name} [{filt}]"


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def find_replicas(paths: list[str | Path]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"no run folder {p}")
        found += artifacts.find_replicas(p)
    return list(dict.fromkeys(found))


def collect(paths: list[str | Path]) -> Collection:
    """Every number of every replica found under ``paths``."""
    out = Collection()
    replicas = find_replicas(paths)
    if not replicas:
        out.problems.append(f"no replica (folder with manifest.json) under {', '.join(map(str, paths))}")
        return out
    out.root = Path(paths[0])
    seen: dict[tuple[str, int], Path] = {}
    for path in replicas:
        replica = _replica(path, out.problems)
        if (replica.arm, replica.seed) in seen:
            out.problems.append(f"{path}: {replica.name} was already read from {seen[replica.arm, replica.seed]}; "
                                "skipped (one observation per arm and seed: report different runs separately)")
            continue
        seen[replica.arm, replica.seed] = path
        out.replicas.append(replica)
        for g, gdir in artifacts.generation_dirs(path):
            replica.generations.append(g)
            if replica.scored:
                doc = _read_json(gdir / artifacts.LM_EVAL, out.problems, "lm-eval scoring")
                out.rows += _lm_eval_rows(replica, g, gdir / artifacts.LM_EVAL, doc, out.problems)
                for task_decoding in decodings(doc).items():
                    names = out.decoding.setdefault(task_decoding, [])
                    if replica.name not in names:
                        names.append(replica.name)
            out.rows += _scalar_rows(replica, g, gdir / artifacts.PROBES, out.problems, what="probes", prefix="probe",
                                     keys=PROBE_SCALARS)
            if (gdir / artifacts.DATA_DIVERSITY).exists():  # runs from before this stage have none
                out.rows += _data_rows(replica, g, gdir / artifacts.DATA_DIVERSITY, out.problems)
            if (gdir / artifacts.EDITS).exists():
                out.rows += _scalar_rows(replica, g, gdir / artifacts.EDITS, out.problems, what="ToEdit", prefix="toedit",
                                         keys=EDIT_SHARES)
        if replica.planned is not None and len(replica.generations) < replica.planned:
            out.problems.append(f"{path}: {len(replica.generations)} of {replica.planned} generations present (unfinished run)")
    return out


def _replica(path: Path, problems: list[str]) -> Replica:
    arm, seed, planned, scored, overrides = path.parent.name, 0, None, True, ()
    try:
        config = yaml.safe_load((path / artifacts.CONFIG).read_text()) or {}
        arm = str(config.get("arm", arm))
        planned = config.get("generations")
        seed = int((config.get("seeds") or [0])[0])
        scored = bool((config.get("eval") or {}).get("enabled", True))
        overrides = tuple(map(str, config.get("overrides") or ()))
    except (OSError, yaml.YAMLError, TypeError, ValueError) as e:
        problems.append(f"{path / artifacts.CONFIG}: unreadable ({type(e).__name__}); arm taken from the folder name")
    try:
        seed = int(json.loads((path / artifacts.MANIFEST).read_text()).get("seed", seed))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        problems.append(f"{path / artifacts.MANIFEST}: unreadable ({type(e).__name__})")
    environment = None
    if (path / artifacts.ENVIRONMENT).exists():
        environment = _read_json(path / artifacts.ENVIRONMENT, problems, "environment")
        if not isinstance(environment, dict):
            environment = None
    return Replica(path, arm, seed, planned=planned, scored=scored, overrides=overrides, environment=environment)


def _read_json(path: Path, problems: list[str], what: str):
    if not path.exists():
        problems.append(f"{path}: missing ({what} not finished)")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        problems.append(f"{path}: unreadable ({type(e).__name__}: {e})")
        return None


def decodings(doc) -> dict[str, str]:
    """``task → its decoding`` from lm-eval results' ``configs``: a generation task's
    ``generation_kwargs`` as ``key=value, ...`` (sorted), any other ``scored by log-likelihood``."""
    configs = doc.get("configs") if isinstance(doc, dict) else None
    out = {}
    for task, config in (configs if isinstance(configs, dict) else {}).items():
        if not isinstance(config, dict):
            continue
        kwargs = config.get("generation_kwargs")
        if config.get("output_type") == "generate_until" and isinstance(kwargs, dict):
            out[task.removeprefix("collapse_")] = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
        elif config.get("output_type"):
            out[task.removeprefix("collapse_")] = f"scored by log-likelihood ({config['output_type']}), no decoding"
    return out


def _lm_eval_rows(rep: Replica, g: int, path: Path, doc, problems: list[str]) -> list[Row]:
    if doc is None:
        return []
    results = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(results, dict):
        problems.append(f"{path}: no 'results' mapping")
        return []
    rows = []
    for task, values in results.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            if "_stderr" in key or key in ("alias", "name", "sample_len") or (v := _number(value)) is None:
                continue
            rows.append(Row(rep.arm, rep.seed, g, metric_name(task, key), v, str(path)))
    return rows


def _scalar_rows(rep: Replica, g: int, path: Path, problems: list[str], *, what: str, prefix: str,
                 keys: tuple[str, ...]) -> list[Row]:
    """``<prefix>/<key>`` rows of the numeric ``keys`` of one JSON file (``probes.json``, ``edits.json``)."""
    doc = _read_json(path, problems, what)
    if not isinstance(doc, dict):
        return []
    return [Row(rep.arm, rep.seed, g, f"{prefix}/{k}", v, str(path))
            for k in keys if (v := _number(doc.get(k))) is not None]


def _data_rows(rep: Replica, g: int, path: Path, problems: list[str]) -> list[Row]:
    """``data_train/<measure>`` and ``data_pool/<measure>`` rows of one ``data_diversity.json``."""
    doc = _read_json(path, problems, "data diversity")
    if not isinstance(doc, dict):
        return []
    return [Row(rep.arm, rep.seed, g, f"data_{part}/{k}", v, str(path))
            for part in ("train", "pool") if isinstance(doc.get(part), dict)
            for k, value in doc[part].items() if (v := _number(value)) is not None]


def read_probe_series(replica: Replica, g: int, key: str = "gen0_perplexity") -> list[float]:
    """A per-document probe series (e.g. perplexities under the generation-0 model); [] if absent."""
    try:
        values = json.loads((artifacts.gen_dir(replica.path, g) / artifacts.PROBES).read_text()).get(key) or []
        return [float(v) for v in values if _number(v) is not None]
    except (OSError, ValueError, AttributeError, TypeError):
        return []
