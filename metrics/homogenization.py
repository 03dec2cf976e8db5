"""Homogenization (Shaib et al.): how much a set of texts repeats itself, as mean pairwise ROUGE-L.

The pairwise longest common subsequence (LCS) runs bit-parallel (Allison & Dix, 1986; the
formulation of Hyyrö, 2004) and vectorized across pairs with numpy: one text of each pair is a
bit vector of ``ceil(m / 64)`` machine words, the other is read one token at a time, and each
token costs a handful of word operations for *every* pair at once — there is no Python loop over
pairs. Tokens that occur in only one text can never be matched by another text, so they are left
out of the LCS computation (the F-measure still counts them in the lengths): exact, and it makes
the bit vectors shorter.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["homogenization", "rouge_tokenize"]

MEASURES = ("rouge_l",)

_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
_WORD_BITS = 64
_ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
# Work-array sizes (numbers of uint64 entries): they bound the memory, not the result.
_TABLE_BUDGET = 1 << 22  # match-mask table of one block of bit-side texts: 32 MiB
_PAIR_BUDGET = 1 << 19  # pairs advanced together through the tokens of the other side


def rouge_tokenize(text: str) -> list[str]:
    """The ``rouge-score`` package's default tokenization, without stemming.

    ``rouge_score.tokenize.tokenize(text, stemmer=None)`` lower-cases the text, replaces every
    run of characters outside ``[a-z0-9]`` by a space, splits on whitespace and drops empty
    tokens: the tokens are the maximal runs of ``[a-z0-9]`` in ``text.lower()``. Non-ASCII letters
    are separators (``"café"`` gives ``["caf"]``), as there.

    Examples
    --------
    >>> rouge_tokenize("Don't stop — it's 9 o'clock, Café!")
    ['don', 't', 'stop', 'it', 's', '9', 'o', 'clock', 'caf']
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    return _ROUGE_TOKEN.findall(text.lower())


def homogenization(texts: Sequence[str], measure: str = "rouge_l") -> float:
    """Mean over the N(N−1)/2 unordered pairs of texts of their ROUGE-L F-measure.

    For texts a and b with token counts |a|, |b| and longest common subsequence LCS(a, b),
    ``rouge_score.rouge_scorer._score_lcs`` defines P = LCS/|b|, R = LCS/|a| and
    F = 2PR/(P + R) = 2·LCS/(|a| + |b|), with F = 0 when either text has no token. F is
    symmetric, so the mean over unordered pairs equals the mean over ordered pairs::

        homogenization = 2 / (N(N−1)) · Σ_{i<j} F(text_i, text_j)

    Tokens are those of :func:`rouge_tokenize` (the ``rouge-score`` tokenizer, no stemming);
    ``rouge-score`` itself is not needed at run time.

    Parameters
    ----------
    texts : list of str
        At least two raw texts.
    measure : {"rouge_l"}
        The pairwise similarity; ROUGE-L F-measure is the one implemented.

    Returns
    -------
    float in [0, 1]
        0 when no two texts share a token, 1 when all texts are identical and non-empty.

    Notes
    -----
    Equals ``mean(RougeScorer(["rougeL"]).score(a, b)["rougeL"].fmeasure for a != b)`` to
    floating-point rounding (1e-12 in the tests). Shaib et al.'s ``diversity`` package
    (``homogenization_score(texts, "rougel")``, v0.2.2) computes the same mean with an O(N²)
    Python loop and rounds it to 3 decimals; it also returns 1.0 — the value of a fully
    homogeneous corpus — when *every* pair scores 0 (its ``if corpus_score == 0:
    corpus_score += len(data)``, meant for "all strings identical"), so a corpus with no shared
    token at all (or only empty texts) scores 1.0 there and 0.0 here.

    Cost: N(N−1)/2 · L · ⌈L'/64⌉ 64-bit word operations for texts of L tokens, L' of them shared
    with another text, done by numpy on batches of up to 2^19 pairs; memory is bounded by fixed
    work-array sizes (tens of MiB), whatever N.

    References
    ----------
    Shaib et al., "Standardizing the Measurement of Text Diversity: A Tool and a Comparative
    Analysis of Scores" (2024): homogenization score with ROUGE-L.
    Lin, "ROUGE: A Package for Automatic Evaluation of Summaries" (2004); the ``rouge-score``
    package (Google Research) is the reference implementation reproduced here.
    Allison & Dix, "A bit-string longest-common-subsequence algorithm" (1986); Hyyrö,
    "Bit-parallel LCS-length computation revisited" (2004).

    Examples
    --------
    >>> round(homogenization(["the cat sat", "the cat ran", "a dog"]), 4)  # (2/3 + 0 + 0) / 3
    0.2222
    >>> homogenization(["one fish", "two fish"], "rouge_l")
    0.5
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; choose one of: {', '.join(MEASURES)}")
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a list of texts, not a single {type(texts).__name__}")
    texts = list(texts)
    if len(texts) < 2:
        raise ValueError(f"homogenization needs at least 2 texts, got {len(texts)}")
    lengths, shared = _encode([rouge_tokenize(t) for t in texts])
    total = 0.0
    for i, j, lcs in _pairwise_lcs(shared):
        total += float(np.sum(2.0 * lcs / (lengths[i] + lengths[j])))
    n = len(texts)
    return total / (n * (n - 1) / 2)


def _encode(token_lists: list[list[str]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Token counts, and each text as int ids of its tokens that occur in at least two texts.

    A token found in a single text matches nothing in any other text, so dropping it leaves
    every pairwise LCS unchanged. Ids start at 1; 0 is padding.
    """
    document_frequency = Counter(tok for toks in token_lists for tok in set(toks))
    ids: dict[str, int] = {}
    for tok, df in document_frequency.items():
        if df > 1:
            ids[tok] = len(ids) + 1
    lengths = np.array([len(toks) for toks in token_lists], dtype=np.float64)
    shared = [np.array([ids[t] for t in toks if t in ids], dtype=np.int64) for toks in token_lists]
    return lengths, shared


def _pairwise_lcs(seqs: list[np.ndarray]) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """LCS lengths of all pairs i < j with both sequences non-empty, in batches ``(i, j, lcs)``.

    Sequences are sorted by length; within a batch the shorter one (row) is the bit vector and
    the longer one (column) is scanned token by token, padded with 0s (which match nothing).
    """
    nonempty = [k for k, s in enumerate(seqs) if len(s)]
    if len(nonempty) < 2:
        return
    order = np.array(sorted(nonempty, key=lambda k: len(seqs[k])), dtype=np.int64)
    lens = np.array([len(seqs[k]) for k in order], dtype=np.int64)
    padded = np.zeros((len(order), int(lens[-1])), dtype=np.int64)
    for r, k in enumerate(order):
        padded[r, : lens[r]] = seqs[k]
    vocabulary = int(padded.max()) + 1
    for r0, r1 in _row_blocks(lens):
        words = -(-int(lens[r1 - 1]) // _WORD_BITS)
        local, table = _match_table(padded[r0:r1], lens[r0:r1], words, vocabulary)
        for c0, c1 in _column_chunks(lens, r1 - r0, start=r0 + 1):
            rows, cols = np.nonzero(np.arange(r0, r1)[:, None] < np.arange(c0, c1)[None, :])
            # the scanned side, renumbered to the rows' tokens: step k reads line k
            scanned = local[padded[c0:c1, : lens[c1 - 1]]].T.copy()
            lcs = _bit_parallel_lcs(table, rows * (table.shape[0] // (r1 - r0)), scanned, cols)
            yield order[r0 + rows], order[c0 + cols], lcs


def _row_blocks(lens: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive runs of (sorted) sequences whose match-mask table fits ``_TABLE_BUDGET``."""
    r0 = 0
    while r0 < len(lens):
        r1, tokens = r0, 0
        words = -(-int(lens[r0]) // _WORD_BITS)
        while r1 < len(lens):
            w = -(-int(lens[r1]) // _WORD_BITS)
            size = (r1 - r0 + 1) * (tokens + lens[r1] + 1) * w
            if r1 > r0 and (w != words or size > _TABLE_BUDGET):
                break
            tokens += int(lens[r1])
            r1 += 1
        yield r0, r1
        r0 = r1


def _column_chunks(lens: np.ndarray, n_rows: int, start: int) -> Iterator[tuple[int, int]]:
    """Runs of (sorted) scanned sequences: at most ``_PAIR_BUDGET`` pairs with the rows, and
    lengths within 25% (+4) of the run's first, so that padding wastes little."""
    c0 = start
    while c0 < len(lens):
        limit = 1.25 * lens[c0] + 4
        c1 = min(len(lens), c0 + max(1, _PAIR_BUDGET // n_rows))
        c1 = c0 + max(1, int(np.searchsorted(lens[c0:c1], limit, side="right")))
        yield c0, c1
        c0 = c1


def _match_table(rows: np.ndarray, lens: np.ndarray, words: int, vocabulary: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row sequence and token, the bit mask of the positions where the row has that token.

    Token ids are renumbered to those present in these rows (``local``: global id → local id,
    0 for padding and absent tokens, whose mask is 0); ``table[row * (V + 1) + local_id]`` is
    the mask, ``words`` uint64 words, least significant word first.
    """
    present = np.unique(rows[rows > 0])
    local = np.zeros(vocabulary, dtype=np.int64)
    local[present] = np.arange(1, len(present) + 1)
    width = len(present) + 1
    table = np.zeros((len(rows) * width, words), dtype=np.uint64)
    r, pos = np.nonzero(np.arange(rows.shape[1])[None, :] < lens[:, None])
    bits = np.left_shift(np.uint64(1), (pos % _WORD_BITS).astype(np.uint64))
    np.bitwise_or.at(table, (r * width + local[rows[r, pos]], pos // _WORD_BITS), bits)
    return local, table


def _bit_parallel_lcs(table: np.ndarray, base: np.ndarray, scanned: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """LCS length of each pair p: the bit-side row whose masks start at ``table[base[p]]``
    against column ``cols[p]`` of ``scanned`` (tokens × columns, local ids).

    Hyyrö (2004): V starts all ones; for each token c of the scanned text, U = V & M[c] and
    V = (V + U) | (V − U), with the addition carried across words; LCS = number of zero bits of
    V. Bits above the row's length stay 1 (they never match, and V − U keeps them), so counting
    the zeros of the whole words is exact.
    """
    words = table.shape[1]
    if words == 1:
        masks = table[:, 0]
        v = np.full(len(base), _ALL_ONES, dtype=np.uint64)
        for tokens in scanned:
            u = v & masks[base + tokens[cols]]
            v = (v + u) | (v - u)
        return _WORD_BITS - _popcount(v)
    v = np.full((len(base), words), _ALL_ONES, dtype=np.uint64)
    for tokens in scanned:
        u = v & table[base + tokens[cols]]
        carry = np.zeros(len(base), dtype=np.uint64)
        for w in range(words):
            vw, uw = v[:, w], u[:, w]
            s = vw + uw
            s_carried = s + carry
            carry = ((s < vw) | (s_carried < s)).astype(np.uint64)
            v[:, w] = s_carried | (vw - uw)
    return words * _WORD_BITS - _popcount(v).sum(axis=1)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (``np.bitwise_count`` from numpy 2; a byte table before)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([bin(b).count("1") for b in range(256)], dtype=np.int64)
    return table[x[..., None].view(np.uint8)].sum(axis=-1)
