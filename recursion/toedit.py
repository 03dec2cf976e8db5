"""ToEdit (Zhu et al., 2025): token-level editing of real documents, the transform of
:mod:`recursion.transforms`; the back ends' ``Model.toedit`` applies the rule here.

With ``transform: {name: toedit}``, the select stage of every generation hands on token-edited
*real* documents instead of the generated ones: the filter selects from them and the regime
(``replace``, ``accumulate``, ``mix``, ...) builds the next training set from what it kept, as it
would from synthetic documents. Which documents are edited is ``transform.input`` (``real``:
generation 0's real training set, edited afresh each generation; ``previous``: what the previous
generation handed on, so edits compound), and by which model ``transform.prior``.

The edit rule (``toedit_resampling.py`` in github.com/Xuekai-Zhu/toedit, strategies ``up_revise``
and ``low_drop_up_revise``): one teacher-forced pass of the prior over the document gives, at each
position i, the probability p_i = P(x_i | x_<i) of the token that is there and the prior's next-token
distribution. Then

* p_i > ``threshold`` (0.99): x_i is replaced by a draw from softmax(log P(· | x_<i) / β) over the
  prior's ``candidates`` most probable tokens (β = 1.5; the authors take the top-k prompt logprobs
  of vLLM, k = 64 in their example command; ``candidates: 0`` uses the whole vocabulary);
* ``drop_below`` set (the variant, 0.001) and p_i < ``drop_below``: x_i is deleted;
* otherwise x_i is kept.

Every position is judged on the original prefix (one pass: an edit never changes the context of a
later position). Special tokens are never drawn (the authors' decoding would drop them). The
authors' drop variant calls its resampler with β = 1 (their ``resampling`` default) rather than
1.5; set ``transform.beta: 1.0`` to match it. The first token is edited too here: our models
predict it from BOS, where vLLM gives the first prompt token no probability.

Draws are reproducible and independent of batching: position i of document d uses the i-th
number of ``numpy.random.default_rng([seed, d])``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KEEP, RESAMPLE, DROP = 0, 1, 2


@dataclass(frozen=True)
class ToEditRule:
    """ToEdit's per-token rule (see the module docstring)."""

    threshold: float = 0.99
    beta: float = 1.5
    candidates: int = 64
    drop_below: float | None = None

    @classmethod
    def from_config(cls, cfg) -> ToEditRule:
        """The rule of a ``transform: {name: toedit, ...}`` block."""
        return cls(threshold=cfg.threshold, beta=cfg.beta, candidates=cfg.candidates, drop_below=cfg.drop_below)

    def actions(self, p) -> np.ndarray:
        """``KEEP`` / ``RESAMPLE`` (p > threshold) / ``DROP`` (p < drop_below) per position.

        Examples
        --------
        >>> ToEditRule(drop_below=0.001).actions([0.995, 0.5, 0.0001, 0.99]).tolist()
        [1, 0, 2, 0]
        """
        p = np.asarray(p, dtype=float)
        out = np.full(len(p), KEEP, dtype=np.int8)
        out[p > self.threshold] = RESAMPLE
        if self.drop_below is not None:
            out[p < self.drop_below] = DROP
        return out

    def resample(self, cand_ids, cand_logp, u) -> np.ndarray:
        """One draw per row from softmax(``cand_logp`` / β) over that row's ``cand_ids``, by inverse
        CDF with the uniform numbers ``u`` (one per row). ``-inf`` log-probabilities are never drawn.

        Examples
        --------
        >>> ids = [[7, 8]]; logp = np.log([[0.999, 0.001]])  # p^(1/1.5): 0.99933, 0.01; shares 0.9901, 0.0099
        >>> ToEditRule().resample(ids, logp, [0.5]).tolist(), ToEditRule().resample(ids, logp, [0.995]).tolist()
        ([7], [8])
        """
        ids = np.asarray(cand_ids)
        z = np.asarray(cand_logp, dtype=float) / self.beta
        if not len(z):
            return ids[:, 0] if ids.ndim == 2 else ids
        z = z - z.max(axis=1, keepdims=True)
        w = np.exp(z)
        cdf = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
        pick = np.minimum((cdf < np.asarray(u, dtype=float)[:, None]).sum(axis=1), ids.shape[1] - 1)
        while np.any(bad := ~np.isfinite(z[np.arange(len(z)), pick])):  # a rounding step onto a -inf tail
            pick[bad] -= 1
        return ids[np.arange(len(ids)), pick]


@dataclass(frozen=True)
class EditedDoc:
    """One edited document and what was done to it (counts in tokens of the prior)."""

    text: str
    tokens: int
    resampled: int  # positions with p > threshold (redrawn; the draw may return the same token)
    changed: int  # resampled positions whose token changed
    dropped: int


def uniforms(seed: int, doc: int, n: int) -> np.ndarray:
    """The uniform numbers of document ``doc``'s positions: ``default_rng([seed, doc]).random(n)``."""
    return np.random.default_rng([seed, doc]).random(n)


def apply_edits(tokens: Sequence, actions: np.ndarray, drawn: Sequence) -> tuple[list, int, int]:
    """``tokens`` with the ``RESAMPLE`` positions replaced by ``drawn`` (in order) and the ``DROP``
    positions removed; returns (new tokens, number changed, number dropped).

    Examples
    --------
    >>> apply_edits(["a", "b", "c", "d"], np.array([1, 0, 2, 1]), ["a", "x"])
    (['a', 'b', 'x'], 1, 1)
    """
    out, changed, drawn = [], 0, iter(drawn)
    for tok, act in zip(tokens, actions):
        if act == RESAMPLE:
            new = next(drawn)
            changed += new != tok
            out.append(new)
        elif act == KEEP:
            out.append(tok)
    return out, changed, int(np.sum(np.asarray(actions) == DROP))


def summary(docs: Sequence[EditedDoc]) -> dict:
    """Shares of edited tokens over all documents (``edits.json``)."""
    tokens = sum(d.tokens for d in docs)
    share = (lambda k: sum(getattr(d, k) for d in docs) / tokens) if tokens else (lambda k: 0.0)
    return {
        "documents": len(docs),
        "tokens": tokens,
        "resampled_share": share("resampled"),
        "changed_share": share("changed"),
        "dropped_share": share("dropped"),
        "edited_documents_share": float(np.mean([d.changed + d.dropped > 0 for d in docs])) if docs else 0.0,
    }


def toedit(prior, texts: Sequence[str], cfg, *, seed: int) -> list[EditedDoc]:
    """Edit ``texts`` with the ``prior`` model (any back end's model with a ``toedit`` method)."""
    if not hasattr(prior, "toedit"):
        raise TypeError(f"{type(prior).__name__} cannot run ToEdit (no toedit method)")
    return prior.toedit(list(texts), rule=ToEditRule.from_config(cfg), seed=seed)
