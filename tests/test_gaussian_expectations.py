"""Gaussian expectations of an activation at any scale and shift.

``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)]/sqrt(k!)`` and ``E sigma(mu + s z)^2`` feed the
simulator's Hermite moments (training at m = inf, population moments with per-feature means
and scales) and the theory's Gaussian-equivalence constants for structured data; the scale
``s`` is the preactivation's standard deviation, ``sqrt`` of a diagonal entry of
``W Gamma W^T/d``: about 2 for ``spectrum(1:4)``, 16 for ``spectrum(1:312)``.
"""

import math

import numpy as np
import pytest
from scipy import integrate

import rfdsm
from rfdsm import Setting, simulate, theory
from rfdsm.activations import get_activation

SQ2PI = math.sqrt(2 * math.pi)

#: (mu, s): the scales of structured data, a spike, shifts up to 20
GRID = [(0.7, 6.0), (-1.3, 4.0), (3.0, 16.0), (-20.0, 16.0), (5.0, 100.0), (20.0, 8.0),
        (-7.0, 50.0)]


def reference(f, mu, s, k=0, kinks=()):
    """``E[f(mu + s z) He_k(z)]/sqrt(k!)`` by QUADPACK in z, split where ``f`` bends (its kinks
    and, for the saturating built-ins, |x| <= 3), so that each piece is smooth on its own
    scale."""
    hek = np.polynomial.hermite_e.HermiteE.basis(k)
    g = lambda z: f(mu + s * z) * hek(z) * math.exp(-z * z / 2) / SQ2PI  # noqa: E731
    cuts = {0.0} | {(x - mu) / s for x in (-3.0, -1.0, 1.0, 3.0, *kinks)}
    pts = [-np.inf, *sorted(c for c in cuts if abs(c) < 40), np.inf]
    total = sum(integrate.quad(g, lo, hi, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
                for lo, hi in zip(pts[:-1], pts[1:]))
    return total / math.sqrt(math.factorial(k))


def _check_against_reference(act, f, mu, s, K, kinks=(), tol=1e-9):
    beta, m2 = act.moments(np.array([mu]), np.array([s]), K)
    for k in range(K + 1):
        ref = reference(f, mu, s, k, kinks)
        assert beta[k, 0] == pytest.approx(ref, abs=tol), (k, mu, s)
    ref2 = reference(lambda x: f(x) ** 2, mu, s, 0, kinks)
    assert m2[0] == pytest.approx(ref2, abs=tol * (1 + ref2)), (mu, s)


@pytest.mark.parametrize("mu,s", GRID)
@pytest.mark.parametrize("name", ["tanh", "erf"])
def test_smooth_builtins_against_quad_at_any_scale_and_shift(name, mu, s):
    act = get_activation(name)
    _check_against_reference(act, lambda x: float(act.fn(np.asarray(x))), mu, s, 5)


@pytest.mark.parametrize("mu,s", [(0.4, 8.0), (-2.0, 16.0), (6.0, 60.0)])
def test_user_activations_at_large_scale(mu, s):
    # smooth (a logistic) and with a declared kink (softsign): Gauss-Hermite and the split
    # rule of width 10 in z do not resolve either at these scales
    smooth = rfdsm.register_activation("gexp_logistic", lambda x: 0.5 + 0.5 * np.tanh(0.5 * x),
                                       overwrite=True)
    _check_against_reference(smooth, lambda x: 0.5 + 0.5 * math.tanh(0.5 * x), mu, s, 4)
    kinked = rfdsm.register_activation("gexp_softsign", lambda x: x / (1.0 + np.abs(x)),
                                       kinks=(0.0,), overwrite=True)
    _check_against_reference(kinked, lambda x: x / (1.0 + abs(x)), mu, s, 4, kinks=(0.0,))


@pytest.mark.parametrize("name", ["linear", "relu", "erf"])
def test_closed_forms_are_exact_at_any_scale_and_shift(name):
    from rfdsm.activations import gaussian_expectations

    act = get_activation(name)
    f = lambda x: float(act.fn(np.asarray(x)))  # noqa: E731
    mu = np.array([p[0] for p in GRID])
    s = np.array([p[1] for p in GRID])
    r = gaussian_expectations(act, mu, s, 4)
    assert r.method == "closed form" and np.all(r.error == 0.0)
    for i, (m, sc) in enumerate(GRID):
        kinks = (0.0,) if name == "relu" else ()
        for k in range(5):
            ref = reference(f, m, sc, k, kinks)
            assert r.beta[k, i] == pytest.approx(ref, rel=1e-11, abs=1e-12), (k, m, sc)
        ref2 = reference(lambda x: f(x) ** 2, m, sc, 0, kinks)
        assert r.m2[i] == pytest.approx(ref2, rel=1e-11, abs=1e-12), (m, sc)


def test_error_estimate_and_vectorised_features():
    # one call for many features of different scales and shifts (as the population moments
    # make it): each element within its estimate, the estimate within the tolerance
    from rfdsm.activations import gaussian_expectations

    act = get_activation("tanh")
    rng = np.random.default_rng(1)
    mu = rng.uniform(-20, 20, 40)
    s = np.exp(rng.uniform(np.log(0.3), np.log(100.0), 40))
    r = gaussian_expectations(act, mu, s, 3)
    assert r.beta.shape == (4, 40) and r.m2.shape == (40,) and r.error.shape == (40,)
    assert np.all(r.error <= 1e-10 * (1 + np.sqrt(r.m2)) ** 2)
    for i in range(0, 40, 7):
        for k in range(4):
            ref = reference(np.tanh, mu[i], s[i], k)
            assert abs(r.beta[k, i] - ref) <= 1e-10, (k, mu[i], s[i])
    # per-element results do not depend on the other elements of the call
    one = gaussian_expectations(act, mu[5:6], s[5:6], 3)
    assert np.allclose(one.beta[:, 0], r.beta[:, 5], rtol=0, atol=1e-12)


def test_undeclared_jump_names_the_kinks_not_the_dimension():
    act = rfdsm.register_activation("gexp_step", lambda x: np.sign(x - 0.3), overwrite=True)
    with pytest.raises(rfdsm.activations.QuadratureError, match=r"kinks=\(x0, \.\.\.\)"):
        act.moments(np.array([0.0]), np.array([5.0]), 2)
    with pytest.raises(ValueError) as err:
        simulate(Setting(1, 2, activation="gexp_step"), d=20)
    assert "kinks=(x0, ...)" in str(err.value) and "larger d" not in str(err.value)


# -- the settings that used to fail ----------------------------------------------------------
STRUCTURED = dict(psi_n=1, psi_p=1, m=1, t=0.1, lam=0.01)


def test_structured_tanh_simulation_at_small_d():
    # preactivation scales ~1.9: Gauss-Hermite did not converge, at any d
    st = Setting(**STRUCTURED, data="spectrum(1:4)")
    sim = simulate(st, d=100, seed=0, n_seeds=2)
    th = theory(st)
    assert sim.converged and th.converged
    assert abs(sim.test - th.test) <= 0.05 * th.test + 3 * sim.test_se


def test_erf_at_scale_16_and_spiked_data_at_small_d():
    erf = simulate(Setting(**STRUCTURED, activation="erf", data="spectrum(1:312)"), d=40)
    assert erf.converged and math.isfinite(erf.test)
    spiked = simulate(Setting(**STRUCTURED, data="spectrum(0.05:30,0.95:1)"), d=40)
    assert spiked.converged and math.isfinite(spiked.test)


def test_builtin_at_tiny_d_is_no_quadrature_failure():
    # at d = 3 the feature norms |w_i|^2/d spread widely: the rule follows each scale
    res = simulate(Setting(psi_n=2, psi_p=10, m=math.inf), d=3, seed=0, n_seeds=3)
    assert len(res.per_seed) == 3 and "skipped_seeds" not in res.diagnostics


@pytest.mark.parametrize("data,m", [("spectrum(1:16)", 2), ("spectrum(1:16)", math.inf),
                                    ("spectrum(0.5:10,0.5:1)", 4),
                                    ("spectrum(0.5:10,0.5:1)", math.inf),
                                    ("spectrum(1:256)", 4)])
def test_structured_theory_constants_converge_at_large_scale(data, m):
    r = theory(Setting(**{**STRUCTURED, "m": m}, data=data))
    assert r.converged
    assert r.diagnostics["constants_error"] < 1e-12


def test_device_backend_falls_back_to_the_adaptive_rule():
    # the GPU backend's moments, run on NumPy arrays: at scales Gauss-Hermite cannot resolve
    # they are the host's (before: the device's order check raised)
    from scipy import special

    from rfdsm.simulate.gpu import Ops

    ops = Ops(np, to_host=np.asarray, erf=special.erf, cholesky_solve=None)
    act = get_activation("tanh")
    mu = np.array([[0.3, -2.0], [1.0, 5.0]])
    s = np.array([0.8, 4.0])
    beta, m2 = ops.moments(act, mu, s, 4, 1 << 20)
    ref_beta, ref_m2 = act.moments(mu, s[:, None], 4)
    assert np.allclose(beta, ref_beta, rtol=0, atol=1e-10)
    assert np.allclose(m2, ref_m2, rtol=0, atol=1e-10)
