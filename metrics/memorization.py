"""Memorization: the longest run of tokens a text shares with a reference (training) corpus.

:class:`NgramIndex` indexes the reference corpus once: a suffix array of its token ids, each
reference text followed by a separator of its own so that no match spans two texts, sorted by
prefix doubling in numpy, re-sorting only the suffixes not yet told apart (Manber & Myers;
Larsson & Sadakane). On natural text this takes a few sorts of the corpus.

A query needs, per text, the maximum over its positions j of the longest prefix of the text from
j that occurs in the reference (the matching statistics). The suffixes that start with a given
string form one interval of the suffix array, and within the interval of an m-token string they
are sorted by what follows it, i.e. by the inverse suffix array at +m; two binary searches there
narrow the interval by any next block whose own interval is known. So:

1. the interval of every 2**k-gram of the query comes by doubling: the interval of its first half,
   narrowed by that of its second half (for bigrams, whose first halves, single tokens, have the
   widest intervals, one search in a sorted array of (token, rank of the next suffix) keys);
2. a text's longest match lies in [2**K, 2**(K+1)) for K its highest level with an occurring
   2**K-gram; from each such gram, binary lifting (extend by 2**k tokens, k = K-1 down to 0,
   when the narrowed interval is not empty) gives the exact length.

Everything is vectorized over all query positions and compares exact token ids (nothing is
hashed): O(R log R) to index R reference tokens (times the doubling rounds still unresolved) and
O(Q log Q_max log R) for Q query tokens, texts at most Q_max long.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np

from ._inputs import Texts, as_token_lists, check_order

__all__ = ["Memorization", "NgramIndex", "memorization"]

#: Query tokens processed together: bounds the memory of the per-level intervals (16 bytes per
#: token per level).
_BATCH_TOKENS = 1 << 17


def _token_lists(texts: Texts, *, name: str, min_texts: int) -> tuple[list[list[str]], bool]:
    """:func:`as_token_lists`, and whether ``texts`` were raw strings (True when there are none)."""
    if not isinstance(texts, (str, bytes)):
        texts = list(texts)  # read once, even from an iterator
    token_lists = as_token_lists(texts, name=name, min_texts=min_texts)
    return token_lists, all(isinstance(t, str) for t in texts)


def _form_name(raw: bool) -> str:
    return "raw strings" if raw else "token lists"


def _search(ordered: np.ndarray, lo_keys: np.ndarray, hi_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.searchsorted(ordered, keys)`` for both key arrays, searching the keys in sorted order
    (which walks ``ordered`` in order: about twice as fast on a large array)."""
    keys = np.concatenate([lo_keys, hi_keys])
    order = np.argsort(keys)
    found = np.empty_like(order)
    found[order] = np.searchsorted(ordered, keys[order])
    return found[: len(lo_keys)], found[len(lo_keys) :]


def _suffix_array(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Suffix array of ``symbols`` (whose last symbol occurs nowhere else) and its inverse.

    ``rank[p]`` is the first slot of ``sa`` held by the suffixes that share the first h symbols
    of suffix p. Each round re-sorts only the groups of more than one suffix, by the pair
    (rank at p, rank at p + h), which doubles h.
    """
    n = len(symbols)
    sa = np.argsort(symbols, kind="stable")
    first = np.ones(n, dtype=bool)  # slot starts a group
    first[1:] = symbols[sa[1:]] != symbols[sa[:-1]]
    h = 1
    while True:
        rank = np.empty(n, dtype=np.int64)
        rank[sa] = np.maximum.accumulate(np.where(first, np.arange(n), 0))
        shared = ~first
        shared[:-1] |= ~first[1:]
        slots = np.flatnonzero(shared)  # slots of the groups with more than one suffix
        if not len(slots):
            return sa, rank
        members = sa[slots]  # p + h < n: a shared prefix never holds the unique last symbol
        key = rank[members] * n + rank[members + h]
        order = np.argsort(key)
        sa[slots] = members[order]
        key = key[order]
        first[slots[1:]] = key[1:] != key[:-1]
        h *= 2


class NgramIndex:
    """Exact index of a reference corpus for longest-common-substring queries in token space.

    Build it once per reference corpus and query it as often as needed (``memorization``
    accepts it in place of the reference texts).

    Parameters
    ----------
    reference_texts : list of str or list of list of str
        The reference (training) corpus: raw texts (tokenized by :func:`metrics.tokenize`) or
        token lists; at least one text. Empty texts are allowed; a corpus without any token
        matches nothing (every longest match is 0). Queries must come in the same form.

    Attributes
    ----------
    n_texts : int
        Number of reference texts.
    n_tokens : int
        Number of reference tokens.
    nbytes : int
        Bytes held by the index arrays.

    Notes
    -----
    Memory: 24 bytes per reference token plus the vocabulary. Building the index of all of
    Shakespeare (914k tokens) takes under a second; see ``benchmarks/results/memorization.md``.
    The algorithm is described in the module docstring.

    Examples
    --------
    >>> index = NgramIndex(["the cat sat on the mat", "a dog ran"])
    >>> index
    NgramIndex(n_texts=2, n_tokens=9)
    >>> index.longest_match("the dog sat on the mat today")
    4
    >>> index.longest_matches(["on the mat a dog", "", "zebra"])  # "mat a dog" spans two texts
    array([3, 0, 0])
    """

    def __init__(self, reference_texts: Texts):
        token_lists, self._raw = _token_lists(reference_texts, name="reference_texts", min_texts=1)
        self.n_texts = len(token_lists)
        self._vocab = {tok: i for i, tok in enumerate(dict.fromkeys(chain.from_iterable(token_lists)))}
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=self.n_texts)
        self.n_tokens = int(lengths.sum())
        # token ids 0..V-1; after text i the separator V + i, found in no other place
        symbols = np.empty(self.n_tokens + self.n_texts, dtype=np.int64)
        is_token = np.ones(len(symbols), dtype=bool)
        is_token[np.cumsum(lengths + 1) - 1] = False
        ids = map(self._vocab.__getitem__, chain.from_iterable(token_lists))
        symbols[is_token] = np.fromiter(ids, dtype=np.int64, count=self.n_tokens)
        symbols[~is_token] = len(self._vocab) + np.arange(self.n_texts)
        self._sa, self._isa = _suffix_array(symbols)
        # the suffixes starting with token t: sa[token_start[t] : token_start[t + 1]]
        counts = np.bincount(symbols[is_token], minlength=len(self._vocab))
        self._token_start = np.concatenate([[0], np.cumsum(counts)])
        # bigrams in one search: (first token, rank of the suffix after it) increases along sa
        first_token = np.repeat(np.arange(len(self._vocab)), counts)
        self._bigram_key = first_token * len(symbols) + self._isa[self._sa[: self.n_tokens] + 1]

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (the vocabulary dict not counted)."""
        return self._sa.nbytes + self._isa.nbytes + self._token_start.nbytes + self._bigram_key.nbytes

    def __repr__(self) -> str:
        return f"NgramIndex(n_texts={self.n_texts}, n_tokens={self.n_tokens})"

    def longest_match(self, text: str | list[str]) -> int:
        """The longest token run of one text (a str, or a token list) found in a reference text."""
        return int(self.longest_matches([text])[0])

    def longest_matches(self, texts: Texts) -> np.ndarray:
        """Per text, the length of its longest token run that occurs in one reference text.

        Parameters
        ----------
        texts : list of str or list of list of str
            Raw texts or token lists, the form the index was built from; may be empty.

        Returns
        -------
        numpy.ndarray of int64, shape (len(texts),)
        """
        token_lists, raw = _token_lists(texts, name="texts", min_texts=0)
        return self._query(token_lists, raw if token_lists else self._raw)

    def _query(self, token_lists: list[list[str]], raw: bool) -> np.ndarray:
        if raw != self._raw:
            raise ValueError(
                f"texts are {_form_name(raw)} but the reference texts were {_form_name(self._raw)}; "
                "pass both in the same form"
            )
        lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
        batch = (np.cumsum(lengths) - lengths) // _BATCH_TOKENS
        parts = np.split(np.arange(len(token_lists)), np.flatnonzero(np.diff(batch)) + 1)
        longest = np.zeros(len(token_lists), dtype=np.int64)
        for part in parts:
            if self.n_tokens and lengths[part].any():
                longest[part] = self._longest([token_lists[i] for i in part], lengths[part])
        return longest

    def _longest(self, token_lists: list[list[str]], lengths: np.ndarray) -> np.ndarray:
        """Per text, the longest match (see the module docstring); ``lengths`` not all 0."""
        n_query = int(lengths.sum())
        tokens = chain.from_iterable(token_lists)
        ids = np.fromiter(map(self._vocab.get, tokens, repeat(-1)), dtype=np.int64, count=n_query)
        text_of = np.repeat(np.arange(len(token_lists)), lengths)
        left = np.cumsum(lengths)[text_of] - np.arange(n_query)  # tokens from each position to its text's end
        los, his = self._gram_intervals(ids, left)
        top = np.full(len(token_lists), -1)  # per text, its highest level with an occurring gram
        for k in range(len(los)):
            top[text_of[los[k] < his[k]]] = k
        pos = np.flatnonzero(top[text_of] >= 0)
        level = top[text_of[pos]]
        lo, hi = los[level, pos], his[level, pos]
        pos, level, lo, hi = pos[lo < hi], level[lo < hi], lo[lo < hi], hi[lo < hi]
        m = 1 << level  # tokens matched from pos; lo, hi: interval of the suffixes matching them
        for k in range(len(los) - 2, -1, -1):
            ext = np.flatnonzero((level > k) & (left[pos] - m >= 1 << k))
            at = pos[ext] + m[ext]
            ext = ext[los[k, at] < his[k, at]]
            at = pos[ext] + m[ext]
            new_lo, new_hi = self._narrow(lo[ext], hi[ext], m[ext], los[k, at], his[k, at])
            grow = new_lo < new_hi
            ext = ext[grow]
            lo[ext], hi[ext] = new_lo[grow], new_hi[grow]
            m[ext] += 1 << k
        longest = np.zeros(len(token_lists), dtype=np.int64)
        np.maximum.at(longest, text_of[pos], m)
        return longest

    def _gram_intervals(self, ids: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(levels, Q)`` arrays: the suffix-array interval ``[lo, hi)`` of the 2**k-gram at each
        query position (empty where it does not occur or runs past the end of its text)."""
        known = ids >= 0
        lo = np.where(known, self._token_start[np.maximum(ids, 0)], 0)
        hi = np.where(known, self._token_start[np.maximum(ids, 0) + 1], 0)
        los, his = [lo], [hi]
        h = 1
        while True:
            pos = np.flatnonzero((left >= 2 * h) & (lo < hi))
            pos = pos[lo[pos + h] < hi[pos + h]]
            if not len(pos):
                return np.stack(los), np.stack(his)
            new_lo, new_hi = np.zeros_like(lo), np.zeros_like(hi)
            if h == 1:  # the widest intervals (single tokens): one search in _bigram_key instead
                first = ids[pos] * len(self._sa)
                new_lo[pos], new_hi[pos] = _search(self._bigram_key, first + lo[pos + 1], first + hi[pos + 1])
            else:
                new_lo[pos], new_hi[pos] = self._narrow(lo[pos], hi[pos], h, lo[pos + h], hi[pos + h])
            lo, hi = new_lo, new_hi
            los.append(lo)
            his.append(hi)
            h *= 2

    def _narrow(self, lo, hi, offset, block_lo, block_hi) -> tuple[np.ndarray, np.ndarray]:
        """The sub-interval of ``[lo, hi)`` whose suffixes go on, ``offset`` tokens in, with the block
        whose interval is ``[block_lo, block_hi)``. The suffixes of ``[lo, hi)`` share their first
        ``offset`` tokens, so ``isa[sa[x] + offset]`` increases with x there: two binary searches."""
        lo, width = np.concatenate([lo, lo]), np.concatenate([hi - lo, hi - lo])
        target = np.concatenate([block_lo, block_hi])
        offset = np.tile(np.broadcast_to(offset, len(block_lo)), 2)
        active = np.flatnonzero(width)
        while len(active):
            half = width[active] // 2
            mid = lo[active] + half
            right = self._isa[self._sa[mid] + offset[active]] < target[active]
            lo[active[right]] = mid[right] + 1
            width[active] = np.where(right, width[active] - half - 1, half)
            active = active[width[active] > 0]
        return lo[: len(target) // 2], lo[len(target) // 2 :]


@dataclass(frozen=True)
class Memorization:
    """Result of :func:`memorization`.

    Attributes
    ----------
    rate : float
        Share of the texts whose longest match is at least ``n`` tokens, in [0, 1].
    mean_longest : float
        Mean over the texts of the longest match, in tokens.
    n : int
        The threshold used for ``rate``.
    longest : numpy.ndarray of int64 or None
        Per text, its longest match (only with ``per_text=True``).
    """

    rate: float
    mean_longest: float
    n: int
    longest: np.ndarray | None = field(default=None, compare=False)  # arrays have no == truth value


def memorization(
    texts: Texts, reference_texts: Texts | NgramIndex, n: int = 8, *, per_text: bool = False
) -> Memorization:
    """Share of texts reproducing an n-gram of the reference corpus, and the mean longest match.

    For text :math:`x_i` and reference texts :math:`r_1, \\dots, r_M` (token sequences),

    .. math::

        \\ell_i = \\max \\{\\, |s| : s \\text{ a contiguous run of } x_i
                  \\text{ and of some } r_j \\,\\}, \\qquad
        \\text{rate} = \\frac1N \\sum_i [\\ell_i \\ge n], \\qquad
        \\text{mean\\_longest} = \\frac1N \\sum_i \\ell_i,

    the longest common substring in token space (never spanning two reference texts). A text
    with :math:`\\ell_i \\ge n` reproduces at least one n-gram of the training data verbatim.
    Exact, in near-linear time (see :class:`NgramIndex`).

    Parameters
    ----------
    texts : list of str or list of list of str
        Generated texts: raw texts (tokenized by :func:`metrics.tokenize`) or token lists;
        at least one. Empty texts have :math:`\\ell_i = 0`.
    reference_texts : list of str or list of list of str, or NgramIndex
        The training corpus, in the same form as ``texts`` (both raw strings or both token
        lists), or an :class:`NgramIndex` built from it once and reused. A corpus with no
        token at all gives :math:`\\ell_i = 0` for every text.
    n : int, default=8
        Length threshold of ``rate``, in tokens.
    per_text : bool, default=False
        Also return every :math:`\\ell_i` in ``longest``.

    Returns
    -------
    Memorization
        ``rate`` in [0, 1], ``mean_longest`` in tokens, ``n``, and ``longest`` (or ``None``).

    Raises
    ------
    ValueError
        No texts, no reference texts, a bad ``n``, or ``texts`` and ``reference_texts`` in
        different forms (raw strings vs token lists).

    References
    ----------
    Carlini et al., "Quantifying Memorization Across Neural Language Models", ICLR 2023
    (verbatim reproduction of training sequences). McCoy et al., "How Much Do Language Models
    Copy From Their Training Data? Evaluating Linguistic Novelty in Text Generation Using RAVEN",
    TACL 2023 (n-gram novelty against the training set). Lee et al., "Deduplicating Training Data
    Makes Language Models Better", ACL 2022 (exact substring matches via a suffix array,
    ``google-research/deduplicate-text-datasets``). Manber and Myers, "Suffix Arrays", SIAM J.
    Comput. 1993; Larsson and Sadakane, "Faster Suffix Sorting", TCS 2007. No library computes
    this exact quantity; the tests check it against a brute-force search of all substrings.

    Examples
    --------
    >>> train = ["to be or not to be that is the question", "all the world's a stage"]
    >>> generated = ["to be or not to be a stage", "the world is a question", "all the world's a stage"]
    >>> memorization(generated, train, n=5)
    Memorization(rate=0.6666666666666666, mean_longest=4.0, n=5, longest=None)
    >>> memorization(generated, train, n=5, per_text=True).longest
    array([6, 1, 5])
    """
    check_order(n)
    token_lists, raw = _token_lists(texts, name="texts", min_texts=1)
    index = reference_texts if isinstance(reference_texts, NgramIndex) else NgramIndex(reference_texts)
    longest = index._query(token_lists, raw)
    return Memorization(
        rate=float(np.mean(longest >= n)),
        mean_longest=float(longest.mean()),
        n=n,
        longest=longest if per_text else None,
    )
