"""configs/lab1_bigram.yaml as shipped shows the mechanism its README names, in the data it hands on:
under a fixed Jelinek-Mercer weight the samples lose word types and distinct bigrams while the floor's
share of the draws stays at (1 - lambda)^2; under Kneser-Ney with an estimated discount (arm kneser_ney)
the floor's share climbs and the samples' vocabulary grows. Seed 0, 3 generations (sizes only)."""
import json
from pathlib import Path

import pytest

from recursion.driver import run_experiment
from recursion.loader import load_config

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "lab1_bigram.yaml"
SMALL = ["generations=3", "eval.enabled=false", "probes.num_prompts=10"]


def pool(folder: Path, g: int) -> dict:
    return json.loads((folder / f"gen_{g:02d}/data_diversity.json").read_text())["pool"]


def test_shipped_lab1_ships_three_seeds_and_the_two_smoothings():
    arms = load_config(CONFIG)
    assert all(exp.seeds == (0, 1, 2) for exp in arms.values())
    assert {a: (e.model.smoothing, e.model.jm_lambda) for a, e in arms.items()} == {
        "pure_synthetic": ("jelinek_mercer", 0.99), "accumulate": ("jelinek_mercer", 0.99),
        "surprise30": ("jelinek_mercer", 0.99), "kneser_ney": ("kneser_ney", None)}


@pytest.mark.parametrize("arm", ["pure_synthetic", "kneser_ney"])
def test_fixed_weight_loses_tails_estimated_discount_drifts_into_noise(tmp_path, arm):
    [folder] = run_experiment(CONFIG, tmp_path / "run", overrides=SMALL, arm=arm, seed=0, log=lambda s: None)
    first, last = pool(folder, 0), pool(folder, 2)
    if arm == "pure_synthetic":
        assert last["word_types"] < 0.85 * first["word_types"] and last["distinct_2"] < 0.7 * first["distinct_2"]
        assert first["floor_share"] == pytest.approx(1e-4, rel=0.05) and last["floor_share"] == pytest.approx(1e-4, rel=0.05)
    else:
        assert last["word_types"] > 1.2 * first["word_types"] and last["floor_share"] > 3 * first["floor_share"]
