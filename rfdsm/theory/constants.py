"""The noise-split constants ``kappa_s^2, kappa_i^2`` of docs/theory.md, eq. (T2), with an error bound.

``kappa_s^2 = E_u[(sbar(a u) - mu0)^2] - a^2 mu1^2`` and ``kappa_i^2 = mu_star^2 - kappa_s^2``,
``sbar(c) = E_z sigma(c + sqrt(h) z)``.  How they are computed (docs/theory.md, Sec. 6, "GE
constants"):

* closed forms (exact to rounding at every ``t``) for the centred ReLU (the arc-cosine kernel of
  degree 1), ``erf`` (``(2/pi) arcsin(rho/2)``) and the linear activation (0);
* a declared kink ``k`` makes ``sbar(a u)`` bend on the scale ``sqrt(h)/a`` around ``u = k/a``:
  composite Gauss-Legendre in ``u`` on panels graded geometrically towards each ``k/a``;
* smooth activations: Gauss-Hermite in ``u`` (``sbar`` is as smooth as ``sigma``), after a check
  that ``sigma`` really is smooth (the simulator's check, :meth:`Activation.quadrature_order`).

The quadratures are refined (outer and inner orders together) until two levels agree; the
difference, at least the rounding floor of the subtraction ``- a^2 mu1^2``, is the error bound.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

from ..activations import _BUILTINS, _ERF, _linear_moments, _relu_moments, QUAD_ORDERS, QUAD_TOL, QuadratureError

__all__ = ["kappa_constants"]

_EPS = np.finfo(float).eps
_TWO_PI = 2.0 * math.pi

#: Two refinement levels agreeing to this (times ``mu_star^2``) end the refinement.
KAPPA_TOL = 1e-13


def _arcsin_minus_x(x: float) -> float:
    """``arcsin(x) - x`` for ``0 <= x <= 1/2`` by its Taylor series (no cancellation)."""
    term, total, n = x, 0.0, 0
    while True:
        n += 1
        term *= x * x * (2 * n - 1) / (2 * n)  # x^{2n+1} (2n)! / (4^n n!^2)
        inc = term / (2 * n + 1)
        total += inc
        if inc <= 1e-18 * total:
            return total


def _sin_minus_theta_cos(theta: float) -> float:
    """``sin(theta) - theta cos(theta)`` without the cancellation at small ``theta``."""
    if theta > 1.0:
        return math.sin(theta) - theta * math.cos(theta)
    # sum_{k>=1} (-1)^{k+1} 2k theta^{2k+1} / (2k+1)!
    total, power, fact, k = 0.0, theta, 1.0, 0
    while True:
        k += 1
        power *= theta * theta
        fact *= (2 * k) * (2 * k + 1)
        inc = 2 * k * power / fact
        total += inc if k % 2 else -inc
        if inc <= 1e-18 * abs(total):
            return total


def _relu(t: float):
    # E[sigma(g) sigma(g')] for the centred ReLU, corr(g, g') = rho = a^2, is
    # (sqrt(1 - rho^2) + rho (pi/2 + arcsin rho)) / (2 pi) - 1/(2 pi); the rho/4 = a^2 mu1^2 cancels
    rho, h = math.exp(-2.0 * t), -math.expm1(-2.0 * t)
    theta = 2.0 * math.asin(math.sqrt(0.5 * h))  # arccos(rho), accurate also as rho -> 1
    # arcsin(rho) = pi/2 - theta near rho = 1, where arcsin amplifies the rounding of rho
    asin_rho = math.asin(rho) if rho < 0.5 else 0.5 * math.pi - theta
    ks = (rho * asin_rho - rho * rho / (1.0 + math.sqrt(h * (2.0 - h)))) / _TWO_PI
    # with rho = cos(theta): kappa_i^2 = 1/4 - 1/(2 pi) - ks = h/4 - (sin th - th cos th)/(2 pi)
    ki = 0.25 * h - _sin_minus_theta_cos(theta) / _TWO_PI
    return ks, ki, "closed form (arc-cosine kernel of degree 1)"


def _erf(t: float):
    # E[erf(g/sqrt 2) erf(g'/sqrt 2)] = (2/pi) arcsin(rho/2); mu1^2 = 1/pi
    rho, h = math.exp(-2.0 * t), -math.expm1(-2.0 * t)
    ks = 2.0 / math.pi * _arcsin_minus_x(0.5 * rho)
    # arcsin(1/2) - arcsin(rho/2) = arcsin((1 - rho^2) / (2 (sqrt(1 - rho^2/4) + sqrt(3) rho/2)))
    gap = math.asin(0.5 * h * (2.0 - h) / (math.sqrt(1.0 - 0.25 * rho * rho)
                                            + 0.5 * math.sqrt(3.0) * rho))
    ki = 2.0 / math.pi * gap - h / math.pi
    return ks, ki, "closed form (arcsin kernel)"


@lru_cache(maxsize=8)
def _hermite_rule(q: int):
    # the first level is the rule the theory used before error bounds (same numbers); numpy's
    # rule overflows beyond ~500 nodes, scipy's does not
    z, w = np.polynomial.hermite_e.hermegauss(q) if q == 160 else special.roots_hermitenorm(q)
    return z, w / math.sqrt(2.0 * math.pi)


def _gauss_hermite_level(act, a, s, level):
    z, w = _hermite_rule(160 << level)
    nodes = None  # level 0: the order Activation.moments picks itself (to 1e-10)
    if level and act.closed_form is None:
        z0 = _hermite_rule(160)[0]
        q0 = act.quadrature_order(a * z0, np.full_like(z0, s), 0)
        nodes = QUAD_ORDERS[min(QUAD_ORDERS.index(q0) + level, len(QUAD_ORDERS) - 1)]
    beta, _ = act.moments(a * z, np.full_like(z, s), 0, nodes=nodes)
    return w, beta[0]


def _graded_panels(kinks, a, s, L=12.0):
    """Panel edges in ``u`` on ``[-L, L]``: at each ``k/a`` and at ``k/a +- (s/a) 2^j``, ``j >= -3``,
    so that each panel is about as wide as its distance to the bend of ``sbar(a u)``."""
    width = s / a
    edges = [-L, L]
    for k in kinks:
        c = k / a
        edges.append(c)
        j = -3
        while width * 2.0 ** j < 2.0 * L:
            edges += [c - width * 2.0 ** j, c + width * 2.0 ** j]
            j += 1
    e = np.unique(np.clip(np.array(edges), -L, L))
    return e[:-1], e[1:]


def _legendre_level(act, a, s, level, panels):
    lo, hi = panels
    x, wx = np.polynomial.legendre.leggauss(16 << level)
    half = 0.5 * (hi - lo)
    u = (0.5 * (hi + lo))[:, None] + half[:, None] * x[None, :]
    w = half[:, None] * wx[None, :] * np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
    u, w = u.ravel(), w.ravel()
    nodes = None if act.closed_form is not None else 32 << level
    beta, _ = act.moments(a * u, np.full_like(u, s), 0, nodes=nodes)
    return w, beta[0]


def _check_smooth(act):
    """The simulator's check (:meth:`Activation.quadrature_order`) where the theory evaluates
    ``sigma``: unit-variance Gaussians, off-centre so that a jump at 0 cannot cancel by symmetry."""
    try:
        return act.quadrature_order(np.array([-0.7, 0.3]), np.ones(2), 4)
    except QuadratureError:
        raise ValueError(
            f"activation {act.name!r}: Gauss-Hermite quadrature of its Gaussian expectations does "
            f"not converge (to {QUAD_TOL:g} with {QUAD_ORDERS[-1]} nodes), so it has a jump or "
            "kink the theory cannot resolve; declare where it or a derivative jumps: "
            f"register_activation({act.name!r}, fn, kinks=(x0, ...), overwrite=True)") from None


def _quadrature(act, t, mu0, mu1, mu_star2):
    a, h = math.exp(-t), -math.expm1(-2.0 * t)
    s = math.sqrt(h)
    if act.kinks:
        panels = _graded_panels(act.kinks, a, s)
        level_fn = lambda lv: _legendre_level(act, a, s, lv, panels)  # noqa: E731
        method = lambda lv: (f"composite Gauss-Legendre graded towards the kinks, "  # noqa: E731
                             f"{len(panels[0])} panels x {16 << lv} nodes")
    else:
        if act.closed_form is None and _BUILTINS.get(act.name) is not act:
            _check_smooth(act)
        level_fn = lambda lv: _gauss_hermite_level(act, a, s, lv)  # noqa: E731
        method = lambda lv: f"Gauss-Hermite, {160 << lv} nodes"  # noqa: E731

    def kappa_s(lv):
        w, beta0 = level_fn(lv)
        # centred before squaring: E_u[sbar(a u)] = mu0, and cross - mu0^2 would lose the digits
        # of kappa_s^2 to cancellation when |mu0| is large
        cross = float(np.dot(w, (beta0 - mu0) ** 2))
        return min(max(cross - a * a * mu1 * mu1, 0.0), mu_star2), cross

    # rounding of the subtraction and of the sum over the nodes, and the accuracy of mu_star^2
    floor = 64.0 * _EPS * (a * a * mu1 * mu1 + mu_star2)
    cur, cross = kappa_s(0)
    used = 4
    for lv in range(1, 5):
        nxt, _ = kappa_s(lv)
        # the difference to the next level estimates the error of this one (the refinement
        # converges geometrically once it resolves the integrand)
        err = abs(nxt - cur)
        if err <= max(KAPPA_TOL * mu_star2, floor):
            used = lv - 1
            break
        cur = nxt
    floor = max(floor, 64.0 * _EPS * cross)
    return cur, mu_star2 - cur, max(err, floor), method(used)


@lru_cache(maxsize=256)
def kappa_constants(act, t: float):
    """``(kappa_s2, kappa_i2, mu_star2, error_s, error_i, method)`` for ``act`` at time ``t``.

    ``error_s``, ``error_i`` bound ``|kappa_s2 - kappa_s^2|`` and ``|kappa_i2 - kappa_i^2|``
    (from two refinement levels for the quadratures, equal and opposite since ``kappa_i2 =
    mu_star2 - kappa_s2``; the rounding of the closed forms, relative).  ``mu_star2`` is
    that of :attr:`Activation.coefficients`, or the exact ``kappa_s2 + kappa_i2`` of a closed form.
    """
    mu0, mu1, mu_star = act.coefficients
    mu_star2 = mu_star * mu_star
    if act.closed_form is _linear_moments or mu_star2 == 0.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, "exact (linear: no nonlinear part)"
    if act.closed_form is _relu_moments or act._numba_code == _ERF:
        ks, ki, method = (_relu if act.closed_form is _relu_moments else _erf)(float(t))
        # each formula is free of cancellation beyond a few digits: a relative bound each
        return ks, ki, ks + ki, 64.0 * _EPS * ks, 64.0 * _EPS * ki, method
    ks, ki, err, method = _quadrature(act, float(t), mu0, mu1, mu_star2)
    return ks, ki, mu_star2, err, err, method
