"""The regression model of collapse: linear regression retrained on its own labels, in closed form
and by simulation (numpy only, seconds on a laptop).

Setup (Dohmatob, Feng & Kempe, 2024, Sec. 3; Gerstgrasser et al., 2024, linear models). Inputs
x ~ N(0, Σ) in R^d (Σ = I, or a power-law spectrum λ_k ∝ k^(−α) scaled to trace d); ground truth
w0 with ||w0|| = 1; labels y = xᵀw + ε, ε ~ N(0, σ²). Generation 0 fits on T real samples
(labels from w0); every later generation fits on samples whose *synthetic* labels come from the
previous generation's model ŵ_{n−1} plus fresh noise. Inputs are drawn afresh for every sample
(as Dohmatob et al.'s fake-data generators do). The training set of generation n ≥ 1:

* ``replace`` — T synthetic samples only;
* ``accumulate`` — the real samples and every synthetic sample so far, (n + 1)T in all
  (Gerstgrasser et al.: data accumulate, each batch keeping the labels it was made with);
* ``mix:p`` — round(pT) synthetic samples and T − round(pT) *fresh* real samples (p is the
  synthetic share; note that the recursion driver's ``mix`` regime takes the *real* share).

The model that labels the next generation is the least-squares fit (OLS) on the generation's
training set — Dohmatob et al.'s data generators. The *learner* whose test error is reported is
that OLS fit, or a ridge fit on the same training set, ŵ_λ = (XᵀX + λN·I)⁻¹Xᵀy (N samples): the
regularization is the choice of whoever trains on the generation's data, as in Dohmatob et al.'s
downstream model ŵ_n^pred. Test error is the excess risk E_test(ŵ) = E_x[(xᵀŵ − xᵀw0)²] =
(ŵ − w0)ᵀΣ(ŵ − w0), computed exactly per model (not on test samples).

Closed forms (derived for this setup; ``ols_theory``), exact in finite samples for T ≥ d + 2 and
any Σ, with c = σ²d/(T − d − 1) the generation-0 error (E tr(Σ(XᵀX)⁻¹) = d/(T − d − 1) for a
Gaussian design):

* replace: E_n = (n + 1)·c. The error of generation n is e_n = e_{n−1} + (XₙᵀXₙ)⁻¹Xₙᵀεₙ, one
  independent noise term per generation. This is Dohmatob et al.'s exact test-error characterization (§4) at λ = 0
  (E_test(ŵ_n^pred) = σ²d/(T − d − 1) + nσ0²d/(T0 − d − 1), here T0 = T, σ0 = σ: the error grows
  linearly in n, without bound).
* accumulate: E_n = σ²d · Σ_{k=1}^{n+1} 1 / (k(kT − d − 1)) < c·π²/6. With Sₙ = Σ_{k≤n} XₖᵀXₖ the
  normal equations give Sₙeₙ = Sₙe_{n−1} + Xₙᵀεₙ, so eₙ = Σ_k S_k⁻¹X_kᵀε_k, and by exchangeability
  E tr(S_k⁻¹X_kᵀX_kS_k⁻¹) = E tr(S_k⁻¹)/(k + 1) = d/((k + 1)((k + 1)T − d − 1)). Gerstgrasser et al.'s
  linear-model theorem reuses the same inputs every generation; the same identity then gives
  c·Σ_{k=1}^{n+1} 1/k², their bound π²/6·c. Both stay bounded.
* mix:p, a = round(pT) synthetic rows: E_n = c·Σ_{k=0}^{n} mᵏ → c/(1 − m), with
  m = E‖(XᵀX)⁻¹X_synᵀX_syn‖²_F / d
    = a(a + 2)/(T(T + 2)) + a(T − a)(T + 1)(d − 1) / (T(T + 2)(T − 1)(T − d − 1)),
  from eₙ = Mₙe_{n−1} + (XᵀX)⁻¹Xᵀεₙ (Mₙ independent of e_{n−1}, E[MₙMₙᵀ] = m·I by rotation
  invariance; whitening makes Σ drop out). With X = UΛVᵀ (U Haar on the Stiefel manifold,
  independent of Λ) and K = UᵀD_synU: ‖M‖²_F = Σ_ij K_ij² s_j/s_i, E K_ii² = a(a + 2)/(T(T + 2)),
  E K_ij² = a(T − a)/(T(T − 1)(T + 2)) and E[tr S·tr S⁻¹] = (Td² − 2d)/(T − d − 1) for the Wishart
  S = XᵀX. p = 1 gives m = 1 (replace), p = 0 gives E_n = c; m ≈ p² + p(1 − p)d/(T − d) for large T.

Ridge learners (``ridge_theory``, isotropic Σ and ``replace`` only): with R = (S + λT)⁻¹S, the
learner is R·ŵ_n^OLS, so E_n(λ) = ‖w0‖²·λ²g₂ + E_{n−1}·(1 − 2λg₁ + λ²g₂) + σ²γ(g₁ − λg₂), where
γ = d/T, E_{n−1} = n·c the inherited synthetic error (0 at n = 0), and g₁ = E[1/(s + λ)],
g₂ = E[1/(s + λ)²] over the Marchenko–Pastur law of the eigenvalues s of XᵀX/T: a deterministic
equivalent ("≃", as in Dohmatob et al.'s ridge results), exact as d, T → ∞ with d/T fixed; within
1% of a long simulation at d = 50, T = 200 (tested).
No closed form is given (``None``) for ridge with ``accumulate``, ``mix`` or a power-law spectrum.

Adaptive regularization (Dohmatob et al., Sec. 4–5: the optimal ridge grows with the number of
synthetic generations in the training data). Implemented: λ_n = (E_n^inherited + σ²d/N)/‖w0‖²,
the classical isotropic optimum σ²d/(N‖w0‖²) with the label noise raised by the error the
generation's data inherit from synthetic labels, E_n^inherited = E_n^OLS − σ²d/(N − d − 1) (n·c
for replace). It is the per-direction optimum at the bulk of the spectrum; on the
Marchenko–Pastur error it is within 0.3% of the best single λ for replace at d = 50, T = 200,
generations 0–20 (tested). It is an oracle rule (it knows σ, ‖w0‖ and the generation); the
paper's λ ∝ T^(−ℓ_crit) for power-law spectra is not implemented.

References
----------
Dohmatob, Feng & Kempe, "Model Collapse Demystified: The Case of Regression", NeurIPS 2024
(arXiv:2402.07712).
Gerstgrasser et al., "Is Model Collapse Inevitable? Breaking the Curse of Recursion by
Accumulating Real and Synthetic Data" (2024, arXiv:2404.01413).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from .backends.base import failing

REGIMES = ("replace", "accumulate", "mix")
_Z95 = 1.959963984540054
_CHUNK_ENTRIES = 1 << 22  # floats in one batch of design matrices (reps × T × d): 32 MiB


@dataclass(frozen=True)
class Regime:
    """What generation n ≥ 1 trains on: ``replace``, ``accumulate`` or ``mix`` with synthetic share p."""

    name: str
    share: float = 1.0  # synthetic share of the training set (mix only)

    @classmethod
    def parse(cls, spec: str) -> Regime:
        """``"replace"``, ``"accumulate"`` or ``"mix:P"`` (P in [0, 1], the synthetic share)."""
        name, _, arg = spec.strip().partition(":")
        if name not in REGIMES:
            raise ValueError(f"unknown regime {spec.strip()!r}; choose from replace, accumulate, mix:P (P = synthetic share)")
        if name != "mix":
            if arg:
                raise ValueError(f"regime {name!r} takes no argument, got {spec.strip()!r}")
            return cls(name)
        try:
            share = float(arg)
        except ValueError:
            raise ValueError(f"regime {spec.strip()!r}: mix needs its synthetic share, e.g. mix:0.5") from None
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"regime {spec.strip()!r}: the synthetic share must be in [0, 1]")
        return cls("mix", share)

    @property
    def label(self) -> str:
        return f"mix:{self.share:g}" if self.name == "mix" else self.name

    def synthetic_rows(self, T: int) -> int:
        """Synthetic samples in a generation n ≥ 1 training set of ``replace``/``mix`` (T in all)."""
        return int(round(self.share * T)) if self.name == "mix" else T


@dataclass(frozen=True)
class Learner:
    """The model whose test error is reported: ``ols``, ``ridge`` with a fixed λ, or ``adaptive`` ridge."""

    kind: str = "ols"
    ridge: float = 0.0

    @property
    def label(self) -> str:
        return f"ridge:{self.ridge:g}" if self.kind == "ridge" else self.kind


@dataclass(frozen=True)
class Setup:
    """The data-generating process and the sizes (see the module docstring)."""

    d: int = 50
    T: int = 200
    sigma: float = 1.0
    generations: int = 10
    spectrum: float = 0.0  # power-law exponent α of Σ's eigenvalues (0: Σ = I)

    def problems(self) -> list[tuple[str, str]]:
        return failing(
            (self.d >= 1, "d", "must be >= 1"),
            (self.T >= self.d + 2, "T", f"must be >= d + 2 = {self.d + 2} (least squares needs T > d + 1)"),
            (math.isfinite(self.sigma) and self.sigma >= 0, "sigma", "must be a finite number >= 0"),
            (self.generations >= 0, "generations", "must be >= 0"),
            (math.isfinite(self.spectrum) and self.spectrum >= 0, "spectrum", "the power-law exponent must be finite, >= 0"),
        )

    def eigenvalues(self) -> np.ndarray:
        """Σ's eigenvalues (Σ is diagonal): all 1, or k^(−α) scaled to sum d."""
        eig = np.arange(1, self.d + 1, dtype=np.float64) ** -self.spectrum
        return eig * self.d / eig.sum()


def parse_regimes(specs: str) -> list[Regime]:
    """``"replace,accumulate,mix:0.5"`` → regimes (at least one, no repeats)."""
    regimes = list(dict.fromkeys(Regime.parse(s) for s in specs.split(",") if s.strip()))
    if not regimes:
        raise ValueError("regimes: give at least one of replace, accumulate, mix:P")
    return regimes


def parse_learners(ridge: str | None = None, adaptive: bool = False) -> list[Learner]:
    """OLS, plus a ridge learner per λ in ``ridge`` (comma-separated) and/or the adaptive one."""
    learners = [Learner()]
    for value in (ridge or "").split(","):
        if not value.strip():
            continue
        try:
            lam = float(value)
        except ValueError:
            raise ValueError(f"ridge: expected comma-separated numbers >= 0, got {value.strip()!r}") from None
        if not lam >= 0:  # also rejects nan
            raise ValueError(f"ridge: λ must be >= 0, got {value.strip()}")
        learners.append(Learner("ridge", lam))
    if adaptive:
        learners.append(Learner("adaptive"))
    return list(dict.fromkeys(learners))


def parse_spectrum(spec: str) -> float:
    """``"isotropic"`` → 0; ``"power:ALPHA"`` → ALPHA (Σ's eigenvalues ∝ k^(−ALPHA))."""
    name, _, arg = spec.strip().partition(":")
    if name == "isotropic" and not arg:
        return 0.0
    if name == "power":
        try:
            alpha = float(arg)
        except ValueError:
            alpha = -1.0
        if 0 < alpha < math.inf:
            return alpha
    raise ValueError(f"spectrum: expected isotropic or power:ALPHA with ALPHA > 0, got {spec!r}")


def ols_theory(regime: Regime, setup: Setup) -> np.ndarray:
    """Expected test error of the OLS model of generations 0..G (exact; see the module docstring)."""
    d, T, s2 = setup.d, setup.T, setup.sigma**2
    c = s2 * d / (T - d - 1)
    n = np.arange(setup.generations + 1)
    if regime.name == "replace":
        return (n + 1) * c
    if regime.name == "accumulate":
        k = n + 1.0
        return np.cumsum(s2 * d / (k * (k * T - d - 1)))
    a = regime.synthetic_rows(T)
    m = a * (a + 2) / (T * (T + 2)) + a * (T - a) * (T + 1) * (d - 1) / (T * (T + 2) * (T - 1) * (T - d - 1))
    return c * np.cumsum(m**n)


def training_size(regime: Regime, setup: Setup) -> np.ndarray:
    """Samples in the training set of generations 0..G."""
    n = np.arange(setup.generations + 1)
    return (n + 1) * setup.T if regime.name == "accumulate" else np.full(n.shape, setup.T)


def adaptive_ridge(regime: Regime, setup: Setup, w0_norm2: float = 1.0) -> np.ndarray:
    """λ_n = (E_n^inherited + σ²d/N_n)/‖w0‖² for generations 0..G (the module docstring's rule)."""
    d, s2 = setup.d, setup.sigma**2
    N = training_size(regime, setup)
    inherited = np.maximum(ols_theory(regime, setup) - s2 * d / (N - d - 1), 0.0)
    return (inherited + s2 * d / N) / w0_norm2


def _marchenko_pastur_g(lam: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """g₁ = E[1/(s + λ)], g₂ = E[1/(s + λ)²] for s ~ Marchenko–Pastur(γ < 1), unit variance.

    g₁ is the root of γλg² + (λ + 1 − γ)g − 1 = 0 (written to be stable as λ → 0, where
    g₁ → 1/(1 − γ)); g₂ = −dg₁/dλ by implicit differentiation.
    """
    q = lam + 1 - gamma
    g1 = 2 / (q + np.sqrt(q * q + 4 * gamma * lam))
    g2 = (gamma * g1 * g1 + g1) / (2 * gamma * lam * g1 + q)
    return g1, g2


def ridge_theory(regime: Regime, setup: Setup, ridge: np.ndarray, w0_norm2: float = 1.0) -> np.ndarray | None:
    """Deterministic-equivalent test error of ridge learners (λ per generation) for ``replace`` on
    isotropic inputs; ``None`` where no closed form is given."""
    if regime.name != "replace" or setup.spectrum != 0:
        return None
    gamma = setup.d / setup.T
    inherited = ols_theory(regime, setup) - setup.sigma**2 * setup.d / (setup.T - setup.d - 1)  # n·c
    lam = np.asarray(ridge, dtype=np.float64)
    g1, g2 = _marchenko_pastur_g(lam, gamma)
    return w0_norm2 * lam**2 * g2 + inherited * (1 - 2 * lam * g1 + lam**2 * g2) + setup.sigma**2 * gamma * (g1 - lam * g2)


def learner_ridge(learner: Learner, regime: Regime, setup: Setup, w0_norm2: float = 1.0) -> np.ndarray:
    """λ of ``learner`` at generations 0..G (0 for OLS)."""
    if learner.kind == "adaptive":
        return adaptive_ridge(regime, setup, w0_norm2)
    return np.full(setup.generations + 1, learner.ridge if learner.kind == "ridge" else 0.0)


def theory(learner: Learner, regime: Regime, setup: Setup, w0_norm2: float = 1.0) -> np.ndarray | None:
    """Expected test error of ``learner`` at generations 0..G, or ``None`` where not derived."""
    if learner.kind == "ols":
        return ols_theory(regime, setup)
    return ridge_theory(regime, setup, learner_ridge(learner, regime, setup, w0_norm2), w0_norm2)


def ground_truth(setup: Setup, seed: int) -> np.ndarray:
    """w0: a uniformly random unit vector, drawn from ``seed``."""
    w0 = np.random.default_rng([seed, 0]).standard_normal(setup.d)
    return w0 / np.linalg.norm(w0)


def null_error(setup: Setup, seed: int) -> float:
    """Test error of the model that predicts 0, w0ᵀΣw0: a collapsed model can do worse."""
    return float((ground_truth(setup, seed) ** 2 * setup.eigenvalues()).sum())


def simulate(
    regime: Regime, setup: Setup, learners: list[Learner], *, reps: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """Test errors ``(reps, generations + 1)`` of each learner (by label), ``reps`` independent chains.

    Vectorized over replications; only the sufficient statistics XᵀX and Xᵀy of a training set are
    kept (accumulate sums them over generations). The random stream depends on ``seed`` and the
    regime, not on which other regimes or learners are run.
    """
    eig = setup.eigenvalues()
    w0 = ground_truth(setup, seed)
    out = {learner.label: np.empty((reps, setup.generations + 1)) for learner in learners}
    ridges = {learner.label: learner_ridge(learner, regime, setup) for learner in learners}
    chunk = max(1, min(reps, _CHUNK_ENTRIES // (setup.T * setup.d)))
    for start in range(0, reps, chunk):
        rng = np.random.default_rng([seed, zlib.crc32(regime.label.encode()), start])
        errors = _simulate_chains(regime, setup, eig, w0, ridges, min(chunk, reps - start), rng)
        for label, err in errors.items():
            out[label][start : start + len(err)] = err
    return out


def _simulate_chains(regime, setup, eig, w0, ridges, reps, rng) -> dict[str, np.ndarray]:
    d, T = setup.d, setup.T
    scale = np.sqrt(eig)
    gram = np.zeros((reps, d, d))
    moment = np.zeros((reps, d))
    previous = np.broadcast_to(w0, (reps, d))  # the labelling model; w0 for generation 0
    errors = {label: np.empty((reps, setup.generations + 1)) for label in ridges}
    eye = np.eye(d)
    for n in range(setup.generations + 1):
        X = rng.standard_normal((reps, T, d)) * scale
        synthetic = 0 if n == 0 else (T if regime.name == "accumulate" else regime.synthetic_rows(T))
        y = setup.sigma * rng.standard_normal((reps, T))
        y[:, :synthetic] += np.einsum("rtd,rd->rt", X[:, :synthetic], previous)
        y[:, synthetic:] += X[:, synthetic:] @ w0
        if regime.name != "accumulate":
            gram[:] = 0.0
            moment[:] = 0.0
        Xt = np.ascontiguousarray(X.transpose(0, 2, 1))  # contiguous: batched BLAS, ~50x faster
        gram += Xt @ X
        moment += (Xt @ y[..., None])[..., 0]
        size = (n + 1) * T if regime.name == "accumulate" else T
        ols = np.linalg.solve(gram, moment[..., None])[..., 0]
        for label, lam in ridges.items():
            w = ols if lam[n] == 0 else np.linalg.solve(gram + lam[n] * size * eye, moment[..., None])[..., 0]
            errors[label][:, n] = ((w - w0) ** 2 * eig).sum(axis=1)
        previous = ols
    return errors


def run(
    setup: Setup, regimes: list[Regime], learners: list[Learner], *, reps: int = 200, seed: int = 0
) -> list[dict]:
    """One record per regime × learner × generation: simulated mean, its 95% CI (normal
    approximation over ``reps`` replications), the standard error, and the closed form (or None)."""
    problems = setup.problems() + failing((reps >= 2, "reps", "must be >= 2"))
    problems += failing(*((lr.ridge >= 0, "ridge", f"must be >= 0, got {lr.ridge:g}") for lr in learners))
    if problems:
        raise ValueError("; ".join(f"{key} {message}" for key, message in problems))
    w0_norm2 = 1.0  # ground_truth() draws a unit vector
    records = []
    for regime in regimes:
        sims = simulate(regime, setup, learners, reps=reps, seed=seed)
        for learner in learners:
            errors = sims[learner.label]
            mean = errors.mean(axis=0)
            se = errors.std(axis=0, ddof=1) / np.sqrt(reps)
            closed = theory(learner, regime, setup, w0_norm2)
            ridge = learner_ridge(learner, regime, setup, w0_norm2)
            for n in range(setup.generations + 1):
                records.append({
                    "regime": regime.label,
                    "learner": learner.label,
                    "ridge": float(ridge[n]),
                    "generation": n,
                    "test_error_sim": float(mean[n]),
                    "test_error_sim_ci95": [float(mean[n] - _Z95 * se[n]), float(mean[n] + _Z95 * se[n])],
                    "test_error_sim_se": float(se[n]),
                    "test_error_theory": None if closed is None else float(closed[n]),
                })
    return records


def format_table(records: list[dict]) -> str:
    """Markdown table of :func:`run`'s records; z = (simulated − theory) / standard error."""
    lines = [
        "| regime | learner | generation | λ | test error (sim, mean ± 95% CI) | theory | z |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lo, hi = r["test_error_sim_ci95"]
        th = r["test_error_theory"]
        z = "" if th is None or r["test_error_sim_se"] == 0 else f"{(r['test_error_sim'] - th) / r['test_error_sim_se']:+.1f}"
        lines.append(
            f"| {r['regime']} | {r['learner']} | {r['generation']} | {r['ridge']:.3g} "
            f"| {r['test_error_sim']:.4f} ± {(hi - lo) / 2:.4f} | {'—' if th is None else f'{th:.4f}'} | {z} |"
        )
    return "\n".join(lines)
