"""95% confidence intervals over seeds: the one place the report computes its uncertainty.

Each (arm, seed) at a generation is one observation. A seed fixes the real data a replica draws
and every stage's randomness, so the seeds of an arm are its independent replicas, and all arms
of one seed share their generation-0 model. Every interval is Student's t over seeds
(Student 1908; e.g. Wasserman, *All of Statistics*, §6.3 and §10.4 for the paired form):

* a mean at one generation (:func:`t_interval`): ``x̄ ± t(0.975, n−1) · s / √n`` over the n seeds'
  values, ``s`` the sample standard deviation (``ddof = 1``);
* a change from generation 0 to N (:func:`change`): per seed ``d_s = x_N,s − x_0,s`` (relative:
  ``100 · d_s / |x_0,s|`` %), then the same interval over the ``d_s``;
* a difference between arms A and B (:func:`paired_difference`), *paired by seed*: per seed both
  arms ran, ``d_s = A_s − B_s``, then the same interval over the ``d_s``. Pairing removes the
  variation the two arms share through their common generation-0 model; at generation N it also
  equals the difference of the two arms' changes from generation 0, whose scores they share.

One seed has no interval (``lo = hi = None``). An interval that contains 0 supports no direction
(:attr:`Interval.spans_zero`): the report prints it as "no detectable difference", never as a
rise or a fall.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float | None  # None for a single value
    hi: float | None
    n: int

    @property
    def half(self) -> float | None:
        """Half-width ``t · s / √n`` (None for a single value)."""
        return None if self.lo is None else (self.hi - self.lo) / 2

    @property
    def spans_zero(self) -> bool:
        """Whether the interval contains 0 (no direction is supported); False for a single value."""
        return self.lo is not None and self.lo <= 0 <= self.hi


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and Student-t interval ``x̄ ± t((1+level)/2, n−1) · s/√n`` of ``values`` (``s``: ddof = 1).

    Examples
    --------
    >>> iv = t_interval([1.0, 2.0, 3.0])  # s = 1, t(0.975, 2) = 4.302653
    >>> round(iv.mean, 6), round(iv.half, 6)
    (2.0, 2.484138)
    >>> t_interval([5.0])
    Interval(mean=5.0, lo=None, hi=None, n=1)
    """
    x = np.asarray(values, dtype=float)
    n, mean = x.size, float(np.mean(x))
    if n < 2:
        return Interval(mean, None, None, n)
    if x.max() == x.min():
        return Interval(mean, mean, mean, n)  # exactly; np.std of equal floats can be 1e-16 instead
    half = float(stats.t.ppf((1 + level) / 2, n - 1) * np.std(x, ddof=1) / math.sqrt(n))
    return Interval(mean, mean - half, mean + half, n)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], level: float = LEVEL) -> Interval | None:
    """``A − B`` paired by seed: the t-interval of ``a[s] − b[s]`` over the seeds both hold (None if none).

    Examples
    --------
    >>> iv = paired_difference({0: 3.0, 1: 5.0, 2: 7.0}, {0: 1.0, 1: 2.0, 2: 3.0})  # d = 2, 3, 4
    >>> iv.mean, round(iv.lo, 6), round(iv.hi, 6)
    (3.0, 0.515862, 5.484138)
    """
    seeds = [s for s in a if s in b]
    return t_interval([a[s] - b[s] for s in seeds], level) if seeds else None


def change(first: Mapping[int, float], last: Mapping[int, float], *, relative: bool = False,
           level: float = LEVEL) -> Interval | None:
    """Generation 0 → N per seed (``last[s] − first[s]``, or in % of ``|first[s]|``), then its t-interval;
    None when no seed has both, or, for a relative change, when a seed starts at 0."""
    seeds = [s for s in first if s in last]
    if not seeds or (relative and any(first[s] == 0 for s in seeds)):
        return None
    scale = {s: 100 / abs(first[s]) if relative else 1.0 for s in seeds}
    return t_interval([(last[s] - first[s]) * scale[s] for s in seeds], level)
