"""One plug-in shape: a toy filter, regime, transform and back end, each registered through its
public registry in the test, validated by its own options dataclass and run through the driver at
tiny size on the n-gram back end."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from recursion.artifacts import SELECTED, TRAIN, read_jsonl, read_texts, read_training_texts, write_jsonl
from recursion.backends import BACKENDS
from recursion.backends.ngram import NgramBackend, NgramConfig
from recursion.config import FilterConfig, RegimeConfig, TransformConfig
from recursion.driver import run_experiment
from recursion.filters import FILTERS
from recursion.loader import ConfigError, load_config
from recursion.plugins import Registry
from recursion.regimes import REGIMES
from recursion.transforms import TRANSFORMS

TINY = """
name: toy
generations: 2
model: {backend: ngram, n: 2, alpha: 0.05}
data: {num_train: 60}
generate: {num_docs: 40, decoding: {max_new_tokens: 8}}
eval: {enabled: false}
probes: {enabled: false}
"""


def run(tmp_path, extra: str):
    path = tmp_path / "c.yaml"
    path.write_text(TINY + extra)
    [folder] = run_experiment(path, tmp_path / "run", log=lambda s: None)
    return folder


@pytest.fixture
def registered(monkeypatch):
    """Register into a copy of each registry's table: the toy plug-ins are gone after the test."""
    for registry in (FILTERS, REGIMES, TRANSFORMS, BACKENDS):
        monkeypatch.setattr(registry, "plugins", dict(registry.plugins))


def test_an_unknown_name_names_the_key_and_the_choices():
    with pytest.raises(ValueError, match=r"^filter.name = 'x' is not valid; choose one of: none, random, surprise"):
        FILTERS["x"]
    assert "accumulate_select" in REGIMES.names() and "toedit" in TRANSFORMS.names() and "ngram" in BACKENDS.names()
    registry = Registry("thing", "thing.name", options=FilterConfig)
    registry.register("a")(len)
    assert registry["a"].run is len and registry["a"].options is FilterConfig and registry["a"].check(None) == []


@dataclass(frozen=True)
class ShortestOptions(FilterConfig):
    max_words: int = 1000  # documents longer than this are never kept

    def problems(self):
        return [] if self.max_words >= 1 else [("max_words", "must be >= 1")]


def test_a_toy_filter(tmp_path, registered):
    @FILTERS.register("shortest", options=ShortestOptions)
    def keep_shortest(texts, *, n_keep, config):
        lengths = np.array([len(t.split()) if len(t.split()) <= config.max_words else 10**9 for t in texts])
        return np.sort(np.argsort(lengths, kind="stable")[:n_keep])

    folder = run(tmp_path, "filter: {name: shortest, keep: 0.5, max_words: 50}\n")
    for g in range(2):
        pool = [r["text"] for r in read_jsonl(folder / f"gen_0{g}/synthetic.jsonl")]
        kept = read_texts(folder / f"gen_0{g}" / SELECTED)
        assert len(kept) == 20 and max(len(t.split()) for t in kept) <= sorted(len(t.split()) for t in pool)[20]
    (tmp_path / "bad.yaml").write_text(TINY + "filter: {name: shortest, max_words: 0, tau: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "bad.yaml")
    assert "filter.max_words must be >= 1" in str(err.value)
    assert "unknown key 'filter.tau'; valid keys: name, keep, top_k, max_words" in str(err.value)


@dataclass(frozen=True)
class EveryOtherOptions(RegimeConfig):
    step: int = 2


def test_a_toy_regime_builds_its_own_training_set(tmp_path, registered):
    def needs_a_filter(exp):
        return [] if exp.filter.name != "none" else [("filter.name", "must choose documents for regime every_other")]

    @REGIMES.register("every_other", options=EveryOtherOptions, check=needs_a_filter)
    def every_other(exp, g, gdir, real, *, rng, model, gen0_model):
        docs = real.train if g == 0 else read_texts(gdir.parent / f"gen_0{g - 1}" / SELECTED)
        write_jsonl(gdir / TRAIN, ({"text": t} for t in docs[::exp.regime.step]))
        return [gdir / TRAIN]

    folder = run(tmp_path, "regime: {name: every_other, step: 3}\nfilter: {name: random, keep: 0.9}\n")
    assert len(read_training_texts(folder / "gen_00")) == 20  # 60 real documents, every third
    assert len(read_training_texts(folder / "gen_01")) == 12  # 36 of 40 kept, every third
    (tmp_path / "bad.yaml").write_text(TINY + "regime: {name: every_other}\n")
    with pytest.raises(ConfigError, match="filter.name must choose documents for regime every_other"):
        load_config(tmp_path / "bad.yaml")


@dataclass(frozen=True)
class UpperOptions(TransformConfig):
    files = ("upper.json",)
    marker: str = "!"


def test_a_toy_transform_replaces_the_pool(tmp_path, registered):
    @TRANSFORMS.register("upper", options=UpperOptions)
    def upper(ctx):
        docs = [t.upper() + ctx.exp.transform.marker for t in ctx.real.train]
        (ctx.gen(ctx.g) / "upper.json").write_text(json.dumps({"documents": len(docs)}))
        return [{"text": t} for t in docs]

    folder = run(tmp_path, "transform: {name: upper, marker: '?'}\n")
    selected = read_texts(folder / "gen_01" / SELECTED)
    assert len(selected) == 60 and all(t.endswith("?") and t == t.upper() for t in selected)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert any(f.endswith("upper.json") for f in manifest["stages"]["gen_00/select"]["files"])


@dataclass(frozen=True)
class CountingConfig(NgramConfig):
    label: str = "toy"


class CountingBackend(NgramBackend):
    """The n-gram back end under another name, counting its training runs."""

    config_class = CountingConfig
    trained: list[int] = []

    def train(self, texts, out_dir, *, previous, seed, validation=None):
        CountingBackend.trained.append(len(texts))
        super().train(texts, out_dir, previous=previous, seed=seed, validation=validation)

    @classmethod
    def experiment_problems(cls, exp):
        return [] if exp.model.label else [("model.label", "must not be empty")]


def test_a_toy_back_end(tmp_path, registered):
    BACKENDS.register("counting", options=CountingConfig, check=CountingBackend.experiment_problems)(CountingBackend)
    CountingBackend.trained.clear()
    path = tmp_path / "c.yaml"
    path.write_text(TINY.replace("model: {backend: ngram, n: 2, alpha: 0.05}", "model: {backend: counting, n: 2, label: here}"))
    [folder] = run_experiment(path, tmp_path / "run", log=lambda s: None)
    assert CountingBackend.trained[-2:] == [60, 40] and (folder / "gen_01/model").is_dir()
    path.write_text(TINY.replace("model: {backend: ngram, n: 2, alpha: 0.05}", "model: {backend: counting, label: ''}"))
    with pytest.raises(ConfigError, match="model.label must not be empty"):
        load_config(path)


def test_an_option_added_to_a_plugin_since_a_run_started_resumes_at_its_default(tmp_path, registered):
    def keep_first(texts, *, n_keep):
        return np.arange(n_keep)

    FILTERS.register("first")(keep_first)
    folder = run(tmp_path, "filter: {name: first, keep: 0.5}\n")
    stages = json.loads((folder / "manifest.json").read_text())["stages"]
    FILTERS.register("first", options=ShortestOptions)(keep_first)  # max_words: new, at its default
    assert run(tmp_path, "filter: {name: first, keep: 0.5}\n") == folder
    assert json.loads((folder / "manifest.json").read_text())["stages"] == stages  # nothing redone
    with pytest.raises(ValueError, match=r"filter.max_words: 1000 -> 5"):
        run(tmp_path, "filter: {name: first, keep: 0.5, max_words: 5}\n")
