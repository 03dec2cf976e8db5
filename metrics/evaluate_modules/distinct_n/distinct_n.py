"""Distinct-n: unique n-grams over total n-grams of the texts (:func:`metrics.distinct_n`)."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Li et al., "A Diversity-Promoting Objective Function for Neural Conversation Models", NAACL 2016."""


class DistinctN(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, "n (int, default 1)")

    def _compute(self, data, n=1):
        return {"distinct_n": metrics.distinct_n(list(data), n)}
