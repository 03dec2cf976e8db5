"""``lm-collapse eval``: lm-eval's own command line, with our tasks, metrics and models added.

``lm-collapse eval ARGS`` is ``lm_eval run ARGS`` (or ``lm_eval ls|validate ARGS``) parsed and
executed by lm-eval's ``HarnessCLI``; nothing of its interface is re-implemented. Before
running it:

* prepends :func:`collapse_tasks.include_path` to ``--include_path`` (yours, if given, is kept);
* registers our metrics (:func:`collapse_tasks.register_metrics`) and models
  (``collapse-ngram``, :mod:`recursion.backends.ngram.harness`);
* checks a ``pretrained=`` / ``peft=`` before anything loads: a local-looking path (absolute,
  ``./``, ``~``, more than one ``/``, or under a folder that exists here, like ``my_runs/ckpt``)
  must exist; a hub id must be in the hub cache when ``HF_HUB_OFFLINE`` is set, or else exist on
  the hub (one request; "offline?" when the hub cannot be reached);
* when every requested task is ours (:func:`collapse_tasks.only_ours`), builds the task index
  without lm-eval's ~15k built-in tasks (about 10 s of start-up). lm-eval's CLI constructs its
  ``TaskManager`` internally with no switch for that, so the class it looks up is replaced, for
  the duration of the call, by a subclass with ``include_defaults=False``. When a built-in task
  is requested too (``--tasks collapse,hellaswag``), the full index is built and both run.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SUBCOMMANDS = ("run", "ls", "validate")
PATH_ARGS = ("pretrained", "peft")


def _looks_local(value: str) -> bool:
    """A path rather than a hub id: absolute, ``./``, ``../``, ``~``, a backslash, more than one ``/``,
    or a first component that is a folder here (``my_runs/ckpt`` with ``my_runs/`` present)."""
    if os.path.isabs(value) or value.startswith((".", "~")) or value.count("/") > 1 or "\\" in value:
        return True
    head, sep, _ = value.partition("/")
    return bool(sep) and os.path.isdir(head)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _hub_cached(repo_id: str) -> bool:
    from huggingface_hub import constants

    return (Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}").is_dir()


def _check_hub_id(key: str, value: str) -> None:
    """A hub id must be in the cache (offline) or on the hub; ``ValueError`` in one line otherwise."""
    if _hub_cached(value):
        return
    if _offline():
        raise FileNotFoundError(f"--model_args {key}={value}: no such local folder, and HF_HUB_OFFLINE is set but the hub "
                                f"cache has no model {value!r}")
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        model_info(value, timeout=10)
    except GatedRepoError:
        return  # it exists; loading says whether this user may read it
    except RepositoryNotFoundError:
        raise FileNotFoundError(f"--model_args {key}={value}: no such local folder, and no model {value!r} on the hub "
                                "(or it is private: log in with `hf auth login`)") from None
    except HfHubHTTPError:
        return  # the hub answered; loading will say more
    except Exception as err:  # no network: httpx / requests / OfflineModeIsEnabled errors
        raise ConnectionError(f"--model_args {key}={value}: no such local folder, and the hub cannot be reached "
                              f"({type(err).__name__}); offline? set HF_HUB_OFFLINE=1 to use the hub cache") from None


def check_model_paths(model_args: dict | str | None) -> None:
    """Fail before anything loads for a ``pretrained=``/``peft=`` that is neither a folder here nor a
    reachable hub model: ``FileNotFoundError`` (or ``ConnectionError`` offline) in one line."""
    if isinstance(model_args, str):
        from lm_eval.utils import simple_parse_args_string

        model_args = simple_parse_args_string(model_args)
    missing = {key: value for key in PATH_ARGS if isinstance(value := (model_args or {}).get(key), str) and value
               and not os.path.exists(os.path.expanduser(value))}
    for key, value in missing.items():  # local paths first: no network for a typo
        if _looks_local(value):
            raise FileNotFoundError(f"--model_args {key}={value}: no such model folder")
    for key, value in missing.items():
        _check_hub_id(key, value)


def _config_file(args) -> dict:
    """The ``--config`` YAML of ``run``, if any (its keys are defaults under the command line's)."""
    if not getattr(args, "config", None):
        return {}
    from lm_eval.config.evaluate_config import EvaluatorConfig

    return EvaluatorConfig.load_yaml_config(args.config)


def _requested_tasks(args, config: dict) -> list[str] | None:
    tasks = getattr(args, "tasks", None) or config.get("tasks")
    if tasks is None:
        return None
    return tasks.split(",") if isinstance(tasks, str) else list(tasks)


@contextmanager
def _task_index(include_defaults: bool) -> Iterator[None]:
    """Within the block, lm-eval's CLI builds its ``TaskManager`` with ``include_defaults``."""
    import lm_eval.tasks

    if include_defaults:
        yield
        return
    original = lm_eval.tasks.TaskManager

    class OursOnlyTaskManager(original):
        def __init__(self, *args, **kwargs):
            kwargs["include_defaults"] = False
            super().__init__(*args, **kwargs)

    lm_eval.tasks.TaskManager = OursOnlyTaskManager
    try:
        yield
    finally:
        lm_eval.tasks.TaskManager = original


def main(argv: Sequence[str]) -> int:
    """Run lm-eval's CLI on ``argv`` (the arguments after ``lm-collapse eval``)."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    import collapse_tasks
    from recursion.backends.ngram.harness import register as register_models
    from recursion.messages import first_line

    argv = list(argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        argv = ["run", *argv]
    setup_logging()
    cli = HarnessCLI()
    saved, sys.argv = sys.argv, ["lm-collapse eval", *argv]
    try:
        args = cli.parse_args()
    finally:
        sys.argv = saved

    config = _config_file(args)
    theirs = args.include_path or config.get("include_path") or []
    args.include_path = [collapse_tasks.include_path(), *([theirs] if isinstance(theirs, str) else theirs)]
    collapse_tasks.register_metrics()
    register_models()
    check_model_paths(getattr(args, "model_args", None) or config.get("model_args"))
    tasks = _requested_tasks(args, config)
    if args.command == "run" and not tasks:
        raise ValueError("no task given: pass --tasks (e.g. --tasks collapse)")
    ours_only = args.command != "ls" and tasks is not None and collapse_tasks.only_ours(tasks)
    with _task_index(include_defaults=not ours_only):
        try:
            cli.execute(args)
        except ConnectionError as err:  # a hub-backed task (or model) offline
            first = first_line(err)
            raise ConnectionError(f"{first}; offline, ask for tasks whose data ships with the package: the group "
                                  "collapse, collapse_gen_shakespeare_full, the collapse_vs tag") from None
    return 0
