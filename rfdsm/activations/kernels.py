"""The Numba kernels of the simulator's activations (``rfdsm.activations`` loads them on demand).

Kept apart so that ``import rfdsm`` and the theory do not load Numba (about 0.2-1 s): they are
imported only when a simulation applies a built-in activation to a large block, or a kinked
activation needs its piecewise quadrature.  ``code`` is the built-in's ``Activation._numba_code``.
"""

from __future__ import annotations

import math
import os

# Numba's OpenMP workers otherwise spin after each parallel kernel and steal the cores from
# the BLAS call that follows (measured: 10-40 % slower fits on 2 cores).  The OpenMP runtime
# reads it when the first parallel kernel launches, so setting it here, where rfdsm's own
# kernels are loaded (rfdsm.simulate.mehler imports Numba through this module too), precedes
# that launch; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402

TANH, ERF, RELU, LINEAR = 0, 1, 2, 3  # rfdsm.activations._TANH, ... (same values)

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(cache=True, inline="always")
def _sigma_scalar(code, x):
    if code == TANH:
        # through exp: about twice as fast as libm's tanh and exact to rounding
        e = math.exp(-2.0 * abs(x))
        t = (1.0 - e) / (1.0 + e)
        return t if x >= 0.0 else -t
    if code == ERF:
        return math.erf(x * _INV_SQRT2)
    if code == RELU:
        return (x if x > 0.0 else 0.0) - _INV_SQRT_2PI
    return x


@numba.njit(parallel=True, cache=True)
def _sigma_at_nodes(code, mu, s, z, w, V, m2):
    # V[e, q] = sigma(mu[e] + s[e] z[q]) and m2[e] = sum_q w[q] V[e, q]^2; the projection on
    # the Hermite table is then one BLAS product, far faster than an inner loop over k here.
    for e in numba.prange(mu.shape[0]):
        sq = 0.0
        for q in range(z.shape[0]):
            v = _sigma_scalar(code, mu[e] + s[e] * z[q])
            V[e, q] = v
            sq += w[q] * v * v
        m2[e] = sq


@numba.njit(parallel=True, cache=True)
def _tanh_at_nodes_runs(mu, s, z, w, starts, V, m2):
    # As _sigma_at_nodes for tanh, over runs of elements sharing one scale s (a feature's
    # data points): tanh(mu + s z_q) = 1 - 2 / (1 + exp(2 mu) exp(2 s z_q)) needs one exp per
    # element instead of one per node, the exp(2 s z_q) being shared by the run.
    Q = z.shape[0]
    zmax = 0.0
    for q in range(Q):
        zmax = max(zmax, abs(z[q]))
    for r in numba.prange(starts.shape[0] - 1):
        lo, hi = starts[r], starts[r + 1]
        sr = s[lo]
        big = 0.0
        for e in range(lo, hi):
            big = max(big, abs(mu[e]))
        if 2.0 * (big + sr * zmax) > 600.0:  # exp would overflow: evaluate node by node
            for e in range(lo, hi):
                sq = 0.0
                for q in range(Q):
                    v = _sigma_scalar(TANH, mu[e] + sr * z[q])
                    V[e, q] = v
                    sq += w[q] * v * v
                m2[e] = sq
            continue
        ez = np.empty(Q)
        for q in range(Q):
            ez[q] = math.exp(2.0 * sr * z[q])
        for e in range(lo, hi):
            em = math.exp(2.0 * mu[e])
            sq = 0.0
            for q in range(Q):
                v = 1.0 - 2.0 / (1.0 + em * ez[q])
                V[e, q] = v
                sq += w[q] * v * v
            m2[e] = sq


@numba.njit(parallel=True, cache=True)
def _apply_inplace(code, g):
    # g is 2-D; sigma applied entrywise in place (row-parallel).
    for i in numba.prange(g.shape[0]):
        for j in range(g.shape[1]):
            g[i, j] = _sigma_scalar(code, g[i, j])


@numba.njit(parallel=True, cache=True)
def _apply_shifted(code, g, shift, m):
    # g[r, j] <- sigma(g[r, j] + shift[r // m, j]): adds the data part shared by the m noisy
    # copies of a point and applies sigma in one pass, without materialising the repeat.
    for r in numba.prange(g.shape[0]):
        row = r // m
        for j in range(g.shape[1]):
            g[r, j] = _sigma_scalar(code, g[r, j] + shift[row, j])


@numba.njit(parallel=True, cache=True)
def _add_hermite_projection(vals, z, beta):
    # beta[k, e] += sum_q vals[e, q] He_k(z[e, q]) / sqrt(k!), by the three-term recurrence
    # h_k = (z h_{k-1} - sqrt(k-1) h_{k-2}) / sqrt(k) at each node: the nodes differ per
    # element here, so a shared table (and BLAS) cannot be used, and an (elements, nodes, K+1)
    # table costs far more memory traffic than the recurrence.
    K1 = beta.shape[0]
    inv = np.empty(K1)
    ratio = np.empty(K1)
    for k in range(1, K1):
        inv[k] = 1.0 / math.sqrt(k)
        ratio[k] = math.sqrt((k - 1) / k)
    for e in numba.prange(vals.shape[0]):
        acc = np.zeros(K1)
        for q in range(vals.shape[1]):
            v, x = vals[e, q], z[e, q]
            h_prev, h = 0.0, 1.0
            acc[0] += v
            for k in range(1, K1):
                h_next = x * h * inv[k] - ratio[k] * h_prev
                h_prev, h = h, h_next
                acc[k] += v * h
        for k in range(K1):
            beta[k, e] += acc[k]
