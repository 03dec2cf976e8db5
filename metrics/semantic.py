"""Semantic diversity and embedding-space statistics: Div_sem, kNN entropy, NN distance.

:func:`embed` turns texts into sentence embeddings (sentence-transformers, loaded lazily and
cached); every other function here is a pure function of vectors. Mean pairwise cosine
distance comes from the spread of the normalized vectors around their mean, in O(N · d),
never as an N×N matrix; nearest-neighbour distances are exact, computed block by block in
O(N · M · d) time and bounded memory.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.special import digamma, gammaln

__all__ = [
    "mean_cosine_distance", "clipped_pair_distances", "embed", "semantic_diversity", "cosine_diversity",
    "knn_entropy", "nn_distance",
]

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
_BLOCK = 1 << 22  # float64 entries per block of the distance computation (32 MiB)
_EXTRA_CANDIDATES = 16  # neighbours re-measured exactly beyond the k-th (see _kth_distances)


def _as_vectors(vectors, name: str, min_rows: int) -> np.ndarray:
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_vectors, dim), got shape {X.shape}")
    if X.shape[0] < min_rows or X.shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_rows} vectors of dimension >= 1, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def mean_cosine_distance(vectors) -> float:
    """Mean cosine distance 1 - cos(x_i, x_j) over all ordered pairs i ≠ j, without the N×N matrix.

    With unit rows x̂_i = x_i / ‖x_i‖ and their mean x̄, 1 - x̂_i·x̂_j = ‖x̂_i - x̂_j‖²/2,
    hence

    .. math:: \\frac{1}{N(N-1)} \\sum_{i \\ne j} \\big(1 - \\hat x_i \\cdot \\hat x_j\\big)
              = \\frac{1}{N-1} \\sum_i \\lVert \\hat x_i - \\bar x \\rVert^2

    a sum of squares: no cancellation, and exactly 0 when all rows point the same way. The
    rows are first shifted by one of them (the sparsest), which leaves the sum unchanged and
    makes identical rows cancel exactly. Sparse input stays sparse: the zero entries of a row
    contribute (N - c_j) x̄_j², c_j the stored entries of column j, so the cost is
    O(stored entries) time and memory.

    Parameters
    ----------
    vectors : array-like or scipy.sparse matrix, shape (N, d)
        N >= 2 rows, none all-zero.

    Returns
    -------
    float in [0, 2] (0 for parallel rows; 1 - the mean pairwise cosine similarity).

    Examples
    --------
    >>> round(mean_cosine_distance([[1, 0], [0, 1], [1, 1]]), 4)  # 1 - (0 + 2 · 0.7071) / 3
    0.5286
    >>> mean_cosine_distance([[1, 2], [2, 4], [3, 6]])
    0.0
    """
    if sparse.issparse(vectors):
        X = sparse.csr_matrix(vectors, dtype=np.float64)
        squared = np.asarray(X.multiply(X).sum(axis=1)).ravel()
        if not np.all(np.isfinite(X.data)):
            raise ValueError("vectors contains NaN or infinite values")
    else:
        X = _as_vectors(vectors, "vectors", min_rows=2)
        squared = np.einsum("ij,ij->i", X, X)
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"mean_cosine_distance needs at least 2 vectors, got {n}")
    if np.any(squared == 0):
        raise ValueError(f"vector {int(np.argmin(squared))} is all zeros: its cosine similarity is undefined")
    if sparse.issparse(X):
        unit = sparse.diags(1.0 / np.sqrt(squared)) @ X
        shift = unit[int(np.argmin(np.diff(unit.indptr)))]
        Y = (unit - sparse.csr_matrix(np.ones((n, 1))) @ shift).tocoo()
        mean = np.asarray(Y.sum(axis=0)).ravel() / n
        stored = np.bincount(Y.col, minlength=Y.shape[1])
        total = np.sum((Y.data - mean[Y.col]) ** 2) + np.sum((n - stored) * mean**2)
    else:
        unit = X / np.sqrt(squared)[:, None]
        Y = unit - unit[0]
        total = np.sum((Y - Y.mean(axis=0)) ** 2)
    return float(total / (n - 1))


def clipped_pair_distances(vectors) -> np.ndarray:
    """Verbalized Sampling's pairwise semantic diversity: 1 − clip(cos, 0, 1) of every unordered pair.

    .. math:: d_{ij} = 1 - \\min\\big(1, \\max(0, \\cos(x_i, x_j))\\big), \\quad i < j

    one value per pair, in row-major order of the upper triangle (N(N−1)/2 values). Negative
    similarities count as 0 (diversity 1), so the values lie in [0, 1]. The authors pool these
    values over every pair of every prompt and report their mean (``avg_diversity``); the pooling
    is the caller's (:mod:`collapse_tasks.vs_utils`).

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        N >= 2 rows, none all-zero.

    References
    ----------
    Zhang et al., "Verbalized Sampling" (2025, arXiv:2510.01171); CHATS-lab/verbalized-sampling,
    ``verbalized_sampling/evals/diversity.py`` (``DiversityEvaluator.aggregate_metrics``:
    ``diversity = 1 - np.clip(similarity, 0.0, 1.0)`` for ``j > i``, all pairs pooled).

    Examples
    --------
    >>> clipped_pair_distances([[1, 0], [0, 1], [-1, 0]]).round(4).tolist()  # cos 0, -1, 0
    [1.0, 1.0, 1.0]
    >>> clipped_pair_distances([[1, 0], [1, 1], [2, 0]]).round(4).tolist()
    [0.2929, 0.0, 0.2929]
    """
    X = _as_vectors(vectors, "vectors", min_rows=2)
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    if np.any(norms == 0):
        raise ValueError(f"vector {int(np.argmin(norms))} is all zeros: its cosine similarity is undefined")
    unit = X / norms[:, None]
    i, j = np.triu_indices(len(X), k=1)
    return 1.0 - np.clip(np.einsum("ij,ij->i", unit[i], unit[j]), 0.0, 1.0)


def raw_texts(texts: Sequence[str], *, min_texts: int, needed_by: str) -> list[str]:
    """Validate ``list[str]`` input for a metric that parses or embeds raw text.

    Token lists are rejected (``TypeError``): ``needed_by`` names the metric in the message.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{needed_by} takes a list of str, not a single string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(
                f"texts[{i}] is a {type(t).__name__}: {needed_by} needs raw text, "
                "so it accepts list[str] only"
            )
    if len(texts) < min_texts:
        raise ValueError(f"{needed_by} needs at least {min_texts} texts, got {len(texts)}")
    return texts


@lru_cache(maxsize=2)
def _load(model_name: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "embeddings need sentence-transformers: pip install 'lm-collapse[embeddings]'"
        ) from err
    try:
        return SentenceTransformer(model_name)
    except OSError as err:  # the hub out of reach (or offline) and not in its cache, or a wrong id
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise OSError(f"sentence embedder {model_name!r} cannot be loaded (not a local folder, not in the hub cache, "
                      f"and the hub out of reach: offline? or a wrong id) — {first}") from err


def embed(
    texts: Sequence[str],
    *,
    model=None,
    model_name: str = DEFAULT_EMBEDDER,
    batch_size: int = 64,
) -> np.ndarray:
    """Sentence embeddings of raw texts, shape (len(texts), dim), float64.

    Parameters
    ----------
    texts : list of str
        Raw texts (at least one; empty strings are embedded like any other text).
    model : object with sentence-transformers' ``encode``, optional
        Used as is; otherwise ``SentenceTransformer(model_name)`` is loaded once and cached.
    model_name : str, default="sentence-transformers/all-MiniLM-L6-v2"
    batch_size : int, default=64

    Examples
    --------
    >>> class Lengths:  # any object with a sentence-transformers style encode()
    ...     def encode(self, texts, **kwargs):
    ...         return [[len(t), 1.0] for t in texts]
    >>> embed(["ab", "abc"], model=Lengths())
    array([[2., 1.],
           [3., 1.]])
    """
    texts = raw_texts(texts, min_texts=1, needed_by="embed")
    model = _load(model_name) if model is None else model
    vectors = model.encode(texts, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
    vectors = _as_vectors(vectors, "the embeddings", min_rows=1)
    if len(vectors) != len(texts):
        raise ValueError(f"the model returned {len(vectors)} embeddings for {len(texts)} texts")
    return vectors


def semantic_diversity(
    texts: Sequence[str] | None,
    *,
    model=None,
    model_name: str = DEFAULT_EMBEDDER,
    batch_size: int = 64,
    embeddings=None,
) -> float:
    """Div_sem: mean over ordered pairs i ≠ j of (1 - cos(e_i, e_j)) / 2 of sentence embeddings.

    .. math:: \\mathrm{Div_{sem}} = \\frac{1}{2}\\Big(1 - \\frac{1}{N(N-1)}
              \\sum_{i \\ne j} \\cos(e_i, e_j)\\Big)

    in O(N · d) by :func:`mean_cosine_distance`.

    Parameters
    ----------
    texts : list of str, or None when ``embeddings`` is given
        At least two raw texts (``list[str]`` only: the embedder needs the text).
    model, model_name, batch_size
        As in :func:`embed`.
    embeddings : array-like (N, d), optional
        Precomputed embeddings; then nothing is embedded (``texts``, if given, must have N items).

    Returns
    -------
    float in [0, 1] (clipped against rounding): 0 for identical texts, 0.5 for orthogonal
    embeddings on average.

    Raises
    ------
    ValueError
        Fewer than two texts, an all-zero or non-finite embedding, a length mismatch.

    References
    ----------
    Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on
    Synthetic Text", Findings of NAACL 2024. Reproduces ``semantic_diversity.py`` of
    github.com/YanzhuGuo/linguistic-diversity (mean of (1 - cos)/2 off the diagonal of the
    cosine matrix); their script embeds with ``all-mpnet-base-v2``, pass
    ``model_name="sentence-transformers/all-mpnet-base-v2"`` for their exact numbers.

    Examples
    --------
    >>> round(semantic_diversity(None, embeddings=[[1, 0], [0, 1], [-1, 0]]), 4)
    0.6667
    >>> semantic_diversity(None, embeddings=[[1, 2], [2, 4]])
    0.0
    """
    return cosine_diversity(texts, model=model, model_name=model_name, batch_size=batch_size, embeddings=embeddings) / 2.0


def cosine_diversity(
    texts: Sequence[str] | None,
    *,
    model=None,
    model_name: str = DEFAULT_EMBEDDER,
    batch_size: int = 64,
    embeddings=None,
) -> float:
    """Semantic diversity of Verbalized Sampling: 1 − the mean pairwise cosine similarity.

    .. math:: \\frac{1}{N(N-1)} \\sum_{i \\ne j} \\big(1 - \\cos(e_i, e_j)\\big)

    twice Guo et al.'s Div_sem (:func:`semantic_diversity`), computed in O(N · d) by
    :func:`mean_cosine_distance`.

    Parameters
    ----------
    texts, model, model_name, batch_size, embeddings
        As in :func:`semantic_diversity`.

    Returns
    -------
    float in [0, 2] (clipped against rounding): 0 for texts of the same meaning, 1 for
    orthogonal embeddings on average.

    References
    ----------
    Zhang et al., "Verbalized Sampling: How to Mitigate Mode Collapse and Unlock LLM Diversity"
    (2025, arXiv:2510.01171), semantic diversity = 1 − mean pairwise cosine similarity of the
    responses' embeddings (they embed with OpenAI's text-embedding-3-small, so values depend on
    the embedder: compare models under one embedder).

    Examples
    --------
    >>> round(cosine_diversity(None, embeddings=[[1, 0], [0, 1], [-1, 0]]), 4)
    1.3333
    """
    if embeddings is None:
        if texts is None:
            raise ValueError("semantic diversity needs texts or embeddings")
        texts = raw_texts(texts, min_texts=2, needed_by="semantic diversity")
        embeddings = embed(texts, model=model, model_name=model_name, batch_size=batch_size)
    else:
        embeddings = _as_vectors(embeddings, "embeddings", min_rows=2)
        if texts is not None and len(texts) != len(embeddings):
            raise ValueError(f"got {len(texts)} texts but {len(embeddings)} embeddings")
    return float(np.clip(mean_cosine_distance(embeddings), 0.0, 2.0))


def _kth_distances(queries: np.ndarray, points: np.ndarray, k: int, *, exclude_self: bool) -> np.ndarray:
    """Exact Euclidean distance from each query to its k-th nearest point.

    Candidates come from the fast expansion ‖q‖² + ‖p‖² - 2 q·p (BLAS, block by block); the
    k + 16 best are then re-measured as ‖q - p‖ directly, so duplicates are at distance exactly
    0. With ``exclude_self`` (queries is points) each point's own index is skipped; its
    duplicates still count as neighbours.
    """
    n_points, dim = points.shape
    n_candidates = min(k + _EXTRA_CANDIDATES, n_points - exclude_self)
    q_sq = np.einsum("ij,ij->i", queries, queries)
    p_sq = np.einsum("ij,ij->i", points, points)
    rows = max(1, _BLOCK // (n_points + n_candidates * dim))
    out = np.empty(len(queries))
    for start in range(0, len(queries), rows):
        block = queries[start : start + rows]
        d2 = q_sq[start : start + rows, None] + p_sq[None, :] - 2.0 * (block @ points.T)
        if exclude_self:
            d2[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        candidates = np.argpartition(d2, n_candidates - 1, axis=1)[:, :n_candidates]
        diff = block[:, None, :] - points[candidates]
        exact = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        out[start : start + len(block)] = np.partition(exact, k - 1, axis=1)[:, k - 1]
    return out


def knn_entropy(vectors, k: int = 1, *, eps: float = 1e-10) -> float:
    """Kozachenko-Leonenko k-nearest-neighbour estimate of differential entropy, in nats.

    .. math:: \\hat H = \\psi(N) - \\psi(k) + \\log V_d
              + \\frac{d}{N} \\sum_{i=1}^{N} \\log(\\rho_{i,k} + \\varepsilon),
              \\qquad V_d = \\frac{\\pi^{d/2}}{\\Gamma(d/2 + 1)}

    ψ is the digamma function, V_d the volume of the unit Euclidean ball in R^d, and ρ_{i,k}
    the Euclidean distance from x_i to its k-th nearest neighbour among the *other* points
    (a duplicate of x_i is another point, at distance 0).

    Duplicates: the estimator is -∞ as soon as some ρ_{i,k} = 0 (a point with k or more exact
    copies; in the limit, a distribution with atoms). Like Shi et al.'s reference code, ``eps``
    (default 1e-10) is added to every distance, so each such point contributes a large but
    finite (d/N)·log(eps) and the estimate drops sharply as a corpus collapses onto repeated
    texts instead of failing on exactly the data a collapse study produces. The shift for
    distinct points is ~eps/ρ, negligible. ``eps=0`` gives the textbook estimator, which raises
    ``ValueError`` on duplicates (deduplicate, raise ``k``, or pass ``eps``). Compare values at
    the same N, k, d and eps only.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        N > k finite vectors (e.g. sentence embeddings from :func:`embed`).
    k : int, default=1
        Neighbour order (Shi et al. use 1 for the training-set entropy).
    eps : float, default=1e-10
        Added to every k-NN distance (>= 0).

    Returns
    -------
    float (nats; may be negative: differential entropy).

    References
    ----------
    Kozachenko & Leonenko, "Sample estimate of the entropy of a random vector", Problems Inform.
    Transmission 23 (1987). Shi et al., "A Closer Look at Model Collapse: From a
    Generalization-to-Memorization Perspective", NeurIPS 2025 (arXiv 2509.16499); reproduces
    ``knn_entropy`` in github.com/shilianghe007/Model_Collapse (``knn_entropy_estimator.py``).

    Examples
    --------
    >>> round(knn_entropy([[0.0], [1.0], [3.0]]), 4)  # ψ(3) - ψ(1) + log 2 + (log 1 + log 1 + log 2)/3
    2.4242
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    X = _as_vectors(vectors, "vectors", min_rows=k + 1)
    n, d = X.shape
    rho = _kth_distances(X, X, int(k), exclude_self=True) + eps
    if np.any(rho == 0):
        raise ValueError(
            f"{int(np.sum(rho == 0))} points have {k} or more exact duplicates (k-NN distance 0, "
            "entropy -inf): deduplicate, raise k, or pass eps > 0"
        )
    log_unit_ball = (d / 2.0) * np.log(np.pi) - gammaln(d / 2.0 + 1.0)
    return float(digamma(n) - digamma(k) + log_unit_ball + d * np.mean(np.log(rho)))


def nn_distance(vectors, reference_vectors) -> float:
    """Mean Euclidean distance from each vector to its nearest reference vector.

    .. math:: \\frac{1}{N} \\sum_{i=1}^{N} \\min_j \\lVert x_i - r_j \\rVert_2

    Shi et al.'s memorization measure in embedding space: generations that copy the training
    data sit at distance ~0 from it. Their script ranks neighbours by per-coordinate MSE,
    ‖x - r‖²/d, which picks the same nearest neighbour; this function reports the distance.

    Parameters
    ----------
    vectors : array-like, shape (N, d)
        At least one query vector (e.g. embeddings of generated texts).
    reference_vectors : array-like, shape (M, d)
        At least one reference vector (e.g. embeddings of the training texts).

    Returns
    -------
    float >= 0.

    References
    ----------
    Shi et al., NeurIPS 2025 (arXiv 2509.16499), ``memorization_score_npy.py`` in
    github.com/shilianghe007/Model_Collapse. Equals the mean of
    ``sklearn.neighbors.NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(vectors)``.

    Examples
    --------
    >>> round(nn_distance([[0, 0], [3, 4]], [[0, 1], [10, 10]]), 4)  # (1 + √18) / 2
    2.6213
    """
    X = _as_vectors(vectors, "vectors", min_rows=1)
    R = _as_vectors(reference_vectors, "reference_vectors", min_rows=1)
    if X.shape[1] != R.shape[1]:
        raise ValueError(f"vectors have dimension {X.shape[1]} but reference_vectors {R.shape[1]}")
    return float(np.mean(_kth_distances(X, R, 1, exclude_self=False)))
