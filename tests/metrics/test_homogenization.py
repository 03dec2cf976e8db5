"""metrics.homogenization against the rouge-score package and Shaib et al.'s diversity package."""
from itertools import permutations

import numpy as np
import pytest
from rouge_score import rouge_scorer

from metrics import homogenization

TEXTS = [
    "Why did the coffee file a police report? It got mugged.",
    "Decaf is just coffee that has given up on its dreams.",
    "My espresso machine and I have a latte in common.",
    "",
    "Coffee, coffee, coffee!",
    "coffee",
]


def test_rouge_l_equals_the_rouge_score_double_loop():
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    loop = [scorer.score(a, b)["rougeL"].fmeasure for a, b in permutations(TEXTS, 2)]
    assert homogenization(TEXTS) == pytest.approx(np.mean(loop), abs=1e-12)
    from diversity import homogenization_score  # Shaib et al.'s package: the same mean, rounded to 3 decimals

    assert round(homogenization(TEXTS), 3) == homogenization_score(TEXTS, verbose=False)
    with pytest.raises(ValueError, match="at least 2 texts"):
        homogenization(["one"])
