"""Text-diversity metrics for model collapse and mode collapse.

Pure functions on texts, graphs and vectors: no model code. Every text metric takes
``list[str]`` (tokenized by :func:`tokenize`: lower-cased word tokens) or ``list[list[str]]``
(used as is). See each function's docstring for its formula and reference implementation.
"""
from ._inputs import tokenize
from .lexical import (
    compression_ratio,
    distinct_n,
    ngram_entropy,
    normalized_entropy,
    top_k_share,
    ttr,
    unique_n,
)
from .score import DEFAULT_METRICS, score

