"""N-gram entropy: Shannon entropy (bits) of the n-gram distribution of the texts
(:func:`metrics.ngram_entropy`)."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Shannon, "A Mathematical Theory of Communication", 1948; as used by Zhang et al., NeurIPS 2018."""


class Entropy(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, "n (int, default 1)")

    def _compute(self, data, n=1):
        return {"entropy": metrics.ngram_entropy(list(data), n)}
