"""Generation throughput of the Hugging Face back end: batched ``HFModel.generate`` vs a per-sample loop.

A tiny GPT-2 (2 layers, 64 dims, 128-token context, 1,024-token BPE vocabulary) is trained for 30
steps on shipped Shakespeare lines, then generates the same workload two ways:

* batched — one ``generate`` call: batches of ``--batch-size`` sequences, left-padded, KV cache;
* per-sample — a loop of ``generate`` calls with one sequence each (``batch_size=1``), what a
  script calling ``model.generate`` once per document does.

Both sample (T = 1.0) exactly ``--new-tokens`` tokens per sequence (``min_new_tokens`` =
``max_new_tokens``), so tokens/s compare like for like. Workloads: unconditional documents from BOS,
and continuations of real-prefix prompts of 4–16 tokens (the left padding path). One timed run
each, after one warm-up call.

Usage: ``python benchmarks/bench_generation.py [--quick] [--threads 1] [--device auto]``; writes
``benchmarks/results/generation.md`` (``--quick``: ``bench_out/``; or ``--out``).
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from _timing import results_file

from collapse_tasks import corpus
from recursion.backends.base import Decoding
from recursion.backends.hf import HFScratchBackend
from recursion.backends.hf.config import HFScratchConfig, TrainConfig
from recursion.config import RuntimeConfig


def tiny_model(device: str, tmp: Path):
    cfg = HFScratchConfig(n_layer=2, n_embd=64, n_head=2, n_positions=128, vocab_size=1024, eval_batch_size=32,
                          train=TrainConfig(max_steps=30, batch_size=16, block_size=128, logging_steps=30))
    backend = HFScratchBackend(cfg, RuntimeConfig(device=device))
    backend.train(corpus.lines("train")[:2000], tmp / "model", previous=None, seed=0)
    return backend.load(tmp / "model")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="32 sequences of 32 tokens (default: 256 of 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, help="default: benchmarks/results/generation.md (--quick: bench_out/)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, new = (32, 32) if args.quick else (256, 64)

    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(args.device, Path(tmp))
    heldout = corpus.lines("heldout")
    prompts = [model.truncate(heldout[i], 4 + i % 13) for i in range(n)]
    batched = Decoding(max_new_tokens=new, min_new_tokens=new, batch_size=args.batch_size)
    single = Decoding(max_new_tokens=new, min_new_tokens=new, batch_size=1)
    model.generate(num=2, decoding=batched, seed=0)  # warm-up

    rows = []
    cases = [("unconditional (from BOS)", lambda i=None: {"num": n if i is None else 1}),
             ("real-prefix prompts (4-16 tokens)", lambda i=None: {"prompts": prompts if i is None else [prompts[i]]})]
    for name, kwargs in cases:
        t_batch = timed(lambda kw=kwargs: model.generate(**kw(), decoding=batched, seed=0))
        t_loop = timed(lambda kw=kwargs: [model.generate(**kw(i), decoding=single, seed=i) for i in range(n)])
        tokens = n * new
        rows.append(f"| {name} | {n} × {new} | {t_batch:.2f} | {tokens / t_batch:,.0f} | {t_loop:.2f} | "
                    f"{tokens / t_loop:,.0f} | {t_loop / t_batch:.1f}x |")

    cpu = f"CPU ({platform.processor() or platform.machine()}), {args.threads} thread(s)"
    device = torch.cuda.get_device_name() if model.device.type == "cuda" else cpu
    quick = " --quick" if args.quick else ""
    cmd = f"python benchmarks/bench_generation.py{quick} --threads {args.threads} --device {args.device}"
    text = "\n".join([
        "# Generation throughput (Hugging Face back end)", "",
        f"`{cmd}` — device: {device}; torch {torch.__version__}; batch size {args.batch_size}; sampling T = 1.0, "
        "exactly the stated number of new tokens per sequence; one timed run after a warm-up call.", "",
        "Tiny GPT-2: 2 layers, 64 dims, 128-token context, 1,024-token byte-level BPE, trained 30 steps on shipped "
        "Shakespeare lines. Per-sample = a loop of `generate` calls with one sequence each.", "",
        "| workload | sequences × new tokens | batched (s) | batched tok/s | per-sample (s) | per-sample tok/s | speed-up |",
        "|---|---|---|---|---|---|---|",
        *rows, "",
    ])
    print(text)
    out = args.out or results_file("generation.md", args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
