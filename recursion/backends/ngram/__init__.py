"""The ``ngram`` back end, the toy of Lab 1: a word n-gram language model trained afresh each
generation.

The vocabulary is fixed when the model is first fitted (generation 0, on real text) and handed
to every later generation, so perplexities of successive generations are over the same event
space; words outside it score as ``<unk>``. Generation never emits ``<unk>``.

The package, by job: :mod:`~recursion.backends.ngram.lm` (:class:`NgramLM`: counting, the add-α,
Kneser–Ney and Jelinek–Mercer estimators and their references, sampling, the ``ngram.json`` file),
:mod:`~recursion.backends.ngram.counts` (the count tables it stores),
:mod:`~recursion.backends.ngram.harness` (the lm-eval model ``collapse-ngram``); this module holds
the ``model:`` block (:class:`NgramConfig`), the driver's model (:class:`NgramModel`) and the back
end (:class:`NgramBackend`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ...words import WordTokenizer
from ..base import failing
from .harness import NgramLMEval
from .lm import BOS, EOS, UNK, NgramLM


@dataclass(frozen=True)
class NgramConfig:
    """``model:`` block of the ``ngram`` back end (:mod:`recursion.backends.ngram.lm` has the formulas)."""

    n: int = 2
    alpha: float = 0.01  # add_alpha: the additive constant α
    smoothing: Literal["add_alpha", "kneser_ney", "jelinek_mercer"] = "add_alpha"
    discount: float | None = None  # kneser_ney: D of every order; null: estimated per order, n1 / (n1 + 2 n2)
    jm_lambda: float | None = None  # jelinek_mercer: weight λ of each order's maximum-likelihood estimate
    tokenizer: WordTokenizer = "whitespace"
    # fixed: generation 0's vocabulary for every generation (one event space to compare perplexities
    # over); per_generation: rebuilt from each generation's training set — the seed notebook's pitfall
    vocabulary: Literal["fixed", "per_generation"] = "fixed"
    # the driver's perplexities (surprise filter, probes) also score (last word -> </s>): the seed notebook's
    score_end: bool = False

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (1 <= self.n <= 6, "n", "must be in 1..6"),
            (self.alpha > 0, "alpha", "must be > 0"),
            (self.discount is None or 0 < self.discount <= 1, "discount", "must be in (0, 1] (null: estimated per order)"),
            (self.discount is None or self.smoothing == "kneser_ney", "discount", "applies only to smoothing: kneser_ney"),
            (self.jm_lambda is None or 0 < self.jm_lambda < 1, "jm_lambda", "must be in (0, 1)"),
            (self.jm_lambda is None or self.smoothing == "jelinek_mercer", "jm_lambda",
             "applies only to smoothing: jelinek_mercer"),
            (self.jm_lambda is not None or self.smoothing != "jelinek_mercer", "jm_lambda",
             "is required by smoothing: jelinek_mercer (the weight of each order's maximum-likelihood estimate, in (0, 1))"),
        )


class NgramModel:
    """:class:`~recursion.backends.base.Model` over a fitted :class:`NgramLM` (tokens are its words).

    ``score_end`` (``model.score_end``): the driver's perplexities (the surprise filter, the probes)
    also score the end token, ``log P(</s> | last words)``, and count it: with ``n`` words,
    ``exp(−(Σᵢ log P(wᵢ | h) + log P(</s> | h)) / (n + 1))`` — the seed Lab 1 notebook's estimator,
    every transition of ``<s> w₁ … wₙ </s>``. Without it, the ``n`` words only, as
    ``loglikelihood_rolling`` scores a text in lm-eval (the ``collapse-ngram`` model never scores it).
    """

    def __init__(self, lm: NgramLM, *, score_end: bool = False):
        self.lm, self.score_end = lm, score_end

    def generate(self, *, num=None, prompts=None, decoding, seed: int) -> list[str]:
        if NgramBackend.decoding_problems(decoding):
            raise ValueError("the n-gram back end samples or decodes greedily: num_beams=1, repetition_penalty=1")
        texts = self.lm.generate(
            num, prompts=prompts, max_new_tokens=decoding.max_new_tokens, min_new_tokens=decoding.min_new_tokens,
            temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p,
            do_sample=decoding.do_sample, seed=seed,
        )
        # a continuation reads after its prompt: the next word follows a space (prompt + text is the document)
        return texts if prompts is None else [f" {t}" if t and p.strip() else t for t, p in zip(texts, prompts)]

    def perplexity(self, texts):
        """Per-document perplexity, ``exp(−log P / #scored tokens)`` (``score_end``: the end token included)."""
        logp, n = self.loglikelihood_rolling(texts)
        return np.exp(-logp / np.maximum(n, 1))

    def floor_share(self, texts) -> float:
        """The expected share of the tokens of ``texts`` (its own samples) drawn from the uniform floor:
        :meth:`NgramLM.uniform_share` (``gen_XX/data_diversity.json``, :mod:`recursion.data_diversity`)."""
        return self.lm.uniform_share(texts)

    def loglikelihood_rolling(self, texts) -> tuple[np.ndarray, np.ndarray]:
        """Natural-log probability of each text from ``<s>`` and its number of scored tokens (the end
        token scored and counted only with ``score_end``)."""
        texts = list(texts)
        return np.asarray(self.lm.logprobs(texts, eos=self.score_end)), self.lm.num_tokens(texts) + int(self.score_end)

    def next_token_stats(self, prompts):
        return self.lm.next_token_stats(prompts)

    def truncate(self, text: str, num_tokens: int) -> str:
        return " ".join(self.lm.tokens(text)[:num_tokens])

    def toedit(self, texts: Sequence[str], *, rule, seed: int) -> list:
        """ToEdit (:mod:`recursion.transforms`) with the exact n-gram probabilities, through the public
        :meth:`NgramLM.logprobs` only: one call scores every word given its prefix (its last n − 1
        words, ``<s>``-padded); one more gives, for each distinct history of a resampled position, the
        probability of every word of the vocabulary (never ``<s>``, ``</s>``, ``<unk>``), of which the
        ``rule.candidates`` most probable are the candidates (ties: vocabulary order). Words are
        the model's tokens (``model.tokenizer``); a document left unchanged keeps its exact text."""
        from ...toedit import RESAMPLE, EditedDoc, apply_edits, uniforms

        lm, h = self.lm, self.lm.n - 1
        docs = [lm.tokens(t) for t in texts]
        history = [" ".join(d[max(0, i - h):i]) if h else "" for d in docs for i in range(len(d))]
        flat = [w for d in docs for w in d]
        p = np.exp(np.asarray(lm.logprobs(flat, contexts=history), dtype=float)) if flat else np.zeros(0)
        actions = rule.actions(p)
        flagged = list(dict.fromkeys(history[i] for i in np.flatnonzero(actions == RESAMPLE)))
        vocab = [w for w in lm.vocab if w not in (BOS, EOS, UNK)]
        k = rule.candidates if 0 < rule.candidates < len(vocab) else len(vocab)
        lp = np.asarray(lm.logprobs(vocab * len(flagged), contexts=[c for c in flagged for _ in vocab]), dtype=float)
        top = np.argsort(-lp.reshape(len(flagged), len(vocab)), axis=1, kind="stable")[:, :k]
        cand = {c: (top[j], lp[j * len(vocab) + top[j]]) for j, c in enumerate(flagged)}
        out, at = [], 0
        for d, (text, toks) in enumerate(zip(texts, docs)):
            n = len(toks)
            rows = np.flatnonzero(actions[at:at + n] == RESAMPLE)
            drawn = []
            if rows.size:
                ids, logp = zip(*(cand[history[at + j]] for j in rows))
                drawn = [vocab[i] for i in rule.resample(np.stack(ids), np.stack(logp), uniforms(seed, d, n)[rows])]
            new, changed, dropped = apply_edits(toks, actions[at:at + n], drawn)
            out.append(EditedDoc(" ".join(new) if changed or dropped else text, n, int(rows.size), changed, dropped))
            at += n
        return out

    def lm_eval_model(self):
        return NgramLMEval(model=self.lm)


class NgramBackend:
    """Trains :class:`NgramLM` models; generation 0 fixes the vocabulary every later one reuses
    (unless ``vocabulary: per_generation``)."""

    config_class = NgramConfig
    reports_floor_share = True  # its models have floor_share(texts) (the diversity stage records it)

    def __init__(self, cfg: NgramConfig, runtime=None, checkpoints=None):
        self.cfg = cfg

    @staticmethod
    def decoding_problems(decoding) -> list[tuple[str, str]]:
        why = "the ngram back end samples or decodes greedily (no beam search, no repetition penalty)"
        return failing(
            (decoding.num_beams == 1, "num_beams", f"must be 1: {why}"),
            (decoding.repetition_penalty == 1.0, "repetition_penalty", f"must be 1: {why}"),
        )

    @classmethod
    def experiment_problems(cls, exp) -> list[tuple[str, str]]:
        from ...ranks import world_size

        return [(f"generate.decoding.{key}", message) for key, message in cls.decoding_problems(exp.generate.decoding)] + \
            failing(
                (not exp.runtime.report_to, "runtime.report_to", "is for the Trainer; the ngram back end has none"),
                (exp.checkpoints.dtype == "auto", "checkpoints.dtype", "must be auto: an n-gram model is counts in JSON"),
                (world_size() == 1, "model.backend", "= ngram trains in one process; run it without accelerate launch"),
                (exp.data.validation_split is None, "data.validation_split",
                 "is read only by the hf back ends (a validation loss per epoch, model.train.hand_on)"),
            )

    def train(self, texts, out_dir: Path, *, previous: Path | None, seed: int, validation=None) -> None:
        fixed = previous is not None and self.cfg.vocabulary == "fixed"
        NgramLM(n=self.cfg.n, smoothing=self.cfg.smoothing, alpha=self.cfg.alpha, discount=self.cfg.discount,
                jm_lambda=self.cfg.jm_lambda, tokenizer=self.cfg.tokenizer,
                vocab=NgramLM.load(previous).vocab[3:] if fixed else None).fit(texts).save(out_dir)

    def load(self, path: Path) -> NgramModel:
        return NgramModel(NgramLM.load(path), score_end=self.cfg.score_end)
