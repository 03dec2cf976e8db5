"""Homogenization: mean pairwise similarity of the texts, ROUGE-L F-measure by default
(:func:`metrics.homogenization`). Higher means less diverse."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Shaib et al., "Standardizing the Measurement of Text Diversity: A Tool and a Comparative Analysis of
Scores", 2024."""


class Homogenization(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, "measure ('rouge_l')")

    def _compute(self, data, measure="rouge_l"):
        return {"homogenization": metrics.homogenization(list(data), measure)}
