"""Text-diversity metrics for model collapse and mode collapse.

Pure functions on texts, graphs and vectors: no model code. Every text metric takes
``list[str]`` (tokenized by :func:`tokenize`: lower-cased word tokens) or ``list[list[str]]``
(used as is). See each function's docstring for its formula and reference implementation.
"""
from ._inputs import tokenize
from .homogenization import homogenization
from .length_controlled import distinct_n_at, entropy_at, top_k_share_at
from .lexical import (
    compression_ratio,
    distinct_n,
    ngram_entropy,
    normalized_entropy,
    top_k_share,
    ttr,
    ttr_fixed_length,
    unique_n,
)
from .memorization import Memorization, NgramIndex, memorization
from .score import DEFAULT_METRICS, score
from .self_bleu import self_bleu
from .semantic import (
    clipped_pair_distances,
    cosine_diversity,
    embed,
    knn_entropy,
    mean_cosine_distance,
    nn_distance,
    semantic_diversity,
)
from .syntactic import parse_trees, syntactic_diversity, wl_diversity

__all__ = [
    "tokenize",
    "distinct_n",
    "ttr",
    "ttr_fixed_length",
    "unique_n",
    "ngram_entropy",
    "normalized_entropy",
    "top_k_share",
    "compression_ratio",
    "distinct_n_at",
    "entropy_at",
    "top_k_share_at",
    "self_bleu",
    "wl_diversity",
    "parse_trees",
    "syntactic_diversity",
    "semantic_diversity",
    "cosine_diversity",
    "clipped_pair_distances",
    "homogenization",
    "embed",
    "knn_entropy",
    "nn_distance",
    "mean_cosine_distance",
    "memorization",
    "Memorization",
    "NgramIndex",
    "score",
    "DEFAULT_METRICS",
]
