"""Input handling shared by every text metric.

A text metric accepts either ``list[str]`` — each string is tokenized by
:func:`tokenize` (the one default tokenizer: lower-cased word tokens) — or
``list[list[str]]``, already tokenized and used as is (tokens may contain
spaces or any unicode).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\w+(?:['\u2019]\w+)*")

Texts = Sequence[str] | Sequence[Sequence[str]]


def tokenize(text: str) -> list[str]:
    """Default tokenizer: lower-cased word tokens.

    A token is a maximal run of unicode word characters (``\\w``), optionally
    joined by internal apostrophes (``don't``, ``o'er``); punctuation and
    whitespace are dropped.

    Examples
    --------
    >>> tokenize("O Romeo, Romeo! Wherefore art thou Romeo? 'Tis o'er.")
    ['o', 'romeo', 'romeo', 'wherefore', 'art', 'thou', 'romeo', 'tis', "o'er"]
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    return _WORD.findall(text.lower())


def as_token_lists(texts: Texts, *, name: str = "texts", min_texts: int = 1) -> list[list[str]]:
    """Validate ``texts`` and return one token list per text.

    Strings are tokenized with :func:`tokenize`; sequences of strings are kept
    as they are. Mixing the two forms, or passing a bare string, raises
    ``ValueError``/``TypeError`` naming the problem.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of texts, not a single {type(texts).__name__}")
    texts = list(texts)
    if len(texts) < min_texts:
        raise ValueError(
            f"{name} must contain at least {min_texts} text{'s' if min_texts > 1 else ''}, got {len(texts)}"
        )
    if not texts:
        return []
    if all(isinstance(t, str) for t in texts):
        return [tokenize(t) for t in texts]
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            raise TypeError(f"{name} mixes strings and token lists (item {i} is a str)")
        toks = list(t)
        for tok in toks:
            if not isinstance(tok, str):
                raise TypeError(f"{name}[{i}] contains a non-string token: {tok!r}")
        out.append(toks)
    return out


#: Largest n-gram order a metric takes (``distinct_<n>``, ``self_bleu_<n>``, ``memorization_<n>``, ...):
#: longer than any document scored here, and an order typed with extra digits fails at once.
MAX_ORDER = 1000


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All contiguous n-grams of ``tokens`` (empty when ``len(tokens) < n``, without building ``n`` slices)."""
    if len(tokens) < n:
        return []
    return list(zip(*(tokens[i:] for i in range(n))))


def check_order(n: int, name: str = "n", *, maximum: int | None = MAX_ORDER) -> int:
    """Validate an n-gram order: an integer in ``[1, maximum]`` (:data:`MAX_ORDER`; ``None``: no bound).

    Examples
    --------
    >>> check_order(10**20)
    Traceback (most recent call last):
    ...
    ValueError: n must be an integer in [1, 1000], got 100000000000000000000
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{name} must be an integer in [1, {maximum}], got {n!r}")
    return n
