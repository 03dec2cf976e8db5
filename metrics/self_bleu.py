"""Self-BLEU: every text scored by NLTK's sentence BLEU against all the *other* texts.

NLTK computes it in O(N² · length): each of the N hypotheses recounts the n-grams of N − 1
references. Here the whole corpus is counted once. For every n-gram, the largest and the
second-largest count over the texts, and how many texts hold the largest, give the clipping
count against "all texts but i" in O(1): it is the largest count unless text i is its *only*
holder, then the second largest. The closest other length comes from one sorted array of
lengths. The cost is a few linear-time radix sorts of the corpus' n-grams, order by order; an
n-gram whose prefix occurs in one text only cannot match, so it is not even counted.
"""
from __future__ import annotations

import math
import sys
from itertools import chain

import numpy as np

from ._inputs import Texts, as_token_lists, check_order

__all__ = ["self_bleu"]


def _token_ids(token_lists: list[list[str]]) -> tuple[np.ndarray, int]:
    """Every token of the corpus (texts concatenated) as an integer id, and the vocabulary size."""
    flat = list(chain.from_iterable(token_lists))
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(flat))}
    return np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat)), len(vocab)


def _stable_argsort(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` for non-negative int64 keys, as an LSD radix sort.

    One stable pass per 16-bit digit: numpy radix-sorts 16-bit integers in linear time, several
    times faster than its merge sort of 64-bit integers.
    """
    order = np.argsort(key.astype(np.uint16), kind="stable")
    shift, rest = 16, int(key.max(initial=0)) >> 16
    while rest:
        digit = (key >> shift).astype(np.uint16)
        order = order[np.argsort(digit[order], kind="stable")]
        shift, rest = shift + 16, rest >> 16
    return order


def _starts(values: np.ndarray) -> np.ndarray:
    """Mask of the positions where a run of equal values begins."""
    new = np.empty(len(values), dtype=bool)
    new[:1] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    return new


def _count_and_clip(key: np.ndarray, text: np.ndarray, n_texts: int) -> tuple[np.ndarray, ...]:
    """Per text, NLTK's clipped matches of one order against all the other texts.

    ``key[j]`` identifies the j-th n-gram occurrence, ``text[j]`` its text (non-decreasing: the
    occurrences are in corpus order). Also returns, per occurrence, a dense id of its n-gram and
    whether that n-gram occurs in another text too.
    """
    order = _stable_argsort(key)  # by n-gram, then by text
    key, text = key[order], text[order]
    new_gram = _starts(key)
    gram_sorted = np.cumsum(new_gram) - 1
    first = np.flatnonzero(new_gram | _starts(text))  # one (n-gram, text) pair each
    count = np.diff(first, append=len(key))
    group = gram_sorted[first]
    group_first = np.flatnonzero(new_gram[first])
    top = np.maximum.reduceat(count, group_first)[group]
    is_top = count == top
    holders = np.add.reduceat(is_top.astype(np.int64), group_first)[group]
    second = np.maximum.reduceat(np.where(is_top, 0, count), group_first)[group]
    # min(count, max over the other texts): the count itself, except for the only holder of the max
    clipped = np.where(is_top & (holders == 1), second, count)
    matches = np.bincount(text[first], weights=clipped, minlength=n_texts).astype(np.int64)
    gram = np.empty_like(gram_sorted)
    gram[order] = gram_sorted
    shared = np.empty_like(new_gram)
    shared[order] = (np.diff(group_first, append=len(first)) > 1)[gram_sorted]
    return matches, gram, shared


def _matches(token_lists: list[list[str]], lengths: np.ndarray, n: int) -> np.ndarray:
    """``(n, N)`` array: clipped matches of order k = 1..n of each text against the others."""
    n_texts = len(token_lists)
    tokens, vocab_size = _token_ids(token_lists)
    text = np.repeat(np.arange(n_texts), lengths)
    left = np.cumsum(lengths)[text] - np.arange(len(tokens))  # tokens from each position to its text's end
    start = np.arange(len(tokens))  # where the k-grams start
    out = np.zeros((n, n_texts), dtype=np.int64)
    out[0], gram, shared = _count_and_clip(tokens, text, n_texts)
    for k in range(2, n + 1):
        # a k-gram can match another text only if its (k-1)-gram prefix occurs in another text
        keep = shared & (left[start] >= k)
        start = start[keep]
        key = gram[keep] * vocab_size + tokens[start + k - 1]
        out[k - 1], gram, shared = _count_and_clip(key, text[start], n_texts)
    return out


def _closest_other_length(lengths: np.ndarray) -> np.ndarray:
    """NLTK's ``closest_ref_length`` over the other texts: nearest length, ties to the shorter."""
    ordered = np.sort(lengths)
    lo = np.searchsorted(ordered, lengths, side="left")
    hi = np.searchsorted(ordered, lengths, side="right")
    below = ordered[np.maximum(lo - 1, 0)]
    above = ordered[np.minimum(hi, len(ordered) - 1)]
    take_below = (lo > 0) & ((hi == len(ordered)) | (lengths - below <= above - lengths))
    nearest = np.where(take_below, below, above)
    return np.where(hi - lo > 1, lengths, nearest)  # another text has the same length


def _no_smoothing(num, den, lengths):
    return np.where(num == 0, sys.float_info.min, num / den)


def _add_epsilon(num, den, lengths):
    return np.where(num == 0, 0.1 / den, num / den)


def _add_one(num, den, lengths):
    p = (num + 1) / (den + 1)
    p[0] = num[0] / den[0]
    return p


def _nist_geometric(num, den, lengths):
    k = np.cumsum(num == 0, axis=0)
    return np.where(num == 0, 1 / (2.0**k * den), num / den)


def _length_scaled(num, den, lengths):
    zero = (num == 0) & (lengths > 1)
    k = np.cumsum(zero, axis=0)
    log_len = _exact(math.log, np.maximum(lengths, 1))
    with np.errstate(divide="ignore"):
        smoothed = 1 / (2.0**k * 5 / log_len) / den
    return np.where(zero, smoothed, num / den)  # a zero left unsmoothed is dropped, as in NLTK


# NLTK's SmoothingFunction() methods with their default parameters (epsilon=0.1, k=5).
_SMOOTHING = {
    "method0": _no_smoothing,
    "method1": _add_epsilon,
    "method2": _add_one,
    "method3": _nist_geometric,
    "method4": _length_scaled,
}


def _exact(func, values: np.ndarray) -> np.ndarray:
    """``func`` (a ``math`` function, as NLTK calls it) element-wise, once per distinct value."""
    distinct = np.unique(values)
    return np.array([func(v) for v in distinct.tolist()], dtype=float)[np.searchsorted(distinct, values)]


def _sentence_bleu(num, den, lengths, closest, smoothing):
    """Per text, NLTK's ``sentence_bleu`` from the clipped matches, with NLTK's float operations."""
    n = num.shape[0]
    p = _SMOOTHING[smoothing](num, den, lengths)
    terms = np.zeros_like(p)
    kept = p > 0  # NLTK drops a precision that is still 0 after smoothing
    terms[kept] = (1 / n) * _exact(math.log, p[kept])
    bleu = np.fromiter(map(math.exp, map(math.fsum, terms.T.tolist())), dtype=float, count=len(lengths))
    penalty = np.where(lengths > closest, 1.0, _exact(math.exp, 1 - closest / np.maximum(lengths, 1)))
    return np.where(num[0] == 0, 0.0, penalty * bleu)  # no unigram match (or an empty text): 0


def self_bleu(
    texts: Texts,
    n: int = 4,
    *,
    smoothing: str = "method1",
    sample_size: int | None = None,
    seed: int = 0,
    per_text: bool = False,
) -> float | np.ndarray:
    """Self-BLEU-n: mean BLEU of each text against all the other texts as references.

    For text :math:`i` with :math:`h_i` tokens, :math:`c_{i,g}` the count of n-gram :math:`g`,

    .. math::

        p_{k,i} = \\frac{\\sum_{|g|=k} \\min(c_{i,g},\\ \\max_{j \\ne i} c_{j,g})}
                        {\\max(1, h_i - k + 1)}, \\qquad
        \\text{BLEU}_i = \\text{BP}_i \\exp\\Big(\\sum_{k=1}^{n} \\tfrac{1}{n} \\log p_{k,i}\\Big),

    :math:`\\text{BP}_i = 1` if :math:`h_i > r_i` else :math:`e^{1 - r_i/h_i}`, with :math:`r_i`
    the length of the other text closest to :math:`h_i` (ties go to the shorter), and
    Self-BLEU :math:`= \\frac1N \\sum_i \\text{BLEU}_i`. Higher means less diverse;
    report :math:`1 - \\text{Self-BLEU}` as a diversity score.

    Each per-text score is NLTK's ``sentence_bleu(others, text_i, weights=(1/n,)*n,
    smoothing_function=SmoothingFunction().<smoothing>)``, float for float (same precisions,
    same ``math.log`` / ``math.fsum`` / ``math.exp`` steps), without NLTK's O(N²) cost.

    Self-BLEU grows with the number of texts N — more references, more matches: on lines of
    Shakespeare (``collapse_tasks.corpus.lines("all")``, ``sample_size=N, seed=0``), Self-BLEU-4 is
    0.05 at N = 100, 0.13 at 5,000 and 0.24 at 50,000. Compare corpora only at the same N: pass
    ``sample_size``, and report it.

    Parameters
    ----------
    texts : list of str or list of list of str
        Raw texts (tokenized by :func:`metrics.tokenize`) or token lists; at least 2.
    n : int, default=4
        Maximum n-gram order; uniform weights 1/n over orders 1..n.
    smoothing : {"method1", "method0", "method2", "method3", "method4"}, default="method1"
        NLTK's ``SmoothingFunction`` method (default parameters). ``"method1"`` (Texygen's choice)
        replaces a zero match count by 0.1. ``"method0"`` is NLTK's default, no smoothing: NLTK
        warns and replaces a zero precision by ``sys.float_info.min``, so each such order multiplies
        the score by ``sys.float_info.min ** (1/n)`` (about 1e-77 for n = 4): a tiny positive value,
        not exactly 0 (no warning is issued here). NLTK's methods 5 to 7 are not offered.
    sample_size : int, optional
        If given and smaller than the number of texts, score only this many texts drawn without
        replacement by ``numpy.random.default_rng(seed)`` (hypotheses and references both from the
        sample). At least 2.
    seed : int, default=0
        Seed of the subsample.
    per_text : bool, default=False
        Return the per-text scores instead of their mean.

    Returns
    -------
    float, or numpy.ndarray of shape (N,) if ``per_text``
        Scores in [0, 1]. With ``sample_size``, the per-text scores are those of the sampled
        texts in corpus order, i.e. of ``texts[j]`` for ``j`` in
        ``np.sort(np.random.default_rng(seed).choice(len(texts), sample_size, replace=False))``.
        An empty text, or one sharing no token with any other text, scores 0.0 (NLTK's value);
        a text shorter than ``n`` has no match of the orders it lacks, which the smoothing decides
        (``"method1"``: precision 0.1 / 1 for each such order). Empty texts still count as
        references of length 0 in the brevity penalty, as in NLTK.

    Raises
    ------
    ValueError
        Fewer than 2 texts (or ``sample_size < 2``), a bad ``n``, an unknown ``smoothing``.

    References
    ----------
    Zhu et al., "Texygen: A Benchmarking Platform for Text Generation Models", SIGIR 2018 (defines
    Self-BLEU; its ``SelfBleu`` calls NLTK with method1 on all the other texts).
    Papineni et al., "BLEU: a Method for Automatic Evaluation of Machine Translation", ACL 2002.
    Chen and Cherry, "A Systematic Comparison of Smoothing Techniques for Sentence-Level BLEU",
    WMT 2014. Reference implementation: ``nltk.translate.bleu_score.sentence_bleu``.

    Examples
    --------
    >>> texts = ["the cat sat on the mat", "the cat sat on a mat", "a dog ran in the park"]
    >>> round(self_bleu(texts, n=2), 4)
    0.5211
    >>> self_bleu(texts, n=2, per_text=True).round(4)
    array([0.7071, 0.7746, 0.0816])
    >>> self_bleu([["to", "be"], ["to", "be"]], n=2)
    1.0
    """
    check_order(n)
    if smoothing not in _SMOOTHING:
        raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {sorted(_SMOOTHING)}")
    token_lists = as_token_lists(texts, min_texts=2)
    if sample_size is not None:
        if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 2:
            raise ValueError(f"sample_size must be an integer >= 2 (or None), got {sample_size!r}")
        if sample_size < len(token_lists):
            chosen = np.random.default_rng(seed).choice(len(token_lists), sample_size, replace=False)
            token_lists = [token_lists[j] for j in np.sort(chosen)]
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    num = _matches(token_lists, lengths, n)
    den = np.maximum(lengths - np.arange(n)[:, None], 1)
    scores = _sentence_bleu(num, den, lengths, _closest_other_length(lengths), smoothing)
    return scores if per_text else float(scores.mean())
