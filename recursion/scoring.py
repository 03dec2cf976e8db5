"""Score a loaded checkpoint with lm-eval, in-process.

The model already loaded for the generation is wrapped (``Model.lm_eval_model()``), never reloaded,
and one :class:`lm_eval.tasks.TaskManager` is built per process and reused for every checkpoint:
the overhead per checkpoint beyond model compute is the task set-up alone.

With ``eval.log_samples``, lm-eval's own :class:`~lm_eval.loggers.EvaluationTracker` keeps every
scored request and response in its own layout (``results_<date>.json`` and
``samples_<task>_<date>.jsonl``, loadable with ``datasets``) under the generation's
``lm_eval_samples/`` folder, which is written whole or not at all.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
import json
import logging
import os
import shutil
from functools import lru_cache
from pathlib import Path

from .artifacts import atomic_write_text
from .config import EvalConfig


@lru_cache(maxsize=4)
def _task_manager(include_defaults: bool):
    import collapse_tasks

    return collapse_tasks.task_manager(include_defaults=include_defaults)


def task_manager_for(tasks: tuple[str, ...]):
    """The process's TaskManager; lm-eval's built-in index only when a task is not ours."""
    import collapse_tasks

    return _task_manager(not collapse_tasks.only_ours(tasks))


def check_tasks(tasks: tuple[str, ...]) -> None:
    """Fail before any work if a task name (or glob) matches no lm-eval task, group or tag."""
    names = task_manager_for(tasks).all_tasks
    for t in tasks:
        if not fnmatch.filter(names, t):
            close = difflib.get_close_matches(t, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"eval.tasks: no lm-eval task named {t!r}{hint}")


def evaluate(model, cfg: EvalConfig, *, seed: int, samples_dir: str | os.PathLike | None = None) -> dict:
    """Run the configured tasks on ``model`` (a :class:`~recursion.backends.base.Model`).

    With ``cfg.log_samples``, every request and response is written under ``samples_dir`` by lm-eval's
    ``EvaluationTracker`` (a temporary folder first, renamed when complete); the returned results
    never hold the samples.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    if cfg.log_samples and samples_dir is None:
        raise ValueError("eval.log_samples needs a folder for the samples")
    tmp = Path(f"{samples_dir}.tmp") if cfg.log_samples else None
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    tracker = EvaluationTracker(output_path=str(tmp)) if tmp is not None else None
    results = lm_eval.simple_evaluate(
        model=model.lm_eval_model(),
        tasks=list(cfg.tasks),
        task_manager=task_manager_for(cfg.tasks),
        limit=cfg.limit,
        num_fewshot=cfg.num_fewshot,
        batch_size=cfg.batch_size,
        gen_kwargs=cfg.gen_kwargs,
        apply_chat_template=cfg.apply_chat_template,
        log_samples=cfg.log_samples,
        evaluation_tracker=tracker,
        bootstrap_iters=0,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )
    results = dict(results) if results is not None else {}
    samples = results.pop("samples", None)
    if tracker is not None:
        tracker.save_results_aggregated(results=copy.deepcopy(results), samples=samples)
        for task in results.get("configs", {}):
            tracker.save_results_samples(task_name=task, samples=(samples or {}).get(task, []))
        shutil.rmtree(samples_dir, ignore_errors=True)
        os.replace(tmp, samples_dir)
    return results


def write_results(path, results: dict) -> None:
    from lm_eval.utils import handle_non_serializable

    atomic_write_text(path, json.dumps(results, indent=2, default=handle_non_serializable))
