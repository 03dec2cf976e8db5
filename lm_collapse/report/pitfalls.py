"""Warnings to read before the tables: the patterns of smoothing-mass collapse and of noise
mistaken for diversity, found in a run's own numbers.

* **Perplexity near or above the vocabulary size** (n-gram back end, whose vocabulary size ``V``,
  the events it predicts, is in the model's ``ngram.json``). A model that predicts uniformly over
  its ``V`` events has perplexity exactly ``V`` (word perplexity: about ``V``); a held-out
  perplexity between ``V / 4`` and ``2 V`` means the model is close to a uniform guess (most of
  its mass is smoothing), above ``2 V`` that it is worse than one (unseen events get almost no
  probability). Either way the number measures the smoothing, not what the model learnt.
* **Perplexity falling while diversity falls**. Collapse loses the tails, which makes a model
  *worse* on real text. When held-out perplexity improves from generation 0 while distinct-2 falls,
  something else is being measured: typically an add-α model whose vocabulary shrinks with its
  data (fewer events to spread mass over) or whose unseen contexts predict near-uniformly.
* **Generations getting shorter while distinct-2 rises** (mean length down by a quarter or more):
  distinct-n counts repeats, and shorter texts repeat less, so the rise is the length.
* **distinct-1 rising while distinct-2 falls**: the lost tails come back as noise (rare words
  strung together at random), which single-word counts read as diversity.

A metric rises or falls, here, when its last generation differs from generation 0 by more than
2% (:data:`MOVED`), so that noise-level changes of one seed raise no warning, and, with several
seeds, when the 95% t-interval of the per-seed change (:func:`.stats.change`) excludes 0.
"""
from __future__ import annotations

import json

from recursion import artifacts

from .collect import Collection
from .stats import change

NEAR_UNIFORM = (0.25, 2.0)  # perplexity / V in this band: close to a uniform model; above it: worse than one
PERPLEXITIES = ("/word_perplexity", "probe/heldout_perplexity")  # per word / per model token
DIVERSITY = "/distinct_2"
SHORTER = 0.25  # a fall of mean generation length by this fraction or more makes distinct-n incomparable
MOVED = 0.02  # a metric "rises" or "falls" when it changes by more than this fraction of its generation-0 value


def ngram_vocabulary(model_dir) -> int | None:
    """``V`` of an n-gram model folder (its vocabulary minus ``<s>``, which is never predicted); None otherwise."""
    from recursion.backends.ngram.lm import FILENAME

    try:
        doc = json.loads((model_dir / FILENAME).read_text(encoding="utf-8"))
        return len(doc["vocab"]) - 1
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _change(cells, arm: str, metric: str, last: int) -> tuple[float, float, bool] | None:
    """(generation-0 mean, last mean, whether the change is detectable: one seed, or a per-seed CI without 0)."""
    first, end = cells.get((arm, metric, 0)), cells.get((arm, metric, last))
    if not (first and end and last > 0):
        return None
    iv = change(first.by_seed, end.by_seed)
    return first.mean, end.mean, iv is None or not iv.spans_zero


def _rises(c: tuple[float, float, bool]) -> bool:
    return c[2] and c[1] - c[0] > MOVED * abs(c[0])


def _falls(c: tuple[float, float, bool]) -> bool:
    return c[2] and c[0] - c[1] > MOVED * abs(c[0])


def _ppl_metrics(metrics: list[str]) -> list[str]:
    return [m for m in metrics if any(m.endswith(p) for p in PERPLEXITIES)]


def _uniform_notes(cells, col: Collection, last: dict[str, int]) -> list[str]:
    near, above = [], []
    reps = {}
    for r in col.replicas:
        reps.setdefault(r.arm, r)
    ppl = _ppl_metrics(col.metrics)
    for arm, rep in reps.items():
        for g in (0, last.get(arm, 0)):
            vocab = ngram_vocabulary(artifacts.gen_dir(rep.path, g) / artifacts.MODEL)
            if not vocab:
                continue
            for m in ppl:
                cell = cells.get((arm, m, g))
                if cell is None:
                    continue
                text = f"`{arm}` gen {g}: {m} = {cell.mean:.0f}, V = {vocab}"
                if cell.mean > NEAR_UNIFORM[1] * vocab:
                    above.append(text)
                elif cell.mean > NEAR_UNIFORM[0] * vocab:
                    near.append(text)
    notes = []
    if near:
        notes.append("**Perplexity near the vocabulary size** (" + "; ".join(dict.fromkeys(near)) + "). A model that "
                     "predicts uniformly over its V words has perplexity exactly V: these models give most of their "
                     "probability to the smoothing mass, so the perplexity measures the smoothing, not what was learnt; "
                     "their samples are largely random words, which diversity metrics count as diversity.")
    if above:
        notes.append("**Perplexity above the vocabulary size** (" + "; ".join(dict.fromkeys(above)) + "): worse than "
                     "a uniform guess. Words or contexts the model never saw get almost no probability (too little "
                     "smoothing), and those few events dominate the average: compare arms on bits per byte or a "
                     "smoothed model, and read the size of the change, not the level.")
    return notes


def _trend_notes(cells, col: Collection, last: dict[str, int]) -> list[str]:
    notes = []
    metrics = col.metrics
    # generations of lm-eval tasks (a fixed prompt set), not the data handed on (data_train / data_pool),
    # whose size changes between generations (76,000 real lines, then 2,000 samples): N confounds them
    diversity = [m for m in metrics if m.endswith(DIVERSITY) and "within_" not in m and not m.startswith("data_")]
    falling_ppl = []
    for arm in col.arms:
        div = [c for m in diversity if (c := _change(cells, arm, m, last[arm])) and _falls(c)]
        if not div:
            continue
        for m in _ppl_metrics(metrics):
            c = _change(cells, arm, m, last[arm])
            if c and _falls(c):
                falling_ppl.append(f"`{arm}`: {m} {c[0]:.4g} → {c[1]:.4g} while distinct-2 falls")
    if falling_ppl:
        notes.append("**Perplexity falling while diversity falls** (" + "; ".join(falling_ppl) + "). A model that "
                     "loses the tails of its data should get *worse* on real text. When it gets better while its "
                     "outputs narrow, the perplexity is being lowered by something else — typically a vocabulary "
                     "rebuilt from the shrinking synthetic data (fewer words to spread probability over) or unseen "
                     "contexts predicted near-uniformly — and is not evidence against collapse.")
    def beside_distinct2(suffix: str, name: str, unit: str, flagged) -> list[str]:
        """``arm: <name> a → b, distinct-2 c → d`` where ``flagged((a, b), (c, d))``, per arm and task."""
        found = []
        for arm in col.arms:
            for m2 in diversity:
                other = _change(cells, arm, m2[: -len(DIVERSITY)] + suffix, last[arm])
                d2 = _change(cells, arm, m2, last[arm])
                if other and d2 and flagged(other, d2):
                    source = m2[: -len(DIVERSITY)]  # the task
                    found.append(f"`{arm}` {source}: {name} {other[0]:.3g} → {other[1]:.3g}{unit}, "
                                 f"distinct-2 {d2[0]:.3g} → {d2[1]:.3g}")
        return found

    if shorter := beside_distinct2("/mean_length", "mean length", " words",
                                   lambda n, d: n[2] and 0 < n[0] and n[1] < (1 - SHORTER) * n[0] and _rises(d)):
        notes.append("**Generations getting shorter while distinct-2 rises** (" + "; ".join(shorter) + "). Distinct-n "
                     "counts repeats, and shorter texts repeat less: the rise is the length, not new diversity. Compare "
                     "Self-BLEU, n-gram entropy and the top-10 share, or generations of equal length.")
    if noise := beside_distinct2("/distinct_1", "distinct-1", "", lambda d1, d2: _rises(d1) and _falls(d2)):
        notes.append("**distinct-1 rising while distinct-2 falls** (" + "; ".join(noise) + "): the word pairs "
                     "narrow while single words spread, the signature of lost tails coming back as noise (rare words "
                     "drawn from the smoothing mass). Read distinct-2 and Self-BLEU, not distinct-1 or unique-n.")
    return notes


def reading_notes(cells, col: Collection, last: dict[str, int]) -> list[str]:
    """The warnings that apply to this run, as Markdown paragraphs (none: an empty list)."""
    return _uniform_notes(cells, col, last) + _trend_notes(cells, col, last)
