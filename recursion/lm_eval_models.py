"""lm-eval model ``collapse-ngram``: the word n-gram back end, scorable by every ``collapse_*`` task.

``lm-collapse eval --model collapse-ngram --model_args pretrained=RUN/gen_03/model`` loads the
``ngram.json`` in that folder (``lm-collapse eval`` registers the name; in Python call
:func:`register`). Loglikelihoods are sums of natural-log word probabilities; ``generate_until``
samples words (greedy when ``do_sample`` is false) and cuts the text at the first ``until`` string.
"""
from __future__ import annotations

from lm_eval.api.model import LM
from tqdm.auto import tqdm

from .backends.ngram import NgramLM

NAME = "collapse-ngram"


def register() -> None:
    """Register ``collapse-ngram`` with lm-eval's model registry (idempotent)."""
    import lm_eval.models  # noqa: F401  (fills the built-in models first: lm-eval only does so while empty)
    from lm_eval.api.registry import model_registry

    if NAME not in model_registry:
        model_registry.register(NAME, target=f"{__name__}:NgramLMEval")


class NgramLMEval(LM):
    """lm-eval adapter around :class:`~recursion.backends.ngram.NgramLM`."""

    def __init__(self, pretrained: str | None = None, *, model: NgramLM | None = None, seed: int = 1234, **_ignored):
        super().__init__()
        if (pretrained is None) == (model is None):
            raise ValueError("collapse-ngram needs pretrained=PATH (a folder holding ngram.json)")
        self.model = model if model is not None else NgramLM.load(pretrained)
        self.seed = int(seed)

    @property
    def tokenizer_name(self) -> str:
        return "collapse-ngram-whitespace"

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        contexts = [r.args[0] for r in requests]
        conts = [r.args[1] for r in requests]
        lps = self.model.logprobs(conts, contexts=contexts)
        greedy = [
            self.model.generate(prompts=[ctx], max_new_tokens=max(len(c.split()), 1), do_sample=False)[0] == " ".join(c.split())
            for ctx, c in tqdm(list(zip(contexts, conts)), disable=disable_tqdm, desc="collapse-ngram loglikelihood")
        ]
        return list(zip(lps, greedy))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.model.logprobs([r.args[0] for r in requests])

    def generate_until(self, requests, disable_tqdm: bool = False):
        """All requests with the same generation options are sampled in one batch."""
        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(repr(sorted((r.args[1] or {}).items())), []).append(i)
        out = [""] * len(requests)
        for members in tqdm(list(groups.values()), disable=disable_tqdm, desc="collapse-ngram generate"):
            kwargs = dict(requests[members[0]].args[1] or {})
            until = kwargs.pop("until", None) or []
            until = [until] if isinstance(until, str) else list(until)
            texts = self.model.generate(
                prompts=[requests[i].args[0] for i in members],
                max_new_tokens=int(kwargs.get("max_gen_toks", kwargs.get("max_new_tokens", 64))),
                do_sample=bool(kwargs.get("do_sample", False)),
                temperature=float(kwargs.get("temperature", 1.0)) or 1.0,
                top_k=int(kwargs.get("top_k", 0) or 0),
                top_p=float(kwargs.get("top_p", 1.0) or 1.0),
                seed=self.seed + members[0],
            )
            for i, text in zip(members, texts):
                cuts = [text.index(stop) for stop in until if stop and stop in text]
                out[i] = text[: min(cuts)] if cuts else text
        return out
