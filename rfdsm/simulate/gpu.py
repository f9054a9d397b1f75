"""GPU backend of the simulator (optional dependency: CuPy).

The algorithm is that of :mod:`.fit` -- streamed Gram of the noisy features for finite ``m``,
Hermite moments and the Mehler series (Horner's rule, adaptive order) for ``m = inf``, exact
population moments, Cholesky ridge solve -- written against an array namespace ``xp`` so
that the same code runs on CuPy arrays (``backend="gpu"``) and, as a check of the code path
on machines without a GPU, on NumPy arrays (:func:`numpy_ops`).

The random draws (``W``, data, noise) come from the very NumPy streams of the CPU backend
and are copied to the device, so a seed gives the same realisation on both backends and
float64 results agree with the CPU to rounding.  Hermite moments of activations without a
device formula (closed-form ReLU/linear moments, user-registered activations) are computed
on the host and copied over; everything of size ``p x p`` or ``p x n`` lives on the device.
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import linalg, special

from .. import activations as _acts
from ..setting import Setting
from . import fit, mehler

#: Default block size on a GPU: large blocks keep the series products compute-bound
#: (each block costs a few passes over ``p x p`` matrices per Hermite order).
DEFAULT_BLOCK_BYTES = 2 * 2**30

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Ops:
    """An array namespace plus the few routines whose spelling differs between libraries."""

    def __init__(self, xp, name, *, to_host, erf, cholesky_solve, sync=lambda: None, device=""):
        self.xp = xp
        self.name = name
        self.to_host = to_host
        self.erf = erf
        self.cholesky_solve = cholesky_solve  # (A, B) -> A^{-1} B, or None if A is not PD
        self.sync = sync
        self.device = device

    def to_device(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)


def _np_cholesky_solve(A, B):
    try:
        return linalg.cho_solve(linalg.cho_factor(A, lower=False, overwrite_a=True), B)
    except linalg.LinAlgError:
        return None


def numpy_ops() -> Ops:
    """The device code path on NumPy arrays (for tests on machines without a GPU)."""
    return Ops(np, "numpy", to_host=np.asarray, erf=special.erf, cholesky_solve=_np_cholesky_solve,
               device="host (numpy)")


def cupy_ops() -> Ops:
    """CuPy namespace; raises ImportError/RuntimeError when CuPy or a CUDA device is missing."""
    import cupy as cp
    import cupyx.scipy.linalg as cla
    import cupyx.scipy.special as csp

    if cp.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("no CUDA device visible")

    def chol_solve(A, B):
        L = cp.linalg.cholesky(A)  # CuPy returns NaNs rather than raising when A is not PD
        if not bool(cp.isfinite(L).all()):
            return None
        y = cla.solve_triangular(L, B, lower=True)
        return cla.solve_triangular(L, y, lower=True, trans="T")

    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return Ops(cp, "cupy", to_host=cp.asnumpy, erf=csp.erf, cholesky_solve=chol_solve,
               sync=cp.cuda.Device().synchronize, device=name)


def available() -> bool:
    """True when CuPy is importable and sees a CUDA device."""
    try:
        cupy_ops()
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False
    return True


def require() -> None:
    """Raise a clear ValueError when ``backend="gpu"`` cannot run here."""
    try:
        cupy_ops()
    except Exception as exc:  # noqa: BLE001
        raise ValueError(
            "backend='gpu' needs CuPy and a CUDA device (pip install cupy-cuda12x); "
            f"not usable here: {type(exc).__name__}: {exc}"
        ) from None


# --- elementwise activation and Hermite moments on the device ------------------------------

def _apply(ops: Ops, act, G):
    """``sigma(G)`` (may reuse ``G``'s memory)."""
    xp, code = ops.xp, act._numba_code
    if code == _acts._TANH:
        return xp.tanh(G, out=G)
    if code == _acts._ERF:
        return ops.erf(G * _INV_SQRT2)
    if code == _acts._RELU:
        G = xp.maximum(G, 0.0, out=G)
        G -= _INV_SQRT_2PI
        return G
    if code == _acts._LINEAR:
        return G
    # user-registered activation: only its NumPy form exists
    return ops.to_device(np.asarray(act.fn(ops.to_host(G)), dtype=G.dtype))


def _moments(ops: Ops, act, mu, s, K: int, block_bytes: int):
    """``beta`` (K+1, p, c) and ``E sigma^2`` (p, c) for means ``mu`` (p, c) and scales ``s`` (p,)."""
    xp = ops.xp
    p, c = mu.shape
    if act.closed_form is not None or act._numba_code is None:
        beta, m2 = act.moments(ops.to_host(mu), ops.to_host(s)[:, None], K)
        return ops.to_device(beta), ops.to_device(m2)
    # Gauss-Hermite order chosen exactly as on the CPU, from the same probe points
    i_star = int(ops.to_host(xp.argmax(s)))
    probe_mu = np.array([float(mu[i_star, 0]), float(mu.min()), float(mu.max())])
    probe_s = np.full(3, float(s.max()))
    Q = act.quadrature_order(probe_mu, probe_s, K)
    z, w, table = (ops.to_device(x) for x in _acts._weighted_table(Q, K))
    mu_f = mu.reshape(-1)
    s_f = xp.broadcast_to(s[:, None], (p, c)).reshape(-1)
    beta = xp.empty((K + 1, p * c))
    m2 = xp.empty(p * c)
    block = max(1, block_bytes // (8 * Q))
    for start in range(0, p * c, block):
        stop = min(start + block, p * c)
        V = _apply(ops, act, mu_f[start:stop, None] + s_f[start:stop, None] * z[None, :])
        beta[:, start:stop] = table.T @ V.T
        m2[start:stop] = (V * V) @ w
    return beta.reshape(K + 1, p, c), m2.reshape(p, c)


def _correlations(ops: Ops, W):
    xp = ops.xp
    d = W.shape[1]
    C = W @ W.T / d
    r = xp.diag(C).copy()
    inv = 1.0 / xp.sqrt(r)
    C *= inv[:, None]
    C *= inv[None, :]
    xp.fill_diagonal(C, 0.0)
    rho_max = float(xp.abs(C).max()) if C.shape[0] > 1 else 0.0
    return r, C, rho_max


def _horner(ops: Ops, U, rho, beta, weight, tmp=None):
    """``U += weight * sum_k rho^{.k} * (beta_k beta_k^T)``, Horner's rule in ``k``."""
    xp = ops.xp
    K1, p, c = beta.shape
    acc = xp.zeros((p, p), dtype=beta.dtype)
    if tmp is None:
        tmp = xp.empty_like(acc)
    for k in range(K1 - 1, -1, -1):
        if k < K1 - 1:
            acc *= rho
        bk = beta[k]
        xp.matmul(bk, bk.T, out=tmp)
        acc += tmp
    acc *= weight
    U += acc


def _residual_profile(ops: Ops, beta, m2):
    xp = ops.xp
    cum = xp.cumsum(beta * beta, axis=0)
    return ops.to_host((m2[None] - cum).reshape(beta.shape[0], -1).max(axis=1))


# --- the three moment computations -----------------------------------------------------------

def _finite_m(ops: Ops, act, dr, W, m, a, h, block_bytes, chunk, dt):
    xp = ops.xp
    p, d = W.shape
    n = dr.X.shape[0]
    N = n * m
    if chunk is None:
        chunk = max(1, int(block_bytes // (dt.itemsize * m * (2 * p + d))))
    chunk = min(chunk, n)
    rng = np.random.default_rng(dr.noise_seed)
    X = ops.to_device(dr.X)
    Gx = ((a / math.sqrt(d)) * (X @ W.T)).astype(dt)
    Wt = (W.T * math.sqrt(h / d)).astype(dt)
    S = xp.zeros((p, p))
    C = xp.zeros((d, p))
    zz = 0.0
    t_feat = t_gram = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t0 = time.perf_counter()
        E_host = rng.standard_normal(((stop - start) * m, d))  # the CPU backend's noise stream
        zz += float(np.einsum("ij,ij->", E_host, E_host))
        E = ops.to_device(E_host, dtype=dt)
        G = E @ Wt
        G += xp.repeat(Gx[start:stop], m, axis=0)
        G = _apply(ops, act, G)
        ops.sync()
        t1 = time.perf_counter()
        S += G.T @ G
        C += E.T @ G
        ops.sync()
        t_gram += time.perf_counter() - t1
        t_feat += t1 - t0
    S /= N
    C /= N
    return fit.Moments(S, C, zz / (N * d), {"chunk_size": chunk, "n_chunks": -(-n // chunk),
                                          "time_features": t_feat, "time_gram": t_gram})


def _noise_averaged(ops: Ops, act, dr, W, corr, a, h, block_bytes, dt):
    xp = ops.xp
    p, d = W.shape
    n = dr.X.shape[0]
    r, rho, rho_max = corr
    K = mehler.series_order(rho_max)
    s = xp.sqrt(h * r)
    chunk = max(1, min(n, int(block_bytes // (8 * (K + 2) * p))))
    Gx = (a / math.sqrt(d)) * (W @ ops.to_device(dr.X).T)  # p x n
    rho_s = rho.astype(dt, copy=False)
    U = xp.zeros((p, p))
    tmp = xp.empty((p, p), dtype=dt)
    diag = xp.zeros(p)
    dbar = xp.zeros(p)
    orders, bounds = [], []
    t_quad = t_series = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t0 = time.perf_counter()
        beta, m2 = _moments(ops, act, xp.ascontiguousarray(Gx[:, start:stop]), s, K, block_bytes)
        R = _residual_profile(ops, beta, m2)
        Kc = mehler.adaptive_order(rho_max, K, R, float(m2.max()))
        ops.sync()
        t1 = time.perf_counter()
        _horner(ops, U, rho_s, beta[: Kc + 1].astype(dt, copy=False), 1.0 / n, tmp)
        ops.sync()
        t_series += time.perf_counter() - t1
        t_quad += t1 - t0
        orders.append(Kc)
        bounds.append(rho_max ** (Kc + 1) * max(float(R[Kc]), 0.0))
        diag += m2.sum(axis=1) / n
        dbar += beta[1].sum(axis=1) / n
    U[xp.arange(p), xp.arange(p)] = diag
    C = math.sqrt(h / d) * (W.T * (dbar / s)[None, :])
    info = {"hermite_order": max(orders), "hermite_order_cap": K, "series_bound": max(bounds),
            "rho_max": rho_max, "chunk_size": chunk, "n_chunks": -(-n // chunk),
            "time_quadrature": t_quad, "time_series": t_series}
    return fit.Moments(U, C, 1.0, info)


def _population(ops: Ops, act, W, h, corr):
    xp = ops.xp
    p, d = W.shape
    r, rho, rho_max = corr
    K = mehler.series_order(rho_max)
    s_host = np.sqrt(ops.to_host(r))
    beta, m2 = act.moments(np.zeros(p), s_host, K)  # p values only: cheap on the host
    b = ops.to_device(beta)
    U = xp.zeros((p, p))
    for k in range(K, -1, -1):
        if k < K:
            U *= rho
        U += xp.outer(b[k], b[k])
    U[xp.arange(p), xp.arange(p)] = ops.to_device(m2)
    C = math.sqrt(h / d) * (W.T * ops.to_device(beta[1] / s_host)[None, :])
    resid = m2 - np.einsum("ki,ki->i", beta, beta)
    return fit.Moments(U, C, 1.0, {"population_hermite_order": K,
                                    "population_series_bound": mehler.tail_bound(rho_max, K, resid)})


def _ridge_solve(ops: Ops, S, C, lam):
    """Device version of :func:`fit.ridge_solve` (same ridgeless rule)."""
    xp = ops.xp
    p = S.shape[0]
    if lam > 0:
        A = S.copy()
        A[xp.arange(p), xp.arange(p)] += lam
        K = ops.cholesky_solve(A, C.T)
        if K is not None:
            return K
    evals, evecs = xp.linalg.eigh(S)
    cut = p * np.finfo(float).eps * max(float(evals[-1]), 0.0)
    inv = xp.where(evals + lam > cut, 1.0 / xp.maximum(evals + lam, cut), 0.0)
    return evecs @ (inv[:, None] * (evecs.T @ C.T))


def _quadratic(ops: Ops, K, mom) -> float:
    xp = ops.xp
    return float(xp.sum(K * (mom.S @ K)) - 2.0 * xp.sum(K * mom.C.T))


def simulate_seed(setting: Setting, d: int, seed: int, *, block_bytes: int | None = None,
                  chunk: int | None = None, mc_test: int = 0, dtype=np.float64,
                  ops: Ops | None = None) -> dict:
    """:func:`rfdsm.simulate.simulate_seed` on the device of ``ops`` (default: CuPy)."""
    if ops is None:
        ops = cupy_ops()
    if block_bytes is None:
        block_bytes = DEFAULT_BLOCK_BYTES
    dt = fit._float_dtype(dtype)
    n, p = setting.sizes(d)
    act = setting.sigma
    a, h = setting.a, setting.h
    t0 = time.perf_counter()
    dr = fit.draw(n, p, d, seed)
    W = ops.to_device(dr.W)
    corr = _correlations(ops, W)
    if setting.m == math.inf:
        mom = _noise_averaged(ops, act, dr, W, corr, a, h, block_bytes, dt)
    else:
        mom = _finite_m(ops, act, dr, W, int(setting.m), a, h, block_bytes, chunk, dt)
    ops.sync()
    t1 = time.perf_counter()
    K = _ridge_solve(ops, mom.S, mom.C, setting.lam)
    ops.sync()
    t2 = time.perf_counter()
    pop = _population(ops, act, W, h, corr)
    q_pop = _quadratic(ops, K, pop)
    t3 = time.perf_counter()
    row = {
        "seed": int(seed),
        "train": mom.noise_sq + _quadratic(ops, K, mom) / d,
        "test": 1.0 + q_pop / d,
        "score": 1.0 + q_pop / (d * h),
    }
    diag = {**mom.info, **pop.info, "time_moments": t1 - t0, "time_solve": t2 - t1,
            "time_population": t3 - t2, "backend": "gpu", "device": ops.device, "dtype": dt.name}
    if mc_test:
        diag.update(fit.mc_errors(act, dr, np.asarray(ops.to_host(K)), a, h, mc_test))
    diag["time_total"] = time.perf_counter() - t0
    row["wall_time"] = diag["time_total"]
    row["diagnostics"] = diag
    return row
