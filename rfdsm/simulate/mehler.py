"""Gram matrices of Gaussian features by the Mehler (Hermite) series.

For preactivations ``g_i = mu_i + s_i u_i`` with ``(u_i, u_j)`` standard Gaussians of
correlation ``rho_ij``, Mehler's formula reads

    E sigma(g_i) sigma(g_j) = sum_{k >= 0} rho_ij^k beta_k(i) beta_k(j),
    beta_k(i) = E[sigma(mu_i + s_i z) He_k(z)] / sqrt(k!).

By Cauchy-Schwarz the tail after order K is bounded by
``|rho_ij|^{K+1} sqrt(R_i R_j)`` with ``R_i = E sigma(g_i)^2 - sum_{k<=K} beta_k(i)^2`` (the
unexplained variance), which is what :func:`series_order` and the reported bound use.
The diagonal ``rho_ii = 1`` is never summed: it is the exact second moment instead.
"""

from __future__ import annotations

import math

import numpy as np

#: Largest Hermite order used; at small d the correlations are large and the reported bound
#: says how good the truncation is.
MAX_ORDER = 60
#: Target for ``max_ij |rho_ij|^{K+1}`` when choosing the order.
SERIES_TOL = 1e-13


def correlations(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``r_i = |w_i|^2/d``, the correlation matrix ``rho_ij = w_i.w_j / (d sqrt(r_i r_j))`` and
    the largest off-diagonal ``|rho_ij|``."""
    d = W.shape[1]
    C = W @ W.T / d
    r = np.diag(C).copy()
    inv = 1.0 / np.sqrt(r)
    C *= inv[:, None]
    C *= inv[None, :]
    np.fill_diagonal(C, 0.0)
    rho_max = float(np.abs(C).max()) if C.shape[0] > 1 else 0.0
    return r, C, rho_max


def series_order(rho_max: float) -> int:
    """Smallest ``K`` with ``rho_max^{K+1} <= SERIES_TOL`` (capped at :data:`MAX_ORDER`)."""
    if rho_max <= 0.0:
        return 1
    if rho_max >= 1.0:
        return MAX_ORDER
    return int(min(MAX_ORDER, max(1, math.ceil(math.log(SERIES_TOL) / math.log(rho_max)) - 1)))


def accumulate(out: np.ndarray, rho: np.ndarray, beta: np.ndarray, weight: float) -> None:
    """``out += weight * sum_k rho^{.k} * (beta_k beta_k^T)`` (off-diagonal use; ``.k``: entrywise power).

    ``beta`` has shape ``(K+1, p, c)``: ``c`` data points (or 1 for a population Gram).
    """
    power = np.ones_like(out)
    tmp = np.empty_like(out)
    for k in range(beta.shape[0]):
        bk = np.ascontiguousarray(beta[k])
        np.matmul(bk, bk.T, out=tmp)  # numpy dispatches A @ A.T to BLAS syrk
        tmp *= power
        tmp *= weight
        out += tmp
        if k + 1 < beta.shape[0]:
            power *= rho


def tail_bound(rho_max: float, K: int, residual_variance: np.ndarray) -> float:
    """Upper bound on any off-diagonal truncation error (see module docstring)."""
    rmax = float(np.max(np.maximum(residual_variance, 0.0))) if residual_variance.size else 0.0
    return rho_max ** (K + 1) * rmax
