"""``lm-collapse vs-demo``: direct answers next to Verbalized Sampling candidates, for one prompt.

The classroom demonstration of mode collapse: the same creative request is asked

1. directly, ``num_direct`` times (sampling at temperature 1): an aligned model tends to give
   the same typical answer again and again;
2. once in a Verbalized Sampling form (``standard``, ``cot``, ``xml``, or ``multi``: a real
   multi-turn conversation of ``turns`` turns, each asking for ``k`` more answers): ``k``
   candidates with their verbalized probabilities, parsed by :func:`collapse_tasks.verbalized.parse`,
   and one of them drawn by its renormalized probability (:func:`collapse_tasks.verbalized.sample`).

Both sides are scored as the ``collapse_vs_*`` tasks score a prompt
(:func:`collapse_tasks.vs_utils.diversity`): semantic diversity, pairwise ROUGE-L, distinct-2.
The model is any lm-eval model (``--model hf --model_args pretrained=...``), loaded through
lm-eval's registry; its chat template is applied when it has one.
"""
from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass, field

import numpy as np

from collapse_tasks.verbalized import Candidate, Parsed, parse, render, sample

FORMS = ("standard", "cot", "xml", "multi")
#: Default generation settings (``--gen_kwargs`` overrides them on both sides): the whole distribution, every
#: truncation stated off as in the collapse_vs tasks (transformers would fill top_k = 50).
DIRECT_GEN_KWARGS = {"until": [], "do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0,
                     "repetition_penalty": 1.0, "max_gen_toks": 256}
VS_MAX_GEN_TOKS = {"standard": 1024, "cot": 1536, "xml": 1024, "multi": 1024}


@dataclass
class DemoResult:
    prompt: str
    form: str
    k: int
    direct: list[str]
    vs_answers: list[str]  # the raw VS answer (one per turn for ``multi``)
    parsed: Parsed
    sampled: Candidate | None
    seed: int
    chat_template: bool
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def load_model(model: str, model_args: str | None, *, device: str | None = None, batch_size: int = 8):
    """An lm-eval ``LM`` from its registry name and argument string, with a clear error on bad arguments."""
    from lm_eval.api.registry import get_model

    from recursion.backends.ngram.harness import register

    from .eval import check_model_paths

    register()
    check_model_paths(model_args)
    cls = get_model(model)  # ValueError naming the unknown model
    extra = {"batch_size": batch_size, "device": device or _default_device()}
    try:
        return cls.create_from_arg_string(model_args or "", extra)
    except Exception as err:  # a loader fails in many ways (bad kwarg, bad dtype, missing files, offline hub)
        raise ValueError(f"could not load --model {model} --model_args {model_args!r}: {err}") from err


def _default_device() -> str:
    """``cuda`` when torch sees a GPU, else ``cpu`` (lm-eval's ``hf`` model would otherwise ask for cuda)."""
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _context(lm, messages: list[dict[str, str]], notes: list[str]) -> tuple[str, bool]:
    """The prompt string of a conversation: the model's chat template, or plain ``role: content`` lines."""
    import jinja2

    try:
        return lm.apply_chat_template(messages), True
    except (NotImplementedError, ValueError, AttributeError, TypeError, jinja2.TemplateError) as err:
        # no template (a base model's tokenizer), no tokenizer at all, or a template that refuses the roles
        note = f"no chat template ({type(err).__name__}): the prompt is sent as plain text"
        if note not in notes:
            notes.append(note)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:", False


def _generate(lm, contexts: list[str], gen_kwargs: dict) -> list[str]:
    from lm_eval.api.instance import Instance

    requests = [
        Instance(request_type="generate_until", doc={}, arguments=(c, dict(gen_kwargs)), idx=i, metadata=("vs-demo", i, 1))
        for i, c in enumerate(contexts)
    ]
    return lm.generate_until(requests, disable_tqdm=True)


def _fit(gen_kwargs: dict, lm, notes: list[str]) -> dict:
    """``max_gen_toks`` lowered to half the model's context when it would not fit (lm-eval refuses it)."""
    limit = getattr(lm, "max_length", None)
    if isinstance(limit, int) and gen_kwargs["max_gen_toks"] >= limit:
        note = f"max_gen_toks {gen_kwargs['max_gen_toks']} >= the model's context of {limit} tokens: using {limit // 2}"
        if note not in notes:
            notes.append(note)
        return {**gen_kwargs, "max_gen_toks": limit // 2}
    return gen_kwargs


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def _scores(texts: list[str], notes: list[str]) -> dict[str, float | None]:
    """:func:`collapse_tasks.vs_utils.diversity`; without the embeddings extra, the lexical scores and a note."""
    from collapse_tasks.vs_utils import diversity

    try:
        return diversity(texts)
    except ImportError as err:
        if str(err) not in notes:
            notes.append(str(err))
        return diversity(texts, semantic=False)


def _merge(parts: list[Parsed]) -> Parsed:
    candidates = [c for p in parts for c in p.candidates]
    if not candidates:
        return Parsed()
    status = "ok" if all(p.status == "ok" for p in parts) else "partial"
    return Parsed(candidates, status, next(p.form for p in parts if p.ok))


def run(
    lm,
    prompt: str,
    *,
    form: str = "standard",
    k: int = 5,
    num_direct: int = 5,
    turns: int = 2,
    threshold: float = 0.10,
    seed: int = 0,
    gen_kwargs: dict | None = None,
) -> DemoResult:
    """Ask ``prompt`` directly ``num_direct`` times and once in Verbalized Sampling ``form``; parse, sample, score."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of: {', '.join(FORMS)}")
    if num_direct < 1 or k < 1 or turns < 1:
        raise ValueError(f"num_direct, k and turns must be >= 1, got {num_direct}, {k}, {turns}")
    notes: list[str] = []
    direct_kwargs = _fit({**DIRECT_GEN_KWARGS, **(gen_kwargs or {})}, lm, notes)
    vs_kwargs = _fit({**DIRECT_GEN_KWARGS, "max_gen_toks": VS_MAX_GEN_TOKS[form], **(gen_kwargs or {})}, lm, notes)

    _seed(seed)
    context, templated = _context(lm, [{"role": "user", "content": prompt}], notes)
    direct = [t.strip() for t in _generate(lm, [context] * num_direct, direct_kwargs)]

    if form == "multi":  # a real conversation: the model sees its own earlier turns
        messages = [{"role": "user", "content": render("multi", prompt, k=k, turns=turns)}]
        answers = []
        for turn in range(turns):
            if turn:
                messages += [{"role": "assistant", "content": answers[-1]},
                             {"role": "user", "content": render("multi_followup", prompt, k=k)}]
            answers += _generate(lm, [_context(lm, messages, notes)[0]], vs_kwargs)
        parsed = _merge([parse(a) for a in answers])
    else:
        request = render(form, prompt, k=k, threshold=threshold)
        answers = _generate(lm, [_context(lm, [{"role": "user", "content": request}], notes)[0]], vs_kwargs)
        parsed = parse(answers[0])

    sampled = sample(parsed.candidates, np.random.default_rng(seed)) if parsed.ok else None
    result = DemoResult(prompt, form, k, direct, answers, parsed, sampled, seed, templated, notes=notes)
    result.scores = {"direct": _scores(direct, notes), "vs": _scores([c.text for c in parsed.candidates], notes)}
    return result


# ---------------------------------------------------------------- printing


def _block(text: str, indent: str) -> str:
    lines = text.strip().splitlines() or [""]
    return lines[0] + "".join("\n" + indent + line for line in lines[1:])


def _score_line(scores: dict[str, float | None]) -> str:
    if scores["rouge_l"] is None:
        return "diversity: n/a (fewer than 2 answers)"
    semantic = "n/a" if scores["cosine_diversity"] is None else f"{scores['cosine_diversity']:.3f}"
    return (f"diversity: semantic {semantic} | ROUGE-L {scores['rouge_l']:.3f} (lower = more diverse) | "
            f"distinct-2 {scores['distinct_2']:.3f}")


def format_result(result: DemoResult) -> str:
    """The side-by-side view printed by ``lm-collapse vs-demo``."""
    rule = "=" * 78
    out = [f"Prompt: {result.prompt}",
           f"Chat template: {'applied' if result.chat_template else 'none (plain text)'}   seed: {result.seed}", ""]
    out += [rule, f"DIRECT: the prompt as is, sampled {len(result.direct)} times", rule]
    out += [f"{i:>3}. {_block(t, '     ') or '(empty)'}" for i, t in enumerate(result.direct, 1)]
    out += [_score_line(result.scores["direct"]), ""]

    how = f"{len(result.vs_answers)} turns of k={result.k}" if result.form == "multi" else f"k={result.k}"
    out += [rule, f"VERBALIZED SAMPLING ({result.form}, {how}): candidates with their verbalized probabilities", rule]
    parsed = result.parsed
    found = f" ({parsed.form}), {len(parsed.candidates)} candidates" if parsed.ok else ""
    out.append(f"parse status: {parsed.status}{found}")
    if parsed.ok:
        for c in parsed.candidates:
            p = "  ?  " if c.probability is None else f"{c.probability:.3f}"
            out.append(f"  p={p}  {_block(c.text, '           ')}")
        out += ["", f"SAMPLED (by renormalized probability, seed {result.seed}):",
                f"  {_block(result.sampled.text, '  ')}", _score_line(result.scores["vs"])]
    else:
        raw = "\n\n".join(result.vs_answers).strip()
        out += ["the answer holds no candidate (no JSON \"responses\" list, no <response> tag); it begins:",
                textwrap.indent(textwrap.shorten(raw, 600, placeholder=" ...") if raw else "(empty)", "  | "),
                "Small or base models rarely follow the format: try an instruction-tuned model (see the README)."]
    if result.notes:
        out += ["", *(f"note: {n}" for n in result.notes)]
    return "\n".join(out)


def default_prompt() -> str:
    """The first shipped joke prompt."""
    from collapse_tasks.vs_utils import load_prompts

    return next(p["prompt"] for p in load_prompts() if p["kind"] == "joke")


def resolve_prompt(prompt: str | None) -> str:
    """``prompt`` itself, the shipped prompt of that id (e.g. ``poem_03``), or :func:`default_prompt`."""
    from collapse_tasks.vs_utils import load_prompts

    if not prompt:
        return default_prompt()
    return next((p["prompt"] for p in load_prompts() if p["id"] == prompt), prompt)
