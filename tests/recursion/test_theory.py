"""recursion.theory: the closed forms against long simulations, the regimes' ordering, the records."""
import json
import math

import numpy as np
import pytest

from recursion.theory import (
    Learner,
    Regime,
    Setup,
    adaptive_ridge,
    ols_theory,
    parse_learners,
    parse_regimes,
    parse_spectrum,
    ridge_theory,
    run,
    simulate,
)

OLS = Learner()
ADAPTIVE = Learner("adaptive")


@pytest.mark.parametrize("spectrum", [0.0, 1.5])
def test_ols_closed_forms_equal_a_long_simulation(spectrum):
    """Exact in finite samples: small d and T, where any large-T approximation would show."""
    setup = Setup(d=8, T=20, sigma=0.7, generations=4, spectrum=spectrum)
    records = run(setup, parse_regimes("replace,accumulate,mix:0.3"), [OLS], reps=20_000, seed=1)
    for r in records:
        z = (r["test_error_sim"] - r["test_error_theory"]) / r["test_error_sim_se"]
        assert abs(z) < 4, r


def test_ridge_deterministic_equivalent_within_sampling_and_finite_size_error():
    """Marchenko–Pastur equivalents are exact as d, T grow; at d = 50, T = 200 within ~1%."""
    setup = Setup(d=50, T=200, generations=3)
    records = run(setup, [Regime("replace")], [Learner("ridge", 0.5), ADAPTIVE], reps=1_000, seed=2)
    for r in records:
        assert abs(r["test_error_sim"] - r["test_error_theory"]) < 4 * r["test_error_sim_se"] + 0.015 * r["test_error_theory"], r


def test_closed_forms_by_hand():
    setup = Setup(d=10, T=30, sigma=2.0, generations=3)
    c = 4.0 * 10 / 19
    np.testing.assert_allclose(ols_theory(Regime("replace"), setup), [c, 2 * c, 3 * c, 4 * c])
    acc = [4.0 * 10 / (k * (k * 30 - 11)) for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(ols_theory(Regime("accumulate"), setup), np.cumsum(acc))
    np.testing.assert_allclose(ols_theory(Regime("mix", 1.0), setup), ols_theory(Regime("replace"), setup))
    np.testing.assert_allclose(ols_theory(Regime("mix", 0.0), setup), [c] * 4)
    # ridge at λ → 0 is OLS up to the Marchenko–Pastur limit σ²d/(T − d) of σ²d/(T − d − 1)
    mp = ridge_theory(Regime("replace"), setup, np.zeros(4))
    np.testing.assert_allclose(mp[0], 4.0 * 10 / 20)
    assert ridge_theory(Regime("accumulate"), setup, np.zeros(4)) is None
    assert ridge_theory(Regime("replace"), Setup(spectrum=1.0), np.zeros(11)) is None


def test_regimes_order_and_growth():
    """replace grows linearly without bound; accumulate stays below c·π²/6; mix:p levels off at c/(1 − m)."""
    setup = Setup(generations=30)
    c = setup.sigma**2 * setup.d / (setup.T - setup.d - 1)
    replace, accumulate = ols_theory(Regime("replace"), setup), ols_theory(Regime("accumulate"), setup)
    mix = ols_theory(Regime("mix", 0.5), setup)
    np.testing.assert_allclose(np.diff(replace), c)
    assert accumulate[-1] < c * math.pi**2 / 6 and np.all(np.diff(accumulate) > 0)
    assert np.all(accumulate[1:] < mix[1:]) and np.all(mix[1:] < replace[1:])
    assert mix[-1] - mix[-2] < 1e-9 * mix[-1]  # converged
    # the simulation shows the same order from generation 2 on
    sims = {r: simulate(Regime.parse(r), Setup(generations=4), [OLS], reps=100)["ols"].mean(axis=0)
            for r in ("replace", "accumulate", "mix:0.5")}
    assert np.all(sims["accumulate"][2:] < sims["mix:0.5"][2:]) and np.all(sims["mix:0.5"][2:] < sims["replace"][2:])


def test_adaptive_ridge_is_near_the_best_single_lambda():
    setup = Setup(generations=20)
    lams = adaptive_ridge(Regime("replace"), setup)
    adaptive = ridge_theory(Regime("replace"), setup, lams)
    grid = np.geomspace(1e-3, 1e2, 4001)
    best = ridge_theory(Regime("replace"), setup, grid[:, None]).min(axis=0)  # each generation's best λ on the grid
    assert np.all(adaptive <= 1.004 * best)  # 0.3% at most (generation 1)
    assert lams[0] == pytest.approx(setup.sigma**2 * setup.d / setup.T)  # the classical optimum at n = 0
    assert np.all(np.diff(lams) > 0)
    assert np.all(adaptive < ols_theory(Regime("replace"), setup))


def test_records_schema_and_reproducibility():
    setup = Setup(d=5, T=20, generations=2)
    records = run(setup, parse_regimes("replace,mix:0.5"), parse_learners("0.1", adaptive=True), reps=10, seed=3)
    assert len(records) == 2 * 3 * 3
    json.dumps(records)
    for r in records:
        assert set(r) == {"regime", "learner", "ridge", "generation", "test_error_sim", "test_error_sim_ci95",
                          "test_error_sim_se", "test_error_theory"}
        lo, hi = r["test_error_sim_ci95"]
        assert lo <= r["test_error_sim"] <= hi
        assert (r["test_error_theory"] is None) == (r["learner"] != "ols" and r["regime"] != "replace")
    assert {r["learner"] for r in records} == {"ols", "ridge:0.1", "adaptive"}
    again = run(setup, parse_regimes("mix:0.5"), [OLS], reps=10, seed=3)
    assert again == [r for r in records if r["regime"] == "mix:0.5" and r["learner"] == "ols"]  # one regime's stream


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match=r"T must be >= d \+ 2 = 52.*; sigma must be a finite number >= 0"):
        run(Setup(T=50, sigma=-1), [Regime("replace")], [OLS])
    with pytest.raises(ValueError, match="reps must be >= 2"):
        run(Setup(), [Regime("replace")], [OLS], reps=1)
    with pytest.raises(ValueError, match="unknown regime 'keep'"):
        parse_regimes("replace,keep")
    with pytest.raises(ValueError, match="synthetic share must be in"):
        parse_regimes("mix:1.5")
    with pytest.raises(ValueError, match="mix needs its synthetic share"):
        parse_regimes("mix")
    with pytest.raises(ValueError, match="at least one"):
        parse_regimes(" , ")
    with pytest.raises(ValueError, match="expected comma-separated numbers"):
        parse_learners("0.1,x")
    with pytest.raises(ValueError, match="λ must be >= 0"):
        parse_learners("-1")
    with pytest.raises(ValueError, match="power:ALPHA"):
        parse_spectrum("power:-1")
    with pytest.raises(ValueError, match="power:ALPHA"):
        parse_spectrum("power:inf")
    with pytest.raises(ValueError, match="sigma must be a finite"):
        run(Setup(sigma=float("nan")), [Regime("replace")], [OLS])
    assert parse_spectrum("power:1.5") == 1.5 and parse_spectrum("isotropic") == 0.0
