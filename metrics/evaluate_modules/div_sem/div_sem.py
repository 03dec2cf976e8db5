"""Div_sem: mean over pairs of (1 - cos) / 2 of sentence embeddings (:func:`metrics.semantic_diversity`;
needs ``pip install 'lm-collapse[embeddings]'``)."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on Synthetic Text",
Findings of NAACL 2024."""


class DivSem(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, f"model_name ({metrics.semantic.DEFAULT_EMBEDDER!r}), batch_size (64)")

    def _compute(self, data, model_name=metrics.semantic.DEFAULT_EMBEDDER, batch_size=64):
        return {"div_sem": metrics.semantic_diversity(list(data), model_name=model_name, batch_size=batch_size)}
