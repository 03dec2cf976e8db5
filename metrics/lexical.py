"""Lexical diversity of a corpus: distinct-n, TTR, unique-n, n-gram entropy, top-k share, compression.

All counts are over the n-grams *inside* each text (an n-gram never spans two texts). A corpus
with no n-gram of the requested order (every text shorter than n) has no evidence of diversity:
the diversity scores are then 0.0, as documented per function, so a collapsed model that emits
empty strings scores as collapsed instead of crashing an evaluation.
"""
from __future__ import annotations

import gzip
import io
import lzma
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ._inputs import Texts, as_token_lists, check_order, ngrams

__all__ = [
    "distinct_n",
    "ttr",
    "ttr_fixed_length",
    "unique_n",
    "ngram_entropy",
    "normalized_entropy",
    "top_k_share",
    "compression_ratio",
]


def _ngram_counts(token_lists: Iterable[Sequence[str]], n: int) -> Counter:
    counts: Counter = Counter()
    for tokens in token_lists:
        counts.update(ngrams(tokens, n))
    return counts


def distinct_n(texts: Texts, n: int = 1) -> float:
    """Distinct-n: unique n-grams over total n-grams in the corpus.

    .. math:: \\text{distinct-}n = |\\{g\\}| / \\sum_i (|t_i| - n + 1)_+

    Parameters
    ----------
    texts : list of str or list of list of str
        Raw texts (tokenized by :func:`metrics.tokenize`) or token lists.
    n : int, default=1
        N-gram order.

    Returns
    -------
    float in [0, 1]; 0.0 when the corpus has no n-gram.

    References
    ----------
    Li et al., "A Diversity-Promoting Objective Function for Neural Conversation Models", NAACL 2016.
    For one text, ``sum(distinct_n(text, k) for k in 1..4)`` equals the ``diversity`` package's
    ``ngram_diversity_score`` (which joins all texts into one).

    Examples
    --------
    >>> distinct_n(["the cat sat", "the cat ran"], n=1)
    0.6666666666666666
    >>> distinct_n(["the cat sat", "the cat ran"], n=2)
    0.75
    """
    check_order(n)
    counts = _ngram_counts(as_token_lists(texts), n)
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


def ttr(texts: Texts) -> float:
    """Type-token ratio of the whole corpus: unique tokens / tokens (= distinct-1).

    Returns 0.0 for a corpus with no token.

    References
    ----------
    Templin, *Certain Language Skills in Children*, 1957; Guo et al., NAACL Findings 2024.

    Examples
    --------
    >>> ttr(["a rose is a rose"])
    0.6
    """
    return distinct_n(texts, 1)


def ttr_fixed_length(texts: Texts, length: int) -> float:
    """TTR on fixed-length texts: the mean, over the texts of at least ``length`` tokens, of the
    type-token ratio of their first ``length`` tokens.

    .. math:: \\text{TTR}_L = \\frac{1}{|T_L|} \\sum_{t \\in T_L} \\frac{|\\{t_1, \\dots, t_L\\}|}{L},
              \\quad T_L = \\{t : |t| \\ge L\\}

    Every text is cut to the same length, so the value does not move with the texts' lengths
    (a whole-corpus TTR falls as the corpus grows). Texts shorter than ``length`` are left out;
    0.0 when no text is that long (no evidence of diversity, as elsewhere in this module).

    References
    ----------
    Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on Synthetic
    Text", NAACL Findings 2024 (TTR on fixed-length texts; the length cut here is ours: their
    released scripts do not compute it).

    Examples
    --------
    >>> ttr_fixed_length(["a b a c d", "a a a", "x y"], length=3)  # (2/3 + 1/3) / 2; "x y" is too short
    0.5
    """
    check_order(length, "length")
    cut = [tokens[:length] for tokens in as_token_lists(texts) if len(tokens) >= length]
    return float(np.mean([len(set(tokens)) / length for tokens in cut])) if cut else 0.0


def unique_n(
    texts: Texts,
    *,
    ns: Sequence[int] = (1, 2, 3),
    sample_size: int = 1000,
    seed: int = 42,
) -> float:
    """Length-controlled lexical diversity: unique n-grams among a fixed-size sample of n-grams.

    For each order ``n`` in ``ns``, draw ``sample_size`` n-grams without replacement from the
    multiset of all n-grams of the corpus (``numpy.random.default_rng(seed)``), count the distinct
    ones, divide by ``sample_size``; return the mean over ``ns``. Because the sample size is fixed,
    corpora of different lengths are comparable, unlike distinct-n and TTR.

    Raises
    ------
    ValueError
        If the corpus has fewer than ``sample_size`` n-grams of some order.

    References
    ----------
    Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on
    Synthetic Text", NAACL Findings 2024 (unique-n at a fixed number of sampled n-grams).

    Examples
    --------
    >>> unique_n(["a a a a a a"], ns=(1,), sample_size=3)
    0.3333333333333333
    """
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValueError(f"sample_size must be a positive integer, got {sample_size!r}")
    if isinstance(ns, (str, bytes)) or not isinstance(ns, Sequence) or not ns:
        raise ValueError(f"ns must list n-gram orders, e.g. [1, 2, 3], got {ns!r}")
    token_lists = as_token_lists(texts)
    rng = np.random.default_rng(seed)
    ratios = []
    for n in ns:
        check_order(n, "ns entries")
        try:
            picked = sample_ngrams(token_lists, n, sample_size, rng)
        except TooFewNgrams as err:
            raise ValueError(
                f"unique_n needs at least sample_size={sample_size} {n}-grams, the corpus has "
                f"{err.count}; lower sample_size (and compare corpora at the same value)"
            ) from None
        ratios.append(len(set(picked)) / sample_size)
    return float(np.mean(ratios))


class TooFewNgrams(ValueError):
    """The corpus holds fewer n-grams than a sample asks for: no value at that sample size."""

    def __init__(self, n: int, count: int, size: int):
        self.n, self.count, self.size = n, count, size
        super().__init__(f"the corpus has {count} {n}-grams, fewer than the budget of {size}: no value at this "
                         "budget (more or longer generations, or a smaller budget for every corpus compared)")


def sample_ngrams(token_lists: Sequence[Sequence[str]], n: int, size: int, rng: np.random.Generator) -> list[tuple]:
    """``size`` of the corpus' n-grams drawn uniformly without replacement: ``size`` distinct positions of
    the list of every n-gram in text order (``rng.choice``), so for a given ``rng`` state the positions
    depend only on the number of n-grams. :class:`TooFewNgrams` if the corpus has fewer than ``size``.

    Examples
    --------
    >>> sample_ngrams([["a", "b", "c"]], 2, 2, np.random.default_rng(0))
    [('a', 'b'), ('b', 'c')]
    """
    grams = [g for tokens in token_lists for g in ngrams(tokens, n)]
    if len(grams) < size:
        raise TooFewNgrams(n, len(grams), size)
    return [grams[i] for i in rng.choice(len(grams), size=size, replace=False).tolist()]


def ngram_entropy(texts: Texts, n: int = 1) -> float:
    """Shannon entropy, in bits, of the corpus' n-gram frequency distribution.

    .. math:: H_n = -\\sum_g p(g) \\log_2 p(g), \\quad p(g) = c(g) / \\sum_{g'} c(g')

    Returns 0.0 for a corpus with no n-gram.

    References
    ----------
    Zhang et al., "Generating Informative and Diverse Conversational Responses via Adversarial
    Information Maximization", NeurIPS 2018 (Ent-n).

    Examples
    --------
    >>> ngram_entropy(["a b a b"], n=1)
    1.0
    """
    check_order(n)
    counts = np.fromiter(_ngram_counts(as_token_lists(texts), n).values(), dtype=float)
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0


def normalized_entropy(texts: Texts, n: int = 1) -> float:
    """N-gram entropy divided by its maximum, :math:`H_n / \\log_2 V_n` (V_n distinct n-grams).

    In [0, 1]; 0.0 when the corpus has fewer than two distinct n-grams.

    Examples
    --------
    >>> normalized_entropy(["a b a b"], n=1)
    1.0
    >>> normalized_entropy(["a a a b"], n=1)
    0.8112781244591328
    """
    check_order(n)
    counts = _ngram_counts(as_token_lists(texts), n)
    if len(counts) < 2:
        return 0.0
    p = np.fromiter(counts.values(), dtype=float)
    p /= p.sum()
    return float(-(p * np.log2(p)).sum() / math.log2(len(counts)))


def top_k_share(texts: Texts, k: int = 10) -> float:
    """Share of all tokens taken by the ``k`` most frequent token types.

    Rises as a model collapses onto its most typical words (Lab 1's "top-10 token share").
    Returns 0.0 for a corpus with no token.

    Examples
    --------
    >>> top_k_share(["a a a b c"], k=1)
    0.6
    """
    check_order(k, "k", maximum=None)
    counts = _ngram_counts(as_token_lists(texts), 1)
    total = sum(counts.values())
    return sum(c for _, c in counts.most_common(k)) / total if total else 0.0


def compression_ratio(texts: Texts, *, algorithm: str = "gzip") -> float:
    """Compression ratio: size of the corpus in bytes over its compressed size.

    The corpus is the texts joined by single spaces, UTF-8 encoded (token lists are first
    joined by spaces; strings are used raw, not tokenized). Higher means more repetitive.

    .. math:: \\text{CR} = |b| / |\\text{gzip}(\\text{gzip}(b))|

    This is the ``diversity`` package's ``compression_ratio`` (Shaib et al.), without its
    temporary files and without rounding to 3 decimals: with ``"gzip"`` its denominator is the
    size of a gzip file named ``compressed.gz`` holding the *already gzip-compressed* corpus
    (the package compresses twice; we keep that so numbers are comparable with published ones —
    it adds ~30 bytes); with ``"xz"`` it is the ``.xz`` (LZMA) size of the corpus.

    Deterministic: both gzip headers carry the modification time 0. The package stamps the
    current time into the inner header, which the outer compression then compresses, so its
    value moves by a byte or two of the denominator from one call to the next; with its clock
    at 0 the two agree exactly.

    Returns 0.0 for an empty corpus.

    References
    ----------
    Shaib et al., "Standardizing the Measurement of Text Diversity: A Tool and a Comparative
    Analysis of Scores", 2024; PyPI ``diversity``.

    Examples
    --------
    >>> round(compression_ratio(["to be or not to be"] * 200), 1)
    41.7
    """
    if algorithm not in ("gzip", "xz"):
        raise ValueError(f"algorithm must be 'gzip' or 'xz', got {algorithm!r}")
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list of texts, not a single string")
    texts = list(texts)
    if all(isinstance(t, str) for t in texts):
        joined = " ".join(texts)
    else:
        joined = " ".join(" ".join(t) for t in as_token_lists(texts))
    raw = joined.encode("utf-8")
    if not raw:
        return 0.0
    if algorithm == "xz":
        return len(raw) / len(lzma.compress(raw))
    return len(raw) / len(_gzip(_gzip(raw), name="compressed.gz"))


def _gzip(data: bytes, *, name: str = "") -> bytes:
    """A gzip file of ``data`` as :class:`gzip.GzipFile` writes it (header naming ``name``, OS byte
    255), with modification time 0 so the bytes depend on ``data`` alone."""
    buf = io.BytesIO()
    with gzip.GzipFile(name, "wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    return buf.getvalue()
