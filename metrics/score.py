"""Several metrics on one corpus, by name: :func:`score` and the name registry.

Metric names: those of :data:`metrics.registry.METRICS` that have a ``compute`` (the table in
:mod:`metrics.registry`'s docstring), the same names the lm-eval tasks report. An n-gram order
``<n>`` is at most :data:`metrics._inputs.MAX_ORDER` (1000).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from . import registry
from ._inputs import Texts, as_token_lists

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


def check_options(metrics: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None) -> None:
    """``ValueError`` for an option of a metric not asked for, or an option a metric does not take
    (:attr:`metrics.registry.Metric.options`; key ``embed``: :data:`metrics.registry.EMBED_OPTIONS`).

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
            embedding = [m.name for m in registry.METRICS if m.embeds and m.compute is not None]
            if not any((found := registry.find(m)) and found[0].embeds for m in metrics):
                raise ValueError(f"option embed.*: only {' and '.join(embedding)} embed texts, and neither is asked")
            allowed = registry.EMBED_OPTIONS
        elif key not in metrics:
            raise ValueError(f"option {key}.*: {key!r} is not among the metrics asked ({', '.join(metrics)})")
        else:
            allowed = registry.lookup(key).options
        if not isinstance(given, Mapping):
            raise ValueError(f"options[{key!r}] must be a mapping of option names to values")
        for option in given:
            if option not in allowed:
                valid = f"its options: {', '.join(allowed)}" if allowed else "it takes no options"
                raise ValueError(f"option {key}.{option}: {key} has no option {option!r}; {valid}")


def resolve(name: str) -> Callable[[registry.Corpus, str], float]:
    """The function computing metric ``name`` (its registry entry's ``compute`` with the name's numbers);
    ``ValueError`` listing the valid names if :func:`score` cannot compute it."""
    found = registry.find(name)
    if found is None or found[0].compute is None:
        raise ValueError(f"unknown metric {name!r}; valid names: {registry.valid_names(computable=True)}")
    metric, numbers = found
    return partial(metric.compute, **numbers)


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
        The registry (:mod:`metrics.registry`) lists what each metric takes; anything else is a ``ValueError``.
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
    corpus = registry.Corpus(raw, tokens, options or {}, reference_texts, undefined=undefined)
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
