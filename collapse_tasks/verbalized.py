"""Verbalized Sampling (Zhang et al., 2025, arXiv:2510.01171): prompts, a tolerant parser, sampling.

Aligned models answer an open prompt with its one most typical answer (mode collapse). Verbalized
Sampling asks instead for ``k`` answers, each with the probability the model assigns to it, and
then samples among them — recovering diversity without training.

Prompt forms (:data:`TEMPLATES`, plain ``str.format`` strings with ``{k}``, ``{threshold}``,
``{turns}``, ``{total}`` = k × turns and ``{prompt}``):

* ``direct`` — the plain request (the baseline; diversity comes from sampling several times).
* ``standard`` — VS-Standard: JSON ``{"responses": [{"text": ..., "probability": ...}]}``.
* ``cot`` — VS-CoT: the same JSON with a ``"reasoning"`` field first.
* ``multi`` / ``multi_followup`` — VS-Multi: ``total`` = k × turns answers, ``k`` per turn; the
  follow-up turn asks for ``k`` alternative ones (a real conversation: ``lm-collapse vs-demo``).
* ``multi_rounds`` — VS-Multi in one call, for harnesses that generate once per request (lm-eval's
  ``generate_until``): ``turns`` rounds of ``k`` answers, each round one JSON object written after
  the previous ones and asked to differ from all of them. Parse it with ``parse(text, every=True)``.
* ``xml`` — ``<response><text>…</text><probability>…</probability></response>`` with a tail
  threshold: each probability below ``threshold`` (sampling from the tails).

:func:`parse` accepts what models really write: code fences, prose around the JSON, trailing
commas, truncated output (complete candidates are kept, status ``partial``), the XML form, and
probabilities as numbers, strings or percentages. It never turns a failure into an empty answer:
the :class:`Parsed` result says ``failed`` and the tasks report the failure rate.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

# The authors' wording (CHATS-lab/verbalized-sampling, verbalized_sampling/methods/prompt.py at f986af6:
# CreativityPromptTemplate and the "implicit" probability definition of get_format_prompt; the XML form
# is their README's ready-to-use prompt). Their instructions are a system message and the request the
# user message; here, as lm-eval renders one user turn, the instructions come first and the request after.
_AIM = "Maximizing both creativity and diversity, while ensuring that each response remains high-quality to the input prompt."
_ITEMS = ("- 'text': the response string only (no explanation or extra text).\n"
          "- 'probability': how likely this response would be (from 0.0 to 1.0).\n")
_SAMPLE = "Randomly sample the responses from the full distribution."
_JSON_FORMAT = ('Return the responses in JSON format with the key: "responses" (list of dicts). Each dictionary must include:\n'
                + _ITEMS + "\n" + _SAMPLE + " Return ONLY the JSON object, with no additional explanations or text.")
_REQUEST = "\n\nInput prompt: {prompt}"

TEMPLATES: dict[str, str] = {
    "direct": "{prompt}",
    "standard": "Generate {k} responses to the input prompt.\n" + _AIM + "\n\n" + _JSON_FORMAT + _REQUEST,
    "cot": (
        "Generate {k} responses to the input prompt using chain-of-thought reasoning.\n\n"
        'First, provide a single "reasoning" field as a string, detailing your step-by-step thought process.\n'
        'Then, return the output in JSON format with the key "responses" (list of dicts). Each dictionary must include:\n'
        + _ITEMS + "\n" + _SAMPLE + " Return ONLY the JSON object, with no additional explanations or text." + _REQUEST
    ),
    # VS-Multi as their CreativityPromptTemplate.get_vs_multi_turn_prompt words it: no _AIM line
    "multi": "Generate {total} responses to the input prompt.\n\nFirst, sample {k} responses.\n" + _JSON_FORMAT + _REQUEST,
    "multi_followup": "Sample {k} alternative responses to the original input prompt.",
    "multi_rounds": (
        "Generate {total} responses to the input prompt, in {turns} rounds of {k} responses ({total} in all): "
        "first sample {k} responses, then, in each later round, {k} alternative responses, different from all "
        "the responses of the previous rounds.\n\n"
        + _JSON_FORMAT.replace("Return the responses in JSON format with the key",
                               "Write each round as its own JSON object, one after the other, with the key")
        .replace("Return ONLY the JSON object", "Return ONLY the {turns} JSON objects") + _REQUEST
    ),
    "xml": (
        "<instructions>\nGenerate {k} responses to the user query, each within a separate <response> tag. "
        "Each <response> must include a <text> and a numeric <probability>.\nPlease sample at random from the "
        "tails of the distribution, such that the probability of each response is less than {threshold}.\n"
        "</instructions>\n\n{prompt}"
    ),
}


def render(form: str, prompt: str, *, k: int = 5, threshold: float = 0.10, turns: int = 2) -> str:
    """The prompt of one form for one request (``turns``: rounds of ``multi_rounds``)."""
    if form not in TEMPLATES:
        raise ValueError(f"unknown Verbalized Sampling form {form!r}; choose one of: {', '.join(TEMPLATES)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if turns < 1:
        raise ValueError(f"turns must be >= 1, got {turns}")
    return TEMPLATES[form].format(k=k, threshold=threshold, turns=turns, total=k * turns, prompt=prompt)


@dataclass(frozen=True)
class Candidate:
    text: str
    probability: float | None  # None when the model gave none (or an unreadable one)


@dataclass(frozen=True)
class Parsed:
    candidates: list[Candidate] = field(default_factory=list)
    status: str = "failed"  # "ok" | "partial" (truncated or some items unusable) | "failed"
    form: str | None = None  # "json" | "xml"

    @property
    def ok(self) -> bool:
        return self.status != "failed"


_FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)(?:```|$)", re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_TEXT_KEYS = ("text", "response", "answer", "content")
_PROB_KEYS = ("probability", "prob", "p", "confidence")


def parse_probability(value) -> float | None:
    """A probability in [0, 1] from a number, a numeric string or a percentage; None if unusable.

    Numbers in (1, 100] are read as percentages.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        m = re.search(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?", value)
        if not m:
            return None
        x = float(m.group())
        if "%" in value:
            x /= 100
    elif isinstance(value, (int, float)):
        x = float(value)
    else:
        return None
    if 1.0 < x <= 100.0:
        x /= 100.0
    return x if 0.0 <= x <= 1.0 else None


def _candidate(item) -> Candidate | None:
    if isinstance(item, str):
        return Candidate(item.strip(), None) if item.strip() else None
    if not isinstance(item, dict):
        return None
    text = next((item[k] for k in _TEXT_KEYS if isinstance(item.get(k), str)), None)
    if text is None or not text.strip():
        return None
    prob = next((parse_probability(item[k]) for k in _PROB_KEYS if k in item), None)
    return Candidate(text.strip(), prob)


def _objects(s: str, start: int = 0):
    """Yield ``(begin, end, complete)`` of each top-level ``{...}`` from ``start``, string-aware."""
    i = s.find("{", start)
    while i != -1:
        depth, in_str, esc = 0, False, False
        for j in range(i, len(s)):
            ch = s[j]
            if in_str:
                if esc:
                    esc = False
                elif ch == "\\":
                    esc = True
                elif ch == '"':
                    in_str = False
            elif ch == '"':
                in_str = True
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    yield i, j + 1, True
                    i = s.find("{", j + 1)
                    break
        else:
            yield i, len(s), False
            return


def _loads(s: str):
    try:
        return json.loads(s)
    except ValueError:
        return json.loads(_TRAILING_COMMA.sub(r"\1", s))


def _from_object(body: str, begin: int, end: int, complete: bool) -> Parsed | None:
    """The candidates of one top-level ``{...}`` of ``body`` (None if it holds no usable one)."""
    if not complete:
        # truncated: keep the complete candidate objects inside the "responses" list
        inner = body[begin:]
        lst = inner.find("[")
        items = []
        for b, e, done in _objects(inner, lst + 1 if lst != -1 else 1):
            if not done:
                break
            try:
                items.append(_loads(inner[b:e]))
            except ValueError:
                continue
        cands = [c for c in map(_candidate, items) if c]
        return Parsed(cands, "partial", "json") if cands else None
    try:
        doc = _loads(body[begin:end])
    except ValueError:
        return None
    items = doc.get("responses") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    cands = [c for c in map(_candidate, items) if c]
    if not cands:
        return None
    return Parsed(cands, "ok" if len(cands) == len(items) else "partial", "json")


def _from_json(text: str, every: bool) -> Parsed | None:
    if every:  # every fenced block (or the whole text), each may hold objects
        blocks = [b for b in _FENCE.findall(text) if "{" in b]
        body = "\n".join(blocks) if blocks else text
    else:
        fenced = _FENCE.search(text)
        body = fenced.group(1) if fenced and "{" in fenced.group(1) else text
    found = []
    for begin, end, complete in _objects(body):
        parsed = _from_object(body, begin, end, complete)
        if parsed and not every:
            return parsed
        if parsed:
            found.append(parsed)
    if not found:
        return None
    status = "ok" if all(p.status == "ok" for p in found) else "partial"
    return Parsed([c for p in found for c in p.candidates], status, "json")


_RESPONSE = re.compile(r"<response>(.*?)(?:</response>|(?=<response>)|$)", re.S | re.I)
_TAG = {t: re.compile(rf"<{t}>(.*?)(?:</{t}>|(?=<)|$)", re.S | re.I) for t in ("text", "probability")}


def _from_xml(text: str) -> Parsed | None:
    blocks = _RESPONSE.findall(text)
    cands, bad = [], 0
    for block in blocks:
        t = _TAG["text"].search(block)
        if not t or not t.group(1).strip():
            bad += 1
            continue
        p = _TAG["probability"].search(block)
        cands.append(Candidate(t.group(1).strip(), parse_probability(p.group(1)) if p else None))
    if not cands:
        return None
    truncated = "</response>" not in text.lower()[text.lower().rfind("<response>"):]
    return Parsed(cands, "partial" if bad or truncated else "ok", "xml")


def parse(text: str, *, every: bool = False) -> Parsed:
    """Candidates and their verbalized probabilities from a model's answer (JSON first, then XML).

    With ``every=True`` the candidates of *every* ``{"responses": [...]}`` object are kept, in
    order (the rounds of ``multi_rounds``); the status is ``ok`` only if every object is.
    """
    if not isinstance(text, str) or not text.strip():
        return Parsed()
    return _from_json(text, every) or _from_xml(text) or Parsed()


def sample(candidates: list[Candidate], rng: np.random.Generator) -> Candidate:
    """Draw one candidate with probability proportional to its verbalized probability.

    Missing probabilities count as the mean of the given ones; if none is given (or all are 0),
    the draw is uniform.
    """
    if not candidates:
        raise ValueError("no candidates to sample from (the answer did not parse)")
    return candidates[rng.choice(len(candidates), p=weights(candidates))]


def weights(candidates: list[Candidate]) -> np.ndarray:
    """Renormalized verbalized probabilities (see :func:`sample`)."""
    given = [c.probability for c in candidates if c.probability is not None]
    fill = float(np.mean(given)) if given else 1.0
    w = np.array([fill if c.probability is None else c.probability for c in candidates], dtype=float)
    return w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
