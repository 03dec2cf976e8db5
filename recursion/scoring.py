"""Score a loaded checkpoint with lm-eval, in-process.

The model already loaded for the generation is wrapped (``Model.lm_eval_model()``), never reloaded.
A :class:`lm_eval.tasks.TaskManager` is built per task set and metadata (a few kept per process);
the metadata names the checkpoint's own folder as ``pretrained`` (the token-block task cuts with its
tokenizer), so each checkpoint indexes the tasks anew: the overhead per checkpoint beyond model
compute is that index and the task set-up.

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

from .artifacts import LM_EVAL, LM_EVAL_SAMPLES, MODEL, atomic_write_text
from .config import EvalConfig
from .messages import first_line

#: lm-eval warnings that in-process scoring triggers at every checkpoint and that say nothing about
#: the run: the ``custom_dataset`` hint (our shipped tasks take no metadata), the notes that an
#: already-loaded model was passed in, and that the config's ``eval.gen_kwargs`` apply.
EXPECTED_WARNINGS = {
    "lm_eval.api.task": ("Custom kwargs can be passed to `--metadata`",),
    "lm_eval.models.huggingface": ("`pretrained` model kwarg is not of type `str`", "Passed an already-initialized model"),
    "lm_eval.evaluator": ("specified through cli, these settings will update set parameters",),
}


class _DropExpected(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(f in record.getMessage() for f in self.fragments)


def quiet_expected_warnings() -> None:
    """Drop :data:`EXPECTED_WARNINGS` at the lm-eval loggers that emit them (once per process)."""
    for name, fragments in EXPECTED_WARNINGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropExpected) for f in logger.filters):
            logger.addFilter(_DropExpected(fragments))


@lru_cache(maxsize=4)
def _task_manager(include_defaults: bool, metadata: str = "{}"):
    import collapse_tasks

    return collapse_tasks.task_manager(include_defaults=include_defaults, metadata=json.loads(metadata) or None)


def task_manager_for(tasks: tuple[str, ...], metadata: dict | None = None):
    """The process's TaskManager; lm-eval's built-in index only when a task is not ours.

    ``metadata`` reaches every task as lm-eval's ``--metadata`` does: the driver passes the model
    folder scored as ``pretrained`` (as the command line's ``--model_args pretrained=...`` reaches
    the tasks' ``custom_dataset`` hooks: ``collapse_ppl_wikitext2_blocks`` cuts its blocks with that
    model's tokenizer), with ``eval.metadata``."""
    import collapse_tasks

    return _task_manager(not collapse_tasks.only_ours(tasks), json.dumps(metadata or {}, sort_keys=True))


def check_tasks(tasks: tuple[str, ...], metadata: dict | None = None) -> None:
    """Fail before any work if a task name (or glob) matches no lm-eval task, group or tag, or if a
    task cannot be built: its data unreachable (offline), an optional extra it needs not installed.
    ``metadata`` reaches the tasks as in :func:`evaluate` (the pretrained model, before any is trained)."""
    from lm_eval.tasks import get_task_dict

    import collapse_tasks

    quiet_expected_warnings()

    ours = list(collapse_tasks.our_task_names())
    for t in tasks:  # lm-eval has no task named collapse*: no need to index its ~15k tasks to say so
        if t.startswith("collapse") and not fnmatch.filter(ours, t):
            _unknown(t, ours)
    manager = task_manager_for(tasks, metadata)
    names = manager.all_tasks
    for t in tasks:
        if not fnmatch.filter(names, t):
            _unknown(t, names)
    try:
        get_task_dict(list(tasks), manager)  # loads every task's documents (and runs its extras check)
    except ConnectionError as err:
        first = first_line(err)
        raise ValueError(f"eval.tasks {list(tasks)}: a task's data cannot be downloaded (offline? {first}); the group "
                         "'collapse' and the collapse_vs_* tasks run offline") from None


def _unknown(task: str, names) -> None:
    close = difflib.get_close_matches(task, names, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"eval.tasks: no lm-eval task named {task!r}{hint}")


def evaluate(model, cfg: EvalConfig, *, seed: int, model_dir=None, samples_dir: str | os.PathLike | None = None) -> dict:
    """Run the configured tasks on ``model`` (a :class:`~recursion.backends.base.Model`) loaded from ``model_dir``.

    With ``cfg.log_samples``, every request and response is written under ``samples_dir`` by lm-eval's
    ``EvaluationTracker`` (a temporary folder first, renamed when complete); the returned results
    never hold the samples.
    """
    import lm_eval
    from lm_eval.loggers import EvaluationTracker

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    quiet_expected_warnings()
    if cfg.log_samples and samples_dir is None:
        raise ValueError("eval.log_samples needs a folder for the samples")
    tmp = Path(f"{samples_dir}.tmp") if cfg.log_samples else None
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    tracker = EvaluationTracker(output_path=str(tmp)) if tmp is not None else None
    results = lm_eval.simple_evaluate(
        model=model.lm_eval_model(),
        tasks=list(cfg.tasks),
        task_manager=task_manager_for(cfg.tasks, {**({"pretrained": str(model_dir)} if model_dir is not None else {}),
                                                  **(cfg.metadata or {})}),
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


def eval_stage(ctx) -> None:
    """Generation ``ctx.g``'s lm-eval results (``lm_eval.json``, and the samples when logged;
    :class:`recursion.stages.Context`)."""
    gdir = ctx.gen(ctx.g)
    results = evaluate(ctx.model(ctx.g), ctx.exp.eval, seed=ctx.seed_of("eval"), model_dir=gdir / MODEL,
                       samples_dir=gdir / LM_EVAL_SAMPLES)
    write_results(gdir / LM_EVAL, results)
