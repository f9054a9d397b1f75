"""Gaussian equivalence for data of covariance ``Sigma`` (docs/theory.md, Sec. 12, (H2)-(H5)).

For ``x_0 ~ N(0, Sigma)`` the preactivation ``g = w.y/sqrt d``, ``y ~ N(0, a^2 Sigma + h I)``, has
variance ``v = a^2 lbar + h`` (``lbar = (1/d) tr Sigma``; ``a^2 psi_d + h`` on a subspace), and
two noisy copies of one data point are correlated by ``rho = a^2 lbar / v`` (eq. (H2)).  The
Hermite coefficients are taken there (eq. (H3)):

    mu1 = E sigma'(sqrt(v) z),   mu_star^2 = E sigma(sqrt(v) z)^2 - mu0^2 - v mu1^2,
    kappa_s^2 = E_u[sbar(a sqrt(lbar) u)^2] - mu0^2 - a^2 lbar mu1^2,
    kappa_i^2 = mu_star^2 - kappa_s^2,

``sbar(c) = E_z sigma(c + sqrt(h) z)``: the constants of isotropic data (eq. (T2)) for the
activation ``sigma(sqrt(v) .)`` at the time ``t'`` with ``exp(-2t') = rho``.  The GE
covariances (eq. (H4)) are members (eq. (H5)) of the generalised Marchenko-Pastur family of
:mod:`.gmp`, one value per atom ``lambda_k`` of the spectrum of ``Sigma``:

    Sigma_phi = mu1^2 W (a^2 Lambda + h) W^T/d + mu_star^2,
    C = mu1^2 a^2 W Lambda W^T/d + kappa_s^2,   Sc = mu1^2 h W W^T/d + kappa_i^2,
    T = V^T V = mu1^2 h W W^T/d,   T_par = mu1^2 h W Pi W^T/d,

``Pi`` the projection on the data's support (``Lambda > 0``), for the error split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..activations import _BUILTINS, _ERF, QuadratureError, _linear_moments, _relu_moments
from . import constants as _k
from .common import GEConstants
from .gmp import Member

__all__ = ["structured_constants", "StructuredGE", "structured_ge"]

_EPS = np.finfo(float).eps


def _relu(v, h_over_v):
    # positively homogeneous: sigma(sqrt(v) x) = sqrt(v) sigma(x) + const, so every constant
    # scales by v; at unit variance the closed forms of constants._relu with 1 - rho = h/v
    t_eff = -0.5 * math.log1p(-h_over_v)
    ks, ki, method = _k._relu(t_eff)
    return 0.5, v * (ks + ki), v * ks, v * ki, method


def _erf(v, rho):
    # E[erf(g/sqrt2) erf(g'/sqrt2)] = (2/pi) arcsin(cov/(1 + v)) for variances v (Price);
    # mu1 = E sigma' = sqrt(2/(pi (1 + v)))
    x1, x2 = v / (1.0 + v), rho * v / (1.0 + v)
    asin_minus = lambda x: _k._arcsin_minus_x(x) if x <= 0.5 else math.asin(x) - x  # noqa: E731
    mu_star2 = 2.0 / math.pi * asin_minus(x1)
    ks = 2.0 / math.pi * asin_minus(x2)
    return math.sqrt(2.0 / (math.pi * (1.0 + v))), mu_star2, ks, mu_star2 - ks, \
        "closed form (arcsin kernel at variance v)"


def _coefficients(act, v):
    """``(mu0, mu1, mu_star2, error)`` at variance ``v``, from
    :func:`rfdsm.activations.gaussian_expectations` to ``KAPPA_TOL`` (any ``sqrt(v)``: the rule
    adapts to the scale) and its error estimate."""
    sv = math.sqrt(v)
    try:
        r = act.expectations(np.zeros(1), np.full(1, sv), 1, tol=_k.KAPPA_TOL)
    except QuadratureError:
        return _coefficients_unresolved(act, sv)
    b0, b1, m2 = float(r.beta[0, 0]), float(r.beta[1, 0]), float(r.m2[0])
    # mu_star2 = m2 - b0^2 - b1^2 moves by the errors of each term
    err = float(r.error[0]) * (1.0 + 2.0 * abs(b0) + 2.0 * abs(b1)) + 64.0 * _EPS * m2
    return b0, b1 / sv, m2 - b0 * b0 - b1 * b1, err


def _coefficients_unresolved(act, sv):
    # a scale beyond the evaluation budget (a data eigenvalue ~1e6 or more): two fixed
    # Gauss-Hermite orders, whose difference is an honest, large error bound (the theory
    # then reports the result as not converged and names the eigenvalue)
    vals = []
    for q in (256, 384):
        beta, m2 = act.moments(np.zeros(1), np.full(1, sv), 1, nodes=q)
        vals.append((float(beta[0, 0]), float(beta[1, 0]), float(m2[0])))
    b0, b1, m2 = vals[1]
    err = max(abs(x - y) for x, y in zip(vals[1], vals[0])) + 64.0 * _EPS * m2
    return b0, b1 / sv, m2 - b0 * b0 - b1 * b1, err


def _kappa_s(act, a_eff, s, mu0, mu1, mu_star2):
    """``kappa_s^2`` by the nested quadratures of :mod:`.constants` at outer scale ``a_eff``
    and inner noise ``s``, refined until two levels agree; ``(kappa_s2, error, method)``."""
    if act.kinks:
        panels = _k._graded_panels(act.kinks, a_eff, s)
        level = lambda lv: _k._legendre_level(act, a_eff, s, lv, panels)  # noqa: E731
        name = "composite Gauss-Legendre graded towards the kinks"
    else:
        if act.closed_form is None and _BUILTINS.get(act.name) is not act:
            _k._check_smooth(act)
        level = lambda lv: _k._gauss_hermite_level(act, a_eff, s, lv)  # noqa: E731
        name = "Gauss-Hermite"

    def value(lv):
        w, beta0 = level(lv)
        cross = float(np.dot(w, (beta0 - mu0) ** 2))
        return min(max(cross - a_eff * a_eff * mu1 * mu1, 0.0), mu_star2), cross

    floor = 64.0 * _EPS * (a_eff * a_eff * mu1 * mu1 + mu_star2)
    cur, cross = value(0)
    err = math.inf
    for lv in range(1, 5):
        nxt, _ = value(lv)
        err = abs(nxt - cur)
        # a value clipped to 0 or mu_star2 is one the rule does not resolve (two levels can
        # then agree on the clip): 0 < kappa_s^2 < mu_star^2 for a nonlinear sigma and h > 0
        if err <= max(_k.KAPPA_TOL * mu_star2, floor) and 0.0 < cur < mu_star2:
            break
        cur = nxt
    else:
        # sbar(a_eff u) bends on the scale sqrt(h)/a_eff in u: at a large outer scale a rule
        # in u needs panels on that scale, as the composite rule has
        try:
            cur, err, cross = _kappa_s_composite(act, a_eff, s, mu0, mu1, mu_star2)
            name = "composite Gauss-Legendre on the scale 1/s (outer), " + name + " (inner)"
        except QuadratureError:  # beyond the budget: the last level and its error stand
            pass
    return cur, max(err, floor, 64.0 * _EPS * cross), name


def _kappa_s_composite(act, a_eff, s, mu0, mu1, mu_star2):
    """``kappa_s^2 = E_u[(sbar(a_eff u) - mu0)^2] - a_eff^2 mu1^2`` with the outer expectation by
    :func:`rfdsm.activations.gauss.composite_expectations` (``sbar`` at scale ``a_eff``) and
    ``sbar(c) = E sigma(c + s z)`` by :func:`rfdsm.activations.gaussian_expectations`;
    ``(kappa_s2, error, E_u[(sbar - mu0)^2])``."""
    from ..activations.gauss import composite_expectations

    inner_err = [0.0]

    def centred_sq(c):
        r = act.expectations(c, s, 0, tol=_k.KAPPA_TOL)
        dev = r.beta[0] - mu0
        inner_err[0] = max(inner_err[0], float(np.max(2.0 * np.abs(dev) * r.error, initial=0.0)))
        return dev * dev

    beta, _, err = composite_expectations(centred_sq, np.zeros(1), np.full(1, a_eff), 0,
                                          tol=_k.KAPPA_TOL, name="(sbar - mu0)^2")
    cross = float(beta[0, 0])
    ks = min(max(cross - a_eff * a_eff * mu1 * mu1, 0.0), mu_star2)
    return ks, float(err[0]) + inner_err[0], cross


@lru_cache(maxsize=256)
def structured_constants(act, t: float, lbar: float) -> GEConstants:
    """:class:`GEConstants` at variance ``v = a^2 lbar + h`` and copy correlation
    ``rho = a^2 lbar / v`` (eqs. (H2)-(H3)); ``lbar = (1/d) tr Sigma``."""
    a2, h = math.exp(-2.0 * t), -math.expm1(-2.0 * t)
    v = a2 * lbar + h
    if act.closed_form is _linear_moments:
        return GEConstants(0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, "exact (linear: no nonlinear part)")
    if act.closed_form is _relu_moments:
        mu1, mu_star2, ks, ki, method = _relu(v, h / v)
        return GEConstants(0.0, mu1, mu_star2, ks, ki, 64 * _EPS * ks, 64 * _EPS * ki, method)
    if act._numba_code == _ERF and _BUILTINS.get(act.name) is act:
        mu1, mu_star2, ks, ki, method = _erf(v, a2 * lbar / v)
        return GEConstants(0.0, mu1, mu_star2, ks, ki, 64 * _EPS * ks, 64 * _EPS * ki, method)
    mu0, mu1, mu_star2, err0 = _coefficients(act, v)
    ks, err, method = _kappa_s(act, math.sqrt(a2 * lbar), math.sqrt(h), mu0, mu1, mu_star2)
    err = max(err, err0)
    return GEConstants(mu0, mu1, mu_star2, ks, mu_star2 - ks, err, err, method)


@dataclass(frozen=True)
class StructuredGE:
    """The GE covariances of eq. (H4) as members of the family (H5), and the atoms."""

    pi: np.ndarray        # weights of the atoms
    lam: np.ndarray       # their eigenvalues of Sigma
    constants: GEConstants
    Sigma: Member
    C: Member
    Sc: Member
    T: Member
    T_par: Member
    I: Member

    @property
    def psi_d(self) -> float:
        return float(np.dot(self.pi, self.lam > 0))


def structured_ge(setting, constants: GEConstants | None = None) -> StructuredGE:
    """:class:`StructuredGE` of ``setting`` (its data model a :class:`rfdsm.data.Spectrum`);
    ``constants``: other constants (the probe of their error bounds)."""
    law = setting.data_model.law()  # a centred GaussianLaw (rfdsm.theory.routing)
    pi, lam = np.asarray(law.weights, dtype=float), np.asarray(law.values, dtype=float)
    k = constants or structured_constants(setting.sigma, float(setting.t), float(law.trace))
    m1 = k.mu1 * k.mu1
    a2, h = setting.a ** 2, setting.h
    one = np.ones_like(lam)
    return StructuredGE(pi, lam, k, Member(m1 * (a2 * lam + h), k.mu_star2),
                        Member(m1 * a2 * lam, k.kappa_s2), Member(m1 * h * one, k.kappa_i2),
                        Member(m1 * h * one, 0.0), Member(m1 * h * (lam > 0), 0.0),
                        Member(0.0 * one, 1.0))
