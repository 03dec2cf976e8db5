"""The report's header: how its numbers were made — the decoding of every task shown, the
environment the replicas ran in, and what an interval is.

The decoding is read from the task configs lm-eval saved with each checkpoint's results (after
every override: what reached the model, not what a YAML says); the environment from each
replica's ``environment.json`` (:mod:`recursion.environment`). When replicas differ in either,
the header lists each variant with the replicas that ran it.
"""
from __future__ import annotations

from .collect import Collection

INTERVALS = ("**Intervals:** each arm and seed at a generation is one observation. A value is the mean over "
             "seeds ± the half-width of its 95% Student-t interval (t(0.975, n−1)·s/√n); a change versus "
             "generation 0 is computed per seed, then its t-interval over seeds; a difference between arms is "
             "paired by seed (the arms of a seed share its generation-0 model). A change or difference whose "
             "interval contains 0 is printed as \"no detectable change/difference\", never as a direction.")
SHOWN = ("lm_eval", "torch", "transformers", "numpy")  # the packages the header names; the file holds more


def decoding_lines(col: Collection) -> list[str]:
    """Markdown bullets: each task's decoding (several, with their replicas, where replicas differ)."""
    tasks: dict[str, list[tuple[str, list[str]]]] = {}
    for (task, decoding), names in col.decoding.items():
        tasks.setdefault(task, []).append((decoding, names))
    lines = []
    for task, variants in tasks.items():
        if len(variants) == 1:
            lines.append(f"- `{task}`: {variants[0][0]}")
        else:
            lines.append(f"- `{task}` **differs between replicas**: "
                         + "; ".join(f"{d} ({', '.join(names)})" for d, names in variants))
    return lines


def describe_environment(env: dict) -> str:
    """One line: the named package versions, CPU, cores, torch threads, platform, accelerators."""
    versions = env.get("versions") or {}
    parts = [", ".join(f"{p} {versions[p]}" for p in SHOWN if p in versions),
             f"CPU {env.get('cpu')} ({env.get('cores')} usable cores)", f"torch threads {env.get('torch_threads')}",
             f"OMP_NUM_THREADS {env.get('omp_num_threads') or 'unset'}", str(env.get("platform"))]
    if env.get("accelerators"):
        parts.append("GPU " + ", ".join(env["accelerators"]))
    if env.get("previous"):
        parts.append(f"resumed from {len(env['previous'])} earlier environment(s) (see environment.json)")
    return "; ".join(p for p in parts if p)


def environment_lines(col: Collection) -> list[str]:
    """Markdown bullets: the environment of the replicas, one bullet per distinct environment."""
    groups: dict[str, list[str]] = {}
    for r in col.replicas:
        text = describe_environment(r.environment) if r.environment else "not recorded (no environment.json)"
        groups.setdefault(text, []).append(r.name)
    if len(groups) == 1:
        return [f"- {next(iter(groups))}"]
    return ["- **The replicas ran in different environments:**",
            *(f"  - {text}: {', '.join(names)}" for text, names in groups.items())]


def header_lines(col: Collection) -> list[str]:
    """The header's Markdown: intervals, decoding, environment."""
    md = [INTERVALS, ""]
    if decoding := decoding_lines(col):
        md += ["**Decoding of each task** (from the task configs lm-eval saved with the results):", "", *decoding, ""]
    md += ["**Environment** (an n-gram model's numbers repeat exactly on any machine; a torch model's depend on "
           "the CPU's kernels and threads, and agree across machines only within seed noise):", "",
           *environment_lines(col), ""]
    return md
