"""Sample texts of generation 0, 1, ..., G side by side (the slides' "Gen 0 / Gen 1 / Gen 7" view).

With prompted generation, the same prompt's output in every generation; unconditional generation
has no shared prompt, so the first documents each generation sampled are shown.
"""
from __future__ import annotations

from recursion.artifacts import record_prompt

from .collect import Replica


def _records(replica: Replica, g: int) -> list[dict]:
    from recursion.artifacts import SYNTHETIC, gen_dir, read_jsonl

    try:
        return [r for r in read_jsonl(gen_dir(replica.path, g) / SYNTHETIC) if isinstance(r, dict)]
    except (OSError, ValueError):
        return []


def sample_rows(replica: Replica, *, num: int = 2, max_chars: int = 200) -> list[tuple[str, int, str]]:
    """``(prompt or "", generation, text)`` rows, ``num`` prompts (or document positions)."""
    gens = sorted(replica.generations)
    per_gen = {g: _records(replica, g) for g in gens}
    per_gen = {g: rs for g, rs in per_gen.items() if rs}
    if not per_gen:
        return []
    clip = lambda t: (t[:max_chars] + "…") if len(t) > max_chars else t  # noqa: E731
    first = next(iter(per_gen.values()))
    rows = []
    if record_prompt(first[0]) is not None:  # the continuation is shown (a document holding its prompt: the rest of it)
        by_prompt = {g: {record_prompt(r): r.get("text", "")[r.get("prompt_chars", 0):] for r in rs} for g, rs in per_gen.items()}
        common = [p for p in dict.fromkeys(record_prompt(r) for r in first) if all(p in d for d in by_prompt.values())]
        for p in common[:num]:
            rows += [(clip(p), g, clip(by_prompt[g][p])) for g in per_gen]
    else:
        for i in range(num):
            rows += [("", g, clip(rs[i].get("text", ""))) for g, rs in per_gen.items() if i < len(rs)]
    return rows


def samples_markdown(replica: Replica, **kw) -> str:
    rows = sample_rows(replica, **kw)
    if not rows:
        return "_no synthetic samples found_"
    esc = lambda t: t.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    prompted = any(p for p, _, _ in rows)
    head = "| prompt | generation | text |\n|---|---|---|" if prompted else "| generation | text |\n|---|---|"
    body = [f"| {esc(p)} | {g} | {esc(t)} |" if prompted else f"| {g} | {esc(t)} |" for p, g, t in rows]
    return "\n".join([head, *body])
