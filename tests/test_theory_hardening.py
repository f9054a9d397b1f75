"""The theory never reports a wrong number as converged.

1. ``kappa_s^2, kappa_i^2`` (docs/theory.md, T2) to a stated accuracy at small ``t`` for kinked
   activations (checked against independent adaptive quadratures of closed-form ``sbar``).
2. Activations with an undeclared jump or kink are refused, as the simulator refuses them.
3. Results below the physical bounds (``train >= 0``, ``test >= a^2``) are not converged;
   round-off negatives of the train error are clipped to 0 (theory and simulator).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

import rfdsm
from rfdsm import Setting, theory
from rfdsm.activations import QuadratureError, get_activation
from rfdsm.theory.common import ge_constants

INF = math.inf
_PHI = lambda u: math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)  # noqa: E731
_C0 = 1.0 / math.sqrt(2.0 * math.pi)


def _relu_sbar(c, s):
    # E max(c + s z, 0) for the non-centred ReLU
    return c * special.ndtr(c / s) + s * _PHI(c / s)


def _hardtanh_sbar(c, s):
    # E clip(X, -1, 1) = -1 + int_{-1}^{1} P(X > x) dx, X ~ N(c, s^2); int Phi = u Phi(u) + phi(u)
    G = lambda u: u * special.ndtr(u) + _PHI(u)  # noqa: E731
    return -1.0 + s * (G((c + 1.0) / s) - G((c - 1.0) / s))


def _reference_kappa(sbar, mu0, mu1, mu_star2, kinks, t):
    """``(kappa_s^2, kappa_i^2)`` by scipy's adaptive quadrature of ``E_u[(sbar(a u) - mu0)^2]``,
    split at the kinks of ``sbar(a u)`` and at its bending scale ``sqrt(h)/a`` around them."""
    a, h = math.exp(-t), -math.expm1(-2.0 * t)
    s = math.sqrt(h)
    pts = sorted({-12.0, 12.0, *[k / a + f * s / a for k in kinks for f in (-8, -2, -0.5, 0, 0.5, 2, 8)]})
    total = 0.0
    for lo, hi in zip(pts[:-1], pts[1:]):
        val, _ = integrate.quad(lambda u: (sbar(a * u, s) - mu0) ** 2 * _PHI(u), lo, hi,
                                epsabs=1e-15, epsrel=1e-13, limit=400)
        total += val
    ks = total - a * a * mu1 * mu1
    return ks, mu_star2 - ks


@pytest.fixture(scope="module")
def kinked_user_activations():
    relu_plain = rfdsm.register_activation("hardening_relu_test", lambda x: np.maximum(x, 0.0),
                                           kinks=(0.0,), overwrite=True)
    hardtanh = rfdsm.register_activation("hardening_hardtanh_test",
                                         lambda x: np.clip(x, -1.0, 1.0), kinks=(-1.0, 1.0),
                                         overwrite=True)
    return relu_plain, hardtanh


@pytest.mark.parametrize("t", [1e-4, 1e-3, 0.1])
def test_kappa_matches_independent_quadrature(t, kinked_user_activations):
    relu_plain, hardtanh = kinked_user_activations
    mu1_relu, mu_star2_relu = 0.5, 0.25 - 1.0 / (2.0 * math.pi)
    mu1_ht = math.erf(1.0 / math.sqrt(2.0))
    # E clip(g)^2 = E[g^2; |g| < 1] + P(|g| > 1) = mu1_ht - 2 phi(1) + (1 - mu1_ht)
    mu_star2_ht = 1.0 - 2.0 * _PHI(1.0) - mu1_ht ** 2
    cases = [("relu", lambda c, s: _relu_sbar(c, s) - _C0, 0.0, mu1_relu, mu_star2_relu, (0.0,)),
             (relu_plain.name, _relu_sbar, _C0, mu1_relu, mu_star2_relu, (0.0,)),
             (hardtanh.name, _hardtanh_sbar, 0.0, mu1_ht, mu_star2_ht, (-1.0, 1.0))]
    for name, sbar, mu0, mu1, mu_star2, kinks in cases:
        k = ge_constants(Setting(1, 1, m=4, t=t, activation=name))
        ks, ki = _reference_kappa(sbar, mu0, mu1, mu_star2, kinks, t)
        # the reference is good to ~1e-14 absolute; kappa_i^2 ~ h/4 is small at small t
        assert k.kappa_s2 == pytest.approx(ks, rel=1e-10, abs=1e-13), name
        assert k.kappa_i2 == pytest.approx(ki, rel=1e-8, abs=1e-13), name
        # the stated error bound is honest and small
        assert abs(k.kappa_i2 - ki) <= k.error_i + 1e-13
        assert k.error_i <= 1e-13


def test_relu_small_t_theory_carries_the_constants_error():
    s = Setting(psi_n=1, psi_p=3, m=4, t=1e-3, lam=0.01, activation="relu")
    r = theory(s)
    assert r.converged
    # simulation (d = 800, 3 seeds): 2.7829 +- 0.0046; before the fix the theory said 2.8988
    assert r.test == pytest.approx(2.7847, abs=5e-4)
    assert "closed form" in r.diagnostics["constants_method"]
    assert r.residual >= r.diagnostics["constants_effect"]


@pytest.mark.slow
def test_relu_small_t_against_simulation():
    s = Setting(psi_n=1, psi_p=3, m=math.inf, t=1e-3, lam=0.01, activation="relu")
    th = theory(s)
    sim = rfdsm.simulate(s, d=400, seed=0, n_seeds=3)  # ~3 s
    # before the fix: score 792 against 867.8 +- 1.5 (9 %); now 867.8
    assert abs(sim.score - th.score) <= 0.01 * th.score + 3 * sim.score_se


@pytest.mark.parametrize("fn", [np.sign, lambda x: np.clip(x, -1.0, 1.0)], ids=["sign", "hardtanh"])
@pytest.mark.parametrize("m", [1, 4, math.inf])
def test_undeclared_kinks_are_refused(fn, m):
    rfdsm.register_activation("hardening_undeclared_test", fn, overwrite=True)
    s = Setting(psi_n=1, psi_p=3, m=m, t=0.01, lam=0.01, activation="hardening_undeclared_test")
    with pytest.raises(ValueError, match=r"kinks=\(x0, \.\.\.\)"):
        theory(s)


def test_builtin_quadrature_failure_gives_no_kink_advice():
    with pytest.raises(QuadratureError) as exc:
        get_activation("tanh").quadrature_order(np.array([0.3]), np.array([1e6]), 2)
    assert "kinks" not in str(exc.value)


@pytest.mark.parametrize("act", ["tanh", "relu"])
@pytest.mark.parametrize("m", [2, 3, 16, math.inf])
@pytest.mark.parametrize("t", [1e-40, 1e-36])
def test_tiny_t_is_never_an_unphysical_converged_result(act, m, t):
    s = Setting(psi_n=1, psi_p=1, m=m, t=t, lam=0.0, activation=act)
    r = theory(s)  # used to return test = -6.6e39 (converged) or raise ZeroDivisionError
    assert not r.converged
    assert r.diagnostics["warning"]


def test_physical_bounds():
    from rfdsm.theory.common import physical_bounds

    s = Setting(1, 1, t=0.1)
    assert physical_bounds(s, -5e-12, 0.9) == (0.0, None)  # round-off: clipped
    train, warning = physical_bounds(s, -1e-3, 0.9)
    assert train == -1e-3 and "train" in warning
    train, warning = physical_bounds(s, 0.1, s.bayes * (1 - 1e-6))
    assert "Bayes" in warning


def test_simulated_ridgeless_train_is_clipped_not_negative():
    # seed 1 gave train = -4.4e-16 (the interpolating fit, p > n)
    r = rfdsm.simulate(Setting(psi_n=0.5, psi_p=2, m=1, t=0.1, lam=0.0), d=40, seed=0, n_seeds=4)
    assert all(row["train"] >= 0.0 for row in r.per_seed)


# --- metrics at a finite training time: every path carries them -----------------------------
_FLOW = Setting(psi_n=2, psi_p=4, m=INF, t=0.1, lam=0.01)
_DIAG = ("test_emp", "beta", "bias2", "variance")


@pytest.mark.parametrize("m", [INF, 4])
def test_theory_curve_at_finite_tau_carries_the_metrics_of_theory(m):
    settings = [_FLOW.replace(m=m, tau=tau) for tau in (1.0, 10.0, 100.0)]
    curve = rfdsm.theory.theory_curve(settings, metrics=list(_DIAG))
    for s, r in zip(settings, curve):
        one = theory(s, metrics=list(_DIAG))
        # one continuation path for the curve: the same numbers up to rounding
        assert r.metrics and r.metrics == pytest.approx(one.metrics, rel=1e-12)
        assert r.diagnostics.get("metrics_without_limit") == \
            one.diagnostics.get("metrics_without_limit")
        # a curve of one point is that point's own solve, to the last bit
        assert rfdsm.theory.theory_curve([s], metrics=list(_DIAG))[0].metrics == one.metrics
    assert ("test_emp" in curve[0].metrics) == (m == INF)


def test_sweep_at_finite_tau_has_the_theory_metrics(tmp_path):
    from rfdsm.sweep import run_sweep

    cfg = {"sweep": {"name": "flowdiag", "evaluators": ["theory"], "curve": "psi_n"},
           "grid": {"psi_n": [2, 3], "psi_p": 4, "m": "inf", "t": 0.1, "lam": 0.01,
                    "tau": [10.0, 100.0]},
           "theory": {"metrics": list(_DIAG)}}
    df = run_sweep(cfg, tmp_path / "s", workers=1, progress=False)
    assert len(df) == 4 and df[list(_DIAG)].notna().all().all()
    for row in df.itertuples(index=False):
        one = theory(_FLOW.replace(psi_n=row.psi_n, tau=row.tau), metrics=list(_DIAG))
        assert [getattr(row, k) for k in _DIAG] == pytest.approx(
            [one.metrics[k] for k in _DIAG], rel=1e-12)


def test_all_metrics_at_finite_tau_name_what_is_missing():
    res = theory(_FLOW.replace(m=4, tau=10.0), metrics="all")
    assert {"beta", "bias2", "variance"} <= set(res.metrics) and "test_emp" not in res.metrics
    assert "tau = inf only" in res.diagnostics["metrics_without_limit"]["test_emp"]
    at_inf_m = theory(_FLOW.replace(tau=10.0), metrics="all")  # m = inf: test_emp = train
    assert "metrics_without_limit" not in at_inf_m.diagnostics


# --- diagnostics of the ridgeless fit at the interpolation threshold --------------------------
_THRESHOLD = Setting(psi_n=1, psi_p=4, m=4, t=0.1, lam=0.0)  # p = N = m n


def test_beta_at_the_threshold_is_the_ridgeless_limit():
    res = theory(_THRESHOLD, metrics="all")
    beta, bias2 = res.metrics["beta"], res.metrics["bias2"]
    assert res.converged and res.test == INF and res.diagnostics.get("divergent")
    assert math.isfinite(beta) and bias2 == pytest.approx((1 - beta) ** 2, rel=1e-14)
    assert res.metrics["variance"] == INF and res.metrics["test_emp"] == INF
    # lam -> 0+: beta(lam) approaches it from below as sqrt(lam) (ratio 10 per factor 100)
    b = {lam: theory(_THRESHOLD.replace(lam=lam), metrics=["beta"]).metrics["beta"]
         for lam in (1e-8, 1e-10)}
    assert b[1e-8] < b[1e-10] < beta
    assert (beta - b[1e-8]) / (beta - b[1e-10]) == pytest.approx(10.0, rel=0.01)


def test_beta_at_the_threshold_against_the_flow():
    # a long training time at lam = 0 approaches the same limit, as 1/sqrt(tau)
    beta = theory(_THRESHOLD, metrics=["beta"]).metrics["beta"]
    b = {tau: theory(_THRESHOLD.replace(tau=tau), metrics=["beta"]).metrics["beta"]
         for tau in (1e6, 1e8)}
    assert b[1e6] < b[1e8] < beta
    assert (beta - b[1e6]) / (beta - b[1e8]) == pytest.approx(10.0, rel=0.02)


@pytest.mark.parametrize("s", [Setting(psi_n=4, psi_p=4, m=1, t=0.1, lam=0.0),
                               Setting(psi_n=0.25, psi_p=4, m=4, t=0.1, lam=0.0,
                                       activation="linear")])
def test_threshold_beta_other_cases(s):
    from rfdsm.theory.common import ge_spectrum
    from rfdsm.theory.diagnostics import _threshold_beta

    beta = theory(s, metrics=["beta"]).metrics["beta"]
    assert math.isfinite(beta)
    if s.m == 1:  # the finite-m limit at m = 1 is the m = 1 solver's (G2) at kappa = 0
        assert _threshold_beta(s, ge_spectrum(s, 400)) == pytest.approx(beta, rel=1e-12)
    else:  # linear activation, p_eff = d = N: the same sqrt(lam) approach
        b = {lam: theory(s.replace(lam=lam), metrics=["beta"]).metrics["beta"]
             for lam in (1e-8, 1e-10)}
        assert b[1e-8] < b[1e-10] < beta
        assert (beta - b[1e-8]) / (beta - b[1e-10]) == pytest.approx(10.0, rel=0.01)
