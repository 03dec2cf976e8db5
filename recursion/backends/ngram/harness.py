"""The lm-eval model ``collapse-ngram`` (:class:`NgramLMEval`), so every ``collapse_*`` task
scores an n-gram model: ``lm-collapse eval --model collapse-ngram --model_args
pretrained=RUN/gen_03/model`` loads the ``ngram.json`` in that folder (``lm-collapse eval``
registers the name; in Python call :func:`register`). Loglikelihoods are sums of natural-log token
probabilities; ``generate_until`` samples tokens (greedy when ``do_sample`` is false) and cuts the
text at the first ``until`` string.
"""
from __future__ import annotations

from lm_eval.api.model import LM
from tqdm.auto import tqdm

from .lm import NgramLM

#: The lm-eval model name of :class:`NgramLMEval`.
LM_EVAL_NAME = "collapse-ngram"
#: Generation options the lm-eval model ``collapse-ngram`` takes (after lm-eval's ``normalize_gen_kwargs``).
GEN_OPTIONS = ("until", "max_gen_toks", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty")


def register() -> None:
    """Register ``collapse-ngram`` with lm-eval's model registry (idempotent)."""
    import lm_eval.models  # noqa: F401  (fills the built-in models first: lm-eval only does so while empty)
    from lm_eval.api.registry import model_registry

    if LM_EVAL_NAME not in model_registry:
        model_registry.register(LM_EVAL_NAME, target=f"{__name__}:NgramLMEval")


class NgramLMEval(LM):
    """lm-eval adapter around :class:`~recursion.backends.ngram.lm.NgramLM`."""

    def __init__(self, pretrained: str | None = None, *, model: NgramLM | None = None, seed: int = 1234, **_ignored):
        super().__init__()
        if (pretrained is None) == (model is None):
            raise ValueError("collapse-ngram needs pretrained=PATH (a folder holding ngram.json)")
        self.model = model if model is not None else NgramLM.load(pretrained)
        self.seed = int(seed)

    @property
    def tokenizer_name(self) -> str:
        return f"collapse-ngram-{self.model.tokenizer}"

    def loglikelihood(self, requests, disable_tqdm: bool = False):
        contexts = [r.args[0] for r in requests]
        conts = [r.args[1] for r in requests]
        lps = self.model.logprobs(conts, contexts=contexts)
        greedy = []
        for ctx, cont in tqdm(list(zip(contexts, conts)), disable=disable_tqdm, desc="collapse-ngram loglikelihood"):
            target = self.model.tokens(cont)
            out = self.model.generate(prompts=[ctx], max_new_tokens=max(len(target), 1), do_sample=False)[0]
            greedy.append(out == " ".join(target))
        return list(zip(lps, greedy))

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        return self.model.logprobs([r.args[0] for r in requests])

    def generate_until(self, requests, disable_tqdm: bool = False):
        """All requests with the same generation options are sampled in one batch.

        The options are read as lm-eval's HF and vLLM models read them (``normalize_gen_kwargs``:
        temperature 0 or ``do_sample: false`` is greedy); ``top_k`` (0 = off) and ``top_p`` (1.0 = off)
        are honoured, ``min_p`` and ``repetition_penalty`` taken at their "off" values 0 and 1 only, any other
        option or value refused (:data:`GEN_OPTIONS`), never ignored.
        """
        from lm_eval.models.utils import normalize_gen_kwargs

        groups: dict[str, list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault(repr(sorted((r.args[1] or {}).items())), []).append(i)
        out = [""] * len(requests)
        for members in tqdm(list(groups.values()), disable=disable_tqdm, desc="collapse-ngram generate"):
            kwargs = dict(normalize_gen_kwargs(dict(requests[members[0]].args[1] or {}), default_max_gen_toks=64))
            unknown = sorted(set(kwargs) - set(GEN_OPTIONS))
            if unknown:
                raise ValueError(f"collapse-ngram has no generation option {', '.join(unknown)}; "
                                 f"valid: {', '.join(GEN_OPTIONS)}")
            do_sample, temperature = bool(kwargs["do_sample"]), float(kwargs.get("temperature", 0.0))
            if do_sample and not temperature > 0:
                raise ValueError(f"collapse-ngram: do_sample is true but temperature = {temperature}; "
                                 "give temperature > 0, or do_sample: false for greedy decoding")
            top_k, top_p = kwargs.get("top_k", 0), kwargs.get("top_p", 1.0)
            top_k, top_p = 0 if top_k is None else int(top_k), 1.0 if top_p is None else float(top_p)
            off = {"min_p": 0.0, "repetition_penalty": 1.0}
            if top_k < 0 or not 0.0 < top_p <= 1.0 or any(kwargs.get(k, v) not in (v, None) for k, v in off.items()):
                raise ValueError(f"collapse-ngram: top_k must be >= 0 (0 = off), top_p in (0, 1] (1 = off), min_p 0 "
                                 f"and repetition_penalty 1 (it has neither), got top_k={top_k}, top_p={top_p}, "
                                 f"min_p={kwargs.get('min_p')}, repetition_penalty={kwargs.get('repetition_penalty')}")
            texts = self.model.generate(
                prompts=[requests[i].args[0] for i in members],
                max_new_tokens=int(kwargs["max_gen_toks"]),
                do_sample=do_sample,
                temperature=temperature if do_sample else 1.0,
                top_k=top_k,
                top_p=top_p,
                seed=self.seed + members[0],
            )
            until = kwargs["until"]
            for i, text in zip(members, texts):
                cuts = [text.index(stop) for stop in until if stop and stop in text]
                out[i] = text[: min(cuts)] if cuts else text
        return out
