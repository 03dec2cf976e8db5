"""Homogenization (Shaib et al.): how much a set of texts repeats itself, as mean pairwise ROUGE-L."""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import combinations

__all__ = ["homogenization"]

MEASURES = ("rouge_l",)


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def homogenization(texts: Sequence[str], measure: str = "rouge_l") -> float:
    """Mean over the N(N−1)/2 pairs of texts of their ROUGE-L F-measure (symmetric).

    Parameters
    ----------
    texts : list of str
        At least two raw texts, tokenized as the ``rouge-score`` package does (no stemming).
    measure : {"rouge_l"}

    Returns
    -------
    float in [0, 1]: 0 when no two texts share a token, 1 when all are identical.

    References
    ----------
    Shaib et al., "Standardizing the Measurement of Text Diversity: A Tool and a Comparative
    Analysis of Scores" (2024): homogenization score with ROUGE-L.

    Examples
    --------
    >>> round(homogenization(["the cat sat", "the cat ran", "a dog"]), 4)  # (2/3 + 0 + 0) / 3
    0.2222
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of: {', '.join(MEASURES)}")
    texts = list(texts)
    if len(texts) < 2:
        raise ValueError(f"homogenization needs at least 2 texts, got {len(texts)}")
    scorer = _rouge_scorer()
    scores = [scorer.score(a, b)["rougeL"].fmeasure for a, b in combinations(texts, 2)]
    return sum(scores) / len(scores)
