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
from scipy import linalg

from ..activations.kernels import numba# through rfdsm._kernels: sets OMP_WAIT_POLICY before any launch

#: Largest Hermite order used; at small d the correlations are large and the reported bound
#: says how good the truncation is.
MAX_ORDER = 60
#: Target for ``max_ij |rho_ij|^{K+1}`` when choosing the order.
SERIES_TOL = 1e-13


def correlations(W, xp=np) -> tuple:
    """``r_i = |w_i|^2/d``, the correlation matrix ``rho_ij = w_i.w_j / (d sqrt(r_i r_j))`` and
    the largest off-diagonal ``|rho_ij|`` (``xp``: the array namespace of ``W``).

    These are the preactivation variances and correlations of ``w_i.y/sqrt d`` for
    ``y ~ N(0, I)``.  For ``y ~ N(0, Gamma)`` (data of covariance ``Sigma``,
    ``Gamma = a^2 Sigma + h I``) pass ``W Gamma^{1/2}``: the preactivation covariance is
    ``W Gamma W^T / d``, whose variances ``|Gamma^{1/2} w_i|^2/d`` are no longer ~1, so the
    Hermite coefficients of the series are taken at those (:class:`rfdsm.data.Spectrum`).
    """
    d = W.shape[1]
    C = W @ W.T / d
    r = xp.diag(C).copy()
    inv = 1.0 / xp.sqrt(r)
    C *= inv[:, None]
    C *= inv[None, :]
    xp.fill_diagonal(C, 0.0)
    rho_max = float(xp.abs(C).max()) if C.shape[0] > 1 else 0.0
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
    Evaluated by Horner's rule, ``acc <- rho * acc + beta_k beta_k^T`` for ``k = K..0``, so that
    no power of ``rho`` is stored; each step is one BLAS ``syrk`` on the upper triangle.
    ``rho`` must be symmetric (it is a correlation matrix).
    """
    K1, p, c = beta.shape
    if c == 1:
        _horner_rank1(out, rho, np.ascontiguousarray(beta[:, :, 0]), float(weight))
        return
    dtype = np.result_type(beta.dtype, np.float32)
    syrk = linalg.blas.get_blas_funcs("syrk", dtype=dtype)
    acc = np.zeros((p, p), dtype=dtype, order="F")
    rho_f = rho.T if rho.dtype == dtype else rho.T.astype(dtype)  # F-ordered view: rho is symmetric
    for k in range(K1 - 1, -1, -1):
        if k < K1 - 1:
            acc *= rho_f
        # beta[k].T is an F-ordered c x p view, so trans=1 gives beta_k beta_k^T with no copy
        syrk(weight, beta[k].T, beta=1.0, c=acc, trans=1, lower=0, overwrite_c=True)
    add_upper_symmetric(out, acc)


@numba.njit(parallel=True, cache=True)
def add_upper_symmetric(out, acc):
    """``out += sym(acc)``, where only the upper triangle of ``acc`` (as BLAS syrk leaves it) is read."""
    p = out.shape[0]
    for i in numba.prange(p):
        for j in range(p):
            out[i, j] += acc[i, j] if i <= j else acc[j, i]


@numba.njit(parallel=True, cache=True)
def _horner_rank1(out, rho, b, weight):
    # out[i, j] += weight * sum_k rho[i, j]^k b[k, i] b[k, j], by Horner's rule in k.
    K1, p = b.shape
    for i in numba.prange(p):
        for j in range(p):
            r = rho[i, j]
            acc = b[K1 - 1, i] * b[K1 - 1, j]
            for k in range(K1 - 2, -1, -1):
                acc = acc * r + b[k, i] * b[k, j]
            out[i, j] += weight * acc


@numba.njit(parallel=True, cache=True)
def _residual_rows(beta, m2, out):
    # out[i, k] = max_c (m2[i, c] - sum_{l <= k} beta[l, i, c]^2)
    K1, p, c = beta.shape
    for i in numba.prange(p):
        cum = np.zeros(c)
        for k in range(K1):
            best = -np.inf
            for e in range(c):
                b = beta[k, i, e]
                cum[e] += b * b
                r = m2[i, e] - cum[e]
                if r > best:
                    best = r
            out[i, k] = best


def residual_profile(beta: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """``R[k] = max_{i,c} (E sigma(g_ic)^2 - sum_{l<=k} beta_l(i,c)^2)``: the largest variance not
    explained by the terms up to order ``k`` (``beta`` of shape ``(K+1, p, c)``)."""
    beta = np.ascontiguousarray(beta, dtype=np.float64)
    m2 = np.ascontiguousarray(m2, dtype=np.float64)
    rows = np.empty((beta.shape[1], beta.shape[0]))
    _residual_rows(beta, m2, rows)
    return rows.max(axis=0)


def adaptive_order(rho_max: float, K: int, residual: np.ndarray, scale: float) -> int:
    """Smallest ``k <= K`` whose tail bound ``rho_max^{k+1} R[k]`` is at most ``SERIES_TOL * scale``.

    ``K`` from :func:`series_order` guarantees ``rho_max^{K+1} R[K] <= SERIES_TOL * max R``
    whatever the activation; when the Hermite moments decay (smooth ``sigma``, small spread)
    the residual ``R[k]`` reaches that level at a much lower order.  With
    ``scale = max E sigma^2 >= max R`` the guarantee is the same as for ``K``.
    """
    target = SERIES_TOL * scale
    for k in range(K + 1):
        if rho_max ** (k + 1) * max(float(residual[k]), 0.0) <= target:
            return k
    return K


def tail_bound(rho_max: float, K: int, residual_variance: np.ndarray) -> float:
    """Upper bound on any off-diagonal truncation error (see module docstring)."""
    rmax = float(np.max(np.maximum(residual_variance, 0.0))) if residual_variance.size else 0.0
    return rho_max ** (K + 1) * rmax
