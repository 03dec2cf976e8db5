"""Fixed-length token blocks, cut as Hugging Face's ``group_texts`` cuts them.

Shumailov et al. (``curse_recurse/dataset.py``) tokenize every line of wikitext-2 (OPT's tokenizer
puts ``</s>`` before each line), concatenate the token lists and cut them into exact 64-token
blocks, dropping the remainder — ``run_clm.py``'s ``group_texts``, applied by
``datasets.map(batched=True, num_proc=4)``: the lines are split into 4 contiguous shards, each
shard is cut in batches of 1,000 lines, and each batch drops its own remainder.
:func:`group_texts` reproduces that exactly, so the training blocks and the test blocks are the ones
their code builds from the same lines and tokenizer.
"""
from __future__ import annotations

from collections.abc import Sequence


def shards(n: int, num_proc: int) -> list[range]:
    """The contiguous shards ``datasets.Dataset.shard(num_proc, i, contiguous=True)`` gives, i = 0..num_proc-1.

    Examples
    --------
    >>> shards(10, 4)
    [range(0, 3), range(3, 6), range(6, 8), range(8, 10)]
    """
    num_proc = max(1, min(num_proc, n)) if n else 1
    div, mod = divmod(n, num_proc)
    out, start = [], 0
    for i in range(num_proc):
        end = start + div + (1 if i < mod else 0)
        out.append(range(start, end))
        start = end
    return out


def group_texts(token_lists: Sequence[Sequence[int]], size: int, *, batch_size: int | None = None,
                num_proc: int = 1) -> list[list[int]]:
    """Exact ``size``-token blocks of the concatenated token lists, each group's remainder dropped.

    Parameters
    ----------
    token_lists : sequence of sequences of int
        One token list per record (line), special tokens included as the tokenizer adds them.
    size : int
        Tokens per block.
    batch_size : int, optional
        Records per ``datasets.map`` batch: each batch is concatenated and cut on its own (its
        remainder dropped). ``None``: all records of a shard form one batch.
    num_proc : int, default=1
        ``datasets.map(num_proc=...)``: the records are first split into this many contiguous
        shards (:func:`shards`), each cut in batches.

    Returns
    -------
    list of blocks (lists of ``size`` ints), in record order.

    Examples
    --------
    >>> group_texts([[1, 2, 3], [4, 5], [6, 7, 8]], 3)
    [[1, 2, 3], [4, 5, 6]]
    >>> group_texts([[1, 2, 3], [4, 5], [6, 7, 8]], 3, batch_size=2)  # batches [1..5] and [6, 7, 8]
    [[1, 2, 3], [6, 7, 8]]
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    blocks: list[list[int]] = []
    for shard in shards(len(token_lists), num_proc):
        step = batch_size or max(len(shard), 1)
        for lo in range(shard.start, shard.stop, step):
            stream = [t for ids in token_lists[lo:min(lo + step, shard.stop)] for t in ids]
            blocks.extend(stream[i:i + size] for i in range(0, len(stream) // size * size, size))
    return blocks
