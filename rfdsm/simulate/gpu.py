"""GPU backend of the simulator (optional dependency: CuPy).

Every step of a fit is that of :mod:`.fit` (streamed Gram for finite ``m``, Hermite moments
and the Mehler series with adaptive order for ``m = inf``, exact population moments, Cholesky
ridge solve), run on an :class:`Ops` object instead of :class:`.fit.HostOps`.  This module
supplies only what has a different device form: the activation and its Hermite moments with
array operations instead of Numba kernels, and the Mehler series by Horner's rule with GEMMs
instead of BLAS ``syrk``.  :func:`numpy_ops` runs these device forms on NumPy arrays, so
that machines without a GPU test this code path too.

The random draws (``W``, data, noise) come from the very NumPy streams of the CPU backend
and are copied to the device, so a seed gives the same realisation on both backends and
float64 results agree with the CPU to rounding.  Hermite moments of activations without a
device formula (closed-form ReLU/linear moments, user-registered activations) are computed
on the host and copied over; everything of size ``p x p`` or ``p x n`` lives on the device.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .. import activations as _acts
from ..core.setting import Setting
from . import fit, mehler

#: Default block size on a GPU: large blocks keep the series products compute-bound
#: (each block costs a few passes over ``p x p`` matrices per Hermite order).
DEFAULT_BLOCK_BYTES = 2 * 2**30

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Ops:
    """The GPU backend's array namespace and routines, with the methods of
    :class:`.fit.HostOps` so that the shared steps of :mod:`.fit` run on it unchanged."""

    name = "gpu"

    def __init__(self, xp, *, to_host, erf, cholesky_solve, sync=lambda: None, device=""):
        self.xp = xp
        self.to_host = to_host
        self.erf = erf
        self.cholesky_solve = cholesky_solve  # (A, B) -> A^{-1} B, or None if A is not PD
        self.sync = sync
        self.device = device

    def to_device(self, x, dtype=None):
        return self.xp.asarray(x, dtype=dtype)

    def apply_shifted(self, act, G, shift, m):
        G += self.xp.repeat(shift, m, axis=0)
        return _apply(self, act, G)

    def moments(self, act, mu, s, K, block_bytes):
        return _moments(self, act, mu, s, K, block_bytes)

    def residual_profile(self, beta, m2):
        cum = self.xp.cumsum(beta * beta, axis=0)
        return self.to_host((m2[None] - cum).reshape(beta.shape[0], -1).max(axis=1))

    def accumulate(self, U, rho, beta, weight):
        _horner(self, U, rho, beta, weight)

    def correlations(self, W):
        return mehler.correlations(W, self.xp)


def numpy_ops() -> Ops:
    """The device code path on NumPy arrays (for tests on machines without a GPU)."""
    return Ops(np, to_host=np.asarray, erf=special.erf, cholesky_solve=fit.HostOps.cholesky_solve,
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
    return Ops(cp, to_host=cp.asnumpy, erf=csp.erf, cholesky_solve=chol_solve,
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

    def host():
        beta, m2 = act.moments(ops.to_host(mu), ops.to_host(s)[:, None], K)
        return ops.to_device(beta), ops.to_device(m2)

    if act.closed_form is not None or act._numba_code is None:
        return host()
    # Gauss-Hermite order chosen exactly as on the CPU, from the same probe points
    i_star = int(ops.to_host(xp.argmax(s)))
    probe_mu = np.array([float(mu[i_star, 0]), float(mu.min()), float(mu.max())])
    probe_s = np.full(3, float(s.max()))
    try:
        Q = act.quadrature_order(probe_mu, probe_s, K)
    except _acts.QuadratureError:  # scales Gauss-Hermite cannot resolve: the host's adaptive rule
        return host()
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


def _horner(ops: Ops, U, rho, beta, weight):
    """``U += weight * sum_k rho^{.k} * (beta_k beta_k^T)``, Horner's rule in ``k`` (the
    device form of :func:`.mehler.accumulate`)."""
    xp = ops.xp
    K1, p, c = beta.shape
    acc = xp.zeros((p, p), dtype=beta.dtype)
    tmp = xp.empty_like(acc)
    for k in range(K1 - 1, -1, -1):
        if k < K1 - 1:
            acc *= rho
        bk = beta[k]
        xp.matmul(bk, bk.T, out=tmp)
        acc += tmp
    acc *= weight
    U += acc


def simulate_seed(setting: Setting, d: int, seed: int, *, block_bytes: int | None = None,
                  chunk: int | None = None, mc_test: int = 0, dtype=np.float64,
                  ops: Ops | None = None, metrics=None) -> dict:
    """:func:`rfdsm.simulate.simulate_seed` on the device of ``ops`` (default: CuPy)."""
    return fit.evaluate_seed(setting, d, seed, block_bytes or DEFAULT_BLOCK_BYTES, chunk, mc_test,
                             dtype, ops if ops is not None else cupy_ops(), metrics)
