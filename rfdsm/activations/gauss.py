"""Gaussian expectations of activations: quadrature rules, the closed forms of the built-ins,
and :func:`gaussian_expectations`, the one rule the simulator and the theory both use.

Split from ``rfdsm.activations`` (which re-exports these names), and free of Numba: the theory
uses all of it.  ``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)] / sqrt(k!)`` as there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


def _erf_moments(mu, s, K):
    """Exact ``beta_k`` and ``E sigma^2`` of ``sigma(x) = erf(x / sqrt 2) = 2 Phi(x) - 1``.

    With ``v = sqrt(1 + s^2)`` and ``x = mu / v``: ``E sigma(mu + s z) = 2 Phi(x) - 1``;
    for ``k >= 1``, ``E[sigma(mu + s z) He_k(z)] = s^k E sigma^{(k)}(mu + s z)`` (Gaussian
    integration by parts) and ``E phi^{(j)}(mu + s z) = v^{-j-1} phi^{(j)}(x)``, so
    ``beta_k = 2 (s/v)^k He_{k-1}(-x) phi(x) / sqrt(k!)``; and
    ``E sigma^2 = 1 - 8 T(x, 1/sqrt(1 + 2 s^2))`` with Owen's ``T`` (from
    ``E Phi(g)^2 = P(X_1 <= g, X_2 <= g)``, a bivariate normal orthant at correlation
    ``s^2/v^2``).
    """
    v = np.sqrt(1.0 + s * s)
    x = mu / v
    phi = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
    beta = np.empty((K + 1,) + mu.shape)
    beta[0] = 2.0 * special.ndtr(x) - 1.0
    if K >= 1:
        k = np.arange(1, K + 1).reshape((-1,) + (1,) * mu.ndim)
        # (s/v)^k / sqrt(k) built by the ratio's powers: no overflow of s^k at large s
        Hm = np.moveaxis(hermite_table(-x, K - 1), -1, 0)  # He_{k-1}(-x)/sqrt((k-1)!)
        beta[1:] = 2.0 * phi * Hm * (s / v) ** k / np.sqrt(k)
    m2 = 1.0 - 8.0 * special.owens_t(x, 1.0 / np.sqrt(1.0 + 2.0 * s * s))
    return beta, m2


#: Half-width in ``z`` of the window of the composite rule.  ``He_k(z) phi(z)/sqrt(k!) =
#: h_k(z) sqrt(phi(z))`` with ``h_k`` of unit norm and ``|h_k| < 1``, so the mass left out
#: is below ``E|sigma| e^{-L^2/4}``, ``e^{-42}`` relative at ``L = 13``, for every ``k``.
WINDOW = 13.0
#: Width in ``x = mu + s z`` of the first level's panels: the built-ins bend on a unit
#: scale; a finer activation is resolved by the refinement.
PANEL_X = 2.0
#: Gauss-Legendre nodes per panel.
PANEL_NODES = 16
#: Refinements (panels halved) after the first level before the rule gives up.
MAX_REFINEMENTS = 6
#: Activation values one call of the composite rule may evaluate (all levels together): an
#: undeclared jump would otherwise refine every element to the last level, and a huge ``s``
#: needs ~``s`` panels (``s = 100``: 2048 panels, 5e7 values for 1600 elements per level).
MAX_VALUES = 1 << 28


@dataclass
class Expectations:
    """``beta`` (K+1, ...) and ``m2`` (...) of :func:`gaussian_expectations`, with ``error``
    (...), an estimate of ``max_k |beta_k - exact|`` and ``|m2 - exact|`` per element
    (the difference of two rules; 0 for closed forms), and ``method``."""

    beta: np.ndarray
    m2: np.ndarray
    error: np.ndarray
    method: str


def _first_panels(s: np.ndarray) -> np.ndarray:
    # power-of-two panel counts: elements of one count share their nodes in z, and each
    # refinement halves the panels of the previous level; capped far above what MAX_VALUES
    # allows, so that a huge s is refused, not overflowed
    want = np.minimum(2.0 * WINDOW * np.maximum(1.0, s / PANEL_X), 2.0 ** 40)
    return (2 ** np.ceil(np.log2(np.maximum(want, 32.0)))).astype(np.int64)


def _composite_level(fn, mu, s, K, n_panels, kinks, block_values=1 << 22):
    """Composite Gauss-Legendre in ``z`` on ``[-WINDOW, WINDOW]``: ``n_panels`` equal panels,
    each also split where ``mu + s z`` meets a kink (so every piece is smooth)."""
    x, wx = _gauss_legendre(PANEL_NODES)
    edges = np.linspace(-WINDOW, WINDOW, n_panels + 1)
    if kinks:
        cuts = np.clip((np.asarray(kinks)[None, :] - mu[:, None]) / s[:, None], -WINDOW, WINDOW)
        grid = np.broadcast_to(edges, (mu.size, edges.size))
        edges = np.sort(np.concatenate([grid, cuts], axis=1), axis=1)
    else:
        edges = edges[None, :]
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    z = (0.5 * (edges[:, 1:] + edges[:, :-1]))[..., None] + half[..., None] * x
    w = half[..., None] * wx * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
    z, w = z.reshape(z.shape[0], -1), w.reshape(w.shape[0], -1)
    nodes = z.shape[1]
    beta = np.zeros((K + 1, mu.size))
    m2 = np.zeros(mu.size)
    if not kinks:
        # nodes shared by all elements: a table per slice of nodes (at most ~2 MiB, however
        # many panels a large s needs), products by BLAS
        step = max(PANEL_NODES, (1 << 18) // (K + 1))
        for q0 in range(0, nodes, step):
            zq, wq = z[0, q0:q0 + step], w[0, q0:q0 + step]
            table = hermite_table(zq, K) * wq[:, None]
            block = max(1, block_values // zq.size)
            for a in range(0, mu.size, block):
                b = min(a + block, mu.size)
                V = np.asarray(fn(mu[a:b, None] + s[a:b, None] * zq), dtype=float)
                beta[:, a:b] += table.T @ V.T
                m2[a:b] += (V * V) @ wq
        return beta, m2
    block = max(1, block_values // (nodes * (K + 1)))
    for a in range(0, mu.size, block):
        b = min(a + block, mu.size)
        V = np.asarray(fn(mu[a:b, None] + s[a:b, None] * z[a:b]), dtype=float)
        Vw = V * w[a:b]
        beta[:, a:b] = np.einsum("eq,eqk->ke", Vw, hermite_table(z[a:b], K))
        m2[a:b] = np.einsum("eq,eq->e", Vw, V)
    return beta, m2


def composite_expectations(fn, mu, s, K, *, kinks=(), tol=1e-10, name="sigma", advice=""):
    """``beta_k(mu, s)``, ``E sigma(mu + s z)^2`` and an error estimate by composite
    Gauss-Legendre in ``z``, for any scale ``s`` and shift ``mu`` (1-D arrays).

    The first level has panels of width ``PANEL_X / s`` in ``z`` (``PANEL_X`` in ``x``; at
    most about 1), split at the kinks; each level halves the panels, and an element is done
    when two successive levels agree to ``tol * (1 + sqrt(E sigma^2))`` (``beta``) and
    ``tol * (1 + E sigma^2)`` (``E sigma^2``).  The difference, which bounds the coarser
    level's error once the rule converges geometrically, is the estimate returned with the
    finer level.  Raises :class:`QuadratureError` (from ``rfdsm.activations``) when
    ``MAX_REFINEMENTS`` halvings, or ``MAX_VALUES`` evaluations, do not get there (the message
    ends with ``advice``).
    """
    from . import QuadratureError

    mu, s = np.asarray(mu, dtype=float), np.asarray(s, dtype=float)
    beta = np.empty((K + 1, mu.size))
    m2 = np.empty(mu.size)
    err = np.empty(mu.size)
    first = _first_panels(s)
    used = 0

    def level(idx, n, lv):
        nonlocal used
        used += idx.size * (n + len(kinks)) * PANEL_NODES
        if used > MAX_VALUES:
            i = idx[np.argmax(s[idx])]
            # before any refinement the scale itself is the cause; after, sigma is
            cause = (f": the scale s = {s[i]:.4g} needs {n} panels in z" if lv <= 1 else advice)
            raise QuadratureError(
                f"the Gaussian expectations of activation {name!r} need more than "
                f"{MAX_VALUES:.3g} evaluations (composite Gauss-Legendre, {n} panels in z at "
                f"s up to {s[i]:.4g}) to converge to {tol:g}{cause}")
        return _composite_level(fn, mu[idx], s[idx], K, n, kinks)

    for n0 in np.unique(first):
        idx = np.flatnonzero(first == n0)
        prev = level(idx, int(n0), 0)
        for lv in range(1, MAX_REFINEMENTS + 1):
            cur = level(idx, int(n0) << lv, lv)
            scale = 1.0 + np.sqrt(np.abs(cur[1]))
            db, dm = np.abs(cur[0] - prev[0]).max(axis=0), np.abs(cur[1] - prev[1])
            e = np.maximum(db / scale, dm / (scale * scale))
            done = e <= tol
            beta[:, idx[done]] = cur[0][:, done]
            m2[idx[done]] = cur[1][done]
            err[idx[done]] = np.maximum(db, dm)[done]
            idx = idx[~done]
            if not idx.size:
                break
            prev = (cur[0][:, ~done], cur[1][~done])
        if idx.size:
            i = idx[np.argmax(e[~done])]
            raise QuadratureError(
                f"the Gaussian expectations of activation {name!r} did not converge to {tol:g} "
                f"(composite Gauss-Legendre, {int(n0) << MAX_REFINEMENTS} panels of "
                f"{PANEL_NODES} nodes in z; at mu = {mu[i]:.4g}, s = {s[i]:.4g} the estimated "
                f"error is {float(e[~done].max()):.2g}){advice}")
    return beta, m2, err


def gaussian_expectations(act, mu, s, K: int, *, tol: float | None = None) -> Expectations:
    """The Gaussian expectations of an activation at any scale and shift, with an error estimate:
    ``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)]/sqrt(k!)`` for ``k <= K`` and
    ``E sigma(mu + s z)^2``, ``z ~ N(0, 1)``, for ``mu`` and ``s > 0`` broadcast together.

    The one rule behind the simulator's Hermite moments (:meth:`Activation.moments`: training
    at ``m = inf``, population moments with per-feature means and scales) and the theory's
    Gaussian-equivalence constants:

    * closed forms where they exist (linear, the centred ReLU, ``erf``; a user's
      ``closed_form``): exact, error 0;
    * Gauss-Hermite at the smallest order of ``QUAD_ORDERS`` that agrees with the next to
      ``tol`` on the hardest elements (smooth ``sigma`` at moderate ``s``), or, for declared
      kinks, composite Gauss-Legendre split at them on ``|z| <= 10`` (doubling the nodes);
    * otherwise (Gauss-Hermite resolves ``sigma(mu + s z)`` only for ``s`` of order 1; it
      needs ~``s^2`` nodes) the composite rule of :func:`composite_expectations`, whose panels
      follow the scale ``1/s`` of ``sigma(mu + s z)`` in ``z``.

    ``tol`` (default ``QUAD_TOL``) bounds the estimated error relative to ``1 + sqrt(E sigma^2)``.
    Raises :class:`QuadratureError` only when the composite rule, too, fails: ``sigma`` then
    has a jump or kink it does not declare.
    """
    from . import QUAD_TOL, QuadratureError

    tol = QUAD_TOL if tol is None else float(tol)
    mu, s = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(s, dtype=float))
    shape = mu.shape
    exact = act._exact
    if exact is not None:
        beta, m2 = exact(mu, s, K)
        return Expectations(beta, m2, np.zeros(shape), "closed form")
    mu, s = np.ascontiguousarray(mu).reshape(-1), np.ascontiguousarray(s).reshape(-1)
    try:
        if act.kinks:
            beta, m2, err = act._split_quadrature(mu, s, K, tol=tol)
            method = "Gauss-Legendre split at the kinks"
        else:
            q, err = act._hermite_order(mu, s, K, tol)
            beta, m2 = act._quadrature(mu, s, K, q)
            method = f"Gauss-Hermite, {q} nodes"
        err = np.full(mu.shape, err)
    except QuadratureError:
        # a built-in is smooth or has its kinks declared: the kink advice would be wrong there
        advice = ("" if act._numba_code is not None else
                  f": the activation is not smooth between its declared kinks {list(act.kinks)}; "
                  f"declare where it or a derivative jumps: register_activation({act.name!r}, "
                  "fn, kinks=(x0, ...), overwrite=True)")
        beta, m2, err = composite_expectations(act.fn, mu, s, K, kinks=act.kinks, tol=tol,
                                               name=act.name, advice=advice)
        method = "composite Gauss-Legendre on the scale 1/s"
    return Expectations(beta.reshape((K + 1,) + shape), m2.reshape(shape), err.reshape(shape),
                        method)
