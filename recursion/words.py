"""Word tokenizers of the n-gram back end and of the data filters, by name.

* ``whitespace`` — whitespace-separated words, case and punctuation kept (the unit of lm-eval's
  ``word_perplexity``).
* ``lower_alnum`` — the seed Lab 1 notebook's tokens: the text lower-cased, then every run of
  ``[a-zA-Z0-9']`` (punctuation and other characters are dropped, apostrophes stay inside words).

A text made of ``lower_alnum`` tokens joined by spaces tokenizes back to the same tokens under
either tokenizer, so generated documents keep their tokens from one generation to the next.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

WordTokenizer = Literal["whitespace", "lower_alnum"]

_LOWER_ALNUM = re.compile(r"[a-zA-Z0-9']+")


def lower_alnum(text: str) -> list[str]:
    """The seed notebook's tokens: runs of ``[a-zA-Z0-9']`` of the lower-cased text.

    Examples
    --------
    >>> lower_alnum("KING RICHARD. Now, my lord -- 'tis 2 o'clock!")
    ['king', 'richard', 'now', 'my', 'lord', "'tis", '2', "o'clock"]
    """
    return _LOWER_ALNUM.findall(text.lower())


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {"whitespace": str.split, "lower_alnum": lower_alnum}


def tokenizer(name: str) -> Callable[[str], list[str]]:
    """The tokenizer called ``name`` (one of :data:`TOKENIZERS`)."""
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZERS)}")
    return TOKENIZERS[name]
