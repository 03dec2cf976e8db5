"""Length moves distinct-n; the length-controlled measures (``metrics.length_controlled``) do not.

The same text at two lengths: every held-out Shakespeare speech of at least 48 words
(``collapse_tasks.corpus.blocks("heldout")``, the speaker's line dropped), cut to its first 12 and to
its first 48 words. Printed: each measure on both corpora, and for the ``_at_`` measures the mean and
standard deviation over 40 seeds of the draw (one seed is what the tasks report).

    python benchmarks/length_control.py
"""
from __future__ import annotations

import numpy as np

from collapse_tasks import corpus
from metrics import score, tokenize

LENGTHS = (12, 48)
PLAIN = ("mean_length", "distinct_1", "distinct_2", "entropy_1", "entropy_2", "top10_share")
AT = ("distinct_1_at_1000", "distinct_2_at_1000", "entropy_1_at_1000", "entropy_2_at_1000", "top10_share_at_1000")


def main() -> None:
    speeches = [block.partition("\n")[2].split() for block in corpus.blocks("heldout")]
    speeches = [words for words in speeches if len(words) >= max(LENGTHS)]
    texts = {n: [tokenize(" ".join(words[:n])) for words in speeches] for n in LENGTHS}
    print(f"{len(speeches)} held-out speeches of >= {max(LENGTHS)} words, cut at {' and '.join(map(str, LENGTHS))}\n")
    print(f"| metric | {' | '.join(f'first {n} words' for n in LENGTHS)} |\n|---|" + "---|" * len(LENGTHS))
    values = {n: score(texts[n], PLAIN + AT) for n in LENGTHS}
    for name in PLAIN + AT:
        print(f"| {name} | {' | '.join(f'{values[n][name]:.4f}' for n in LENGTHS)} |")
    print("\nover 40 seeds of the draw: mean (sd)")
    for name in AT:
        cells = []
        for n in LENGTHS:
            v = [score(texts[n], [name], options={name: {"seed": s}})[name] for s in range(40)]
            cells.append(f"{np.mean(v):.4f} ({np.std(v, ddof=1):.4f})")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
