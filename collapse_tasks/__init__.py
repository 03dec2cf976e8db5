"""lm-eval tasks ``collapse_*``: perplexity on held-out real text and diversity of generations.

The YAML files in this folder are ordinary lm-eval tasks; point lm-eval at them with
:func:`include_path` (``lm_eval --include_path "$(python -c 'import collapse_tasks; print(collapse_tasks.include_path())')"``),
or use ``lm-collapse eval`` (which adds it for you), or, in Python, :func:`task_manager`.

=================================  =====================================================================
name                               what
=================================  =====================================================================
``collapse`` (group)               every task that runs offline on core dependencies:
                                   ``collapse_ppl_shakespeare``, ``collapse_gen_shakespeare``
``collapse_ppl`` (tag)             the perplexity tasks (``loglikelihood_rolling``)
``collapse_gen`` (tag)             the generation-diversity tasks (``generate_until``)
``collapse_vs`` (tag)              Verbalized Sampling vs direct prompting on shipped creative prompts
=================================  =====================================================================

Hooks: :mod:`collapse_tasks.ppl_utils` (documents, perplexity results),
:mod:`collapse_tasks.gen_utils` (prompts, per-prompt results, corpus-level aggregations),
:mod:`collapse_tasks.hub_utils` (documents of the hub-backed variants),
:mod:`collapse_tasks.vs_utils` (Verbalized Sampling prompts, answers and per-prompt diversity).
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["include_path", "task_manager", "register_metrics", "our_task_names", "only_ours"]

#: Offline tasks that make up the group ``collapse`` (see ``collapse.yaml``).
OFFLINE_TASKS = ("collapse_ppl_shakespeare", "collapse_gen_shakespeare")


def include_path() -> str:
    """The folder holding the task YAMLs, for ``--include_path`` / ``TaskManager(include_path=...)``."""
    return str(Path(__file__).resolve().parent)


@lru_cache(maxsize=1)
def our_task_names() -> tuple[str, ...]:
    """Every task, group and tag name defined here (indexed without lm-eval's built-in tasks)."""
    from lm_eval.tasks._index import TaskIndex

    return tuple(sorted(TaskIndex.build([Path(include_path())])))


def only_ours(specs: Iterable[str]) -> bool:
    """Whether every requested task spec is one of ours, so lm-eval's built-in index can be skipped.

    A spec is ours when it names (or, as a glob starting with ``collapse``, matches) one of
    :func:`our_task_names`. YAML paths, other names and other patterns may need built-in tasks.

    Examples
    --------
    >>> only_ours(["collapse", "collapse_gen_*"]), only_ours(["collapse", "hellaswag"]), only_ours(["*"])
    (True, False, False)
    """
    names = our_task_names()
    specs = [s.strip() for spec in specs for s in spec.split(",") if s.strip()]
    if not specs:
        return False
    for spec in specs:
        is_glob = any(c in spec for c in "*?[")
        if is_glob and not (spec.startswith("collapse") and fnmatch.filter(names, spec)):
            return False
        if not is_glob and spec not in names:
            return False
    return True


def register_metrics() -> None:
    """Register the corpus-level generation metrics with lm-eval's metric registry (idempotent).

    Our own YAMLs name their hooks by dotted path and need no registration; this lets *your*
    ``generate_until`` tasks list ``metric: distinct_2`` (or any name of
    :data:`collapse_tasks.gen_utils.REGISTERED_METRICS`) without a ``process_results``: each
    document's generation is passed through, and the aggregation ``collapse_<name>`` scores the
    corpus. ``lm-collapse eval`` and :func:`task_manager` call it.
    """
    from lm_eval.api.registry import (
        aggregation_registry,
        higher_is_better_registry,
        metric_agg_registry,
        metric_registry,
    )

    from . import gen_utils

    if len(metric_registry) == 0:  # lm-eval fills its registries lazily; fill them first
        import lm_eval.api.metrics  # noqa: F401
    for name in gen_utils.REGISTERED_METRICS:
        if name in metric_registry:
            continue
        aggregation = gen_utils.AGGREGATIONS[name]
        aggregation_registry.register(f"collapse_{name}", target=aggregation)
        metric_registry.register(name, target=gen_utils.passthrough)
        metric_agg_registry.register(name, target=aggregation)
        higher_is_better_registry.register(name, target=gen_utils.higher_is_better(name))


def task_manager(
    include_defaults: bool = True,
    *,
    extra_paths: Sequence[str | Path] = (),
    metadata: dict[str, Any] | None = None,
):
    """An :class:`lm_eval.tasks.TaskManager` that knows the ``collapse_*`` tasks.

    Parameters
    ----------
    include_defaults : bool, default=True
        Also index lm-eval's ~15k built-in tasks (needed to mix ``collapse`` with e.g.
        ``hellaswag``). ``False`` skips that indexing, about 10 s of start-up.
    extra_paths : sequence of path
        More task folders, as ``--include_path``.
    metadata : dict, optional
        Passed to ``TaskManager`` (reaches every task's config).

    Examples
    --------
    >>> tm = task_manager(include_defaults=False)
    >>> "collapse" in tm.all_groups and "collapse_gen_shakespeare" in tm.all_subtasks
    True
    """
    from lm_eval.tasks import TaskManager

    register_metrics()
    return TaskManager(
        include_path=[include_path(), *map(str, extra_paths)],
        include_defaults=include_defaults,
        metadata=metadata,
    )
