"""Lexical diversity at a fixed budget of n-grams: distinct-n, n-gram entropy and top-k share that a change
in length cannot move.

Why. Distinct-n, the plug-in n-gram entropy and the top-k share are all computed on every n-gram of the
corpus, and all of them move with its size alone: the number of distinct n-grams grows more slowly than
the number of n-grams (Heaps' law), so a model whose generations get shorter scores *more* diverse on
distinct-n, and one whose generations get longer scores less, with no change in the distribution it
samples from. Across generations of a recursion run, lengths change by tens of percent.

Design. Each measure is computed on a fixed number ``budget`` (T) of n-grams drawn uniformly *without
replacement* from the multiset of the corpus' n-grams (n-grams never span two texts), with a fixed seed —
Guo et al.'s unique-n, extended from distinct-n to the entropy and the top-k share:

* ``distinct_n_at``  = |{g in S}| / T                          (unique-n of one order)
* ``entropy_at``     = −Σ_g (c_S(g)/T) log2 (c_S(g)/T)          (bits; at most log2 T)
* ``top_k_share_at`` = Σ of the k largest c_S(g) / T           (unigrams)

where S is the sample and c_S(g) the count of n-gram g in it. If the corpus' n-grams are exchangeable
draws from a distribution p, a sample of T of them without replacement is T draws from p whatever the
corpus size M >= T, so the *expected* value of each measure depends on p and T only: appending more
text from the same p leaves it unchanged (the plain measures fall with M). Only measures at the same T
compare; T is part of the metric's name (``distinct_2_at_1000``). A corpus with fewer than T n-grams has
no value: :class:`TooFewNgrams` (a ``ValueError``) names the count; the lm-eval tasks report ``nan`` and
log the count, never a value at a smaller T.

The draw is :func:`metrics.lexical.sample_ngrams`, unique-n's: T distinct positions of the list of every
n-gram in text order, ``numpy.random.default_rng(seed).choice``. For a fixed seed the positions depend on
M alone, so with exchangeable tokens the expectation over corpora is that of T draws from p even for one
fixed seed. (A draw made in sorted n-gram order would not be: tried and rejected, its fixed-seed values
drifted with M by five standard errors.) ``distinct_n_at(texts, n, budget=T, seed=s)`` equals
``unique_n(texts, ns=(n,), sample_size=T, seed=s)``.

Not chosen: cutting every generation to a common length L. It also removes the size effect, but a
generation shorter than L must then be dropped (a biased selection: collapse shortens generations) or
kept (the corpus size varies again).

References
----------
Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on Synthetic Text",
NAACL Findings 2024 (unique-n at a fixed number of sampled n-grams); Li et al., NAACL 2016 (distinct-n);
Heaps, *Information Retrieval*, 1978 (vocabulary growth with corpus size).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from ._inputs import Texts, as_token_lists, check_order
from .lexical import TooFewNgrams, sample_ngrams

__all__ = ["TooFewNgrams", "sample_ngram_counts", "distinct_n_at", "entropy_at", "top_k_share_at"]

#: Seed of the draw when none is given (the tasks' seed; unique-n's default too).
SEED = 42


def sample_ngram_counts(texts: Texts, n: int = 1, *, budget: int, seed: int = SEED) -> Counter:
    """Counts, per n-gram type, of ``budget`` n-grams drawn without replacement from the corpus.

    Parameters
    ----------
    texts : list of str or list of list of str
        Raw texts (tokenized by :func:`metrics.tokenize`) or token lists.
    n : int, default=1
        N-gram order.
    budget : int
        Number T of n-grams drawn.
    seed : int, default=42
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    Counter mapping each drawn n-gram (a tuple of tokens) to its count in the sample; the counts sum to ``budget``.

    Raises
    ------
    TooFewNgrams
        If the corpus has fewer than ``budget`` n-grams.

    Examples
    --------
    >>> sample_ngram_counts(["a b", "a"], budget=3)
    Counter({('a',): 2, ('b',): 1})
    """
    check_order(n)
    check_order(budget, "budget")
    return Counter(sample_ngrams(as_token_lists(texts), n, budget, np.random.default_rng(seed)))


def distinct_n_at(texts: Texts, n: int = 1, *, budget: int, seed: int = SEED) -> float:
    """Distinct-n of a fixed-size sample of the corpus' n-grams.

    .. math:: \\text{distinct-}n@T = |\\{g : c_S(g) > 0\\}| / T

    S: ``budget`` = T n-grams drawn without replacement (:func:`sample_ngram_counts`). In [1/T, 1].

    References
    ----------
    Guo et al., NAACL Findings 2024 (unique-n); Li et al., NAACL 2016 (distinct-n).

    Examples
    --------
    >>> distinct_n_at(["a a a a b b"], n=1, budget=6)
    0.3333333333333333
    >>> distinct_n_at(["a b c d"], n=2, budget=3)
    1.0
    """
    return len(sample_ngram_counts(texts, n, budget=budget, seed=seed)) / budget


def entropy_at(texts: Texts, n: int = 1, *, budget: int, seed: int = SEED) -> float:
    """Shannon entropy, in bits, of a fixed-size sample of the corpus' n-grams.

    .. math:: H_n@T = -\\sum_g \\frac{c_S(g)}{T} \\log_2 \\frac{c_S(g)}{T}

    In [0, log2 T]. The plug-in estimate is biased low by an amount that shrinks with T (Miller, 1955):
    a fixed T makes that bias the same for every corpus compared.

    References
    ----------
    Zhang et al., NeurIPS 2018 (Ent-n); Miller, "Note on the bias of information estimates", 1955.

    Examples
    --------
    >>> entropy_at(["a b a b"], n=1, budget=4)
    1.0
    """
    p = np.fromiter(sample_ngram_counts(texts, n, budget=budget, seed=seed).values(), dtype=float) / budget
    return float(-(p * np.log2(p)).sum()) + 0.0


def top_k_share_at(texts: Texts, k: int = 10, *, budget: int, seed: int = SEED) -> float:
    """Share of a fixed-size sample of the corpus' tokens taken by the sample's ``k`` most frequent types.

    .. math:: \\text{top-}k@T = \\frac{1}{T} \\sum_{i=1}^{k} c_S(g_{(i)}), \\quad c_S(g_{(1)}) \\ge c_S(g_{(2)}) \\ge \\dots

    In [min(k, T)/T, 1]; unigrams only, like :func:`metrics.top_k_share`.

    Examples
    --------
    >>> top_k_share_at(["a a a b c"], k=1, budget=5)
    0.6
    """
    check_order(k, "k")
    return sum(c for _, c in sample_ngram_counts(texts, 1, budget=budget, seed=seed).most_common(k)) / budget
