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
``collapse_gen_sciabs``        ``The title of the paper is: <title>``  the rest of the abstract (Guo et
                               ``\\nThe abstract of the paper is:``   al.'s prompt: the title and the
                               `` <first sentence>``                  abstract's first sentence)
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


def writingprompts_record(row: dict) -> dict | None:
    """``Prompt: <prompt without its [ WP ] tags>\\nStory:`` → the story (None if either is empty)."""
    prompt = " ".join(_WP_TAG.sub("", row["prompt"]).split())
    story = "\n".join(" ".join(p.split()) for p in row["story"].split("<newline>") if p.strip())
    return {"prompt": f"Prompt: {prompt}\nStory:", "reference": story} if prompt and story else None


def xsum_record(row: dict) -> dict | None:
    """``Article: <first 400 words of the document>\\nSummary:`` → the reference summary."""
    article = _words(row["document"])[:XSUM_ARTICLE_WORDS]
    if article and row["summary"].strip():
        return {"prompt": f"Article: {' '.join(article)}\nSummary:", "reference": " ".join(row["summary"].split())}
    return None


SCIABS_TITLE = "The title of the paper is: "
SCIABS_ABSTRACT = "\nThe abstract of the paper is: "
#: The first sentence of a whitespace-collapsed abstract: up to the first ``.``, ``!`` or ``?`` followed by a space.
FIRST_SENTENCE = re.compile(r".*?[.!?](?=\s)")


def sciabs_record(row: dict) -> dict | None:
    """Guo et al.'s prompt, ``The title of the paper is: <title>\\nThe abstract of the paper is: <first
    sentence>`` → the rest of the abstract (None without a title, or an abstract of one sentence).

    Examples
    --------
    >>> sciabs_record({"title": "On  cats", "abstract": "Cats sit. They also  nap."})["prompt"]
    'The title of the paper is: On cats\\nThe abstract of the paper is: Cats sit.'
    >>> sciabs_record({"title": "On cats", "abstract": "Cats sit."}) is None
    True
    """
    title, abstract = " ".join(row["title"].split()), " ".join(row["abstract"].split())
    first = FIRST_SENTENCE.match(abstract)
    rest = abstract[first.end():].strip() if first else ""
    if not (title and rest):
        return None
    return {"prompt": f"{SCIABS_TITLE}{title}{SCIABS_ABSTRACT}{first.group(0)}", "reference": rest}


#: The (prompt, reference) of a hub record in each Guo et al. task's format. The recursion driver
#: builds its training documents with the same functions (``data.template``), as
#: ``prompt + " " + reference``, so a model is trained on the format it is evaluated on.
TEMPLATES: dict[str, Callable[[dict], dict | None]] = {
    "xsum": xsum_record, "sciabs": sciabs_record, "writingprompts": writingprompts_record}
#: How each template's prompt ends (prompts hold no newline before it: whitespace is collapsed): a
#: marker, or for ``sciabs`` a pattern whose first match ends the prompt (the abstract's first sentence).
PROMPT_END: dict[str, str | re.Pattern] = {
    "xsum": "\nSummary:", "writingprompts": "\nStory:",
    "sciabs": re.compile(re.escape(SCIABS_ABSTRACT) + FIRST_SENTENCE.pattern)}


def _records_of(make: Callable[[dict], dict | None]):
    return lambda row: [r] if (r := make(row)) is not None else []


def guo_dataset(name: str, template: str, *, full: bool):
    """The ``custom_dataset`` hook of ``collapse_gen_<template>`` (``full``: ``..._full``).

    Loads the split (the YAML's ``dataset_kwargs``: ``path``, ``name``, ``split``, ``revision``,
    ``data_files``), builds the prompts of :data:`TEMPLATES` as the ``process_docs`` hooks do, and
    attaches the task options of :data:`collapse_tasks.gen_utils.OPTION_DEFAULTS` found in the
    metadata to every document (``metric_options``), checked — and, for ``full``, the sentence
    splitter, embedder and parser loaded — before any generation.
    """

    def custom_dataset(**kwargs):
        import json

        import datasets

        from .gen_utils import OPTION_DEFAULTS, check_options

        options = {k: kwargs[k] for k in OPTION_DEFAULTS if k in kwargs}
        check_options({**OPTION_DEFAULTS, **options}, full=full)
        load = {k: kwargs[k] for k in ("revision", "data_files") if kwargs.get(k)}
        rows = datasets.load_dataset(kwargs["path"], kwargs.get("name"), **load)[kwargs.get("split", "test")]
        docs = _select(rows, _records_of(TEMPLATES[template]))
        return datasets.DatasetDict({"test": docs.add_column("metric_options", [json.dumps(options)] * len(docs))})

    custom_dataset.__name__ = custom_dataset.__qualname__ = name
    custom_dataset.__doc__ = f"``custom_dataset`` of ``collapse_gen_{template}{'_full' if full else ''}`` (see guo_dataset)."
    return custom_dataset


xsum_dataset = guo_dataset("xsum_dataset", "xsum", full=False)
xsum_dataset_full = guo_dataset("xsum_dataset_full", "xsum", full=True)
sciabs_dataset = guo_dataset("sciabs_dataset", "sciabs", full=False)
sciabs_dataset_full = guo_dataset("sciabs_dataset_full", "sciabs", full=True)
writingprompts_dataset = guo_dataset("writingprompts_dataset", "writingprompts", full=False)
writingprompts_dataset_full = guo_dataset("writingprompts_dataset_full", "writingprompts", full=True)
