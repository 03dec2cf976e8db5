"""How an error reads in one line: the CLI's ``error:`` line and every message that quotes another
library's exception (a hub that cannot be reached, a model that cannot be loaded)."""
from __future__ import annotations


def first_line(err: BaseException) -> str:
    """The first line of ``err``'s message, or its type's name when it has none.

    Examples
    --------
    >>> first_line(ValueError("no such split\\n  valid: train"))
    'no such split'
    >>> first_line(KeyError())
    'KeyError'
    """
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
