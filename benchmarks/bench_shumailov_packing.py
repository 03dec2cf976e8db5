"""How much Shumailov et al.'s synthetic examples straddling two continuations changed the numbers,
at a tiny size on CPU: ``configs/shumailov_opt125m_wikitext2.yaml``, arm ``no_real``, reduced as
``tests/recursion/test_paper_configs.py`` reduces it (a tiny GPT-2 and shipped Shakespeare dressed
as wikitext-2), 4 generations × seeds 0-2, once with ``model.train.packing=stream`` (the re-encoded
continuations cut into 64-token rows that straddle them) and once with ``per_document`` (each
continuation one example, as ``main.py`` trains). Writes the test-block token perplexity of every
generation and the paired difference (mean, sd, 95% t interval over the seeds) to
``results/shumailov_packing.md``. Tiny size: it shows whether the straddling is visible there, not
its size for OPT-125m.

    python benchmarks/bench_shumailov_packing.py            # ~15 min on one busy core
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONFIG = ROOT / "configs" / "shumailov_opt125m_wikitext2.yaml"
TASK = "collapse_ppl_wikitext2_blocks"


def fake_hub():
    """``datasets.load_dataset`` answering the config's hub datasets with the test's local rows."""
    import datasets

    from tests.recursion.test_paper_configs import local_load_dataset

    datasets.load_dataset = local_load_dataset(datasets.load_dataset)


def main() -> int:
    from scipy import stats

    from recursion.driver import run_experiment
    from tests.recursion.test_paper_configs import SMALL, reduced
    from tests.tiny_models import build_tiny_gpt2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "shumailov_packing.md"))
    args = ap.parse_args()
    fake_hub()
    tmp = Path(tempfile.mkdtemp(prefix="bench-packing-"))
    tiny = build_tiny_gpt2(tmp / "tiny")
    base = [o for o in SMALL if not o.startswith(("generations", "seeds", "model.train.max_steps", "eval.limit"))]
    base += [f"generations={args.generations}", "seeds=[0,1,2]", "eval.limit=null"] + reduced("shumailov", tiny)
    ppl = {}
    for packing in ("stream", "per_document"):
        folders = run_experiment(CONFIG, tmp / packing, overrides=base + [f"model.train.packing={packing}"],
                                 arm="no_real", log=lambda s: None)
        ppl[packing] = np.array([[json.loads((f / f"gen_{g:02d}" / "lm_eval.json").read_text())["results"][TASK]
                                  ["token_perplexity,none"] for g in range(args.generations)] for f in folders])
    diff = ppl["per_document"] - ppl["stream"]
    n = diff.shape[0]
    half = stats.t.ppf(0.975, n - 1) * diff.std(0, ddof=1) / np.sqrt(n)
    lines = ["# Shumailov et al.: per-document vs stream packing of the synthetic blocks (tiny size, CPU)", "",
             f"`python benchmarks/bench_shumailov_packing.py` — `{CONFIG.name}`, arm `no_real`, overrides "
             f"`{' '.join(base[:-len(reduced('shumailov', tiny))])}` + the test's tiny GPT-2; {TASK} token perplexity.", "",
             "| generation | stream (seeds 0, 1, 2) | per_document (seeds 0, 1, 2) | per_document − stream: "
             "mean ± 95% CI (n = 3) |",
             "|---|---|---|---|"]
    for g in range(args.generations):
        fmt = lambda a: ", ".join(f"{v:.3f}" for v in a)  # noqa: E731
        lines.append(f"| {g} | {fmt(ppl['stream'][:, g])} | {fmt(ppl['per_document'][:, g])} | "
                     f"{diff[:, g].mean():+.3f} ± {half[g]:.3f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
