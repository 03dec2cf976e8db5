"""The real text shipped with lm-collapse, and its fixed train / held-out split.

Shakespeare: the 43 Project Gutenberg works in ``data/shakespeare/`` (public domain; origins in
``SOURCES.tsv``). The split is by work, so no held-out line has a near-copy in training:

* held-out — six plays, one or two of each genre (~14% of the words):
  :data:`HELDOUT_WORKS`;
* train — the other 36 works (plays and poems).

Milton: *Paradise Lost* and *Paradise Regained* in ``data/milton/`` (public domain), an
out-of-domain held-out corpus (another author and century).

Everything is read from the installed package, whatever the working directory.
"""
from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

AUTHORS = ("shakespeare", "milton")
SPLITS = ("train", "heldout", "all")

HELDOUT_WORKS: tuple[str, ...] = (
    "julius_caesar",
    "macbeth",
    "much_ado_about_nothing",
    "richard_ii",
    "twelfth_night",
    "winters_tale",
)


def _data_dir(author: str):
    if author not in AUTHORS:
        raise ValueError(f"unknown author {author!r}; choose one of {AUTHORS}")
    return resources.files("collapse_tasks").joinpath("data", author)


@lru_cache(maxsize=None)
def sources(author: str = "shakespeare") -> dict[str, dict[str, str]]:
    """``SOURCES.tsv`` as ``{work: {"title": ..., "project_gutenberg_source": ...}}``."""
    with _data_dir(author).joinpath("SOURCES.tsv").open(encoding="utf-8") as f:
        return {row["file"].removesuffix(".txt"): row for row in csv.DictReader(f, delimiter="\t")}


def work_names(split: str = "all", author: str = "shakespeare") -> list[str]:
    """Names of the works in ``split`` (sorted). Milton has no training split: all of it is held out."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    names = sorted(sources(author))
    if author == "milton":
        return [] if split == "train" else names
    if split == "all":
        return names
    heldout = [n for n in names if n in HELDOUT_WORKS]
    return heldout if split == "heldout" else [n for n in names if n not in HELDOUT_WORKS]


@lru_cache(maxsize=None)
def read_work(name: str, author: str = "shakespeare") -> str:
    """The full text of one work."""
    if name not in sources(author):
        raise ValueError(f"no {author} work named {name!r}; choose one of {sorted(sources(author))}")
    return _data_dir(author).joinpath(f"{name}.txt").read_text(encoding="utf-8")


def works(split: str = "all", author: str = "shakespeare") -> dict[str, str]:
    """``{name: text}`` for every work of ``split``."""
    return {name: read_work(name, author) for name in work_names(split, author)}


def blocks(split: str = "all", author: str = "shakespeare") -> list[str]:
    """Blank-line separated blocks (in the plays: one speech with its speaker line), in order."""
    out = []
    for text in works(split, author).values():
        out.extend(b.strip() for b in text.split("\n\n") if b.strip())
    return out


def lines(split: str = "train", author: str = "shakespeare", *, min_words: int = 5) -> list[str]:
    """Non-empty lines of at least ``min_words`` whitespace-separated words, stripped, in order.

    This is the Lab 1 corpus: "lines of at least 5 words" of a Shakespeare-like text.
    """
    return [
        line.strip()
        for text in works(split, author).values()
        for line in text.splitlines()
        if len(line.split()) >= min_words
    ]
