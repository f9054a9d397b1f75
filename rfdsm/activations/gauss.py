"""Gaussian quadrature rules and the closed-form Gaussian moments of the built-in activations.

Split from ``rfdsm.activations`` (which re-exports these names), and free of Numba: the theory
uses all of it.  ``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)] / sqrt(k!)`` as there.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import special

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@lru_cache(maxsize=None)
def _gauss_hermite(q: int):
    # numpy's rule up to 150 nodes (it agrees with scipy's to ~1e-15): scipy's imports
    # scipy.linalg, 0.05 s of `rfdsm theory`; beyond, numpy's loses accuracy and scipy's
    # switches to an asymptotic method
    z, w = np.polynomial.hermite_e.hermegauss(q) if q <= 150 else special.roots_hermitenorm(q)
    return z, w / math.sqrt(2.0 * math.pi)


def hermite_table(z: np.ndarray, K: int) -> np.ndarray:
    """Normalised probabilists' Hermite polynomials ``He_k(z)/sqrt(k!)``, shape ``(len(z), K+1)``."""
    z = np.asarray(z, dtype=float)
    H = np.empty(z.shape + (K + 1,))
    H[..., 0] = 1.0
    if K >= 1:
        H[..., 1] = z
    for k in range(1, K):
        H[..., k + 1] = (z * H[..., k] - math.sqrt(k) * H[..., k - 1]) / math.sqrt(k + 1)
    return H


@lru_cache(maxsize=None)
def _gauss_legendre(q: int):
    return np.polynomial.legendre.leggauss(q)


@lru_cache(maxsize=64)
def _weighted_table(q: int, K: int):
    z, w = _gauss_hermite(q)
    return z, w, hermite_table(z, K) * w[:, None]


def _relu_moments(mu, s, K):
    z0 = mu / s
    Phi, phi = special.ndtr(z0), np.exp(-0.5 * z0 * z0) * _INV_SQRT_2PI
    c0 = _INV_SQRT_2PI
    beta = np.empty((K + 1,) + mu.shape)
    mean_relu = mu * Phi + s * phi
    beta[0] = mean_relu - c0
    if K >= 1:
        beta[1] = s * Phi
    if K >= 2:
        # E[relu(mu+sz) He_k(z)] = s^k E[relu^{(k)}] = s He_{k-2}(-mu/s) phi(mu/s)  (k >= 2)
        Hm = hermite_table(-z0, K - 2)
        k = np.arange(2, K + 1)
        beta[2:] = np.moveaxis(Hm, -1, 0) * (s * phi) / np.sqrt(k * (k - 1.0)).reshape(
            (-1,) + (1,) * mu.ndim
        )
    m2 = (mu * mu + s * s) * Phi + mu * s * phi - 2.0 * c0 * mean_relu + c0 * c0
    return beta, m2


def _linear_moments(mu, s, K):
    beta = np.zeros((K + 1,) + mu.shape)
    beta[0] = mu
    if K >= 1:
        beta[1] = s
    return beta, mu * mu + s * s


#: ``(mu0, mu1, mu_star)`` of the built-ins, as :func:`_quadrature_coefficients` computes them
#: (repr, so bit for bit; tests/test_imports.py recomputes them): scipy.integrate alone would
#: cost ``rfdsm theory`` 0.15 s of imports (it loads scipy.optimize), more than the solve.
_BUILTIN_COEFFICIENTS = {
    "tanh": (0.0, 0.6057055096021589, 0.16557574108374143),
    "erf": (0.0, 0.5641895835477562, 0.12257017234850755),
    "relu": (0.0, 0.5000000000000001, 0.30140513749454323),
    "linear": (0.0, 1.0, 0.0),
}


@lru_cache(maxsize=None)
def _quadrature_coefficients(act) -> tuple[float, float, float]:
    """``E sigma(z)``, ``E z sigma(z)``, ``sqrt(E sigma^2 - mu0^2 - mu1^2)`` by adaptive quadrature
    (QUADPACK), split at 0 and at the declared kinks."""
    from scipy import integrate

    pdf = lambda x: math.exp(-0.5 * x * x) * _INV_SQRT_2PI  # noqa: E731
    cuts = sorted(set(act.kinks) | {0.0})
    edges = [-np.inf, *cuts, np.inf]

    def expect(g):
        total = 0.0
        for lo, hi in zip(edges[:-1], edges[1:]):
            val, _ = integrate.quad(lambda x: g(x) * pdf(x), lo, hi, epsabs=1e-14, epsrel=1e-13, limit=200)
            total += val
        return total

    f = lambda x: float(act.fn(np.asarray(x, dtype=float)))  # noqa: E731
    mu0 = expect(f)
    mu1 = expect(lambda x: x * f(x))
    second = expect(lambda x: f(x) ** 2)
    star2 = second - mu0 * mu0 - mu1 * mu1
    if not math.isfinite(star2) or star2 < -1e-12:
        raise ValueError(f"activation {act.name!r}: E sigma(z)^2 is not finite")
    return mu0, mu1, math.sqrt(max(star2, 0.0))
