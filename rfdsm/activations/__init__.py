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
All of these come from :func:`gaussian_expectations` (``rfdsm.activations.gauss``), exact or
with an error estimate at any scale and shift: ReLU, linear and erf in closed form; smooth
activations by Gauss-Hermite quadrature where it converges (a parallel Numba kernel,
``rfdsm._kernels``, loaded on first use, for large blocks and NumPy for small ones), and by a
composite Gauss-Legendre rule on the scale ``1/s`` of ``sigma(mu + s z)`` where it does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import special

from .gauss import (  # noqa: F401  (re-exported: the theory and the tests import them here)
    _BUILTIN_COEFFICIENTS, _erf_moments, _gauss_hermite, _gauss_legendre, _linear_moments,
    _quadrature_coefficients, _relu_moments, _weighted_table, Expectations, gaussian_expectations,
    hermite_table,
)

__all__ = [
    "Activation",
    "register_activation",
    "get_activation",
    "registered_activations",
    "hermite_table",
    "gaussian_expectations",
    "QUAD_ORDERS",
]

#: Candidate Gauss-Hermite orders for smooth activations; the smallest whose moments agree
#: with the next order to QUAD_TOL on the extreme (mu, s) of a call is used.
QUAD_ORDERS = (24, 32, 48, 64, 96, 128, 192, 256, 384)
QUAD_TOL = 1e-10

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Numba codes for built-in activations evaluated inside the parallel kernels (rfdsm._kernels).
_TANH, _ERF, _RELU, _LINEAR = 0, 1, 2, 3

#: Below this many activation values (elements x nodes) per call the Gauss-Hermite quadrature
#: of a built-in runs in plain NumPy instead of the Numba kernel, so that the theory (at most
#: 2560 x 48 values per call for tanh, t = 0.001 ... 10) never loads Numba; NumPy is as fast
#: at these sizes (the simulator's population moments, p x ~40, take it too) and agrees with
#: the kernel to rounding (~1e-16 relative).
NUMPY_MAX_VALUES = 1 << 18


def _kernels():
    # Numba and its kernels load on first use only (see rfdsm/_kernels.py)
    from . import kernels as k

    return k


class QuadratureError(RuntimeError):
    """The Gaussian quadrature of an activation's moments did not reach its tolerance."""


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
            _kernels()._apply_inplace(self._numba_code, g)
            return g
        g[...] = self.fn(g)
        return g

    def apply_shifted_(self, g: np.ndarray, shift: np.ndarray, m: int) -> np.ndarray:
        """In place ``g[r] <- sigma(g[r] + shift[r // m])`` (row ``r`` of ``g`` is noisy copy
        ``r mod m`` of data point ``r // m``)."""
        if self._fast(g) and shift.dtype == g.dtype and shift.flags.c_contiguous:
            _kernels()._apply_shifted(self._numba_code, g, shift, int(m))
            return g
        g += np.repeat(shift, m, axis=0)
        return self.apply_(g)

    @property
    def coefficients(self) -> tuple[float, float, float]:
        """``(mu0, mu1, mu_star)`` of ``docs/model.md``."""
        return _coefficients(self)

    @property
    def _exact(self) -> Callable | None:
        """The closed form of the Gaussian expectations, if there is one (the built-in ``erf``
        has one, kept out of :attr:`closed_form` so that its fingerprint stays the same)."""
        if self.closed_form is not None:
            return self.closed_form
        return _erf_moments if self._numba_code == _ERF else None

    def moments(self, mu, s, K: int, nodes: int | None = None):
        """``beta_k(mu, s) = E[sigma(mu + s z) He_k(z)]/sqrt(k!)`` for ``k <= K``, and ``E sigma^2``.

        ``mu`` and ``s`` broadcast together; returns ``beta`` of shape ``(K+1,) + shape`` and
        the second moment of shape ``shape``, from :func:`gaussian_expectations` (exact, or
        to :data:`QUAD_TOL` at any scale and shift).  ``nodes`` fixes the Gauss-Hermite order
        (per piece, with kinks) instead, with no check (a ``closed_form`` still applies).
        """
        if nodes is None:
            r = gaussian_expectations(self, mu, s, K)
            return r.beta, r.m2
        mu, s = np.broadcast_arrays(np.asarray(mu, dtype=float), np.asarray(s, dtype=float))
        if self.closed_form is not None:
            return self.closed_form(mu, s, K)
        shape = mu.shape
        mu, s = np.ascontiguousarray(mu).reshape(-1), np.ascontiguousarray(s).reshape(-1)
        if self.kinks:
            beta, m2 = self._legendre_pieces(mu, s, K, nodes, 10.0)
        else:
            beta, m2 = self._quadrature(mu, s, K, nodes)
        return beta.reshape((K + 1,) + shape), m2.reshape(shape)

    def expectations(self, mu, s, K: int, tol: float | None = None) -> Expectations:
        """:func:`gaussian_expectations` of this activation: ``beta``, ``E sigma^2``, the error
        estimate per element and the rule used."""
        return gaussian_expectations(self, mu, s, K, tol=tol)

    def _split_quadrature(self, mu, s, K, half_width=10.0, tol=QUAD_TOL):
        """Composite Gauss-Legendre in ``z`` on ``[-L, L]``, split where ``mu + s z`` meets a
        kink; ``(beta, m2, error estimate)``.

        Gauss-Hermite converges only algebraically across a kink; on each smooth piece
        Gauss-Legendre converges geometrically.  The Gaussian mass beyond ``|z| = 10`` is < 1e-22.
        The nodes per piece are doubled from 32 until two orders agree to ``tol``; a piece
        much wider than ``1/s`` may never get there (then the composite rule takes over).
        """
        orders = (32, 64, 128, 256)
        prev = None
        for q in orders:
            cur = self._legendre_pieces(mu, s, K, q, half_width)
            if prev is not None:
                err = max(np.abs(cur[0] - prev[0]).max(), np.abs(cur[1] - prev[1]).max())
                if err < tol * (1.0 + np.abs(cur[0]).max()):
                    return cur[0], cur[1], err
            prev = cur
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
            _kernels()._add_hermite_projection(vals, z, beta)
            m2 += np.einsum("eq,eq->e", vals, vals / np.where(wts > 0, wts, 1.0))
        return beta, m2

    def _quadrature(self, mu, s, K, nodes):
        z, w, table = _weighted_table(nodes, K)
        beta = np.empty((K + 1, mu.size))
        m2 = np.empty(mu.size)
        block = max(1, (1 << 23) // nodes)  # ~64 MiB of sigma values at a time (BLAS wants wide blocks)
        code = self._numba_code if mu.size * nodes > NUMPY_MAX_VALUES else None
        if code is not None:
            kern = _kernels()
            vals = np.empty((min(block, mu.size), nodes))
        for start in range(0, mu.size, block):
            stop = min(start + block, mu.size)
            if code == _TANH:
                V = vals[: stop - start]
                sb = s[start:stop]
                starts = np.concatenate(([0], np.flatnonzero(sb[1:] != sb[:-1]) + 1, [stop - start]))
                kern._tanh_at_nodes_runs(mu[start:stop], sb, z, w, starts, V, m2[start:stop])
            elif code is not None:
                V = vals[: stop - start]
                kern._sigma_at_nodes(code, mu[start:stop], s[start:stop], z, w, V, m2[start:stop])
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
        return self._hermite_order(mu, s, K, QUAD_TOL)[0]

    def _hermite_order(self, mu, s, K, tol):
        # (order, difference to the next order on the probes)
        mu, s = np.ravel(mu), np.ravel(s)
        probe_mu = np.array([mu.min(), mu.max(), 0.0, mu[np.argmax(s)]])
        probe_s = np.array([s.max(), s.max(), s.max(), s.max()])
        prev = None
        for q in QUAD_ORDERS:
            cur = self._quadrature(probe_mu, probe_s, K, q)
            if prev is not None:
                scale = 1.0 + np.abs(cur[0]).max()
                diff = max(np.abs(cur[0] - prev[0]).max(), np.abs(cur[1] - prev[1]).max())
                if diff < tol * scale:
                    return prev_q, diff
            prev, prev_q = cur, q
        # a built-in is smooth or has its kinks declared: the advice would be wrong for it
        advice = ("" if _BUILTINS.get(self.name) is self else
                  "; if sigma has kinks or jumps, declare them: register_activation(..., kinks=(x0, ...))")
        raise QuadratureError(
            f"Gauss-Hermite quadrature for activation {self.name!r} did not converge to "
            f"{QUAD_TOL:g} with {QUAD_ORDERS[-1]} nodes (s up to {s.max():.3g}){advice}"
        )


def _coefficients(act: Activation) -> tuple[float, float, float]:
    if act.name in _BUILTIN_COEFFICIENTS and _BUILTINS.get(act.name) == act:
        return _BUILTIN_COEFFICIENTS[act.name]
    return _quadrature_coefficients(act)


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
