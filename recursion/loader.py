"""The config loader: experiment YAML → the typed dataclasses of :mod:`recursion.config`.

YAML is read refusing a key given twice and aliases that blow up (:func:`load_yaml`); ``--set``
pairs are merged in (:func:`parse_overrides`); every block is built by :func:`_build`, which
coerces each value to its field's type and collects every problem — unknown keys (with the valid
ones), wrong types, out-of-range values (each dataclass's ``problems()``) and settings the chosen
back end cannot run — each naming its key, raised at once as :class:`ConfigError`.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from .backends import BACKENDS
from .config import Experiment, name_problem
from .filters import FILTERS
from .plugins import Registry
from .regimes import REGIMES
from .transforms import TRANSFORMS


class ConfigError(ValueError):
    """Config keys or values that are not valid; the message lists every problem, one per line,
    each naming its key."""

    @property
    def problems(self) -> list[str]:
        return str(self).splitlines()


# -- dict → dataclass, collecting every error, each naming its key --------------------------------
def _build(cls: type, data: Any, where: str, errors: list[str]):
    """``cls`` from a mapping; every problem is appended to ``errors`` (a bad field keeps its default)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
        data = {}
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in sorted(set(data) - set(names)):
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        errors.append(f"unknown key {_join(where, key)!r}{hint}; valid keys: {', '.join(names)}")
    kwargs = {}
    for key in names:
        if key in data:
            try:
                kwargs[key] = _coerce(hints[key], data[key], _join(where, key), errors)
            except _Invalid:
                pass
    obj = cls(**kwargs)
    for key, message in obj.problems() if hasattr(obj, "problems") else ():
        errors.append(f"{_join(where, key)} {message}")
    return obj


class _Invalid(Exception):
    """A value that could not be coerced (its error is already recorded)."""


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _coerce(tp, value, where: str, errors: list[str]):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        first: list[str] = []
        for arg in (a for a in args if a is not type(None)):
            attempt: list[str] = []
            try:
                out = _coerce(arg, value, where, attempt)
            except _Invalid:
                first = first or attempt
                continue
            if not attempt:
                return out
            first = first or attempt
        errors.extend(first)
        raise _Invalid
    if origin is Literal:
        if value not in args:
            errors.append(f"{where} = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
            raise _Invalid
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, errors)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            value = [value]
        inner = args[0] if args else Any
        out, bad = [], False
        for i, v in enumerate(value):
            try:
                out.append(_coerce(inner, v, f"{where}[{i}]", errors))
            except _Invalid:
                bad = True
        if bad:
            raise _Invalid
        return tuple(out)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, str, bool) and not (isinstance(value, tp) and not (tp is int and isinstance(value, bool))):
        errors.append(f"{where} must be {tp.__name__}, got {value!r}")
        raise _Invalid
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
        try:
            parsed = load_yaml(value, f"--set {key}")
        except ConfigError as e:
            if "YAML syntax error" not in str(e):
                raise
            raise ConfigError(f"--set {pair}: {value!r} is not a YAML value ({str(e).partition('YAML syntax error: ')[2]})"
                              ) from None
        _set(tree, key.strip(), parsed)
    return tree


#: Most values (mappings, lists and scalars, counted as expanded) a config may hold: aliases
#: (``*name``) may repeat a block, but not blow a 1 KB file up to millions of values (an "alias bomb").
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping (YAML would keep the last
    silently; ``<<`` merges may still be overridden) and remembers where the first alias is."""

    first_alias = None

    def compose_node(self, parent, index):
        if self.first_alias is None and self.check_event(yaml.AliasEvent):
            self.first_alias = self.peek_event().start_mark
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if first is not key_node.start_mark:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice (first on line {first.line + 1}); keep one",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _values(tree, budget: int) -> int:
    """The values of ``tree`` with every alias expanded, counted up to ``budget + 1`` (then it stops)."""
    count, stack = 0, [tree]
    while stack and count <= budget:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return count


def load_yaml(text: str, where: str):
    """The YAML document ``text`` (``where`` names it in errors): :class:`ConfigError` naming the line
    of a syntax error or a key given twice, and refusing aliases that expand past :data:`MAX_VALUES`."""
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark is not None else where
        problem = " ".join(str(x) for x in (getattr(e, "problem", None), getattr(e, "context", None)) if x) or str(e)
        kind = "YAML syntax error" if not isinstance(e, yaml.constructor.ConstructorError) else "YAML error"
        raise ConfigError(f"{at}: {kind}: {problem}") from None
    finally:
        loader.dispose()
    if loader.first_alias is not None and _values(data, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(f"{where}:{loader.first_alias.line + 1}: its aliases expand to more than {MAX_VALUES:,} "
                          "values (an alias bomb?); write the values out, or use fewer aliases")
    return data


def read_yaml(path: str | Path):
    """The YAML document of ``path``; :class:`ConfigError` naming the file (and line) of anything unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no config file {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a folder, not a config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return load_yaml(text, str(path))


def experiment_from_dict(data: dict, errors: list[str] | None = None) -> Experiment:
    """Validate one resolved experiment (no ``arms``).

    With ``errors`` (a list), every problem is appended to it and the experiment is returned with
    defaults in place of bad values; without, any problem raises :class:`ConfigError` listing them all.
    """
    collected: list[str] = [] if errors is None else errors
    before = len(collected)
    data = dict(data)
    model = data.pop("model", None) or {}
    if not isinstance(model, dict):
        collected.append(f"model must be a mapping (backend: ..., its options), got {type(model).__name__}")
        model = {}
    model = dict(model)
    backend = model.pop("backend", "ngram")
    if not isinstance(backend, str) or backend not in BACKENDS:
        collected.append(f"model.backend = {backend!r} is not valid; choose one of: {', '.join(BACKENDS.names())}")
        backend = None
    if "name" not in data:
        collected.append("missing key 'name' (the experiment's name)")
        data["name"] = ""
    elif not isinstance(data["name"], str):
        data["name"] = ""  # reported by Experiment.problems() as an empty name
    blocks = {key: data.pop(key, None) for key in PLUGIN_BLOCKS}
    exp = _build(Experiment, {**data, "model": None, "backend": backend or "ngram"}, "", collected)
    exp = dataclasses.replace(exp, **{key: _plugin_block(registry, blocks[key], key, collected)
                                      for key, registry in PLUGIN_BLOCKS.items()})
    plugins = [registry[getattr(exp, key).name] for key, registry in PLUGIN_BLOCKS.items()]
    if backend is not None:
        plugins.append(BACKENDS[backend])
        exp = dataclasses.replace(exp, model=_build(plugins[-1].options, model, "model", collected))
    for plugin in plugins:
        for key, message in plugin.check(exp):
            collected.append(f"{key} {message}")
    if errors is None and len(collected) > before:
        raise ConfigError("\n".join(collected[before:]))
    return exp


#: The blocks whose ``name`` picks a plug-in, and so the dataclass of the block's other keys.
PLUGIN_BLOCKS = {"regime": REGIMES, "filter": FILTERS, "transform": TRANSFORMS}


def _plugin_block(registry: Registry, data: Any, where: str, errors: list[str]):
    """The options of the plug-in the block's ``name`` picks (its dataclass's default ``name`` when absent)."""
    name = data.get("name", registry.default_options.name) if isinstance(data, dict) else registry.default_options.name
    if not isinstance(name, str) or name not in registry:  # the keys every plug-in of the kind has are still checked
        errors.append(f"{registry.key} = {name!r} is not valid; choose one of: {', '.join(registry.names())}")
        shared = {f.name for f in dataclasses.fields(registry.default_options)} - {"name"}
        _build(registry.default_options, {k: v for k, v in data.items() if k in shared} if isinstance(data, dict) else data,
               where, errors)
        return registry[registry.default_options.name].options()
    return _build(registry[name].options, data, where, errors)


def load_config(path: str | Path, overrides: list[str] = ()) -> dict[str, Experiment]:
    """Read an experiment YAML and return ``{arm_name: Experiment}`` (one arm ``default`` if none).

    Every arm is validated before anything runs.
    """
    path = Path(path)
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping")
    parsed = parse_overrides(list(overrides))
    shipped_arms = raw.get("arms") if isinstance(raw.get("arms"), dict) else {}
    arm_overrides = parsed.get("arms") if isinstance(parsed.get("arms"), dict) else {}
    for arm in arm_overrides:
        if arm not in shipped_arms:  # --set changes an arm, never adds one (a typo would run as a new arm)
            valid = f"its arms: {', '.join(map(str, shipped_arms))}" if shipped_arms else "it has no arms"
            raise ConfigError(f"--set arms.{arm}.…: {path} has no arm {arm!r}; {valid}")
    raw = _merge(raw, parsed)
    arms = raw.pop("arms", None) or {"default": {}}
    if not isinstance(arms, dict):
        raise ConfigError(f"{path}: arms must map each arm's name to its overrides")
    folders: dict[str, object] = {}
    for arm in arms:
        if (problem := name_problem(str(arm))) is not None:
            raise ConfigError(f"{path}: arm {problem}")
        if str(arm) in folders:  # 5 and '5': one folder
            raise ConfigError(f"{path}: arms {folders[str(arm)]!r} and {arm!r} would share the folder {str(arm)!r}; "
                              "rename one")
        folders[str(arm)] = arm
    out, found = {}, {}
    for arm, over in arms.items():
        found[arm] = []
        if over is not None and not isinstance(over, dict):
            found[arm].append(f"must be a mapping of overrides, got {type(over).__name__}")
            over = {}
        out[str(arm)] = experiment_from_dict(_merge(raw, over or {}), found[arm])
    # a problem of every arm is said once; with no arms, there is nothing to name
    common = set.intersection(*(set(f) for f in found.values())) if len(found) > 1 or "default" in found else set()
    errors = [f"{path}: {e}" for e in dict.fromkeys(e for f in found.values() for e in f if e in common)]
    errors += [f"{path} (arm {arm!r}): {e}" for arm, f in found.items() for e in f if e not in common]
    if errors:
        raise ConfigError("\n".join(errors))
    return out


def to_dict(exp: Experiment) -> dict:
    """The resolved experiment as plain data (written as ``config.yaml`` in each run folder)."""
    d = dataclasses.asdict(exp)
    d["model"] = {"backend": d.pop("backend"), **d["model"]}
    return d
