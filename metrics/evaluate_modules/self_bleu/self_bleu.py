"""Self-BLEU: mean BLEU of each text against all the others, NLTK ``sentence_bleu`` semantics
(:func:`metrics.self_bleu`). Higher means less diverse."""
import evaluate

import metrics
from metrics.evaluate_modules import info

CITATION = """Zhu et al., "Texygen: A Benchmarking Platform for Text Generation Models", SIGIR 2018."""


class SelfBleu(evaluate.Measurement):
    def _info(self):
        return info(__doc__, CITATION, "n (int, default 4), smoothing ('method1'), sample_size (None: all), seed (0)")

    def _compute(self, data, n=4, smoothing="method1", sample_size=None, seed=0):
        return {"self_bleu": metrics.self_bleu(list(data), n, smoothing=smoothing, sample_size=sample_size, seed=seed)}
