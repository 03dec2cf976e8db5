"""Several metrics on one corpus, by name: :func:`score` and the name registry.

Metric names (the same names the lm-eval tasks report):

=========================  ==================================================================
name                       value
=========================  ==================================================================
``distinct_<n>``           :func:`metrics.distinct_n` with order n (``distinct_1``, ...)
``ttr``                    :func:`metrics.ttr`
``ttr_<L>``                :func:`metrics.ttr_fixed_length`: mean TTR of the texts' first L tokens
``unique_n``               :func:`metrics.unique_n` (orders 1-3; option ``sample_size``)
``self_bleu_<n>``          :func:`metrics.self_bleu` of order n (option ``sample_size``)
``entropy_<n>``            :func:`metrics.ngram_entropy` (bits)
``normalized_entropy_<n>`` :func:`metrics.normalized_entropy`
``top<k>_share``           :func:`metrics.top_k_share` (``top10_share``)
``distinct_<n>_at_<T>``    :func:`metrics.distinct_n_at`: distinct-n of T sampled n-grams (option ``seed``)
``entropy_<n>_at_<T>``     :func:`metrics.entropy_at`: n-gram entropy of T sampled n-grams (bits)
``top<k>_share_at_<T>``    :func:`metrics.top_k_share_at`: top-k share of T sampled tokens
``compression_ratio``      :func:`metrics.compression_ratio` (gzip)
``mean_length``            mean number of tokens per text
``memorization_<n>``       :func:`metrics.memorization` rate at n tokens (needs ``reference_texts``)
``div_syn``                :func:`metrics.syntactic_diversity` (spaCy)
``div_sem``                :func:`metrics.semantic_diversity` (sentence embeddings)
``knn_entropy``            :func:`metrics.knn_entropy` of the sentence embeddings (nats)
``homogenization``         :func:`metrics.homogenization`: mean pairwise ROUGE-L F (Shaib et al.)
=========================  ==================================================================

An n-gram order ``<n>`` is at most :data:`metrics._inputs.MAX_ORDER` (1000).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._inputs import MAX_ORDER, Texts, as_token_lists

DEFAULT_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "ttr",
    "self_bleu_4",
    "entropy_1",
    "top10_share",
    "compression_ratio",
    "mean_length",
)

#: Metrics that load a model or are slow enough to deserve a progress bar of their own.
SLOW_METRICS = ("self_bleu", "div_syn", "div_sem", "knn_entropy", "memorization")


@dataclass
class _Corpus:
    """The corpus in every form a metric needs, each computed once."""

    raw: list[str] | None
    tokens: list[list[str]]
    options: Mapping[str, Mapping[str, Any]]
    reference_texts: Texts | None
    cache: dict[str, Any] = field(default_factory=dict)
    undefined: float = 0.0  # the value of a ratio with no n-gram to count (0/0)

    def needs_raw(self, name: str) -> list[str]:
        if self.raw is None:
            raise ValueError(f"{name} needs raw strings (it parses or embeds them), not token lists")
        return self.raw

    def embeddings(self) -> np.ndarray:
        if "embeddings" not in self.cache:
            from .semantic import embed

            self.cache["embeddings"] = embed(self.needs_raw("div_sem"), **self.options.get("embed", {}))
        return self.cache["embeddings"]


#: Lexical metrics that are a ratio over the corpus's n-grams (of order ``n``, else tokens): 0/0 without one.
_RATIOS = ("distinct_n", "ttr", "ngram_entropy", "normalized_entropy", "top_k_share")


def _lexical(fn_name: str, **fixed) -> Callable[[_Corpus, str], float]:
    def run(corpus: _Corpus, name: str) -> float:
        from . import lexical

        if fn_name in _RATIOS and all(len(t) < fixed.get("n", 1) for t in corpus.tokens):
            return corpus.undefined  # (a corpus of punctuation only: no word token)
        return getattr(lexical, fn_name)(corpus.tokens, **fixed, **corpus.options.get(name, {}))

    return run


def _at_budget(fn_name: str, arg: str):
    """A measure of :mod:`metrics.length_controlled` at order (or k) ``m`` and budget ``budget``."""
    def make(m: int, budget: int):
        def run(corpus: _Corpus, name: str) -> float:
            from . import length_controlled

            return getattr(length_controlled, fn_name)(corpus.tokens, **{arg: m}, budget=budget,
                                                       **corpus.options.get(name, {}))

        return run

    return make


def _self_bleu(n: int):
    def run(corpus: _Corpus, name: str) -> float:
        from .self_bleu import self_bleu

        return self_bleu(corpus.tokens, n, **corpus.options.get(name, {}))

    return run


def _memorization(n: int):
    def run(corpus: _Corpus, name: str) -> float:
        from .memorization import NgramIndex, memorization

        if corpus.reference_texts is None:
            raise ValueError(f"{name} needs reference_texts (the training corpus)")
        if not isinstance(corpus.reference_texts, NgramIndex):
            ref = as_token_lists(corpus.reference_texts, name="reference_texts")
            corpus.reference_texts = NgramIndex(ref)  # built once for every memorization_<n> asked
        return memorization(corpus.tokens, corpus.reference_texts, n).rate

    return run


def _div_syn(corpus: _Corpus, name: str) -> float:
    from .syntactic import syntactic_diversity

    return syntactic_diversity(corpus.needs_raw(name), **corpus.options.get(name, {}))


def _div_sem(corpus: _Corpus, name: str) -> float:
    from .semantic import semantic_diversity

    return semantic_diversity(corpus.needs_raw(name), embeddings=corpus.embeddings())


def _knn_entropy(corpus: _Corpus, name: str) -> float:
    from .semantic import knn_entropy

    return knn_entropy(corpus.embeddings(), **corpus.options.get(name, {}))


def _homogenization(corpus: _Corpus, name: str) -> float:
    from .homogenization import homogenization

    return homogenization(corpus.needs_raw(name), **corpus.options.get(name, {}))


def _mean_length(corpus: _Corpus, name: str) -> float:
    return float(np.mean([len(t) for t in corpus.tokens]))


def _compression(corpus: _Corpus, name: str) -> float:
    from .lexical import compression_ratio

    return compression_ratio(corpus.raw if corpus.raw is not None else corpus.tokens, **corpus.options.get(name, {}))


_FIXED: dict[str, Callable[[_Corpus, str], float]] = {
    "ttr": _lexical("ttr"),
    "unique_n": _lexical("unique_n"),
    "compression_ratio": _compression,
    "mean_length": _mean_length,
    "div_syn": _div_syn,
    "div_sem": _div_sem,
    "knn_entropy": _knn_entropy,
    "homogenization": _homogenization,
}

_PATTERNS: list[tuple[re.Pattern, Callable[..., Callable[[_Corpus, str], float]]]] = [
    (re.compile(r"distinct_(\d+)_at_(\d+)"), _at_budget("distinct_n_at", "n")),
    (re.compile(r"entropy_(\d+)_at_(\d+)"), _at_budget("entropy_at", "n")),
    (re.compile(r"top(\d+)_share_at_(\d+)"), _at_budget("top_k_share_at", "k")),
    (re.compile(r"distinct_(\d+)"), lambda n: _lexical("distinct_n", n=n)),
    (re.compile(r"ttr_(\d+)"), lambda n: _lexical("ttr_fixed_length", length=n)),
    (re.compile(r"self_bleu_(\d+)"), _self_bleu),
    (re.compile(r"entropy_(\d+)"), lambda n: _lexical("ngram_entropy", n=n)),
    (re.compile(r"normalized_entropy_(\d+)"), lambda n: _lexical("normalized_entropy", n=n)),
    (re.compile(r"top(\d+)_share"), lambda k: _lexical("top_k_share", k=k)),
    (re.compile(r"memorization_(\d+)"), _memorization),
]


#: The options each metric takes (``options={name: {...}}``, ``--option name.key=value``), by family;
#: ``embed`` configures the sentence embedder shared by ``div_sem`` and ``knn_entropy``.
OPTIONS = {
    "unique_n": ("ns", "sample_size", "seed"),
    "distinct_at": ("seed",),
    "entropy_at": ("seed",),
    "top_share_at": ("seed",),
    "self_bleu": ("smoothing", "sample_size", "seed"),
    "compression_ratio": ("algorithm",),
    "div_syn": ("n_iter", "model", "nlp", "batch_size", "n_process"),
    "knn_entropy": ("k", "eps"),
    "homogenization": ("measure",),
    "embed": ("model_name", "model", "batch_size"),
}
_EMBEDDED = ("div_sem", "knn_entropy")


def _family(name: str) -> str:
    """``self_bleu_4`` → ``self_bleu``; a fixed name is its own family."""
    for pattern, _ in _PATTERNS:
        if pattern.fullmatch(name):
            return re.sub("_+", "_", pattern.pattern.replace(r"(\d+)", "")).strip("_")
    return name


def check_options(metrics: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None) -> None:
    """``ValueError`` for an option of a metric not asked for, or an option a metric does not take.

    Examples
    --------
    >>> check_options(["self_bleu_4"], {"self_bleu_4": {"sample_size": 100}})
    >>> check_options(["self_bleu_4"], {"self_bleu_4": {"bogus": 1}})
    Traceback (most recent call last):
    ...
    ValueError: option self_bleu_4.bogus: self_bleu_4 has no option 'bogus'; its options: smoothing, sample_size, seed
    """
    for key, given in (options or {}).items():
        if key == "embed":
            if not any(m in _EMBEDDED for m in metrics):
                raise ValueError(f"option embed.*: only {' and '.join(_EMBEDDED)} embed texts, and neither is asked")
        elif key not in metrics:
            raise ValueError(f"option {key}.*: {key!r} is not among the metrics asked ({', '.join(metrics)})")
        if not isinstance(given, Mapping):
            raise ValueError(f"options[{key!r}] must be a mapping of option names to values")
        allowed = OPTIONS.get(_family(key), ())
        for option in given:
            if option not in allowed:
                valid = f"its options: {', '.join(allowed)}" if allowed else "it takes no options"
                raise ValueError(f"option {key}.{option}: {key} has no option {option!r}; {valid}")


def resolve(name: str) -> Callable[[_Corpus, str], float]:
    """The function computing metric ``name``; ``ValueError`` listing the valid names if unknown."""
    if name in _FIXED:
        return _FIXED[name]
    for pattern, make in _PATTERNS:
        m = pattern.fullmatch(name)
        if m and all(int(g) >= 1 for g in m.groups()):
            # the first number is an n-gram order, except in top<k>_share* (k) and ttr_<L> (a length)
            if not pattern.pattern.startswith(("top", "ttr")) and int(m.group(1)) > MAX_ORDER:
                raise ValueError(f"metric {name!r}: the n-gram order must be in [1, {MAX_ORDER}]")
            return make(*(int(g) for g in m.groups()))
    raise ValueError(
        f"unknown metric {name!r}; valid names: {', '.join(sorted(_FIXED))}, distinct_<n>, ttr_<L>, "
        "self_bleu_<n>, entropy_<n>, normalized_entropy_<n>, top<k>_share, memorization_<n>, distinct_<n>_at_<T>, "
        "entropy_<n>_at_<T>, top<k>_share_at_<T>"
    )


def score(
    texts: Texts,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    reference_texts: Texts | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: bool = False,
    undefined: float = 0.0,
) -> dict[str, float]:
    """Compute several metrics on one corpus; tokenizes (and embeds) once.

    Parameters
    ----------
    texts : list of str or list of list of str
    metrics : sequence of str
        Metric names (see the module docstring); default :data:`DEFAULT_METRICS`.
    reference_texts : list, optional
        Training corpus, for ``memorization_<n>``.
    options : mapping, optional
        Per-metric keyword options, e.g. ``{"self_bleu_4": {"sample_size": 1000}}``; the key
        ``"embed"`` configures the sentence embedder shared by ``div_sem`` and ``knn_entropy``.
        :data:`OPTIONS` lists what each metric takes; anything else is a ``ValueError``.
    progress : bool
        Show a progress bar over the metrics.
    undefined : float
        The value of ``distinct_<n>``, ``ttr``, ``entropy_<n>``, ``normalized_entropy_<n>`` and
        ``top<k>_share`` on a corpus with no n-gram of their order (0/0: e.g. punctuation only).
        0.0 by default, as the lexical functions document (a collapsed model scores as collapsed);
        ``lm-collapse metrics`` passes NaN and prints it as undefined.

    Returns
    -------
    dict mapping each requested name to a float, in the order asked.

    Examples
    --------
    >>> score(["the cat sat", "the cat ran"], ["distinct_1", "ttr", "mean_length"])
    {'distinct_1': 0.6666666666666666, 'ttr': 0.6666666666666666, 'mean_length': 3.0}
    """
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    functions = {name: resolve(name) for name in metrics}  # fail on a bad name before any work
    check_options(list(functions), options)
    texts = texts if isinstance(texts, (str, bytes)) else list(texts)
    tokens = as_token_lists(texts)
    raw = texts if texts and all(isinstance(t, str) for t in texts) else None
    corpus = _Corpus(raw, tokens, options or {}, reference_texts, undefined=undefined)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(functions), desc="metrics", unit="metric")
    results = {}
    try:
        for name, fn in functions.items():
            if bar is not None:
                bar.set_postfix_str(name)
            results[name] = float(fn(corpus, name))
            if bar is not None:
                bar.update()
    finally:  # a metric that raises leaves the bar finished, on its own line
        if bar is not None:
            bar.close()
    return results
