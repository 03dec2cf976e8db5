"""Div_syn: mean pairwise 1 - K of the Weisfeiler-Lehman kernel on dependency trees
(:func:`metrics.syntactic_diversity`; needs ``pip install 'lm-collapse[spacy]'`` and an English pipeline)."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on Synthetic Text",
Findings of NAACL 2024."""


class DivSyn(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, "n_iter (2), model ('en_core_web_sm')")

    def _compute(self, data, n_iter=2, model="en_core_web_sm"):
        return {"div_syn": metrics.syntactic_diversity(list(data), n_iter, model=model)}
