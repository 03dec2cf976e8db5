"""A word n-gram language model with add-α smoothing — the toy back end of Lab 1.

Tokens are whitespace-separated words, case and punctuation kept (the same unit as lm-eval's
``word_perplexity``). For a history ``h`` of the previous ``n − 1`` tokens (padded with ``<s>``):

.. math:: P(w \\mid h) = \\frac{c(h, w) + \\alpha}{c(h) + \\alpha |V|}

``V`` is the vocabulary plus ``</s>`` and ``<unk>``. The vocabulary is fixed when the model is
first fitted (generation 0, on real text) and handed to every later generation, so perplexities
of successive generations are over the same event space; words outside it score as ``<unk>``.
Generation never emits ``<unk>``.

The model is saved as one plain JSON file (vocabulary and n-gram counts), never pickled.

It is also the lm-eval model ``collapse-ngram`` (:class:`NgramLMEval`), so every ``collapse_*``
task scores it: ``lm-collapse eval --model collapse-ngram --model_args pretrained=RUN/gen_03/model``
loads the ``ngram.json`` in that folder (``lm-collapse eval`` registers the name; in Python call
:func:`register`). Loglikelihoods are sums of natural-log word probabilities; ``generate_until``
samples words (greedy when ``do_sample`` is false) and cuts the text at the first ``until`` string.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

import numpy as np
from lm_eval.api.model import LM
from tqdm.auto import tqdm

from ..artifacts import atomic_write_text
from .base import failing

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FILENAME = "ngram.json"
#: The lm-eval model name of :class:`NgramLMEval`.
LM_EVAL_NAME = "collapse-ngram"


def words(text: str) -> list[str]:
    """The n-gram model's tokens: whitespace-separated words."""
    return text.split()


@dataclass(frozen=True)
class NgramConfig:
    """``model:`` block of the ``ngram`` back end."""

    n: int = 2
    alpha: float = 0.01

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (1 <= self.n <= 6, "n", "must be in 1..6"),
            (self.alpha > 0, "alpha", "must be > 0"),
        )


@dataclass
class _Counts:
    """n-gram counts in sorted arrays: histories, then (history, word) pairs sorted the same way."""

    ctx_keys: np.ndarray  # sorted unique history keys (int64)
    ctx_totals: np.ndarray  # c(h) per history
    ctx_start: np.ndarray  # index of each history's first pair
    pair_keys: np.ndarray  # history index * |vocab| + word id, sorted
    pair_counts: np.ndarray  # c(h, w) per pair

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of each history key in ``ctx_keys`` and whether it was seen."""
        if not len(self.ctx_keys):
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        pos = np.minimum(np.searchsorted(self.ctx_keys, keys), len(self.ctx_keys) - 1)
        return pos, self.ctx_keys[pos] == keys


class NgramLM:
    """Word n-gram LM with add-α smoothing (see the module docstring for the formula).

    Parameters
    ----------
    n : int, default=2
        Order (2 = bigram). Histories are the previous ``n − 1`` words.
    alpha : float, default=0.01
        Additive smoothing constant (α > 0).
    vocab : sequence of str, optional
        Fixed vocabulary; default: every word of the first ``fit`` call.

    Examples
    --------
    >>> lm = NgramLM(n=2, alpha=0.1).fit(["the cat sat", "the dog sat"])
    >>> round(lm.logprobs(["the cat sat"])[0], 4)
    -1.4485
    >>> lm.generate(num=2, seed=0, max_new_tokens=5)
    ['the dog sat', 'the dog sat']
    """

    def __init__(self, n: int = 2, alpha: float = 0.01, vocab: Sequence[str] | None = None):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 6:
            raise ValueError(f"n must be an integer in 1..6, got {n!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.n, self.alpha = n, float(alpha)
        self.vocab: list[str] | None = None if vocab is None else self._full_vocab(vocab)
        self._counts: _Counts | None = None

    # -- vocabulary -----------------------------------------------------------------------
    @staticmethod
    def _full_vocab(vocab: Sequence[str]) -> list[str]:
        return [BOS, EOS, UNK] + sorted(set(vocab) - {BOS, EOS, UNK})

    @property
    def _index(self) -> dict[str, int]:
        if getattr(self, "_index_cache", None) is None or len(self._index_cache) != len(self.vocab):
            self._index_cache = {w: i for i, w in enumerate(self.vocab)}
        return self._index_cache

    @property
    def V(self) -> int:
        """Size of the event space: vocabulary plus ``</s>`` and ``<unk>`` (``<s>`` is never predicted)."""
        return len(self.vocab) - 1

    def encode(self, text: str) -> list[int]:
        index = self._index
        unk = index[UNK]
        return [index.get(w, unk) for w in words(text)]

    def _key(self, hist: np.ndarray) -> np.ndarray:
        """int64 key of each history row (base-|vocab| number)."""
        key = np.zeros(hist.shape[0], dtype=np.int64)
        for j in range(hist.shape[1]):
            key = key * len(self.vocab) + hist[:, j]
        return key

    def _windows(self, ids_list: Sequence[Sequence[int]], *, eos: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(history keys, next ids, document index) of every predicted position, for all documents at once.

        Each document is laid out as ``n − 1`` ``<s>`` pads, its ids, and ``</s>`` when ``eos``; the
        history of a position is the ``n − 1`` ids before it, which never leave the document.
        """
        h = self.n - 1
        lens = np.fromiter((h + len(ids) + eos for ids in ids_list), dtype=np.int64, count=len(ids_list))
        flat = np.fromiter(
            (t for ids in ids_list for t in chain(repeat(0, h), ids, (1,) if eos else ())), dtype=np.int64, count=int(lens.sum())
        )
        doc = np.repeat(np.arange(len(ids_list)), lens)
        offset = np.arange(len(flat)) - np.repeat(np.cumsum(lens) - lens, lens)
        pos = np.flatnonzero(offset >= h)
        hist = np.stack([flat[pos - h + j] for j in range(h)], axis=1) if h else np.zeros((len(pos), 0), np.int64)
        return self._key(hist), flat[pos], doc[pos]

    # -- training -------------------------------------------------------------------------
    def fit(self, texts: Sequence[str]) -> NgramLM:
        """Count the n-grams of ``texts`` (each a document ending in ``</s>``); returns ``self``."""
        texts = list(texts)
        if not texts:
            raise ValueError("cannot fit an n-gram model on no texts")
        if self.vocab is None:
            self.vocab = self._full_vocab({w for t in texts for w in words(t)})
        if len(self.vocab) ** max(self.n - 1, 1) >= 2**62:
            raise ValueError(f"n={self.n} is too large for a vocabulary of {len(self.vocab)} words")
        keys, nexts, _ = self._windows([self.encode(t) for t in texts], eos=True)
        Lv = len(self.vocab)
        if Lv ** max(self.n, 2) < 2**62:  # one int64 per (history, word): a much faster unique
            pair_ids, counts = np.unique(keys * Lv + nexts, return_counts=True)
            uniq = np.stack([pair_ids // Lv, pair_ids % Lv], axis=1)
        else:
            uniq, counts = np.unique(np.stack([keys, nexts], axis=1), axis=0, return_counts=True)
        # uniq is sorted by history, then word
        ctx_keys, ctx_start, ctx_index = np.unique(uniq[:, 0], return_index=True, return_inverse=True)
        totals = np.add.reduceat(counts, ctx_start) if counts.size else np.zeros(0, np.int64)
        pair_keys = ctx_index.astype(np.int64) * len(self.vocab) + uniq[:, 1]
        self._counts = _Counts(ctx_keys, totals, ctx_start, pair_keys, counts)
        return self

    def _check_fitted(self) -> _Counts:
        if self._counts is None:
            raise ValueError("the n-gram model is not fitted: call fit() or load()")
        return self._counts

    # -- scoring --------------------------------------------------------------------------
    def _token_logprobs(self, keys: np.ndarray, nexts: np.ndarray) -> np.ndarray:
        c = self._check_fitted()
        pos, seen = c.lookup(keys)
        totals = np.where(seen, c.ctx_totals[pos] if len(c.ctx_totals) else 0, 0)
        q = pos * len(self.vocab) + nexts
        j = np.minimum(np.searchsorted(c.pair_keys, q), max(len(c.pair_keys) - 1, 0))
        hit = seen & (c.pair_keys[j] == q) if len(c.pair_keys) else seen
        pair = np.where(hit, c.pair_counts[j] if len(c.pair_counts) else 0, 0)
        return np.log((pair + self.alpha) / (totals + self.alpha * self.V))

    def logprobs(self, texts: Sequence[str], *, contexts: Sequence[str] | None = None, eos: bool = False) -> list[float]:
        """Natural-log probability of each text (given its context, else from ``<s>``).

        ``eos=True`` also scores the end-of-document token.
        """
        self._check_fitted()
        if contexts is None:
            ids = [self.encode(t) for t in texts]
            keys, nexts, docs = self._windows(ids, eos=eos)
        else:
            h = self.n - 1
            ids, skip = [], []
            for ctx, t in zip(contexts, texts, strict=True):
                c_ids = self.encode(ctx)[-h:] if h else []
                ids.append(c_ids + self.encode(t))
                skip.append(len(c_ids))
            keys, nexts, docs = self._windows(ids, eos=eos)
            starts = np.searchsorted(docs, np.arange(len(ids)))
            offset = np.arange(len(docs)) - starts[docs] if len(docs) else docs
            keep = offset >= np.asarray(skip, dtype=np.int64)[docs] if len(docs) else docs.astype(bool)
            keys, nexts, docs = keys[keep], nexts[keep], docs[keep]
        lp = self._token_logprobs(keys, nexts)
        return np.bincount(docs, weights=lp, minlength=len(ids)).tolist()

    # -- generation -----------------------------------------------------------------------
    def generate(
        self,
        num: int | None = None,
        *,
        prompts: Sequence[str] | None = None,
        max_new_tokens: int = 50,
        min_new_tokens: int = 0,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        do_sample: bool = True,
        seed: int = 0,
    ) -> list[str]:
        """Sample ``num`` documents from ``<s>``, or one continuation per prompt, all in one batch.

        Stops at ``</s>`` or after ``max_new_tokens`` words. Returns the new words joined by spaces.
        Plain sampling (temperature 1, no top-k/top-p) draws from the smoothed distribution without
        building it: with probability ``c(h)/(c(h)+αV)`` from the counts of ``h``, else uniformly.
        """
        c = self._check_fitted()
        if (num is None) == (prompts is None):
            raise ValueError("give either num (unconditional documents) or prompts (continuations)")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        h = self.n - 1
        starts = [[]] * num if prompts is None else [self.encode(p) for p in prompts]
        hist = np.array([([0] * h + s)[len(s):] if h else [] for s in starts], dtype=np.int64).reshape(len(starts), h)
        rng = np.random.default_rng(seed)
        out = np.full((len(starts), max_new_tokens), -1, dtype=np.int64)
        active = np.ones(len(starts), dtype=bool)
        plain = do_sample and temperature == 1.0 and not top_k and top_p >= 1.0
        for step in range(max_new_tokens):
            rows = np.flatnonzero(active)
            if not rows.size:
                break
            pos, seen = c.lookup(self._key(hist[rows]))
            banned = [0, 2] + ([1] if step < min_new_tokens else [])  # never <s> or <unk>; </s> after min
            nxt = (self._sample_plain if plain else self._sample_dense)(
                pos, seen, banned, rng, temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample
            )
            out[rows, step] = nxt
            if h:
                hist[rows] = np.concatenate([hist[rows, 1:], nxt[:, None]], axis=1)
            active[rows[nxt == 1]] = False
        return [" ".join(self.vocab[i] for i in row[(row > 1)]) for row in out]

    def _sample_plain(self, pos, seen, banned, rng, **_) -> np.ndarray:
        c = self._counts
        if getattr(self, "_cum", None) is None:
            self._cum = np.cumsum(c.pair_counts)
        Lv = len(self.vocab)
        nxt = np.empty(len(pos), dtype=np.int64)
        todo = np.arange(len(pos))
        while todo.size:
            total = np.where(seen[todo], c.ctx_totals[pos[todo]] if len(c.ctx_totals) else 0, 0)
            from_counts = rng.random(todo.size) * (total + self.alpha * self.V) < total
            k = todo[from_counts]
            if k.size:
                start = c.ctx_start[pos[k]]
                base = np.where(start > 0, self._cum[np.maximum(start - 1, 0)], 0)
                j = np.searchsorted(self._cum, base + rng.random(k.size) * total[from_counts], side="right")
                nxt[k] = c.pair_keys[j] % Lv
            u = todo[~from_counts]
            nxt[u] = rng.integers(1, Lv, size=u.size)  # uniform over the event space (no <s>)
            todo = todo[np.isin(nxt[todo], banned)]  # reject banned draws and draw again
        return nxt

    def _sample_dense(self, pos, seen, banned, rng, *, temperature, top_k, top_p, do_sample) -> np.ndarray:
        c = self._counts
        Lv = len(self.vocab)
        nxt = np.empty(len(pos), dtype=np.int64)
        for lo in range(0, len(pos), 256):
            p_, s_ = pos[lo:lo + 256], seen[lo:lo + 256]
            probs = np.full((len(p_), Lv), self.alpha)
            for r in np.flatnonzero(s_):
                a, b = c.ctx_start[p_[r]], (c.ctx_start[p_[r] + 1] if p_[r] + 1 < len(c.ctx_start) else len(c.pair_keys))
                probs[r, c.pair_keys[a:b] % Lv] += c.pair_counts[a:b]
            probs[:, banned] = 0.0
            if not do_sample:
                nxt[lo:lo + 256] = probs.argmax(axis=1)
                continue
            logits = np.log(np.where(probs > 0, probs, 1e-300)) / temperature
            logits[:, banned] = -np.inf
            if top_k:
                kth = -np.partition(-logits, min(top_k, Lv) - 1, axis=1)[:, min(top_k, Lv) - 1 : min(top_k, Lv)]
                logits[logits < kth] = -np.inf
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            if top_p < 1.0:
                order = np.argsort(-p, axis=1)
                sp = np.take_along_axis(p, order, axis=1)
                drop = np.cumsum(sp, axis=1) - sp >= top_p  # keep the smallest prefix reaching top_p
                sp[drop] = 0.0
                p = np.zeros_like(p)
                np.put_along_axis(p, order, sp, axis=1)
                p /= p.sum(axis=1, keepdims=True)
            u = rng.random((len(p_), 1))
            nxt[lo:lo + 256] = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), Lv - 1)
        return nxt

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``directory/ngram.json`` atomically: order, α, vocabulary (ids are positions; 0 ``<s>``,
        1 ``</s>``, 2 ``<unk>``) and the counts: for each history (its word ids as a base-|vocab|
        number, ``ctx_keys``) the words that followed it (``pair_words``, grouped by history from
        ``ctx_start``) and how often (``pair_counts``)."""
        c = self._check_fitted()
        path = Path(directory) / FILENAME
        doc = {
            "format": "lm-collapse-ngram",
            "version": 1,
            "n": self.n,
            "alpha": self.alpha,
            "vocab": self.vocab,
            "ctx_keys": c.ctx_keys.tolist(),
            "ctx_start": c.ctx_start.tolist(),
            "pair_words": (c.pair_keys % len(self.vocab)).tolist(),
            "pair_counts": c.pair_counts.tolist(),
        }
        atomic_write_text(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> NgramLM:
        """Load a model saved by :meth:`save` (``path`` is the folder or the JSON file)."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.exists():
            raise FileNotFoundError(f"no n-gram model at {path}")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != "lm-collapse-ngram":
            raise ValueError(f"{path} is not an lm-collapse n-gram model")
        lm = cls(n=doc["n"], alpha=doc["alpha"])
        lm.vocab = doc["vocab"]
        start = np.asarray(doc["ctx_start"], dtype=np.int64)
        counts = np.asarray(doc["pair_counts"], dtype=np.int64)
        sizes = np.diff(np.append(start, len(counts)))
        index = np.repeat(np.arange(len(start), dtype=np.int64), sizes)
        lm._counts = _Counts(
            np.asarray(doc["ctx_keys"], dtype=np.int64),
            np.add.reduceat(counts, start) if len(counts) else np.zeros(0, np.int64),
            start,
            index * len(lm.vocab) + np.asarray(doc["pair_words"], dtype=np.int64),
            counts,
        )
        return lm

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """Per-document word perplexity, ``exp(−log P(text) / #words)`` (``nan``-free: empty texts get 1)."""
        lp = np.asarray(self.logprobs(texts))
        n = np.array([max(len(words(t)), 1) for t in texts])
        return np.exp(-lp / n)

    def next_token_stats(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 next-word probability and next-word entropy (nats) after each prompt."""
        c = self._check_fitted()
        h = self.n - 1
        ids = [([0] * h + self.encode(p))[-h:] if h else [] for p in prompts]
        pos, seen = c.lookup(self._key(np.array(ids, dtype=np.int64).reshape(len(ids), h)))
        top1, ent = np.empty(len(ids)), np.empty(len(ids))
        V = self.V
        for r in range(len(ids)):
            total, cnt = 0, np.zeros(0)
            if seen[r]:
                a = c.ctx_start[pos[r]]
                b = c.ctx_start[pos[r] + 1] if pos[r] + 1 < len(c.ctx_start) else len(c.pair_keys)
                cnt, total = c.pair_counts[a:b].astype(float), c.ctx_totals[pos[r]]
            z = total + self.alpha * V
            p_seen, p_rest = (cnt + self.alpha) / z, self.alpha / z
            top1[r] = max(p_seen.max(initial=0.0), p_rest)
            ent[r] = -(p_seen * np.log(p_seen)).sum() - (V - len(cnt)) * p_rest * math.log(p_rest)
        return top1, ent


class NgramModel:
    """:class:`~recursion.backends.base.Model` over a fitted :class:`NgramLM` (tokens are words)."""

    def __init__(self, lm: NgramLM):
        self.lm = lm

    def generate(self, *, num=None, prompts=None, decoding, seed: int) -> list[str]:
        if NgramBackend.decoding_problems(decoding):
            raise ValueError("the n-gram back end samples or decodes greedily: num_beams=1, repetition_penalty=1")
        return self.lm.generate(
            num, prompts=prompts, max_new_tokens=decoding.max_new_tokens, min_new_tokens=decoding.min_new_tokens,
            temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p,
            do_sample=decoding.do_sample, seed=seed,
        )

    def perplexity(self, texts):
        return self.lm.perplexity(texts)

    def next_token_stats(self, prompts):
        return self.lm.next_token_stats(prompts)

    def truncate(self, text: str, num_tokens: int) -> str:
        return " ".join(words(text)[:num_tokens])

    def lm_eval_model(self):
        return NgramLMEval(model=self.lm)


# -- lm-eval model ``collapse-ngram`` ------------------------------------------------------
def register() -> None:
    """Register ``collapse-ngram`` with lm-eval's model registry (idempotent)."""
    import lm_eval.models  # noqa: F401  (fills the built-in models first: lm-eval only does so while empty)
    from lm_eval.api.registry import model_registry

    if LM_EVAL_NAME not in model_registry:
        model_registry.register(LM_EVAL_NAME, target=f"{__name__}:NgramLMEval")


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


class NgramBackend:
    """Trains :class:`NgramLM` models; generation 0 fixes the vocabulary every later one reuses."""

    config_class = NgramConfig

    def __init__(self, cfg, runtime=None, checkpoints=None):
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
        from ..ranks import world_size

        return [(f"generate.decoding.{key}", message) for key, message in cls.decoding_problems(exp.generate.decoding)] + \
            failing(
                (not exp.runtime.report_to, "runtime.report_to", "is for the Trainer; the ngram back end has none"),
                (exp.checkpoints.dtype == "auto", "checkpoints.dtype", "must be auto: an n-gram model is counts in JSON"),
                (world_size() == 1, "model.backend", "= ngram trains in one process; run it without accelerate launch"),
            )

    def train(self, texts, out_dir: Path, *, previous: Path | None, seed: int) -> None:
        vocab = None if previous is None else NgramLM.load(previous).vocab[3:]
        NgramLM(n=self.cfg.n, alpha=self.cfg.alpha, vocab=vocab).fit(texts).save(out_dir)

    def load(self, path: Path) -> NgramModel:
        return NgramModel(NgramLM.load(path))
