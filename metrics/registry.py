"""The metric registry: every metric this package computes or a ``collapse_*`` task reports, declared once.

:data:`METRICS` holds one :class:`Metric` per metric name or name pattern, and every reader looks
the name up with :func:`lookup`; :func:`register` adds one (a toy metric in a test, your own metric
in a script). The fields, and where each is read:

======================  ==============================================================================
field                   read by
======================  ==============================================================================
``name``                a name (``ttr``) or a pattern whose ``<n>`` (n-gram order, 1 to
                        :data:`metrics._inputs.MAX_ORDER`), ``<k>``, ``<T>`` (a budget of n-grams),
                        ``<L>`` (tokens per text) stand for positive integers (``distinct_<n>_at_<T>``);
                        the numbers reach ``compute`` as keywords ``n``, ``k``, ``T``, ``L``
``compute``             :func:`metrics.score.resolve` / :func:`metrics.score.score`:
                        ``compute(corpus, name, **numbers) -> float`` on a :class:`Corpus`;
                        None for a metric only a task hook computes (perplexities, per-prompt
                        scores, Verbalized Sampling): :func:`metrics.score.resolve` refuses it
``function``            the public function ``compute`` calls: :meth:`Metric.defaults` reads the
                        defaults of ``options`` from its signature
``options``             the keyword options it takes (``options={name: {...}}``, ``--option
                        name.key=value``), checked by :func:`metrics.score.check_options`
``embeds``              it embeds the texts with the shared sentence embedder (option key ``embed``,
                        :data:`EMBED_OPTIONS`), checked by :func:`metrics.score.check_options`
``higher_is_better``    ``collapse_tasks``: :func:`collapse_tasks.gen_utils.higher_is_better`, the
                        generation tasks' metric lists, :func:`collapse_tasks.register_metrics`
                        (lm-eval's direction); every task YAML that states one must agree (a test)
``descriptive``         the report's glossary states no better direction (``higher_is_better`` is
                        then only the bool lm-eval requires)
``label``, ``unit``,    the report (:func:`lm_collapse.report.labels.label`): axis label (``<n>``,
``log``, ``group``      ``<k>`` filled in; ``<n-gram>``/``<n-grams>`` as word/bigram/trigram), unit,
                        log axis, figure; no ``label``: the report shows the name in figure ``other``
``preferred``           the report's tables (:func:`lm_collapse.report.tables.ordered_metrics`) list
                        preferred metrics first in registry order, then the probes, then the rest
======================  ==============================================================================

The metrics :func:`metrics.score.score` computes (the same names the lm-eval tasks report):

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

Adding a metric: write its function (e.g. in :mod:`metrics.lexical`), add its entry here; to
report it from the generation tasks, add its name to a metric tuple of :mod:`collapse_tasks.gen_utils`.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import length_controlled, lexical, semantic
from ._inputs import MAX_ORDER, Texts, as_token_lists
from .homogenization import homogenization
from .memorization import NgramIndex, memorization
from .self_bleu import self_bleu
from .syntactic import syntactic_diversity

#: Options of the sentence embedder shared by the metrics that embed (:func:`metrics.embed`).
EMBED_OPTIONS = ("model_name", "model", "batch_size")
_PLACEHOLDER = re.compile(r"<([nkTL])>")


@dataclass
class Corpus:
    """The corpus in every form a metric needs, each computed once (what ``compute`` receives)."""

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
            self.cache["embeddings"] = semantic.embed(self.needs_raw("div_sem"), **self.options.get("embed", {}))
        return self.cache["embeddings"]

    def opts(self, name: str) -> Mapping[str, Any]:
        """The options given for metric ``name``."""
        return self.options.get(name, {})


@dataclass(frozen=True)
class Metric:
    """One metric (or name pattern) and what every reader needs of it (see the module docstring)."""

    name: str
    compute: Callable[..., float] | None = None
    function: Callable | None = None
    options: tuple[str, ...] = ()
    embeds: bool = False
    higher_is_better: bool = True
    descriptive: bool = False
    label: str | None = None
    unit: str = ""
    log: bool = False
    group: str = "diversity"
    preferred: bool = False

    @cached_property
    def pattern(self) -> re.Pattern:
        return re.compile(_PLACEHOLDER.sub(lambda m: f"(?P<{m.group(1)}>\\d+)", self.name))

    def numbers(self, name: str) -> dict[str, int] | None:
        """``{"n": 2, "T": 1000}`` when ``name`` is this metric's (None if not); ``ValueError`` for an
        order out of [1, MAX_ORDER].

        Examples
        --------
        >>> lookup("distinct_2_at_1000").numbers("distinct_2_at_1000")
        {'n': 2, 'T': 1000}
        """
        m = self.pattern.fullmatch(name)
        if not m or not all(int(g) >= 1 for g in m.groups()):
            return None
        if "n" in m.groupdict() and int(m["n"]) > MAX_ORDER:
            raise ValueError(f"metric {name!r}: the n-gram order must be in [1, {MAX_ORDER}]")
        return {k: int(v) for k, v in m.groupdict().items()}

    def defaults(self) -> dict[str, Any]:
        """Each option and its default, read from :attr:`function`'s signature (``None``: no default).

        Examples
        --------
        >>> lookup("self_bleu_4").defaults()
        {'smoothing': 'method1', 'sample_size': None, 'seed': 0}
        """
        params = inspect.signature(self.function).parameters if self.function else {}
        return {o: params[o].default if o in params and params[o].default is not inspect.Parameter.empty else None
                for o in self.options}

    def axis_label(self, name: str) -> str | None:
        """:attr:`label` with the numbers of ``name`` filled in.

        Examples
        --------
        >>> lookup("entropy_2_at_1000").axis_label("entropy_2_at_1000")
        'bigram entropy of a fixed sample of bigrams'
        """
        if self.label is None:
            return None
        numbers = self.numbers(name) or {}
        n = numbers.get("n")
        gram, grams = _NGRAM.get(n, (f"{n}-gram", f"{n}-grams"))
        text = self.label.replace("<n-grams>", grams).replace("<n-gram>", gram)
        return _PLACEHOLDER.sub(lambda m: str(numbers[m.group(1)]), text)


_NGRAM = {1: ("word", "words"), 2: ("bigram", "bigrams"), 3: ("trigram", "trigrams")}


# ---------------------------------------------------------------- compute: a Corpus → a float


def _ratio(fn: Callable, corpus: Corpus, name: str, order: int = 1, **fixed) -> float:
    """A lexical ratio over the corpus's n-grams of ``order``: ``corpus.undefined`` (0/0) without one."""
    if all(len(t) < order for t in corpus.tokens):
        return corpus.undefined  # (a corpus of punctuation only: no word token)
    return fn(corpus.tokens, **fixed, **corpus.opts(name))


def _distinct(corpus: Corpus, name: str, n: int) -> float:
    return _ratio(lexical.distinct_n, corpus, name, n, n=n)


def _ttr(corpus: Corpus, name: str) -> float:
    return _ratio(lexical.ttr, corpus, name)


def _ttr_fixed(corpus: Corpus, name: str, L: int) -> float:
    return lexical.ttr_fixed_length(corpus.tokens, length=L, **corpus.opts(name))


def _unique_n(corpus: Corpus, name: str) -> float:
    return lexical.unique_n(corpus.tokens, **corpus.opts(name))


def _entropy(corpus: Corpus, name: str, n: int) -> float:
    return _ratio(lexical.ngram_entropy, corpus, name, n, n=n)


def _normalized_entropy(corpus: Corpus, name: str, n: int) -> float:
    return _ratio(lexical.normalized_entropy, corpus, name, n, n=n)


def _top_share(corpus: Corpus, name: str, k: int) -> float:
    return _ratio(lexical.top_k_share, corpus, name, k=k)


def _distinct_at(corpus: Corpus, name: str, n: int, T: int) -> float:
    return length_controlled.distinct_n_at(corpus.tokens, n=n, budget=T, **corpus.opts(name))


def _entropy_at(corpus: Corpus, name: str, n: int, T: int) -> float:
    return length_controlled.entropy_at(corpus.tokens, n=n, budget=T, **corpus.opts(name))


def _top_share_at(corpus: Corpus, name: str, k: int, T: int) -> float:
    return length_controlled.top_k_share_at(corpus.tokens, k=k, budget=T, **corpus.opts(name))


def _self_bleu(corpus: Corpus, name: str, n: int) -> float:
    return self_bleu(corpus.tokens, n, **corpus.opts(name))


def _compression(corpus: Corpus, name: str) -> float:
    return lexical.compression_ratio(corpus.raw if corpus.raw is not None else corpus.tokens, **corpus.opts(name))


def _mean_length(corpus: Corpus, name: str) -> float:
    return float(np.mean([len(t) for t in corpus.tokens]))


def _memorization(corpus: Corpus, name: str, n: int) -> float:
    if corpus.reference_texts is None:
        raise ValueError(f"{name} needs reference_texts (the training corpus)")
    if not isinstance(corpus.reference_texts, NgramIndex):
        ref = as_token_lists(corpus.reference_texts, name="reference_texts")
        corpus.reference_texts = NgramIndex(ref)  # built once for every memorization_<n> asked
    return memorization(corpus.tokens, corpus.reference_texts, n).rate


def _div_syn(corpus: Corpus, name: str) -> float:
    return syntactic_diversity(corpus.needs_raw(name), **corpus.opts(name))


def _div_sem(corpus: Corpus, name: str) -> float:
    return semantic.semantic_diversity(corpus.needs_raw(name), embeddings=corpus.embeddings())


def _knn_entropy(corpus: Corpus, name: str) -> float:
    return semantic.knn_entropy(corpus.embeddings(), **corpus.opts(name))


def _homogenization(corpus: Corpus, name: str) -> float:
    return homogenization(corpus.needs_raw(name), **corpus.opts(name))


# ---------------------------------------------------------------- the registry

_FRACTION = "fraction"
_QUALITY = {"higher_is_better": False, "group": "quality"}

#: Every metric, in the report's table order (the ``preferred`` ones lead).
METRICS: list[Metric] = [
    Metric("bits_per_byte", label="bits per byte", unit="bits/byte", preferred=True, **_QUALITY),
    Metric("distinct_<n>_at_<T>", _distinct_at, length_controlled.distinct_n_at, ("seed",),
           label="distinct-<n> of a fixed sample of <n-grams>", unit=_FRACTION, preferred=True),
    Metric("entropy_<n>_at_<T>", _entropy_at, length_controlled.entropy_at, ("seed",),
           label="<n-gram> entropy of a fixed sample of <n-grams>", unit="bits", preferred=True),
    Metric("top<k>_share_at_<T>", _top_share_at, length_controlled.top_k_share_at, ("seed",), higher_is_better=False,
           label="share of the <k> most frequent words, fixed sample", unit=_FRACTION, preferred=True),
    Metric("unique_n", _unique_n, lexical.unique_n, ("ns", "sample_size", "seed"),
           label="unique-n (sampled n-grams)", unit=_FRACTION, preferred=True),
    Metric("mean_length", _mean_length, descriptive=True, label="generation length", unit="words", preferred=True),
    Metric("word_perplexity", label="word perplexity", unit="per word", log=True, preferred=True, **_QUALITY),
    Metric("tail_word_perplexity", label="word perplexity, worst 10% of documents", unit="per word", log=True,
           preferred=True, **_QUALITY),
    Metric("byte_perplexity", label="byte perplexity", unit="per byte", log=True, preferred=True, **_QUALITY),
    Metric("distinct_<n>", _distinct, lexical.distinct_n, label="distinct-n", unit="fraction of n-grams",
           preferred=True),
    Metric("one_minus_self_bleu_<n>", label="1 − Self-BLEU-<n>", unit=_FRACTION, preferred=True),
    Metric("self_bleu_<n>", _self_bleu, self_bleu, ("smoothing", "sample_size", "seed"),
           higher_is_better=False, label="Self-BLEU-<n>", unit=_FRACTION, preferred=True),
    Metric("entropy_<n>", _entropy, lexical.ngram_entropy, label="n-gram entropy", unit="bits", preferred=True),
    Metric("top<k>_share", _top_share, lexical.top_k_share, higher_is_better=False,
           label="share of the <k> most frequent words", unit=_FRACTION, preferred=True),
    Metric("compression_ratio", _compression, lexical.compression_ratio, ("algorithm",), higher_is_better=False,
           label="gzip compression ratio", unit="raw / compressed bytes", preferred=True),
    Metric("div_syn", _div_syn, syntactic_diversity, ("n_iter", "model", "nlp", "batch_size", "n_process"),
           label="syntactic diversity (Div_syn)", preferred=True),
    Metric("div_sem", _div_sem, semantic.semantic_diversity, embeds=True, label="semantic diversity (Div_sem)",
           preferred=True),
    Metric("memorization_<n>", _memorization, memorization, higher_is_better=False,
           label="generations copying <n> words of the training plays", unit=_FRACTION, preferred=True),
    Metric("within_distinct_2", label="distinct-2 within a prompt's samples", unit=_FRACTION),
    Metric("within_self_bleu_4", higher_is_better=False, label="Self-BLEU-4 within a prompt's samples", unit=_FRACTION),
    Metric("ttr", _ttr, lexical.ttr),
    Metric("ttr_<L>", _ttr_fixed, lexical.ttr_fixed_length),
    Metric("normalized_entropy_<n>", _normalized_entropy, lexical.normalized_entropy),
    Metric("knn_entropy", _knn_entropy, semantic.knn_entropy, ("k", "eps"), embeds=True),
    Metric("homogenization", _homogenization, homogenization, ("measure",), higher_is_better=False),
    Metric("ttr_fixed"),  # the task option ttr_length's TTR (collapse_tasks.gen_utils)
    Metric("sentences_n", descriptive=True),  # sentences div_sem/div_syn were computed on
    Metric("token_perplexity", higher_is_better=False),
    Metric("cosine_diversity"),  # Verbalized Sampling (collapse_tasks.vs_utils)
    Metric("rouge_l", higher_is_better=False),
    Metric("one_minus_rouge_l"),
    Metric("parse_failure_rate", higher_is_better=False),
    Metric("num_candidates", descriptive=True),
    Metric("mean_probability", higher_is_better=False, descriptive=True),
]


def register(metric: Metric) -> Metric:
    """Add ``metric`` to :data:`METRICS`: in place of the entry of the same name, else last."""
    names = [m.name for m in METRICS]
    if metric.name in names:
        METRICS[names.index(metric.name)] = metric
    else:
        METRICS.append(metric)
    return metric


def find(name: str) -> tuple[Metric, dict[str, int]] | None:
    """The entry of ``name`` and the numbers its pattern matched, or None."""
    for metric in METRICS:
        numbers = metric.numbers(name)
        if numbers is not None:
            return metric, numbers
    return None


def lookup(name: str) -> Metric:
    """The entry of metric ``name``; ``ValueError`` listing the valid names if there is none."""
    found = find(name)
    if found is None:
        raise ValueError(f"unknown metric {name!r}; valid names: {valid_names()}")
    return found[0]


def valid_names(computable: bool = False) -> str:
    """The registered names, fixed names (sorted) before patterns; only those :func:`metrics.score.score`
    computes with ``computable``."""
    names = [m.name for m in METRICS if m.compute is not None or not computable]
    return ", ".join(sorted(n for n in names if "<" not in n) + [n for n in names if "<" in n])
