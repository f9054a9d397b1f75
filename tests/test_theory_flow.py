"""The asymptotic theory at a finite training time tau (docs/theory.md, Sec. 10, eqs. D1-D12).

Checked against the exact simulator over tau (itself checked against explicit gradient
descent, tests/test_training_time.py) by the d -> inf extrapolation of `rfdsm validate`, and
against the ridge solvers at long times, the closed first order at short times, and the
derivative formulas of Secs. 4 and 8 at equal ridges.
"""

import math

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.estimators import flow_filter
from rfdsm.theory import solver_for, theory, theory_curve
from rfdsm.theory.common import ge_constants, ge_spectrum
from rfdsm.theory.finite_m import solve_finite_m
from rfdsm.theory.flow import _equations, solve_flow, solve_flow_curve
from rfdsm.theory.flow_poles import filter_error, ridges, talbot_half
from rfdsm.theory.flow_traces import finite_m_errors, minf_errors
from rfdsm.theory.m1 import solve_m1
from rfdsm.theory.minf import solve_minf
from rfdsm.analysis.validate import summarize, validation_table

INF = math.inf
UNDER, OVER = (2.0, 0.5), (1.0, 3.0)  # (psi_n, psi_p): p < n and p > n


def errors(r):
    return np.array([r.train, r.test])


# ------------------------------------------------------------------ the filter (D1)-(D3)
@pytest.mark.parametrize("N, bound", [(20, 5e-10), (24, 3e-12), (26, 3e-13), (28, 2e-14)])
def test_partial_fractions_are_the_flow_filter(N, bound):
    assert filter_error(N) < bound
    u = np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 300)])
    for lam in (0.0, 0.01, 1.0):
        for ctau in (1e-3, 1.0, 30.0, 1e4):
            z, beta = ridges(lam, ctau, N)
            assert np.all(z.imag > 0)
            g = 2.0 * np.real((beta[None, :] / (u[:, None] - z[None, :])).sum(axis=1))
            exact = flow_filter(u, lam, ctau)
            np.testing.assert_allclose(g, exact, rtol=filter_error(N) * (1 + 1e-6) + 1e-14)
    s, beta = talbot_half(N)
    assert 2.0 * beta.sum().real == pytest.approx(1.0, abs=1e-14)  # g(u) ~ 1/u at large u


def test_bad_contour_and_curve_arguments():
    with pytest.raises(ValueError, match="even"):
        talbot_half(7)
    with pytest.raises(ValueError, match="tau only"):
        solve_flow_curve([Setting(2, 0.5, tau=1.0), Setting(2, 1.0, tau=2.0)])


# ------------------------------------------------------------------ routing
@pytest.mark.parametrize("m, solver", [(1, solve_m1), (4, solve_finite_m), (INF, solve_minf)])
def test_tau_inf_keeps_the_ridge_solvers(m, solver):
    s = Setting(*OVER, m=m, lam=0.01)
    assert solver_for(s) is solver
    assert errors(theory(s)).tolist() == [solver(s).train, solver(s).test]
    assert solver_for(s.replace(tau=10.0)) is solve_flow


# ------------------------------------------------- equal ridges: (T15)-(T16), (F10)-(F11)
@pytest.mark.parametrize("m", [1, 4, INF])
@pytest.mark.parametrize("kw", [dict(psi_n=2, psi_p=0.5, lam=0.01),
                                dict(psi_n=1, psi_p=3, lam=0.05),
                                dict(psi_n=1, psi_p=3, lam=1e-3)])  # m = 1: form (F5)
def test_equal_ridges_reduce_to_the_derivative_formulas(m, kw):
    """One real ridge ``-z = lam`` with weight 1 (two conjugate halves of 1/2): the two-pole
    sums of (D5) at ``j = k`` must be the ridge solvers' second-order formulas."""
    s = Setting(m=m, t=0.1, **kw)
    ref = solve_minf(s) if m == INF else solve_finite_m(s)
    assert ref.converged
    sp = ge_spectrum(s, ref.diagnostics["nodes"])
    eqs = _equations(s, sp, probe=False)
    z, beta = np.array([[-s.lam + 0j]]), np.array([0.5 + 0j])
    if m == INF:
        out = minf_errors(eqs.rule, eqs, np.array([[ref.state + 0j]]), z, beta, s)
    else:
        assert ref.state[0] == ("above" if eqs.above else "below")
        om = np.array(ref.state[1:], dtype=complex).reshape(2, 1, 1)
        out = finite_m_errors(eqs.rule, eqs, om, z, beta, s)
    out = np.ravel(out)
    np.testing.assert_allclose(out[:2], [ref.train, ref.test], rtol=1e-10, atol=1e-13)
    # the third value, -(1/d) tr(B V^T), is h beta of the diagnostics at tau = inf (eq. G2),
    # whose own rule is resolved to the quadrature tolerance 1e-9
    h_beta = s.h * theory(s, metrics=("beta",)).metrics["beta"]
    assert out[2] == pytest.approx(h_beta, rel=1e-9, abs=1e-13)


# ------------------------------------------------------------------ long and short times
@pytest.mark.parametrize("m", [1, 4, INF])
@pytest.mark.parametrize("shape, lam", [(UNDER, 0.01), (UNDER, 0.0), (OVER, 0.01), (OVER, 0.0)])
def test_long_training_reaches_the_ridge_limit(m, shape, lam):
    s = Setting(*shape, m=m, t=0.1, lam=lam)
    ref = theory(s)
    curve = theory_curve([s.replace(tau=tau) for tau in (10.0, 100.0, 1e3, 1e8)])
    assert ref.converged and all(r.converged for r in curve)
    np.testing.assert_allclose(errors(curve[-1]), errors(ref), rtol=1e-9, atol=1e-12)
    gaps = [np.abs(errors(r) - errors(ref)).max() for r in curve]
    assert gaps[0] > gaps[1] > gaps[2] or gaps[2] < 1e-12  # the approach is monotone here


@pytest.mark.parametrize("m", [1, 4, INF])
@pytest.mark.parametrize("shape", [UNDER, OVER])
def test_short_times_first_order(m, shape):
    """``B = -c tau C^T + O(tau^2)``: ``1 - test = 2 c tau psi_p <T>``, and the train error
    sees in addition the noise of the ``N = m n`` samples, ``2 c tau psi_p <Sigma>/(m psi_n)``
    (``<T> = mu1^2 h``, ``<Sigma> = mu1^2 + mu_star^2`` on the MP law of mean 1)."""
    s = Setting(*shape, m=m, t=0.1, lam=0.01)
    k, c = ge_constants(s), 2.0 * s.h / s.psi_p
    lin_test = s.psi_p * k.mu1 ** 2 * s.h
    noise = 0.0 if m == INF else s.psi_p * (k.mu1 ** 2 + k.mu_star2) / (m * s.psi_n)
    lin_train = lin_test + noise
    dev = {}
    for tau in (1e-3, 1e-5):
        r = theory(s.replace(tau=tau))
        assert r.converged
        dev[tau] = np.array([(1 - r.train) / (2 * c * tau) / lin_train - 1,
                             (1 - r.test) / (2 * c * tau) / lin_test - 1])
    assert np.all(np.abs(dev[1e-5]) < 2e-5)
    np.testing.assert_allclose(dev[1e-3] / dev[1e-5], 100.0, rtol=0.01)  # the next order: tau


def test_train_decreases_along_the_flow_and_bounds_hold():
    for m in (1, 4, INF):
        s = Setting(*OVER, m=m, t=0.1, lam=0.0)
        curve = theory_curve([s.replace(tau=tau) for tau in np.geomspace(0.1, 1e4, 30)])
        train, test = np.array([errors(r) for r in curve]).T
        assert all(r.converged for r in curve)
        assert np.all(np.diff(train) < 1e-12) and np.all(train >= 0)
        assert np.all(test >= s.bayes)


def test_a_curve_is_its_points():
    s = Setting(*UNDER, m=4, t=0.1, lam=0.01)
    taus = [100.0, 1.0, INF, 10.0, 10.0, 1e4]
    curve = theory_curve([s.replace(tau=tau) for tau in taus])
    assert [r.setting.tau for r in curve] == taus
    for r in curve:
        np.testing.assert_allclose(errors(r), errors(theory(r.setting)), rtol=1e-11, atol=1e-14)
    assert curve[2].diagnostics["solver"] == theory(s).diagnostics["solver"]


def test_unresolved_contour_is_not_converged():
    s = Setting(*OVER, m=4, t=0.1, lam=0.01, tau=100.0)
    r = theory(s, poles=(8, 6))
    assert not r.converged and "pole" in r.diagnostics["warning"]
    assert r.diagnostics["pole_error"] > 1e-9 and r.residual >= r.diagnostics["pole_error"]
    good = theory(s)
    assert good.converged and good.diagnostics["pole_error"] <= 1e-9
    assert good.diagnostics["poles"] == 28 and good.diagnostics["quadrature_error"] <= 1e-9


# ------------------------------------------------------------------ theory vs simulation
SIM = [(m, shape, lam, tau) for m in (1, 4, INF)
       for shape, lam, tau in ((UNDER, 0.01, 10.0), (OVER, 0.0, 100.0))] + [
    (INF, UNDER, 0.0, 1e4), (1, OVER, 0.01, 1.0), (4, OVER, 0.0, 1e3)]


def _check(settings, ds, n_seeds):
    assert all(theory(s).converged for s in settings)
    df = validation_table(settings, ds=ds, n_seeds=n_seeds, seed=0)
    # an interpolating fit (ridgeless, p > N, long times) has train ~ 0 in every seed: no
    # standard error to extrapolate with, so both must be ~0 instead
    keys = ["m", "psi_n", "psi_p", "lam", "tau", "quantity"]
    zero = df.groupby(keys)["sim"].transform(lambda v: v.abs().max() < 1e-10)
    assert np.all(df.loc[zero, "theory"].abs() < 1e-10)
    wide, ok = summarize(df.loc[~zero])
    assert ok, wide.loc[~wide["ok"], ["m", "psi_n", "psi_p", "lam", "tau", "quantity", "theory",
                                      "intercept", "se", "reason"]].to_string()


def test_matches_simulation():
    """m in {1, 4, inf}, p < n and p > n, lam = 0 and 0.01, tau from 1 to 1e4: the d -> inf
    limit of the simulations at d = 48, 80, 128 (`rfdsm validate`'s weighted 1/d fit)."""
    _check([Setting(*shape, m=m, t=0.1, lam=lam, tau=tau) for m, shape, lam, tau in SIM],
           (48, 80, 128), 3)


@pytest.mark.slow
def test_matches_simulation_over_the_whole_flow():
    """Every tau in {1, 10, 100, 1e3, 1e4}, m in {1, 4, inf}, both shapes, lam in {0, 1e-3},
    d = 64 ... 256 (each (setting, d, seed) one fit for all tau)."""
    settings = [Setting(*shape, m=m, t=0.1, lam=lam, tau=tau)
                for m in (1, 4, INF) for shape in (UNDER, OVER) for lam in (0.0, 1e-3)
                for tau in (1.0, 10.0, 100.0, 1e3, 1e4)]
    _check(settings, (64, 96, 128, 192, 256), 4)


def test_structured_data_at_finite_tau_is_refused():
    from rfdsm.data import subspace

    with pytest.raises(ValueError, match="finite tau"):
        rfdsm.theory(Setting(*UNDER, tau=5.0, data=subspace(0.5)))


def test_a_time_beyond_double_precision_is_the_minimiser_or_not_converged():
    # away from the threshold tau = 1e40 is the ridge minimiser; ridgeless at p = n the errors
    # grow without bound, so no double-precision answer exists: flagged, and quickly
    ok = rfdsm.theory(Setting(2, 2.01, m=1, t=0.1, lam=0.0, tau=1e40))
    ridge = rfdsm.theory(Setting(2, 2.01, m=1, t=0.1, lam=0.0))
    assert ok.converged and ok.test == pytest.approx(ridge.test, rel=1e-8)
    at = rfdsm.theory(Setting(2, 2, m=1, t=0.1, lam=0.0, tau=1e40))
    assert not at.converged and "double precision" in at.diagnostics["warning"]


def test_diagnostics_at_finite_tau_are_the_limit_of_the_simulation():
    # beta, bias2, variance from the flow's first-order trace (docs/theory.md Sec. 10-11);
    # test_emp = train at m = inf; finite-m test_emp has no finite-tau limit yet (refused)
    from rfdsm.analysis.bias_variance import DIAGNOSTICS

    settings = [Setting(2, 4, m=4, t=0.1, lam=1e-3, tau=10.0),
                Setting(0.5, 4, m=INF, t=0.1, lam=0.0, tau=100.0)]
    df = validation_table(settings, ds=(48, 80, 128), n_seeds=4, metrics=DIAGNOSTICS)
    assert set(df["quantity"]) >= {"beta", "bias2", "variance"}
    assert set(df[df["m"] == INF]["quantity"]) >= {"test_emp"}
    assert "test_emp" not in set(df[df["m"] == 4]["quantity"])
    wide, ok = summarize(df)
    assert ok, wide.loc[~wide["ok"], ["m", "tau", "quantity", "theory", "intercept", "se",
                                      "reason"]].to_string()
    res = theory(settings[0], metrics=DIAGNOSTICS)
    assert res.metrics["bias2"] + res.metrics["variance"] == pytest.approx(res.score, rel=1e-12)
