"""Experiment configs: YAML → typed, validated dataclasses, before any work starts.

An experiment YAML names the data, the model back end, the regime, the selection filter, the
decoding, the lm-eval tasks and the seeds; ``arms`` lists variants (regimes, filters, ...) that run
side by side, each a dict of overrides. ``--set key.sub=value`` overrides any key from the command
line. Unknown keys and bad values fail here with a message naming the key and the valid choices.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .backends import BACKENDS, backend_class
from .backends.base import Decoding


class ConfigError(ValueError):
    """A config key or value that is not valid; the message names the key."""


@dataclass(frozen=True)
class DataConfig:
    """The real corpus. ``source``: ``shakespeare`` (shipped), ``jsonl:PATH`` or ``hf:NAME[:CONFIG]``."""

    source: str = "shakespeare"
    unit: Literal["lines", "blocks"] = "lines"  # shipped corpus: lines (Lab 1) or blank-line blocks
    min_words: int = 5
    split: str = "train"  # shipped split or hub split
    revision: str | None = None  # hub revision (e.g. refs/convert/parquet for script-only datasets)
    field: str = "text"  # text field of jsonl / hub records
    prompt_field: str | None = None  # (prompt, text) pairs: a document is prompt + separator + text
    separator: str = "\n\n"
    chunk_words: int | None = None  # cut documents into blocks of this many words (Shumailov's blocks)
    num_train: int | None = None  # real documents in generation 0's training set (None: all)


@dataclass(frozen=True)
class RegimeConfig:
    """How generation g's training set is built (see :mod:`recursion.regimes`)."""

    name: Literal["replace", "accumulate", "accumulate_subsample", "mix", "keep_real"] = "replace"
    fraction: float = 0.1  # share of real data for mix (fresh real) and keep_real (original real)


@dataclass(frozen=True)
class FilterConfig:
    """Which synthetic documents are handed on (see :mod:`recursion.filters`)."""

    name: str = "none"
    keep: float = 1.0  # fraction of the synthetic pool kept
    top_k: int | None = None  # or an exact number of documents


@dataclass(frozen=True)
class GenerateConfig:
    """The synthetic corpus of each generation."""

    num_docs: int | None = None  # default: as many as real training documents
    prompt: Literal["unconditional", "real_prefix", "task"] = "unconditional"
    prefix_tokens: int = 64  # real_prefix: first P tokens of real documents
    prompts_file: str | None = None  # task: JSONL of prompts (field ``text``); default: data's prompts
    decoding: Decoding = field(default_factory=Decoding)


@dataclass(frozen=True)
class EvalConfig:
    """lm-eval scoring of every checkpoint, in-process."""

    tasks: tuple[str, ...] = ("collapse",)
    limit: float | None = None
    batch_size: int = 16
    num_fewshot: int | None = None
    gen_kwargs: str | None = None
    apply_chat_template: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class ProbesConfig:
    """Probes stored beside lm-eval results: Gen-0 perplexity of synthetic data, top-1 mass."""

    enabled: bool = True
    num_prompts: int = 200
    prompt_tokens: int = 16


@dataclass(frozen=True)
class RuntimeConfig:
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = None  # torch threads; default: all cores of this machine
    trust_remote_code: bool = False


@dataclass(frozen=True)
class Experiment:
    name: str
    model: Any  # a back end config dataclass; ``backend`` key picks which
    backend: str = "ngram"
    generations: int = 5  # models trained: generation 0 (real data) .. generations - 1
    seeds: tuple[int, ...] = (0,)
    data: DataConfig = field(default_factory=DataConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)




# -- dict → dataclass, with errors that name the key ----------------------------------------------
def _build(cls: type, data: Any, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown key {_join(where, unknown[0])!r}; valid keys: {', '.join(names)}")
    kwargs = {k: _coerce(hints[k], v, _join(where, k)) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, NotImplementedError) as e:  # back ends validate in __post_init__
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp, value, where: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value if value is not None else {}, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{where} must be {tp.__name__}, got {value!r}")
    return value


def _set(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {k!r} is not a mapping")
    node[keys[-1]] = value


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def parse_overrides(pairs: list[str]) -> dict:
    """``["generations=3", "model.alpha=0.1"]`` → nested dict (values parsed as YAML scalars)."""
    tree: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        _set(tree, key.strip(), yaml.safe_load(value))
    return tree


def experiment_from_dict(data: dict) -> Experiment:
    """Validate one resolved experiment (no ``arms``)."""
    data = dict(data)
    model = dict(data.pop("model", None) or {})
    backend = model.pop("backend", "ngram")
    if backend not in BACKENDS:
        raise ConfigError(f"model.backend = {backend!r} is not valid; choose one of: {', '.join(BACKENDS)}")
    if "name" not in data:
        raise ConfigError("missing key 'name' (the experiment's name)")
    exp = _build(Experiment, {**data, "model": {}, "backend": backend}, "")
    exp = dataclasses.replace(exp, model=_build(backend_class(backend).config_class, model, "model"))
    _check_values(exp)
    return exp


def _check_values(exp: Experiment) -> None:
    from .filters import FILTERS

    checks = [
        (exp.generations >= 1, "generations must be >= 1"),
        (len(exp.seeds) >= 1, "seeds must list at least one seed"),
        (0.0 < exp.filter.keep <= 1.0, "filter.keep must be in (0, 1]"),
        (exp.filter.top_k is None or exp.filter.top_k >= 1, "filter.top_k must be >= 1"),
        (0.0 <= exp.regime.fraction <= 1.0, "regime.fraction must be in [0, 1]"),
        (exp.generate.num_docs is None or exp.generate.num_docs >= 1, "generate.num_docs must be >= 1"),
        (exp.generate.prompt != "task" or exp.generate.prompts_file or exp.data.prompt_field,
         "generate.prompt: task needs generate.prompts_file or data.prompt_field"),
        (exp.data.chunk_words is None or exp.data.chunk_words >= 1, "data.chunk_words must be >= 1"),
        (exp.generate.decoding.max_new_tokens >= 1, "generate.decoding.max_new_tokens must be >= 1"),
        (exp.generate.decoding.temperature > 0, "generate.decoding.temperature must be > 0"),
        (exp.data.source == "shakespeare" or exp.data.source.split(":", 1)[0] in ("jsonl", "hf"),
         "data.source must be shakespeare, jsonl:PATH or hf:NAME[:CONFIG]"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if exp.filter.name not in FILTERS:
        raise ConfigError(f"filter.name = {exp.filter.name!r} is not valid; choose one of: {', '.join(FILTERS)}")


def load_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Experiment]:
    """Read an experiment YAML and return ``{arm_name: Experiment}`` (one arm ``default`` if none).

    Every arm is validated before anything runs.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no config file {path}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping")
    raw = _merge(raw, parse_overrides(list(overrides)))
    arms = raw.pop("arms", None) or {"default": {}}
    if not isinstance(arms, dict):
        raise ConfigError("arms must map each arm's name to its overrides")
    out = {}
    for arm, over in arms.items():
        try:
            out[str(arm)] = experiment_from_dict(_merge(raw, over or {}))
        except ConfigError as e:
            raise ConfigError(f"{path} (arm {arm!r}): {e}") from None
    return out


def to_dict(exp: Experiment) -> dict:
    """The resolved experiment as plain data (written as ``config.yaml`` in each run folder)."""
    d = dataclasses.asdict(exp)
    d["model"] = {"backend": d.pop("backend"), **d["model"]}
    return d
