"""Activations and their Gaussian expectations.

For an activation ``sigma`` the model needs, with ``z ~ N(0, 1)``:

* the Hermite coefficients of ``docs/model.md``: ``mu0 = E sigma(z)``, ``mu1 = E z sigma(z)``,
  ``mu_star^2 = E sigma(z)^2 - mu0^2 - mu1^2`` (adaptive quadrature, kinks split out);
* the *shifted* normalised Hermite moments used by the exact simulator,

      beta_k(mu, s) = E[ sigma(mu + s z) He_k(z) ] / sqrt(k!),   k = 0..K,

  and the second moment ``E sigma(mu + s z)^2``.  With these, for jointly Gaussian
  ``(g_i, g_j)`` of means ``mu_i, mu_j``, standard deviations ``s_i, s_j`` and correlation
  ``rho``, Mehler's formula gives ``E sigma(g_i) sigma(g_j) = sum_k rho^k beta_k(i) beta_k(j)``
  (see ``docs/simulator.md``).

Built-ins: ``tanh``; ``erf`` meaning ``erf(x / sqrt 2) = 2 Phi(x) - 1``; ``relu`` meaning the
*centred* ReLU ``max(x, 0) - 1/sqrt(2 pi)`` (so ``mu0 = 0``); ``linear`` (``sigma(x) = x``).
Smooth activations use Gauss-Hermite quadrature evaluated by a parallel Numba kernel; ReLU
and linear use closed forms, because Gauss-Hermite converges slowly across a kink.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

# Numba's OpenMP workers otherwise spin after each parallel kernel and steal the cores from
# the BLAS call that follows (measured: 10-40 % slower fits on 2 cores).  Must precede the
# first parallel launch; a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np
from scipy import integrate, special

__all__ = [
    "Activation",
    "register_activation",
    "get_activation",
    "registered_activations",
    "hermite_table",
    "QUAD_ORDERS",
]

#: Candidate Gauss-Hermite orders for smooth activations; the smallest whose moments agree
#: with the next order to QUAD_TOL on the extreme (mu, s) of a call is used.
QUAD_ORDERS = (24, 32, 48, 64, 96, 128, 192, 256, 384)
QUAD_TOL = 1e-10

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Numba codes for built-in activations evaluated inside the parallel kernels.
_TANH, _ERF, _RELU, _LINEAR = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def _sigma_scalar(code, x):
    if code == _TANH:
        # through exp: about twice as fast as libm's tanh and exact to rounding
        e = math.exp(-2.0 * abs(x))
        t = (1.0 - e) / (1.0 + e)
        return t if x >= 0.0 else -t
    if code == _ERF:
        return math.erf(x * _INV_SQRT2)
    if code == _RELU:
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
                    v = _sigma_scalar(_TANH, mu[e] + sr * z[q])
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


@lru_cache(maxsize=None)
def _gauss_hermite(q: int):
    z, w = special.roots_hermitenorm(q)
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


class QuadratureError(RuntimeError):
    """The Gaussian quadrature of an activation's moments did not reach its tolerance."""


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


#: Where an activation is evaluated to fingerprint it: irregularly spaced, so that two
#: functions that differ anywhere on [-8, 8] at a scale above ~0.05 almost surely differ here.
_PROBE_X = np.linspace(-8.0, 8.0, 321) + 0.0123456789
_PROBE_MU, _PROBE_S = np.array([-0.7, 0.0, 0.4]), np.array([0.3, 1.0, 1.7])


def _fingerprint(name, fn, closed_form, kinks) -> str:
    # Values printed to 12 digits, not their bits: libm may differ in the last ulp between
    # machines, and a resumed sweep must recognise its own activation there.
    vals = np.asarray(fn(_PROBE_X.copy()), dtype=float)
    parts = [name, [f"{k:.12g}" for k in kinks], [f"{v:.12g}" for v in vals]]
    if closed_form is not None:
        beta, m2 = closed_form(_PROBE_MU, _PROBE_S, 3)
        parts.append([f"{v:.12g}" for v in np.concatenate((np.ravel(beta), np.ravel(m2)))])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation ``sigma``.

    ``fn`` must accept and return numpy arrays elementwise.  ``closed_form(mu, s, K)``, when
    given, returns the exact ``(beta, second_moment)``; otherwise Gauss-Hermite quadrature is
    used (``kinks`` lists points where ``sigma`` is not smooth, for the adaptive quadrature of
    the Hermite coefficients).

    Two activations are equal when their contents are (:attr:`fingerprint`: the name, the
    kinks and the values of ``fn`` and ``closed_form`` at fixed probe points), so caches and
    sweep hashes see the function, not only its name.  A pickled activation carries its
    function by value (cloudpickle), so that worker processes and Dask workers need no
    registration of their own.
    """

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    description: str = ""
    closed_form: Callable | None = None
    kinks: tuple = ()
    _numba_code: int | None = None
    fingerprint: str = ""

    def __post_init__(self):
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint",
                               _fingerprint(self.name, self.fn, self.closed_form, self.kinks))

    def __eq__(self, other):
        return isinstance(other, Activation) and other.fingerprint == self.fingerprint

    def __hash__(self):
        return hash(self.fingerprint)

    def __reduce__(self):
        if _BUILTINS.get(self.name) is self:
            return (_builtin, (self.name,))
        import cloudpickle

        payload = cloudpickle.dumps((self.fn, self.closed_form))
        return (_unpickle, (self.name, payload, self.description, self.kinks, self.fingerprint))

    def __call__(self, x):
        return self.fn(x)

    def _fast(self, g) -> bool:
        return (self._numba_code is not None and isinstance(g, np.ndarray) and g.ndim == 2
                and g.flags.c_contiguous and g.dtype in (np.float64, np.float32))

    def apply_(self, g: np.ndarray) -> np.ndarray:
        """``sigma`` applied in place to a C-contiguous float 2-D array (parallel when built-in)."""
        if self._fast(g):
            _apply_inplace(self._numba_code, g)
            return g
        g[...] = self.fn(g)
        return g

    def apply_shifted_(self, g: np.ndarray, shift: np.ndarray, m: int) -> np.ndarray:
        """In place ``g[r] <- sigma(g[r] + shift[r // m])`` (row ``r`` of ``g`` is noisy copy
        ``r mod m`` of data point ``r // m``)."""
        if self._fast(g) and shift.dtype == g.dtype and shift.flags.c_contiguous:
            _apply_shifted(self._numba_code, g, shift, int(m))
            return g
        g += np.repeat(shift, m, axis=0)
        return self.apply_(g)

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """``(mu0, mu1, mu_star)`` of ``docs/model.md``."""
        return _coefficients(self)

    def moments(self, mu, s, K: int, nodes: int | None = None):
        """``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)]/sqrt(k!)`` for ``k <= K``, and ``E sigma^2``.

        ``mu`` and ``s`` broadcast together; returns ``beta`` of shape ``(K+1,) + shape`` and
        the second moment of shape ``shape``.  ``nodes`` fixes the Gauss-Hermite order;
        by default it is chosen per call (see :data:`QUAD_ORDERS`).
        """
        mu, s = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(s, dtype=float))
        if self.closed_form is not None:
            return self.closed_form(mu, s, K)
        shape = mu.shape
        mu, s = np.ascontiguousarray(mu).reshape(-1), np.ascontiguousarray(s).reshape(-1)
        if self.kinks:
            beta, m2 = self._split_quadrature(mu, s, K, nodes)
        else:
            if nodes is None:
                nodes = self.quadrature_order(mu, s, K)
            beta, m2 = self._quadrature(mu, s, K, nodes)
        return beta.reshape((K + 1,) + shape), m2.reshape(shape)

    def _split_quadrature(self, mu, s, K, nodes=None, half_width=10.0):
        """Composite Gauss-Legendre in ``z`` on ``[-L, L]``, split where ``mu + s z`` meets a kink.

        Gauss-Hermite converges only algebraically across a kink; on each smooth piece
        Gauss-Legendre converges geometrically.  The Gaussian mass beyond ``|z| = 10`` is < 1e-22.
        ``nodes`` per piece is doubled from 32 until two orders agree to :data:`QUAD_TOL`.
        """
        orders = (nodes,) if nodes is not None else (32, 64, 128, 256)
        prev = None
        for q in orders:
            cur = self._legendre_pieces(mu, s, K, q, half_width)
            if prev is not None:
                err = max(np.abs(cur[0] - prev[0]).max(), np.abs(cur[1] - prev[1]).max())
                if err < QUAD_TOL * (1.0 + np.abs(cur[0]).max()):
                    return cur
            prev = cur
        if nodes is not None:
            return cur
        raise QuadratureError(f"piecewise quadrature for activation {self.name!r} did not converge "
                           f"to {QUAD_TOL:g} with {orders[-1]} nodes per piece")

    def _legendre_pieces(self, mu, s, K, q, L):
        block = max(1, (1 << 21) // q)  # bounds the (block, q) arrays of nodes and values
        if mu.size > block:
            parts = [self._legendre_pieces(mu[i:i + block], s[i:i + block], K, q, L)
                     for i in range(0, mu.size, block)]
            return np.concatenate([b for b, _ in parts], axis=1), np.concatenate([m for _, m in parts])
        x, wx = _gauss_legendre(q)
        cuts = np.sort(np.clip((np.asarray(self.kinks)[None, :] - mu[:, None]) / s[:, None], -L, L), axis=1)
        edges = np.concatenate([np.full((mu.size, 1), -L), cuts, np.full((mu.size, 1), L)], axis=1)
        beta = np.zeros((K + 1, mu.size))
        m2 = np.zeros(mu.size)
        for lo, hi in zip(edges[:, :-1].T, edges[:, 1:].T):
            half = 0.5 * (hi - lo)
            z = (0.5 * (hi + lo))[:, None] + half[:, None] * x[None, :]
            wts = half[:, None] * wx[None, :] * np.exp(-0.5 * z * z) * _INV_SQRT_2PI
            vals = np.asarray(self.fn(mu[:, None] + s[:, None] * z), dtype=float) * wts
            _add_hermite_projection(vals, z, beta)
            m2 += np.einsum("eq,eq->e", vals, vals / np.where(wts > 0, wts, 1.0))
        return beta, m2

    def _quadrature(self, mu, s, K, nodes):
        z, w, table = _weighted_table(nodes, K)
        beta = np.empty((K + 1, mu.size))
        m2 = np.empty(mu.size)
        block = max(1, (1 << 23) // nodes)  # ~64 MiB of sigma values at a time (BLAS wants wide blocks)
        vals = np.empty((min(block, mu.size), nodes))
        for start in range(0, mu.size, block):
            stop = min(start + block, mu.size)
            if self._numba_code == _TANH:
                V = vals[: stop - start]
                sb = s[start:stop]
                starts = np.concatenate(([0], np.flatnonzero(sb[1:] != sb[:-1]) + 1, [stop - start]))
                _tanh_at_nodes_runs(mu[start:stop], sb, z, w, starts, V, m2[start:stop])
            elif self._numba_code is not None:
                V = vals[: stop - start]
                _sigma_at_nodes(self._numba_code, mu[start:stop], s[start:stop], z, w, V, m2[start:stop])
            else:
                V = np.asarray(self.fn(mu[start:stop, None] + s[start:stop, None] * z[None, :]), dtype=float)
                m2[start:stop] = (V * V) @ w
            np.matmul(table.T, V.T, out=beta[:, start:stop])
        return beta, m2

    def quadrature_order(self, mu, s, K) -> int:
        """Smallest order in :data:`QUAD_ORDERS` agreeing with the next to :data:`QUAD_TOL`.

        Checked on the hardest points of the call (largest ``s``, extreme ``mu``), since the
        Gauss-Hermite error grows with the spread ``s`` of the integrand.
        """
        probe_mu = np.array([mu.min(), mu.max(), 0.0, mu[np.argmax(s)]])
        probe_s = np.array([s.max(), s.max(), s.max(), s.max()])
        prev = None
        for q in QUAD_ORDERS:
            cur = self._quadrature(probe_mu, probe_s, K, q)
            if prev is not None:
                scale = 1.0 + np.abs(cur[0]).max()
                if max(np.abs(cur[0] - prev[0]).max(), np.abs(cur[1] - prev[1]).max()) < QUAD_TOL * scale:
                    return prev_q
            prev, prev_q = cur, q
        # a built-in is smooth or has its kinks declared: the advice would be wrong for it
        advice = ("" if _BUILTINS.get(self.name) is self else
                  "; if sigma has kinks or jumps, declare them: register_activation(..., kinks=(x0, ...))")
        raise QuadratureError(
            f"Gauss-Hermite quadrature for activation {self.name!r} did not converge to "
            f"{QUAD_TOL:g} with {QUAD_ORDERS[-1]} nodes (s up to {s.max():.3g}){advice}"
        )


@lru_cache(maxsize=None)
def _coefficients(act: Activation) -> tuple[float, float, float]:
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


_REGISTRY: dict[str, Activation] = {}
_BUILTINS: dict[str, Activation] = {}


def _builtin(name: str) -> Activation:
    return _BUILTINS[name]


def _unpickle(name, payload, description, kinks, fingerprint) -> Activation:
    fn, closed_form = pickle.loads(payload)
    return Activation(name, fn, description, closed_form, tuple(kinks), None, fingerprint)


def register_activation(name: str, fn: Callable, *, description: str = "", kinks=(),
                        closed_form: Callable | None = None, overwrite: bool = False) -> Activation:
    """Add an activation under ``name``.

    ``fn`` is applied elementwise to numpy arrays and must have a finite second moment under
    ``N(0, 1)``.  Gaussian expectations then come from Gauss-Hermite quadrature, which needs a
    smooth ``fn``; ``kinks`` lists the points where ``fn`` or a derivative jumps (e.g.
    ``(0.0,)`` for ``max(x, 0)``), and the quadrature is then split there (composite
    Gauss-Legendre).  ``closed_form(mu, s, K) -> (beta, second_moment)``, if given, replaces
    the quadrature.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("activation name must be a non-empty string")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"activation {name!r} is already registered (pass overwrite=True)")
    if not callable(fn):
        raise ValueError("activation fn must be callable")
    probe = np.asarray(fn(np.linspace(-3.0, 3.0, 7)), dtype=float)
    if probe.shape != (7,) or not np.all(np.isfinite(probe)):
        raise ValueError(f"activation {name!r} must map arrays elementwise to finite values")
    try:
        act = Activation(name, fn, description, closed_form, tuple(float(k) for k in kinks))
    except Exception as exc:  # the fingerprint evaluates fn (and closed_form) on [-8, 8]
        raise ValueError(f"activation {name!r} could not be evaluated on [-8, 8]: {exc}") from None
    _REGISTRY[name] = act
    return act


def get_activation(name: str) -> Activation:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"activation must be one of {sorted(_REGISTRY)}, got {name!r}") from None


def registered_activations() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def _relu_centred(x):
    return np.maximum(x, 0.0) - _INV_SQRT_2PI


_BUILTINS["tanh"] = Activation("tanh", np.tanh, "tanh(x)", _numba_code=_TANH)
_BUILTINS["erf"] = Activation(
    "erf", lambda x: special.erf(np.asarray(x) * _INV_SQRT2), "erf(x/sqrt(2)) = 2 Phi(x) - 1",
    _numba_code=_ERF,
)
_BUILTINS["relu"] = Activation(
    "relu", _relu_centred, "centred ReLU: max(x, 0) - 1/sqrt(2 pi)", _relu_moments, (0.0,), _RELU
)
_BUILTINS["linear"] = Activation(
    "linear", lambda x: np.asarray(x, dtype=float) * 1.0, "x", _linear_moments, (), _LINEAR
)
_REGISTRY.update(_BUILTINS)
