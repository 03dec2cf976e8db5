"""Memorization (longest match against a reference corpus): ``metrics.memorization.NgramIndex`` vs two
pure-Python exact baselines, on the whole of Shakespeare.

Reference: the works of ``collapse_tasks.corpus.works("all")`` (43 works, ~914k tokens), tokenized by
``metrics.tokenize``; ``--quick`` keeps every 8th work. Queries: ``--lines`` lines of those works
(``corpus.lines``, drawn with seed 0), the first half copied as they are, the second half with their
tokens shuffled. Every method computes the exact longest match of every query line:

* ours — suffix array + vectorized interval narrowing (index built once, then queried);
* n-gram sets — the naive approach: for L = 1, 2, ... build the set of all reference L-grams (as
  tuples) and keep the lines that still have an L-gram in it, until none has;
* suffix automaton — the textbook linear-time structure in pure Python (dict transitions), one
  shared separator between reference texts, then the matching-statistics walk per line.

Times are the best of ``--repeats`` runs (the baselines: one run). Memory is the growth of the
process' resident set while building (ours: the bytes of the index arrays).

    python benchmarks/bench_memorization.py            # whole corpus, 5,000 lines
    python benchmarks/bench_memorization.py --quick    # 1/8 of the works, 1,000 lines
"""
from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import psutil
from _timing import best_time, results_file

from collapse_tasks import corpus
from metrics import tokenize
from metrics.memorization import NgramIndex


def rss_growth(fn):
    """``fn()``, and how much the resident set grew meanwhile (MB)."""
    gc.collect()
    before = psutil.Process().memory_info().rss
    result = fn()
    return result, (psutil.Process().memory_info().rss - before) / 2**20


def ngram_sets(queries, reference):
    """Longest match by sets of reference L-grams, L = 1, 2, ... (exact; one set in memory at a time)."""
    longest = np.zeros(len(queries), dtype=np.int64)
    alive = list(range(len(queries)))
    size = 1
    while alive:
        grams = {g for ref in reference for g in zip(*(ref[i:] for i in range(size)))}
        alive = [q for q in alive if any(g in grams for g in zip(*(queries[q][i:] for i in range(size))))]
        longest[alive] = size
        size += 1
    return longest


class SuffixAutomaton:
    """Suffix automaton of the reference texts joined by one separator, with dict transitions."""

    def __init__(self, reference):
        self.next, self.link, self.length = [{}], [-1], [0]
        last = 0
        for tok in (t for ref in reference for t in [*ref, None]):  # None: the separator
            last = self._extend(last, tok)

    def _extend(self, last, tok):
        nxt, link, length = self.next, self.link, self.length
        cur = len(nxt)
        nxt.append({})
        link.append(0)
        length.append(length[last] + 1)
        p = last
        while p != -1 and tok not in nxt[p]:
            nxt[p][tok] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][tok]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:
                clone = len(nxt)
                nxt.append(dict(nxt[q]))
                link.append(link[q])
                length.append(length[p] + 1)
                while p != -1 and nxt[p].get(tok) == q:
                    nxt[p][tok] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        return cur

    def longest_match(self, tokens):
        nxt, link, length = self.next, self.link, self.length
        state = matched = best = 0
        for tok in tokens:
            while state and tok not in nxt[state]:
                state = link[state]
                matched = length[state]
            if tok in nxt[state]:
                state = nxt[state][tok]
                matched += 1
                best = max(best, matched)
        return best


def run(args):
    works = list(corpus.works("all").values())
    if args.quick:
        works = works[::8]
    reference = [tokenize(w) for w in works]
    lines = [line.strip() for w in works for line in w.splitlines() if len(line.split()) >= 5]
    rng = np.random.default_rng(0)
    queries = [tokenize(lines[i]) for i in rng.choice(len(lines), args.lines, replace=False)]
    half = len(queries) // 2
    queries = queries[:half] + [list(rng.permutation(q)) for q in queries[half:]]
    r_tokens, q_tokens = sum(map(len, reference)), sum(map(len, queries))

    t_build, index = best_time(lambda: NgramIndex(reference), args.repeats)
    t_query, ours = best_time(lambda: index.longest_matches(queries), args.repeats)
    index_mb = index.nbytes / 2**20

    start = time.perf_counter()
    naive = ngram_sets(queries, reference)
    t_naive = time.perf_counter() - start

    start = time.perf_counter()
    automaton, sam_mb = rss_growth(lambda: SuffixAutomaton(reference))
    t_sam_build = time.perf_counter() - start
    start = time.perf_counter()
    sam = np.array([automaton.longest_match(q) for q in queries])
    t_sam_query = time.perf_counter() - start

    return {
        "works": len(works),
        "r_tokens": r_tokens,
        "lines": len(queries),
        "q_tokens": q_tokens,
        "ours": (t_build, t_query, index_mb),
        "sam": (t_sam_build, t_sam_query, sam_mb, len(automaton.length)),
        "naive": t_naive,
        "agree": bool((ours == naive).all() and (ours == sam).all()),
        "copied": float(ours[:half].mean()),
        "copied_len": float(np.mean([len(q) for q in queries[:half]])),
        "shuffled": float(ours[half:].mean()),
        "rate8": (float(np.mean(ours[:half] >= 8)), float(np.mean(ours[half:] >= 8))),
    }


def ratio(x):
    return f"{x:.1f}×" if x < 10 else f"{x:,.0f}×"


def table(r, args):
    b, q, mb = r["ours"]
    sb, sq, smb, states = r["sam"]
    lines = [
        f"Reference: {r['works']} Shakespeare works, {r['r_tokens']:,} tokens. Queries: {r['lines']:,} lines "
        f"({r['q_tokens']:,} tokens), half copied, half shuffled. {os.cpu_count()} CPU cores, Python "
        f"{platform.python_version()}, numpy {version('numpy')}. Ours: best of {args.repeats} runs; "
        "baselines: one run. All three give the same longest match for every line: "
        f"**{'identical' if r['agree'] else 'DIFFERENT'}**.",
        "",
        "| method | build (s) | query (s) | build / ours | query / ours | total / ours | memory (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| ours (`NgramIndex`) | {b:.2f} | {q:.3f} | 1× | 1× | 1× | {mb:.0f} (index arrays) |",
        f"| suffix automaton, pure Python ({states:,} states) | {sb:.1f} | {sq:.2f} | {ratio(sb / b)} | {ratio(sq / q)} "
        f"| {ratio((sb + sq) / (b + q))} | {smb:,.0f} (RSS growth) |",
        f"| n-gram sets, L = 1, 2, … (no index) | — | — | — | — | {ratio(r['naive'] / (b + q))} "
        f"({r['naive']:.1f} s) | one set of {r['r_tokens']:,} tuples at a time |",
        "",
        f"Query throughput of ours: {r['q_tokens'] / q:,.0f} tokens/s ({r['lines'] / q:,.0f} lines/s) once the "
        f"index is built. Copied lines: mean longest {r['copied']:.2f} = their mean length "
        f"{r['copied_len']:.2f}; shuffled lines: {r['shuffled']:.2f}. Rate at n = 8: {r['rate8'][0]:.3f} "
        f"(copied) vs {r['rate8'][1]:.3f} (shuffled).",
    ]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every 8th work, 1,000 lines")
    parser.add_argument("--lines", type=int, default=None, help="query lines (default 5,000; --quick 1,000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours (best is kept)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/memorization.md (--quick: bench_out/)")
    args = parser.parse_args()
    if args.lines is None:
        args.lines = 1_000 if args.quick else 5_000

    text = table(run(args), args)
    print(text)
    command = "python benchmarks/bench_memorization.py" + (" --quick" if args.quick else "")
    output = args.output or results_file("memorization.md", args.quick)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"# Memorization benchmark\n\n`{command}`\n\n{text}")


if __name__ == "__main__":
    main()
