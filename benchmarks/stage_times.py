"""Wall time per stage of a run, read from its replicas' manifests: a Markdown table of the mean
seconds per generation of each stage, per arm (and the whole run's time per replica).

Usage: ``python benchmarks/stage_times.py RUN_DIR [--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from recursion.artifacts import find_replicas
from recursion.stages import BY_NAME as STAGES


def stage_table(run_dir: str | Path) -> str:
    """``| arm | replicas | generations | data | train | ... | total per replica |`` from the manifests."""
    per_arm: dict[str, list[dict]] = defaultdict(list)
    for replica in find_replicas(run_dir):
        per_arm[replica.parent.name].append(json.loads((replica / "manifest.json").read_text())["stages"])
    head = ["arm", "replicas", "generations", *STAGES, "total per replica"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm, manifests in per_arm.items():
        gens = max(len({name.split("/")[0] for name in m}) for m in manifests)
        cells = []
        for stage in STAGES:
            times = [r["seconds"] for m in manifests for name, r in m.items() if name.endswith(f"/{stage}")]
            cells.append(f"{sum(times) / len(times):.1f} s" if times else "—")
        total = sum(r["seconds"] for m in manifests for r in m.values()) / len(manifests)
        rows.append(f"| {arm} | {len(manifests)} | {gens} | " + " | ".join(cells) + f" | {total:.0f} s |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    text = stage_table(args.run_dir)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
