"""Plug-ins: named implementations of one kind (filter, regime, transform, back end), each with the
dataclass of its YAML block and its checks.

A :class:`Registry` maps a name to a :class:`Plugin`. The config loader picks the block's dataclass
from its ``name`` key (``filter: {name: threshold_decay, tau: 1.2}`` is built as the options of
``threshold_decay``, so a key that filter does not read is an unknown key), then calls ``check``
with the whole experiment (constraints between blocks, reported with the other config errors);
the driver calls ``preflight`` before it creates any folder (what the plug-in will load: a
classifier's config, a sentence embedder). No module outside a plug-in's own tests its name: what
the driver needs to know about one is an attribute of its options or of its implementation.

Register one with the decorator::

    @FILTERS.register("shortest", options=FilterConfig)
    def keep_shortest(texts, *, n_keep): ...
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Problems = list[tuple[str, str]]  # (key, message): "filter.top_k", "must be set with ..."


def no_problems(exp) -> Problems:
    return []


def nothing_to_load(exp) -> None:
    return None


@dataclass(frozen=True)
class Plugin:
    """One registered implementation.

    ``options``: the frozen dataclass of its YAML block (its ``name`` field included);
    ``run``: the implementation (a function, or a back end's class); ``check(exp)``: the ``(key,
    message)`` problems of a whole experiment it cannot run (the loader reports them);
    ``preflight(exp)``: raises a one-line ``ValueError`` when what it will load cannot be loaded.
    """

    name: str
    options: type
    run: Any
    check: Callable[[Any], Problems] = no_problems
    preflight: Callable[[Any], None] = nothing_to_load


class Registry:
    """Plug-ins of one ``kind`` (``"filter"``), chosen by the config key ``key`` (``"filter.name"``).

    ``options``: the dataclass of a plug-in registered without its own; ``lazy``: ``name →
    "module:attribute"`` entries imported on first use (a back end class, whose ``config_class``
    and ``experiment_problems`` are its options and check).
    """

    def __init__(self, kind: str, key: str, *, options: type | None = None, lazy: dict[str, str] | None = None):
        self.kind, self.key, self.default_options = kind, key, options
        self.lazy = dict(lazy or {})
        self.plugins: dict[str, Plugin] = {}

    def register(self, name: str, *, options: type | None = None, check: Callable[[Any], Problems] = no_problems,
                 preflight: Callable[[Any], None] = nothing_to_load) -> Callable:
        """Decorator: make ``run`` available as ``<key>: <name>`` with these options and checks."""
        chosen = options or self.default_options
        if chosen is None:
            raise TypeError(f"{self.kind} {name!r}: give its options dataclass")

        def deco(run):
            self.plugins[name] = Plugin(name, chosen, run, check, preflight)
            return run

        return deco

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self.lazy, *self.plugins]))

    def __contains__(self, name: object) -> bool:
        return name in self.plugins or name in self.lazy

    def __iter__(self):
        return iter(self.names())

    def __getitem__(self, name: str) -> Plugin:
        if name not in self:
            raise ValueError(f"{self.key} = {name!r} is not valid; choose one of: {', '.join(self.names())}")
        if name not in self.plugins:
            module, _, attr = self.lazy[name].partition(":")
            cls = getattr(importlib.import_module(module), attr)
            self.plugins[name] = Plugin(name, cls.config_class, cls, cls.experiment_problems)
        return self.plugins[name]
