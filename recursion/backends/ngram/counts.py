"""The counts of one n-gram order as sorted numpy arrays (:class:`CountTable`), the storage every
estimator of :class:`~recursion.backends.ngram.lm.NgramLM` reads: ``c(h)``, ``N1+(h •)`` and
``c(h, w)`` looked up by binary search.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def group_pairs(hist: np.ndarray, word: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (history, word) pairs sorted by history then word, with their summed weights."""
    if not len(hist):
        return hist, word, weight
    order = np.lexsort((word, hist))
    hist, word, weight = hist[order], word[order], weight[order]
    first = np.ones(len(hist), dtype=bool)
    first[1:] = (hist[1:] != hist[:-1]) | (word[1:] != word[:-1])
    starts = np.flatnonzero(first)
    return hist[starts], word[starts], np.add.reduceat(weight, starts)


@dataclass
class CountTable:
    """Counts of one order in sorted arrays: histories, then (history, word) pairs sorted the same way."""

    ctx_keys: np.ndarray  # sorted unique history keys (int64; the k − 1 ids as a base-|vocab| number)
    ctx_start: np.ndarray  # index of each history's first pair
    ctx_totals: np.ndarray  # c(h) per history
    ctx_types: np.ndarray  # N1+(h •): distinct words after each history
    pair_keys: np.ndarray  # history index * |vocab| + word id, sorted
    pair_counts: np.ndarray  # c(h, w) per pair (int64)

    @classmethod
    def build(cls, hist: np.ndarray, word: np.ndarray, count: np.ndarray, size: int) -> CountTable:
        """From pairs sorted by (history, word), as :func:`group_pairs` returns them; ``size`` = |vocab|."""
        ctx_keys, ctx_start, ctx_index = np.unique(hist, return_index=True, return_inverse=True)
        totals = np.add.reduceat(count, ctx_start) if len(count) else np.zeros(0, np.int64)
        types = np.diff(np.append(ctx_start, len(count)))
        return cls(ctx_keys, ctx_start, totals, types, ctx_index.astype(np.int64) * size + word, count.astype(np.int64))

    def pairs(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(history key, word id, count) of every pair."""
        return self.ctx_keys[self.pair_keys // size], self.pair_keys % size, self.pair_counts

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of each history key in ``ctx_keys`` and whether it was seen."""
        if not len(self.ctx_keys):
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        pos = np.minimum(np.searchsorted(self.ctx_keys, keys), len(self.ctx_keys) - 1)
        return pos, self.ctx_keys[pos] == keys

    def histories(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(index, seen, c(h), N1+(h •)) of each history key; c(h) is 1 and N1+ 0 where unseen."""
        pos, seen = self.lookup(keys)
        if not len(self.ctx_keys):
            return pos, seen, np.ones(len(keys), np.int64), np.zeros(len(keys), np.int64)
        return pos, seen, np.where(seen, self.ctx_totals[pos], 1), np.where(seen, self.ctx_types[pos], 0)

    def segment(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) of the pairs of each history index."""
        start = self.ctx_start[pos]
        end = np.where(pos + 1 < len(self.ctx_start), self.ctx_start[np.minimum(pos + 1, len(self.ctx_start) - 1)],
                       len(self.pair_keys))
        return start, end

    def count(self, pos: np.ndarray, seen: np.ndarray, words: np.ndarray, size: int) -> np.ndarray:
        """c(h, w) of each (history index, word) query (0 where unseen)."""
        if not len(self.pair_keys):
            return np.zeros(len(pos), np.int64)
        q = pos * size + words
        j = np.minimum(np.searchsorted(self.pair_keys, q), len(self.pair_keys) - 1)
        return np.where(seen & (self.pair_keys[j] == q), self.pair_counts[j], 0)
