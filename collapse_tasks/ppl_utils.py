"""Hooks of the perplexity tasks ``collapse_ppl_*`` (``loglikelihood_rolling``, one document per doc).

``word_perplexity``, ``byte_perplexity`` and ``bits_per_byte`` are lm-eval's, defined as in its
``wikitext`` task: each document contributes ``(loglikelihood, count)``, words counted as
``len(re.split(r"\\s+", text))`` and bytes as the UTF-8 length, and the aggregation is
``exp(-Σ ll / Σ count)`` (``weighted_perplexity``) or ``-Σ ll / (Σ bytes · ln 2)``
(``bits_per_byte``). On top of them:

``tail_word_perplexity``
    word perplexity over the worst-predicted 10% of documents (the ``ceil(0.1 · N)`` with the
    highest per-document word perplexity): ``exp(-Σ_tail ll / Σ_tail words)``. Model collapse
    "washes away the tails" of the distribution, and this moves before the mean does.

Shipped documents (``collapse_ppl_shakespeare``): the six held-out plays of
:mod:`collapse_tasks.corpus`, cut into consecutive passages of blank-line blocks (speeches, stage
directions), each passage closed as soon as it holds at least :data:`DOC_MIN_WORDS` words; a
play's remainder joins its last passage, and no passage spans two plays: 131,641 words in 450
documents; the same documents whatever the working directory or machine.
"""
from __future__ import annotations

import math
import re

import numpy as np

#: A shipped perplexity document is closed once it holds at least this many words.
DOC_MIN_WORDS = 256
#: Share of documents, the worst-predicted, that ``tail_word_perplexity`` keeps.
TAIL_FRACTION = 0.10


def passages(text: str, *, min_words: int = DOC_MIN_WORDS) -> list[str]:
    """Consecutive blank-line blocks of ``text`` grouped into passages of at least ``min_words`` words.

    Examples
    --------
    >>> passages("a b\\n\\nc d e\\n\\nf\\n\\ng h", min_words=3)
    ['a b\\n\\nc d e', 'f\\n\\ng h']
    """
    out: list[str] = []
    current: list[str] = []
    count = 0
    for block in (b.strip() for b in text.split("\n\n")):
        if not block:
            continue
        current.append(block)
        count += len(block.split())
        if count >= min_words:
            out.append("\n\n".join(current))
            current, count = [], 0
    if current:
        rest = "\n\n".join(current)
        if out:
            out[-1] += "\n\n" + rest
        else:
            out.append(rest)
    return out


def shakespeare_documents(**_metadata):
    """``custom_dataset`` hook: the held-out plays as a ``DatasetDict`` with one split, ``test``.

    Records: ``{"text": passage, "work": play}``, in play order then text order. lm-eval passes
    the task metadata (and model arguments) as keywords; they are ignored.
    """
    import datasets

    from collapse_tasks import corpus

    records = [
        {"text": doc, "work": name}
        for name, text in corpus.works("heldout").items()
        for doc in passages(text)
    ]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(records)})


def doc_text(doc: dict) -> str:
    """The text scored, as is (``doc["text"]``)."""
    return doc["text"]


def _counts(loglikelihood: float, text: str) -> dict[str, tuple[float, int]]:
    words = len(re.split(r"\s+", text))
    n_bytes = len(text.encode("utf-8"))
    return {
        "word_perplexity": (loglikelihood, words),
        "byte_perplexity": (loglikelihood, n_bytes),
        "bits_per_byte": (loglikelihood, n_bytes),
        "tail_word_perplexity": (loglikelihood, words),
    }


def process_results(doc: dict, results: list[float]) -> dict[str, tuple[float, int]]:
    """Per document: ``(loglikelihood, words or bytes)`` for each metric, counts on ``doc["text"]``.

    Examples
    --------
    >>> process_results({"text": "To be, or not"}, [-9.0])["word_perplexity"]
    (-9.0, 4)
    """
    (loglikelihood,) = results
    return _counts(loglikelihood, doc["text"])


def wikitext_target(doc: dict) -> str:
    """The detokenized page, lm-eval's own ``wikitext_detokenizer``."""
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    return wikitext_detokenizer(doc)


def wikitext_process_results(doc: dict, results: list[float]) -> dict[str, tuple[float, int]]:
    """As lm-eval's ``wikitext``: the detokenized page is scored, words and bytes are counted on the raw ``page``."""
    (loglikelihood,) = results
    return _counts(loglikelihood, doc["page"])


def tail_word_perplexity(items: list[tuple[float, int]], *, fraction: float = TAIL_FRACTION) -> float:
    """Word perplexity over the ``ceil(fraction · N)`` documents of highest word perplexity.

    Parameters
    ----------
    items : list of (loglikelihood, words)
        One pair per document (natural-log likelihood of the document, its word count).
    fraction : float, default=0.10

    Returns
    -------
    float: ``exp(-Σ ll / Σ words)`` over the tail documents (ties keep document order).

    Examples
    --------
    >>> items = [(-10.0, 10), (-20.0, 10), (-30.0, 10)]
    >>> round(tail_word_perplexity(items), 4) == round(math.exp(3.0), 4)
    True
    >>> round(tail_word_perplexity(items, fraction=0.5), 4) == round(math.exp(2.5), 4)
    True
    """
    if not items:
        raise ValueError("tail_word_perplexity needs at least one document")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    ll = np.array([float(x[0]) for x in items])
    words = np.array([int(x[1]) for x in items], dtype=float)
    if (words <= 0).any():
        raise ValueError("every document needs a positive word count")
    per_doc = -ll / words
    k = math.ceil(fraction * len(items))
    tail = np.argsort(-per_doc, kind="stable")[:k]
    return math.exp(-ll[tail].sum() / words[tail].sum())
