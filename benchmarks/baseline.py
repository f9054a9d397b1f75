"""BASELINE -- a plain-NumPy implementation of the simulator, written the way a newcomer would.

Used only by ``bench.py`` to measure the speed-up of :func:`rfdsm.simulate`; it is not part
of the library.  It computes the same quantities with the same random draws (``fit.draw``)
and the same accuracy targets (Gauss-Hermite order from ``quadrature_order``, Mehler order
from ``series_order``), but without the optimisations: ``np.tanh`` on the full
``p x n x nodes`` array, a Python loop over all Hermite orders with explicit powers
``rho**k`` and full products, the whole ``p x nm`` feature matrix held at once for finite
``m``, and a dense ``np.linalg.solve``.  Only built-in smooth activations (tanh, erf).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from rfdsm.simulate import fit, mehler


def _sigma(name, x):
    return np.tanh(x) if name == "tanh" else special.erf(x / math.sqrt(2.0))


def _hermite(z, K):
    H = np.zeros((len(z), K + 1))
    H[:, 0] = 1.0
    H[:, 1] = z
    for k in range(1, K):
        H[:, k + 1] = (z * H[:, k] - math.sqrt(k) * H[:, k - 1]) / math.sqrt(k + 1)
    return H


def _errors(Kmat, U, C, noise_sq, Up, Cp, d, h):
    def quad(S, V):
        return np.trace(Kmat.T @ S @ Kmat) - 2.0 * np.trace(Kmat.T @ V.T)

    q_pop = quad(Up, Cp)
    return {"train": noise_sq + quad(U, C) / d, "test": 1.0 + q_pop / d, "score": 1.0 + q_pop / (d * h)}


def _population(name, W, rho, r, K, Q, h):
    p, d = W.shape
    z, w = np.polynomial.hermite_e.hermegauss(Q)
    w = w / math.sqrt(2.0 * math.pi)
    H = _hermite(z, K)
    vals = _sigma(name, np.sqrt(r)[:, None] * z[None, :])  # p x Q
    b = (vals * w) @ H  # p x (K+1)
    Up = np.zeros((p, p))
    for k in range(K + 1):
        Up += rho**k * np.outer(b[:, k], b[:, k])
    Up[np.diag_indices(p)] = (vals**2 * w).sum(axis=1)
    Cp = math.sqrt(h / d) * W.T * (b[:, 1] / np.sqrt(r))
    return Up, Cp


def simulate_inf(setting, d, seed=0):
    """m = inf: exact noise average by quadrature + Mehler series, naively."""
    name = setting.activation
    n, p = setting.sizes(d)
    a, h, lam = setting.a, setting.h, setting.lam
    dr = fit.draw(n, p, d, seed)
    W, X = dr.W, dr.X
    G = W @ W.T / d
    r = np.diag(G).copy()
    rho = G / np.sqrt(np.outer(r, r))
    np.fill_diagonal(rho, 0.0)
    K = mehler.series_order(np.abs(rho).max())
    mu = a * (W @ X.T) / math.sqrt(d)  # p x n
    s = np.sqrt(h * r)
    Q = setting.sigma.quadrature_order(mu.ravel(), np.repeat(s, n), K)
    z, w = np.polynomial.hermite_e.hermegauss(Q)
    w = w / math.sqrt(2.0 * math.pi)
    H = _hermite(z, K)
    vals = _sigma(name, mu[:, :, None] + s[:, None, None] * z[None, None, :])  # p x n x Q
    beta = np.moveaxis((vals * w) @ H, -1, 0)  # (K+1) x p x n
    m2 = (vals**2 * w).sum(axis=-1)
    del vals
    U = np.zeros((p, p))
    for k in range(K + 1):
        U += rho**k * (beta[k] @ beta[k].T) / n
    U[np.diag_indices(p)] = m2.mean(axis=1)
    C = math.sqrt(h / d) * W.T * (beta[1].mean(axis=1) / s)
    Q_pop = setting.sigma.quadrature_order(np.zeros(p), np.sqrt(r), K)
    Up, Cp = _population(name, W, rho, r, K, Q_pop, h)
    Kmat = np.linalg.solve(U + lam * np.eye(p), C.T)
    return _errors(Kmat, U, C, 1.0, Up, Cp, d, h)


def simulate_finite(setting, d, seed=0):
    """Finite m: build all n m noisy inputs and the whole feature matrix at once."""
    name, m = setting.activation, int(setting.m)
    n, p = setting.sizes(d)
    a, h, lam = setting.a, setting.h, setting.lam
    dr = fit.draw(n, p, d, seed)
    W, X = dr.W, dr.X
    E = np.random.default_rng(dr.noise_seed).standard_normal((n * m, d))
    Y = a * np.repeat(X, m, axis=0) + math.sqrt(h) * E
    F = _sigma(name, Y @ W.T / math.sqrt(d))  # N x p
    N = n * m
    S = F.T @ F / N
    C = E.T @ F / N
    G = W @ W.T / d
    r = np.diag(G).copy()
    rho = G / np.sqrt(np.outer(r, r))
    np.fill_diagonal(rho, 0.0)
    K = mehler.series_order(np.abs(rho).max())
    Q = setting.sigma.quadrature_order(np.zeros(p), np.sqrt(r), K)
    Up, Cp = _population(name, W, rho, r, K, Q, h)
    Kmat = np.linalg.solve(S + lam * np.eye(p), C.T)
    return _errors(Kmat, S, C, float((E**2).sum()) / (N * d), Up, Cp, d, h)
