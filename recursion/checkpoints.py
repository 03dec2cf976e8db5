"""Checkpoint retention: which generations' model folders a replica keeps (``checkpoints.keep``).

A model folder is read by its own generation's stages (eval, generate, select, probes), by the next
generation's training (its tokenizer or vocabulary, and its weights under ``init: previous``), and —
generation 0's — by every generation's probes (the perplexity of the synthetic data under the
generation-0 model), the acceptability filter's ``gen0_perplexity`` and ToEdit's ``prior: gen0``.
The driver prunes at two points: after generation g is trained (every stage of
g-1 is done by then) and when the replica is finished.

* ``all`` — nothing is deleted.
* ``last`` — after training g: generations 1 .. g-1 (and 0 too when no later stage loads it); when
  finished: all but the final generation. At most three folders exist at once (0, g-1 during g's
  training, g), one at the end.
* ``none_but_final`` — nothing while the replica runs; when finished, all but the final generation.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .artifacts import MODEL, gen_dir


def stale_generations(keep: str, *, trained: int, generations: int, gen0: bool, finished: bool) -> list[int]:
    """Generations whose model folders may go once generation ``trained`` is trained (or the
    replica is ``finished``); ``gen0``: whether later stages load generation 0's model (the probes,
    the acceptability filter's generation-0 perplexity, ToEdit's ``prior: gen0``).

    Examples
    --------
    >>> stale_generations("last", trained=3, generations=5, gen0=True, finished=False)
    [1, 2]
    >>> stale_generations("last", trained=3, generations=5, gen0=False, finished=False)
    [0, 1, 2]
    >>> stale_generations("none_but_final", trained=4, generations=5, gen0=True, finished=True)
    [0, 1, 2, 3]
    """
    if keep == "all":
        return []
    if finished:
        return [k for k in range(generations) if k != generations - 1]
    if keep == "none_but_final":
        return []
    return [k for k in range(trained) if k > 0 or not gen0]


def prune(replica: str | Path, generations: list[int]) -> list[Path]:
    """Delete the model folders of ``generations`` (those that exist); returns the folders deleted."""
    gone = []
    for k in generations:
        folder = gen_dir(replica, k) / MODEL
        if folder.exists():
            shutil.rmtree(folder)
            gone.append(folder)
    return gone
