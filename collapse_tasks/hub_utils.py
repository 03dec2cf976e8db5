"""``process_docs`` hooks of the hub-backed generation tasks: hub records → ``{"prompt", "reference"}``.

Each task prompts with :data:`~collapse_tasks.gen_utils.NUM_PROMPTS` documents (fewer if the split
has fewer), chosen deterministically: up to ``4 · NUM_PROMPTS`` candidate rows evenly spaced over
the split, the usable ones kept, then ``NUM_PROMPTS`` of those evenly spaced.

=============================  ===================================  ===================================
task                           prompt                               reference
=============================  ===================================  ===================================
``collapse_gen_wikitext``      64 words of a detokenized page       the next 64 words (Shumailov et al.:
                               (consecutive 128-word blocks)        real prefix → continuation)
``collapse_gen_tinystories``   the first 10 words of a story        the rest of the story
``collapse_gen_writingprompts`` ``Prompt: <prompt>\\nStory:``        the story
``collapse_gen_xsum``          ``Article: <first 400 words>``       the one-sentence summary
                               ``\\nSummary:``
``collapse_gen_sciabs``        ``Title: <title>\\nAbstract:``        the abstract (Guo et al.)
=============================  ===================================  ===================================

Prefixes are counted in whitespace-separated words, not model tokens, so every model sees the
same prompts. Whitespace inside a prompt or reference is collapsed to single spaces (the
WritingPrompts ``<newline>`` marker becomes a newline in the reference).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from .gen_utils import NUM_PROMPTS

WIKITEXT_PREFIX_WORDS = 64
STORY_PROMPT_WORDS = 10
XSUM_ARTICLE_WORDS = 400

_WP_TAG = re.compile(r"^\s*(?:\[\s*\w+\s*\]\s*)+")


def _words(text: str) -> list[str]:
    return text.split()


def _evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return list(items)
    step = (len(items) - 1) / (k - 1) if k > 1 else 0
    return [items[round(i * step)] for i in range(k)]


def _finish(records: list[dict]):
    import datasets

    if not records:
        raise ValueError("no usable document in this split (too short or empty fields)")
    return datasets.Dataset.from_list(_evenly(records, NUM_PROMPTS))


def _select(dataset, make: Callable[[dict], Iterable[dict]]):
    """Records ``make(row)`` of evenly spaced candidate rows, then ``NUM_PROMPTS`` of them evenly spaced."""
    candidates = _evenly(range(len(dataset)), 4 * NUM_PROMPTS)
    return _finish([r for row in dataset.select(candidates) for r in make(row)])


def wikitext_prompts(dataset):
    """Detokenized pages cut into consecutive blocks of 128 words: 64 as prompt, 64 as reference.

    Examples
    --------
    >>> import datasets
    >>> pages = datasets.Dataset.from_list([{"page": " = Title = \\n " + "w @-@ x " * 300}])
    >>> docs = wikitext_prompts(pages)  # 303 words after detokenization: two blocks of 128
    >>> len(docs), len(docs[0]["prompt"].split()), docs[0]["prompt"][:13]
    (2, 64, '= Title = w-x')
    """
    from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer

    n = WIKITEXT_PREFIX_WORDS

    def make(row):
        words = _words(wikitext_detokenizer(row))
        for i in range(0, len(words) - 2 * n + 1, 2 * n):
            yield {"prompt": " ".join(words[i : i + n]), "reference": " ".join(words[i + n : i + 2 * n])}

    return _finish([r for row in dataset for r in make(row)])  # a few hundred pages: every block, then evenly


def tinystories_prompts(dataset):
    """The first 10 words of a story as prompt, the rest as reference (stories of at least 20 words)."""

    def make(row):
        words = _words(row["text"])
        if len(words) >= 2 * STORY_PROMPT_WORDS:
            yield {"prompt": " ".join(words[:STORY_PROMPT_WORDS]), "reference": " ".join(words[STORY_PROMPT_WORDS:])}

    return _select(dataset, make)


def writingprompts_prompts(dataset):
    """``Prompt: <prompt without its [ WP ] tags>\\nStory:`` → the story."""

    def make(row):
        prompt = " ".join(_WP_TAG.sub("", row["prompt"]).split())
        story = "\n".join(" ".join(p.split()) for p in row["story"].split("<newline>") if p.strip())
        if prompt and story:
            yield {"prompt": f"Prompt: {prompt}\nStory:", "reference": story}

    return _select(dataset, make)


def xsum_prompts(dataset):
    """``Article: <first 400 words of the document>\\nSummary:`` → the reference summary."""

    def make(row):
        article = _words(row["document"])[:XSUM_ARTICLE_WORDS]
        if article and row["summary"].strip():
            yield {"prompt": f"Article: {' '.join(article)}\nSummary:", "reference": " ".join(row["summary"].split())}

    return _select(dataset, make)


def sciabs_prompts(dataset):
    """``Title: <title>\\nAbstract:`` → the abstract."""

    def make(row):
        title, abstract = " ".join(row["title"].split()), " ".join(row["abstract"].split())
        if title and abstract:
            yield {"prompt": f"Title: {title}\nAbstract:", "reference": abstract}

    return _select(dataset, make)
