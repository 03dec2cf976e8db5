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


# ---------------------------------------------------------------- token blocks (Shumailov et al.)


def _tokenizer(options: dict):
    """The evaluated model's tokenizer: ``tokenizer=`` (``--metadata``) or ``pretrained=`` (``--model_args``)."""
    name = options.get("tokenizer") or options.get("pretrained")
    if not isinstance(name, str) or not name:
        raise ValueError("collapse_ppl_wikitext2_blocks cuts its blocks with the evaluated model's tokenizer: run it "
                         "with --model_args pretrained=NAME (or --metadata '{\"tokenizer\": \"NAME\"}')")
    from transformers import AutoTokenizer

    kwargs = {k: options[k] for k in ("revision", "trust_remote_code", "gguf_file") if options.get(k) is not None}
    return AutoTokenizer.from_pretrained(name, **kwargs)


def block_document(tokenizer, block: list[int]) -> dict:
    """One block as a ``loglikelihood`` request: its first token as the context (more tokens while
    that text is only whitespace, which lm-eval would move into the continuation), the rest scored.

    ``num_tokens`` is the block's count of scored tokens (63 of a 64-token block). lm-eval encodes
    the two texts again; where that encoding differs from the block's at its edges (a word cut by
    the block boundary), the loglikelihood is that of the same text under the model's own
    tokenization and the count stays the block's, so the perplexity per token of the paper's
    blocks is what is measured.
    """
    def decode(ids):
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    j = 1
    while j < len(block) - 1 and not decode(block[:j]).strip():
        j += 1
    return {"context": decode(block[:j]), "continuation": decode(block[j:]), "num_tokens": len(block) - j}


def wikitext2_blocks(**options):
    """``custom_dataset`` hook of ``collapse_ppl_wikitext2_blocks``: the test lines cut into blocks.

    Every line of the split (``path``, ``name``, ``split`` of the YAML's ``dataset_kwargs``) is
    tokenized as the evaluated model's tokenizer does by default (OPT: ``</s>`` first), and the
    token lists are cut by :func:`collapse_tasks.blocks.group_texts` into exact ``block_size``-token
    blocks with ``map_batch_size`` / ``map_num_proc`` (task metadata): the blocks
    Shumailov et al.'s ``dataset.py`` builds. Each block is one document (:func:`block_document`).
    """
    import datasets

    from .blocks import group_texts

    tokenizer = _tokenizer(options)
    lines = datasets.load_dataset(options["path"], options.get("name"))[options.get("split", "test")]["text"]
    blocks = group_texts(tokenizer(list(lines))["input_ids"], int(options.get("block_size", 64)),
                         batch_size=options.get("map_batch_size"), num_proc=int(options.get("map_num_proc", 1)))
    if not blocks:
        raise ValueError(f"{options['path']}: the {options.get('split', 'test')} split fills no block")
    return datasets.DatasetDict({"test": datasets.Dataset.from_list([block_document(tokenizer, b) for b in blocks])})


def block_context(doc: dict) -> str:
    return doc["context"]


def block_continuation(doc: dict) -> str:
    return doc["continuation"]


def block_results(doc: dict, results: list) -> dict[str, tuple[float, int]]:
    """Per block: ``(loglikelihood of the scored tokens, their number)`` for ``token_perplexity``
    (lm-eval's ``weighted_perplexity``: ``exp(−Σ ll / Σ tokens)`` over the blocks)."""
    ((loglikelihood, _is_greedy),) = results
    return {"token_perplexity": (loglikelihood, doc["num_tokens"])}
