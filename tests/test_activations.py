import math

import numpy as np
import pytest
from scipy import integrate

import rfdsm
from rfdsm.activations import Activation, get_activation

SQ2PI = math.sqrt(2 * math.pi)


def gauss_expect(f, mu=0.0, s=1.0, kink=None):
    """Independent reference: adaptive quadrature of E f(mu + s z), split at a kink.

    Also split at z = 0: an odd integrand over the whole line cancels to ~0, and quad then
    reports round-off against its absolute tolerance although the halves are accurate."""
    g = lambda z: f(mu + s * z) * math.exp(-z * z / 2) / SQ2PI  # noqa: E731
    cuts = {0.0} if kink is None else {0.0, (kink - mu) / s}
    pts = [-np.inf, *sorted(cuts), np.inf]
    return sum(integrate.quad(g, lo, hi, epsabs=1e-13, epsrel=1e-12, limit=200)[0]
               for lo, hi in zip(pts[:-1], pts[1:]))


def test_hermite_coefficients_closed_forms():
    mu0, mu1, ms = get_activation("relu").coefficients
    assert mu0 == pytest.approx(0, abs=1e-12)
    assert mu1 == pytest.approx(0.5, abs=1e-12)
    assert ms ** 2 == pytest.approx(0.5 - 1 / (2 * math.pi) - 0.25, abs=1e-12)
    mu0, mu1, ms = get_activation("erf").coefficients  # erf(x/sqrt2) = 2 Phi(x) - 1
    assert mu1 == pytest.approx(1 / math.sqrt(math.pi), abs=1e-12)
    assert ms ** 2 == pytest.approx(1 / 3 - 1 / math.pi, abs=1e-12)
    assert get_activation("linear").coefficients == pytest.approx((0, 1, 0), abs=1e-12)
    mu0, mu1, ms = get_activation("tanh").coefficients
    assert mu1 == pytest.approx(gauss_expect(lambda x: 1 - math.tanh(x) ** 2), abs=1e-11)


@pytest.mark.parametrize("name", ["tanh", "erf", "relu", "linear"])
def test_shifted_moments_against_adaptive_quadrature(name):
    act = get_activation(name)
    f = lambda x: float(act.fn(np.asarray(x)))  # noqa: E731
    kink = 0.0 if name == "relu" else None
    K = 6
    for mu, s in [(0.0, 1.0), (0.7, 0.4), (-1.3, 1.1)]:
        beta, m2 = act.moments(np.array([mu]), np.array([s]), K)
        for k in range(K + 1):
            hek = np.polynomial.hermite_e.HermiteE.basis(k)
            ref = gauss_expect(lambda x: f(x) * hek((x - mu) / s), mu, s, kink) / math.sqrt(math.factorial(k))
            assert beta[k, 0] == pytest.approx(ref, abs=2e-10), (k, mu, s)
        assert m2[0] == pytest.approx(gauss_expect(lambda x: f(x) ** 2, mu, s, kink), abs=2e-10)


def test_quadrature_order_is_converged():
    act = get_activation("tanh")
    mu = np.linspace(-2, 2, 9)
    s = np.full_like(mu, 1.1)
    q = act.quadrature_order(mu, s, 20)
    b1, m1 = act.moments(mu, s, 20, nodes=q)
    b2, m2 = act.moments(mu, s, 20, nodes=2 * q)
    assert np.abs(b1 - b2).max() < 1e-9 and np.abs(m1 - m2).max() < 1e-9


def test_mehler_pair_against_2d_quadrature():
    act = get_activation("tanh")
    mu, s, rho = np.array([0.3, -0.8]), np.array([0.7, 1.2]), 0.35
    beta, _ = act.moments(mu, s, 40)
    series = float(np.sum(rho ** np.arange(41) * beta[:, 0] * beta[:, 1]))
    c = math.sqrt(1 - rho * rho)
    inner = lambda u: gauss_expect(lambda v: math.tanh(mu[1] + s[1] * (rho * u + c * v)))  # noqa: E731
    ref = gauss_expect(lambda u: math.tanh(mu[0] + s[0] * u) * inner(u))
    assert series == pytest.approx(ref, abs=1e-9)


def test_register_custom_activation_and_use_it():
    name = "softsign_test"
    act = rfdsm.register_activation(name, lambda x: x / (1 + np.abs(x)), kinks=(0.0,), overwrite=True)
    assert isinstance(act, Activation)
    with pytest.raises(ValueError, match="already registered"):
        rfdsm.register_activation(name, np.tanh)
    with pytest.raises(ValueError, match="finite"):
        with np.errstate(divide="ignore", invalid="ignore"):
            rfdsm.register_activation("bad_test", lambda x: np.log(x))
    mu0, mu1, ms = act.coefficients
    assert mu0 == pytest.approx(0, abs=1e-12) and mu1 > 0 and ms > 0
    res = rfdsm.simulate(rfdsm.Setting(1, 2, m=math.inf, activation=name), d=20, seed=1)
    assert np.isfinite([res.train, res.test, res.score]).all()


def test_undeclared_kink_is_a_clear_error_and_declaring_it_works():
    # max(x, 0) - 1/sqrt(2 pi) is the built-in centred ReLU: with its kink declared, the
    # quadrature must reproduce the closed form; without, the error must point at `kinks`.
    shifted = lambda x: np.maximum(x, 0.0) - 1 / SQ2PI  # noqa: E731
    s = dict(psi_n=2, psi_p=1, m=math.inf, t=0.3, lam=0.05)
    rfdsm.register_activation("relu_kink_undeclared_test", shifted, overwrite=True)
    with pytest.raises(ValueError, match="kinks="):
        rfdsm.simulate(rfdsm.Setting(**s, activation="relu_kink_undeclared_test"), d=40)
    rfdsm.register_activation("relu_kink_declared_test", shifted, kinks=(0.0,), overwrite=True)
    user = rfdsm.simulate(rfdsm.Setting(**s, activation="relu_kink_declared_test"), d=40, seed=3)
    ref = rfdsm.simulate(rfdsm.Setting(**s, activation="relu"), d=40, seed=3)
    for k in ("train", "test", "score"):
        assert getattr(user, k) == pytest.approx(getattr(ref, k), rel=1e-8)


def test_relu_closed_form_matches_piecewise_quadrature():
    relu = get_activation("relu")
    generic = Activation("relu_generic", relu.fn, kinks=(0.0,))
    mu = np.linspace(-2.5, 2.5, 11)
    s = np.linspace(0.2, 1.3, 11)
    b1, m1 = relu.moments(mu, s, 12)
    b2, m2 = generic.moments(mu, s, 12)
    assert np.abs(b1 - b2).max() < 1e-10 and np.abs(m1 - m2).max() < 1e-10
