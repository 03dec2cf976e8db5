"""A word n-gram language model — the toy back end of Lab 1 — with add-α, interpolated
Kneser–Ney or Jelinek–Mercer smoothing.

Tokens are words (:mod:`recursion.words`: ``whitespace``, case and punctuation kept — lm-eval's
``word_perplexity`` unit — or the seed notebook's lower-cased ``[a-zA-Z0-9']`` runs). The events
are the vocabulary's words plus ``</s>`` and ``<unk>``, ``V`` of them (``<s>`` only pads histories
and is never predicted). ``h`` is the history of the previous ``n − 1`` tokens (padded with
``<s>``), ``h_k`` its last ``k − 1`` tokens, ``c(·)`` a count in the training documents (each
ending in ``</s>``).

``add_alpha`` (Laplace / Lidstone):

.. math:: P(w \\mid h) = \\frac{c(h, w) + \\alpha}{c(h) + \\alpha V}

``kneser_ney`` and ``jelinek_mercer`` interpolate every order with the next lower one, down to the
uniform distribution :math:`P_0(w) = 1/V`:

.. math:: P_k(w \\mid h_k) = A_k(h_k, w) + B_k(h_k)\\, P_{k-1}(w \\mid h_{k-1}), \\qquad P = P_n

and :math:`P_k = P_{k-1}` for a history never seen at order k (:math:`c_k(h_k) = 0`).

* ``kneser_ney`` — interpolated Kneser–Ney (Kneser & Ney 1995, in the interpolated form of Chen &
  Goodman 1998, §3 eq. 17 and §2.7): :math:`A = \\max(c_k(h, w) - D_k, 0) / c_k(h)`,
  :math:`B = D_k N_{1+}(h\\,\\bullet) / c_k(h)`, with :math:`N_{1+}(h\\,\\bullet)` the number of
  distinct words seen after ``h``. The highest order counts n-grams (:math:`c_n` = raw counts);
  every lower order counts *continuations*, :math:`c_k(h, w) = N_{1+}(\\bullet\\, h\\, w)`, the
  number of distinct words seen before ``h w`` (``<s>`` pads included). One discount per order:
  ``discount`` fixed for every order, or (``discount: null``) estimated per order from the
  count-of-counts of :math:`c_k` as :math:`D_k = n_1 / (n_1 + 2 n_2)` (Ney, Essen & Kneser 1994;
  Chen & Goodman eq. 26), ``n_1`` taken as at least 1 so that every history keeps some mass for
  lower orders. At order 1 the discounted mass goes to the uniform distribution: every word of
  the vocabulary keeps a probability of at least :math:`D_1 N_{1+}(\\bullet) / (c_1 V) > 0`.
* ``jelinek_mercer`` — linear interpolation (Jelinek & Mercer 1980; Chen & Goodman §2.3) of the
  maximum-likelihood estimates with one weight λ (``jm_lambda``) at every order:
  :math:`A = \\lambda\\, c(h, w) / c(h)`, :math:`B = 1 - \\lambda`, raw counts at every order; the
  unigram is :math:`\\lambda\\, c(w)/N + (1 - \\lambda)/V`, its own floor.

Why the choice matters for model collapse: a model retrained on its own finite samples should
*lose its tails* (Shumailov et al. 2024): a word or continuation that no sample contains falls to
the floor. Under add-α with a large α that floor is most of the mass (an unseen or rare history
predicts uniformly over ``V``), so successive generations drift towards uniform noise instead:
held-out perplexity climbs to ``V`` while the samples look *more* varied. Kneser–Ney and
Jelinek–Mercer give the floor only the discounted / interpolated share.

The vocabulary is fixed when the model is first fitted (generation 0, on real text) and handed
to every later generation, so perplexities of successive generations are over the same event
space; words outside it score as ``<unk>``. Generation never emits ``<unk>``.

The model is saved as one plain JSON file (vocabulary, smoothing, n-gram counts), never pickled.

It is also the lm-eval model ``collapse-ngram`` (:class:`NgramLMEval`), so every ``collapse_*``
task scores it: ``lm-collapse eval --model collapse-ngram --model_args pretrained=RUN/gen_03/model``
loads the ``ngram.json`` in that folder (``lm-collapse eval`` registers the name; in Python call
:func:`register`). Loglikelihoods are sums of natural-log token probabilities; ``generate_until``
samples tokens (greedy when ``do_sample`` is false) and cuts the text at the first ``until`` string.

References
----------
Chen, S. F. & Goodman, J. (1998). An empirical study of smoothing techniques for language
modeling. Harvard TR-10-98. Kneser, R. & Ney, H. (1995). Improved backing-off for m-gram language
modeling. ICASSP. Ney, H., Essen, U. & Kneser, R. (1994). On structuring probabilistic
dependencies in stochastic language modelling. Computer Speech & Language 8. Jelinek, F. &
Mercer, R. L. (1980). Interpolated estimation of Markov source parameters from sparse data.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path
from typing import Literal

import numpy as np
from lm_eval.api.model import LM
from tqdm.auto import tqdm

from ..artifacts import atomic_write_text
from ..words import TOKENIZERS, WordTokenizer
from ..words import tokenizer as word_tokenizer
from .base import failing

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FILENAME = "ngram.json"
#: Version of the ``ngram.json`` layout written by :meth:`NgramLM.save` (version-1 files still load).
FORMAT_VERSION = 2
#: The lm-eval model name of :class:`NgramLMEval`.
LM_EVAL_NAME = "collapse-ngram"
#: Generation options the lm-eval model ``collapse-ngram`` takes (after lm-eval's ``normalize_gen_kwargs``).
GEN_OPTIONS = ("until", "max_gen_toks", "do_sample", "temperature", "top_k", "top_p", "min_p", "repetition_penalty")
SMOOTHINGS = ("add_alpha", "kneser_ney", "jelinek_mercer")
#: Rejection rounds of plain sampling before the rows still drawing a banned token are sampled
#: exactly from their renormalized distribution (only when nearly all of a row's mass is banned).
_REJECTION_ROUNDS = 20
#: Rows per block of dense next-token distributions (rows × vocabulary float64).
_DENSE_ROWS = 64


@dataclass(frozen=True)
class NgramConfig:
    """``model:`` block of the ``ngram`` back end (see the module docstring for the formulas)."""

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


def _group(hist: np.ndarray, word: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (history, word) pairs sorted by history then word, with their summed weights."""
    if not len(hist):
        return hist, word, weight
    order = np.lexsort((word, hist))
    hist, word, weight = hist[order], word[order], weight[order]
    first = np.ones(len(hist), dtype=bool)
    first[1:] = (hist[1:] != hist[:-1]) | (word[1:] != word[:-1])
    starts = np.flatnonzero(first)
    return hist[starts], word[starts], np.add.reduceat(weight, starts)


@dataclass
class _Table:
    """Counts of one order in sorted arrays: histories, then (history, word) pairs sorted the same way."""

    ctx_keys: np.ndarray  # sorted unique history keys (int64; the k − 1 ids as a base-|vocab| number)
    ctx_start: np.ndarray  # index of each history's first pair
    ctx_totals: np.ndarray  # c(h) per history
    ctx_types: np.ndarray  # N1+(h •): distinct words after each history
    pair_keys: np.ndarray  # history index * |vocab| + word id, sorted
    pair_counts: np.ndarray  # c(h, w) per pair (int64)

    @classmethod
    def build(cls, hist: np.ndarray, word: np.ndarray, count: np.ndarray, size: int) -> _Table:
        """From pairs sorted by (history, word), as :func:`_group` returns them; ``size`` = |vocab|."""
        ctx_keys, ctx_start, ctx_index = np.unique(hist, return_index=True, return_inverse=True)
        totals = np.add.reduceat(count, ctx_start) if len(count) else np.zeros(0, np.int64)
        types = np.diff(np.append(ctx_start, len(count)))
        return cls(ctx_keys, ctx_start, totals, types, ctx_index.astype(np.int64) * size + word, count.astype(np.int64))

    def pairs(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(history key, word id, count) of every pair."""
        return self.ctx_keys[self.pair_keys // size], self.pair_keys % size, self.pair_counts

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Index of each history key in ``ctx_keys`` and whether it was seen."""
        if not len(self.ctx_keys):
            return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
        pos = np.minimum(np.searchsorted(self.ctx_keys, keys), len(self.ctx_keys) - 1)
        return pos, self.ctx_keys[pos] == keys

    def histories(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(index, seen, c(h), N1+(h •)) of each history key; c(h) is 1 and N1+ 0 where unseen."""
        pos, seen = self.lookup(keys)
        if not len(self.ctx_keys):
            return pos, seen, np.ones(len(keys), np.int64), np.zeros(len(keys), np.int64)
        return pos, seen, np.where(seen, self.ctx_totals[pos], 1), np.where(seen, self.ctx_types[pos], 0)

    def segment(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[start, end) of the pairs of each history index."""
        start = self.ctx_start[pos]
        end = np.where(pos + 1 < len(self.ctx_start), self.ctx_start[np.minimum(pos + 1, len(self.ctx_start) - 1)],
                       len(self.pair_keys))
        return start, end

    def count(self, pos: np.ndarray, seen: np.ndarray, words: np.ndarray, size: int) -> np.ndarray:
        """c(h, w) of each (history index, word) query (0 where unseen)."""
        if not len(self.pair_keys):
            return np.zeros(len(pos), np.int64)
        q = pos * size + words
        j = np.minimum(np.searchsorted(self.pair_keys, q), len(self.pair_keys) - 1)
        return np.where(seen & (self.pair_keys[j] == q), self.pair_counts[j], 0)


class NgramLM:
    """Word n-gram LM with add-α, interpolated Kneser–Ney or Jelinek–Mercer smoothing (see the
    module docstring for the formulas).

    Parameters
    ----------
    n : int, default=2
        Order (2 = bigram). Histories are the previous ``n − 1`` words.
    smoothing : {"add_alpha", "kneser_ney", "jelinek_mercer"}, default="add_alpha"
    alpha : float, default=0.01
        add-α: the additive constant (α > 0).
    discount : float or None, default=None
        Kneser–Ney: the discount D of every order, in (0, 1]; ``None`` estimates one per order.
    jm_lambda : float, optional
        Jelinek–Mercer: the weight λ of each order's maximum-likelihood estimate, in (0, 1).
    tokenizer : {"whitespace", "lower_alnum"}, default="whitespace"
    vocab : sequence of str, optional
        Fixed vocabulary; default: every word of the first ``fit`` call.

    Examples
    --------
    >>> lm = NgramLM(n=2, alpha=0.1).fit(["the cat sat", "the dog sat"])
    >>> round(lm.logprobs(["the cat sat"])[0], 4)
    -1.4485
    >>> kn = NgramLM(n=2, smoothing="kneser_ney").fit(["the cat sat", "the dog sat"])
    >>> kn.discounts  # D_1 (continuation counts 1,1,1,2,1), D_2 (bigram counts 2,1,1,1,1,2)
    [0.6666666666666666, 0.5]
    >>> round(kn.logprobs(["the cat sat"])[0], 4)
    -1.7857
    >>> kn.generate(num=2, seed=0, max_new_tokens=5)
    ['the dog', 'the dog sat']
    """

    def __init__(self, n: int = 2, *, smoothing: str = "add_alpha", alpha: float = 0.01, discount: float | None = None,
                 jm_lambda: float | None = None, tokenizer: str = "whitespace", vocab: Sequence[str] | None = None):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 6:
            raise ValueError(f"n must be an integer in 1..6, got {n!r}")
        if smoothing not in SMOOTHINGS:
            raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, got {smoothing!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        if discount is not None and not 0 < discount <= 1:
            raise ValueError(f"discount must be in (0, 1] or None, got {discount!r}")
        if smoothing == "jelinek_mercer" and (jm_lambda is None or not 0 < jm_lambda < 1):
            raise ValueError(f"jelinek_mercer needs jm_lambda in (0, 1), got {jm_lambda!r}")
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
        self.n, self.smoothing, self.alpha, self.discount = n, smoothing, float(alpha), discount
        self.jm_lambda = None if jm_lambda is None else float(jm_lambda)
        self.tokenizer = tokenizer
        self.tokens = word_tokenizer(tokenizer)
        self.vocab: list[str] | None = None
        self._index: dict[str, int] = {}
        if vocab is not None:
            self._set_vocab(vocab)
        self._tables: list[_Table | None] = []  # order k at index k − 1
        self.discounts: list[float] | None = None  # Kneser–Ney: D_k at index k − 1
        self._cum: dict[int, np.ndarray] = {}

    # -- vocabulary -----------------------------------------------------------------------
    def _set_vocab(self, vocab: Sequence[str]) -> None:
        self.vocab = [BOS, EOS, UNK] + sorted(set(vocab) - {BOS, EOS, UNK})
        self._index = {w: i for i, w in enumerate(self.vocab)}

    @property
    def V(self) -> int:
        """Size of the event space: vocabulary plus ``</s>`` and ``<unk>`` (``<s>`` is never predicted)."""
        return len(self.vocab) - 1

    def encode(self, text: str) -> list[int]:
        unk = self._index[UNK]
        return [self._index.get(w, unk) for w in self.tokens(text)]

    def _key(self, hist: np.ndarray) -> np.ndarray:
        """int64 key of each history row (base-|vocab| number)."""
        key = np.zeros(hist.shape[0], dtype=np.int64)
        for j in range(hist.shape[1]):
            key = key * len(self.vocab) + hist[:, j]
        return key

    def _suffix(self, keys: np.ndarray, k: int) -> np.ndarray:
        """Keys of the last ``k − 1`` tokens of history keys of ``n − 1`` (or any ``≥ k − 1``) tokens."""
        if k == 1:
            return np.zeros(len(keys), np.int64)
        return keys if k == self.n else keys % len(self.vocab) ** (k - 1)

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
            self._set_vocab({w for t in texts for w in self.tokens(t)})
        if len(self.vocab) ** max(self.n - 1, 1) >= 2**62:
            raise ValueError(f"n={self.n} is too large for a vocabulary of {len(self.vocab)} words")
        keys, nexts, _ = self._windows([self.encode(t) for t in texts], eos=True)
        top = _Table.build(*_group(keys, nexts, np.ones(len(keys), np.int64)), len(self.vocab))
        self._set_counts(top)
        return self

    def _orders(self) -> list[int]:
        """The orders the smoothing interpolates, lowest first (add-α: the highest only)."""
        return [self.n] if self.smoothing == "add_alpha" else list(range(1, self.n + 1))

    def _set_counts(self, top: _Table, discounts: Sequence[float] | None = None) -> None:
        """Install the highest-order counts and derive the lower orders (and the discounts) from them.

        Lower orders group the pairs of the order above by their shorter history: Jelinek–Mercer
        sums their counts (raw counts), Kneser–Ney counts them (continuation counts N1+(• h w)).
        """
        size = len(self.vocab)
        tables: list[_Table | None] = [None] * self.n
        tables[-1] = top
        if self.smoothing != "add_alpha":
            for k in range(self.n - 1, 0, -1):
                hist, word, count = tables[k].pairs(size)
                weight = np.ones(len(count), np.int64) if self.smoothing == "kneser_ney" else count
                tables[k - 1] = _Table.build(*_group(self._suffix(hist, k), word, weight), size)
        self._tables = tables
        self.discounts = None
        if self.smoothing == "kneser_ney":
            if discounts is not None:
                self.discounts = [float(d) for d in discounts]
            elif self.discount is not None:
                self.discounts = [float(self.discount)] * self.n
            else:
                self.discounts = [self._estimated_discount(t.pair_counts) for t in tables]
        self._cum = {}

    @staticmethod
    def _estimated_discount(counts: np.ndarray) -> float:
        """D = n1 / (n1 + 2 n2) from the count-of-counts (n1 taken as at least 1)."""
        n1, n2 = max(int((counts == 1).sum()), 1), int((counts == 2).sum())
        return n1 / (n1 + 2 * n2)

    def _check_fitted(self) -> _Table:
        if not self._tables:
            raise ValueError("the n-gram model is not fitted: call fit() or load()")
        return self._tables[-1]

    # -- the interpolation terms ----------------------------------------------------------
    def _own_mass(self, k: int, count: np.ndarray, total: np.ndarray) -> np.ndarray:
        """A_k: the probability order k gives a word from its own counts (history seen, ``total`` > 0)."""
        if self.smoothing == "add_alpha":
            return count / (total + self.alpha * self.V)
        if self.smoothing == "kneser_ney":
            return np.maximum(count - self.discounts[k - 1], 0.0) / total
        return self.jm_lambda * count / total

    def _lower_weight(self, k: int, total: np.ndarray, types: np.ndarray) -> np.ndarray:
        """B_k: the weight of the next lower order's distribution after a seen history."""
        if self.smoothing == "add_alpha":
            return self.alpha * self.V / (total + self.alpha * self.V)
        if self.smoothing == "kneser_ney":
            return self.discounts[k - 1] * types / total
        return np.full(len(total), 1.0 - self.jm_lambda)

    def _weights(self, k: int) -> np.ndarray:
        """Cumulative sums of the pair weights of order k that ``A_k`` is proportional to."""
        if k not in self._cum:
            counts = self._tables[k - 1].pair_counts
            w = np.maximum(counts - self.discounts[k - 1], 0.0) if self.smoothing == "kneser_ney" else counts.astype(float)
            self._cum[k] = np.cumsum(w)
        return self._cum[k]

    # -- scoring --------------------------------------------------------------------------
    def _token_probs(self, keys: np.ndarray, nexts: np.ndarray) -> np.ndarray:
        """P(next | history) of each position, from the uniform distribution up through every order."""
        self._check_fitted()
        size = len(self.vocab)
        p = np.full(len(keys), 1.0 / self.V)
        for k in self._orders():
            t = self._tables[k - 1]
            pos, seen, total, types = t.histories(self._suffix(keys, k))
            own = self._own_mass(k, t.count(pos, seen, nexts, size), total)
            p = np.where(seen, own + self._lower_weight(k, total, types) * p, p)
        return p

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
        lp = np.log(self._token_probs(keys, nexts))
        return np.bincount(docs, weights=lp, minlength=len(ids)).tolist()

    def num_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Number of tokens of each text (what :meth:`logprobs` scores without ``eos``)."""
        return np.array([len(self.tokens(t)) for t in texts], dtype=np.int64)

    def perplexity(self, texts: Sequence[str]) -> np.ndarray:
        """Per-document token perplexity, ``exp(−log P(text) / #tokens)`` (``nan``-free: empty texts get 1)."""
        lp = np.asarray(self.logprobs(texts))
        return np.exp(-lp / np.maximum(self.num_tokens(texts), 1))

    def uniform_share(self, texts: Sequence[str]) -> float:
        """The share of the model's probability that comes from the uniform floor, averaged over the
        predicted positions of ``texts`` (end token included): the product of the lower-order weights
        :math:`\\prod_k B_k(h_k)` (1 at an order whose history was never seen); add-α:
        :math:`\\alpha V / (c(h) + \\alpha V)`. On the model's own samples it is the share of sampled
        tokens drawn uniformly from the vocabulary — noise.
        """
        self._check_fitted()
        keys, _, _ = self._windows([self.encode(t) for t in texts], eos=True)
        share = np.ones(len(keys))
        for k in self._orders():
            t = self._tables[k - 1]
            pos, seen, total, types = t.histories(self._suffix(keys, k))
            share = np.where(seen, share * self._lower_weight(k, total, types), share)
        return float(share.mean()) if len(share) else 0.0

    def distribution(self, keys: np.ndarray) -> np.ndarray:
        """The next-token distribution after each full-history key: rows × |vocab|, column 0 (``<s>``) zero."""
        self._check_fitted()
        size = len(self.vocab)
        p = np.full((len(keys), size), 1.0 / self.V)
        p[:, 0] = 0.0
        for k in self._orders():
            t = self._tables[k - 1]
            pos, seen = t.lookup(self._suffix(keys, k))
            rows = np.flatnonzero(seen)
            if not rows.size:
                continue
            start, end = t.segment(pos[rows])
            lens = end - start
            idx = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(start, lens)
            total = t.ctx_totals[pos[rows]]
            p[rows] *= self._lower_weight(k, total, t.ctx_types[pos[rows]])[:, None]
            p[np.repeat(rows, lens), t.pair_keys[idx] % size] += self._own_mass(k, t.pair_counts[idx], np.repeat(total, lens))
        return p

    def _history_keys(self, prompts: Sequence[str]) -> np.ndarray:
        h = self.n - 1
        ids = [([0] * h + self.encode(p))[-h:] if h else [] for p in prompts]
        return self._key(np.array(ids, dtype=np.int64).reshape(len(ids), h))

    def next_token_stats(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Top-1 next-token probability and next-token entropy (nats) after each prompt (over every event)."""
        keys = self._history_keys(prompts)
        top1, ent = np.empty(len(keys)), np.empty(len(keys))
        for lo in range(0, len(keys), _DENSE_ROWS):
            p = self.distribution(keys[lo:lo + _DENSE_ROWS])
            top1[lo:lo + _DENSE_ROWS] = p.max(axis=1)
            ent[lo:lo + _DENSE_ROWS] = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1)
        return top1, ent

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

        Stops at ``</s>`` or after ``max_new_tokens`` tokens. Returns the new tokens joined by
        spaces. ``<unk>`` is never drawn, nor ``</s>`` before ``min_new_tokens``: their draws are
        rejected and drawn again, i.e. the distribution is renormalized over the allowed tokens.
        Plain sampling (temperature 1, no top-k/top-p) draws from the interpolated distribution
        without building it: at each order, from its own counts with probability ``1 − B_k``,
        else one order lower, and uniformly below the lowest.
        """
        self._check_fitted()
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
            keys = self._key(hist[rows])
            banned = [0, 2] + ([1] if step < min_new_tokens else [])  # never <s> or <unk>; </s> after min
            if plain:
                nxt = self._sample_plain(keys, banned, rng)
            else:
                nxt = self._sample_dense(keys, banned, rng, temperature=temperature, top_k=top_k, top_p=top_p,
                                         do_sample=do_sample)
            out[rows, step] = nxt
            if h:
                hist[rows] = np.concatenate([hist[rows, 1:], nxt[:, None]], axis=1)
            active[rows[nxt == 1]] = False
        return [" ".join(self.vocab[i] for i in row[(row > 1)]) for row in out]

    def _draw(self, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One token per history key from the (unrestricted) smoothed distribution."""
        size = len(self.vocab)
        out = np.empty(len(keys), dtype=np.int64)
        todo = np.arange(len(keys))
        for k in reversed(self._orders()):
            if not todo.size:
                break
            t = self._tables[k - 1]
            pos, seen, total, types = t.histories(self._suffix(keys[todo], k))
            own = seen & (rng.random(todo.size) < 1.0 - self._lower_weight(k, total, types))
            if own.any():
                start, end = t.segment(pos[own])
                cum = self._weights(k)
                base = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
                j = np.searchsorted(cum, base + rng.random(start.size) * (cum[end - 1] - base), side="right")
                out[todo[own]] = t.pair_keys[np.clip(j, start, end - 1)] % size
            todo = todo[~own]
        out[todo] = rng.integers(1, size, size=todo.size)  # uniform over the event space (no <s>)
        return out

    def _sample_plain(self, keys, banned, rng) -> np.ndarray:
        nxt = self._draw(keys, rng)
        todo = np.flatnonzero(np.isin(nxt, banned))
        for _ in range(_REJECTION_ROUNDS):  # reject banned draws and draw again
            if not todo.size:
                return nxt
            nxt[todo] = self._draw(keys[todo], rng)
            todo = todo[np.isin(nxt[todo], banned)]
        if todo.size:
            nxt[todo] = self._sample_dense(keys[todo], banned, rng, temperature=1.0, top_k=0, top_p=1.0, do_sample=True)
        return nxt

    def _sample_dense(self, keys, banned, rng, *, temperature, top_k, top_p, do_sample) -> np.ndarray:
        size = len(self.vocab)
        nxt = np.empty(len(keys), dtype=np.int64)
        for lo in range(0, len(keys), _DENSE_ROWS):
            probs = self.distribution(keys[lo:lo + _DENSE_ROWS])
            probs[:, banned] = 0.0
            if not do_sample:
                nxt[lo:lo + _DENSE_ROWS] = probs.argmax(axis=1)
                continue
            with np.errstate(divide="ignore"):
                logits = np.log(probs) / temperature
            if top_k:
                kk = min(top_k, size)
                kth = -np.partition(-logits, kk - 1, axis=1)[:, kk - 1 : kk]
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
            u = rng.random((len(p), 1))
            nxt[lo:lo + _DENSE_ROWS] = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), size - 1)
        return nxt

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``directory/ngram.json`` atomically (format version 2).

        Fields: ``n``, ``smoothing`` with ``alpha`` / ``discount`` (null: estimated) / ``jm_lambda``
        and the Kneser–Ney ``discounts`` used per order (order 1 first), ``tokenizer``, the
        vocabulary (ids are positions; 0 ``<s>``, 1 ``</s>``, 2 ``<unk>``) and the highest-order
        counts: for each history (its word ids as a base-|vocab| number, ``ctx_keys``) the words that
        followed it (``pair_words``, grouped by history from ``ctx_start``) and how often
        (``pair_counts``). Lower orders are derived from these counts when the model is loaded.
        """
        top = self._check_fitted()
        path = Path(directory) / FILENAME
        doc = {
            "format": "lm-collapse-ngram",
            "version": FORMAT_VERSION,
            "n": self.n,
            "smoothing": self.smoothing,
            "alpha": self.alpha,
            "discount": self.discount,
            "discounts": self.discounts,
            "jm_lambda": self.jm_lambda,
            "tokenizer": self.tokenizer,
            "vocab": self.vocab,
            "ctx_keys": top.ctx_keys.tolist(),
            "ctx_start": top.ctx_start.tolist(),
            "pair_words": (top.pair_keys % len(self.vocab)).tolist(),
            "pair_counts": top.pair_counts.tolist(),
        }
        atomic_write_text(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: str | Path) -> NgramLM:
        """Load a model saved by :meth:`save` (``path`` is the folder or the JSON file).

        Version-1 files (add-α, whitespace tokens, no ``version`` 2 fields) load as they were written.
        """
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.exists():
            raise FileNotFoundError(f"no n-gram model at {path}")
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != "lm-collapse-ngram":
            raise ValueError(f"{path} is not an lm-collapse n-gram model")
        if doc.get("version", 1) not in (1, FORMAT_VERSION):
            raise ValueError(f"{path}: n-gram format version {doc.get('version')!r} is newer than this lm-collapse reads")
        lm = cls(n=doc["n"], smoothing=doc.get("smoothing", "add_alpha"), alpha=doc["alpha"], discount=doc.get("discount"),
                 jm_lambda=doc.get("jm_lambda"), tokenizer=doc.get("tokenizer", "whitespace"))
        lm.vocab = doc["vocab"]
        lm._index = {w: i for i, w in enumerate(lm.vocab)}
        start = np.asarray(doc["ctx_start"], dtype=np.int64)
        counts = np.asarray(doc["pair_counts"], dtype=np.int64)
        ctx = np.asarray(doc["ctx_keys"], dtype=np.int64)
        hist = np.repeat(ctx, np.diff(np.append(start, len(counts))))
        top = _Table.build(hist, np.asarray(doc["pair_words"], dtype=np.int64), counts, len(lm.vocab))
        lm._set_counts(top, doc.get("discounts"))
        return lm


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
        from ..toedit import RESAMPLE, EditedDoc, apply_edits, uniforms

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
        from ..ranks import world_size

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
