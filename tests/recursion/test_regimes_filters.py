"""Regimes build the documented training sets; filters keep exactly the documents they say."""
import numpy as np
import pytest

from recursion.filters import FILTERS, select, word_entropy
from recursion.regimes import real_share, training_parts

REAL = [f"real {i}" for i in range(10)]
SELECTED = {k: [f"syn{k} {i}" for i in range(10)] for k in range(5)}


def build(regime, g, fraction=0.2):
    """The texts the parts name (what the driver's reference resolves to)."""
    sources = {"real": lambda k: REAL, "selected": SELECTED.__getitem__,
               "fresh": lambda k: [f"fresh{k} {i}" for i in range(real_share(len(REAL), fraction))]}
    parts = training_parts(regime, g, n_real=len(REAL), n_selected=lambda k: len(SELECTED[k]), fraction=fraction,
                           rng=np.random.default_rng(0))
    return [t for (kind, k), rows in parts for t in (sources[kind](k) if rows is None else
                                                     [sources[kind](k)[r] for r in rows])]


@pytest.mark.parametrize("regime", ["replace", "accumulate", "accumulate_subsample", "mix", "keep_real"])
def test_generation_zero_is_real(regime):
    assert build(regime, 0) == REAL


def test_regimes():
    assert build("replace", 3) == SELECTED[2]
    assert build("accumulate", 3) == REAL + SELECTED[0] + SELECTED[1] + SELECTED[2]
    sub = build("accumulate_subsample", 3)
    assert len(sub) == len(REAL) and set(sub) <= set(REAL + SELECTED[0] + SELECTED[1] + SELECTED[2])
    mix = build("mix", 2)
    assert len(mix) == 10 and sum(t.startswith("fresh2") for t in mix) == 2 and sum(t.startswith("syn1") for t in mix) == 8
    keep = build("keep_real", 2)
    assert sum(t.startswith("real") for t in keep) == 2 and sum(t.startswith("syn1") for t in keep) == 8
    with pytest.raises(ValueError, match="unknown regime"):
        build("nope", 1)


class FakeModel:
    def perplexity(self, texts):
        return np.array([float(t.split()[-1]) for t in texts])


POOL = [f"doc {v}" for v in [5, 1, 9, 3, 9, 7, 2]]


def test_surprise_keeps_exactly_the_highest_perplexity():
    kept = select("surprise", POOL, keep=3 / 7, top_k=None, model=FakeModel(), rng=None)
    assert kept.tolist() == [2, 4, 5]  # 9, 9, 7 in pool order
    assert select("surprise", POOL, keep=1.0, top_k=2, model=FakeModel(), rng=None).tolist() == [2, 4]
    assert select("low_surprise", POOL, keep=1.0, top_k=2, model=FakeModel(), rng=None).tolist() == [1, 6]


def test_random_none_and_entropy():
    rng = np.random.default_rng(0)
    kept = select("random", POOL, keep=0.5, top_k=None, model=None, rng=rng)
    assert len(kept) == 4 and len(set(kept.tolist())) == 4
    assert select("none", POOL, keep=1.0, top_k=None, model=None, rng=None).tolist() == list(range(7))
    assert word_entropy("a a a a") == 0.0 and word_entropy("a b c d") == 2.0
    assert select("word_entropy", ["a a a", "a b c", "a a b"], keep=1.0, top_k=1, model=None, rng=None).tolist() == [1]


def test_filters_are_pluggable(monkeypatch):
    monkeypatch.setattr(FILTERS, "plugins", dict(FILTERS.plugins))

    @FILTERS.register("shortest")
    def shortest(texts, *, n_keep, model=None, rng=None):
        return np.argsort([len(t) for t in texts], kind="stable")[:n_keep]

    assert select("shortest", ["aaa", "a", "aa"], keep=1.0, top_k=1, model=None, rng=None).tolist() == [1]
