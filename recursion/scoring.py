"""Score a loaded checkpoint with lm-eval, in-process.

The model already loaded for the generation is wrapped (``Model.lm_eval_model()``), never reloaded,
and one :class:`lm_eval.tasks.TaskManager` is built per process and reused for every checkpoint:
the overhead per checkpoint beyond model compute is the task set-up alone.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache

from lm_collapse.jsonl import atomic_write_text

from .config import EvalConfig


@lru_cache(maxsize=4)
def _task_manager(include_defaults: bool):
    import collapse_tasks

    return collapse_tasks.task_manager(include_defaults=include_defaults)


def needs_builtin_tasks(tasks: tuple[str, ...]) -> bool:
    """Whether any requested task is not one of ours (then lm-eval's built-in index is needed)."""
    return any(not t.startswith("collapse") for t in tasks)


def evaluate(model, cfg: EvalConfig, *, seed: int) -> dict:
    """Run the configured tasks on ``model`` (a :class:`~recursion.backends.base.Model`)."""
    import lm_eval

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    results = lm_eval.simple_evaluate(
        model=model.lm_eval_model(),
        tasks=list(cfg.tasks),
        task_manager=_task_manager(needs_builtin_tasks(cfg.tasks)),
        limit=cfg.limit,
        num_fewshot=cfg.num_fewshot,
        batch_size=cfg.batch_size,
        gen_kwargs=cfg.gen_kwargs,
        apply_chat_template=cfg.apply_chat_template,
        log_samples=False,
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    return dict(results) if results is not None else {}


def write_results(path, results: dict) -> None:
    from lm_eval.utils import handle_non_serializable

    atomic_write_text(path, json.dumps(results, indent=2, default=handle_non_serializable))
