"""Estimators: how the readout ``B`` is fitted from the training moments.

With the training Gram ``S`` (p x p, the ``U`` of ``docs/simulator.md``) and cross-moment ``C``
(d x p, the ``V``), every estimator here is a *spectral filter* of ``S``:

    K = g(S) C^T  (p x d),    B = -K^T = -C g(S),

``g`` acting on the eigenvalues of ``S``.  Ridge (``docs/model.md``) is ``g(s) = 1/(s + lam)``;
gradient flow from ``A = 0`` for a time ``tau`` at rate ``c = 2h/psi_p`` is
``g(s) = (1 - exp(-c tau (s + lam))) / (s + lam)``, which tends to ridge as ``tau -> inf``;
the built-in ``ridge`` is that flow at the setting's ``tau`` (``inf``: the minimiser).

An :class:`Estimator` has a ``name`` (the value of the ``estimator`` parameter of
:class:`rfdsm.Setting`), ``filter(evals, setting) -> g(evals)``, ``solve(S, C, setting, ops)
-> K`` (by default through ``eigh`` and ``filter``) and ``has_theory`` (whether
:func:`rfdsm.theory` has its equations).  Like activations, an estimator is compared and hashed
by content (:attr:`Estimator.fingerprint`: its filter at fixed probe spectra), and a pickled
estimator carries its filter by value, so that spawned workers need no registration of their
own.  A new estimator is an instance (or subclass) plus one :func:`register_estimator`.

This module is light (NumPy only): ``Setting`` resolves the estimator at construction.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Callable

import numpy as np

from ._registry import ByContent, Registry

__all__ = ["Estimator", "Ridge", "register_estimator", "get_estimator",
           "registered_estimators", "ridge_solve", "flow_filter", "flow_rate"]

#: Probe spectra for the fingerprint: positive, spread over six decades (a filter is only
#: ever applied to eigenvalues of a positive semi-definite Gram).
_PROBE_EVALS = np.geomspace(1e-4, 1e2, 25) * 1.0123456789
_PROBE_SETTINGS = ({"psi_n": 1.3, "psi_p": 0.7, "t": 0.3, "lam": 0.0137},
                   {"psi_n": 0.6, "psi_p": 2.1, "t": 1.1, "lam": 0.5})


def _namespace(x):
    # filters are written once for NumPy and CuPy arrays
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    return np


class Estimator(ByContent):
    """A spectral filter ``g`` of the training Gram: ``K = g(S) C^T``.

    Either pass ``filter(evals, setting) -> g(evals)`` (elementwise, NumPy or CuPy arrays) or
    subclass and override :meth:`filter` (or :meth:`solve`, for a faster exact path).
    ``has_theory``: :func:`rfdsm.theory` has equations for it (only ridge so far).
    """

    has_theory: bool = False
    _registry_kind = "estimator"

    def __init__(self, name: str, filter: Callable | None = None, *, has_theory: bool = False,
                 description: str = ""):
        if not isinstance(name, str) or not name:
            raise ValueError("estimator name must be a non-empty string")
        self.name = name
        self.description = description
        self.has_theory = bool(has_theory)
        self._filter = filter
        self._fingerprint = None

    def filter(self, evals, setting):
        """``g(evals)`` for the eigenvalues ``evals`` of the training Gram."""
        if self._filter is None:
            raise NotImplementedError(f"estimator {self.name!r} defines no filter")
        return self._filter(evals, setting)

    def solve(self, S, C, setting, ops):
        """``K = g(S) C^T`` (p x d) through the eigendecomposition ``S = Q diag(s) Q^T``."""
        evals, evecs = ops.xp.linalg.eigh(S)
        g = self.filter(evals, setting)
        return evecs @ (g[:, None] * (evecs.T @ C.T))

    # identity by content ----------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Name, class and the filter at fixed probe spectra and settings (12 digits, so
        that last-ulp differences of libm between machines do not matter).  Computed on
        first use: the probe settings need the registry of estimators to exist."""
        if self._fingerprint is None:
            from .setting import Setting

            parts = [self.name, type(self).__qualname__]
            for values in _PROBE_SETTINGS:
                try:
                    g = self.filter(_PROBE_EVALS.copy(), Setting(**values))
                    parts.append([f"{v:.12g}" for v in np.asarray(g, dtype=float)])
                except NotImplementedError:
                    parts.append("solve-only")
            self._fingerprint = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
        return self._fingerprint


def _ridge_filter(evals, setting):
    tau = getattr(setting, "tau", math.inf)
    if tau != math.inf:
        return flow_filter(evals, setting.lam, flow_rate(setting) * tau)
    # lam = 0 is the ridgeless limit: the pseudo-inverse, eigenvalues below p eps max_eig
    # treated as zero (the same cut as the solve of lam too small for a Cholesky factor)
    xp = _namespace(evals)
    lam = setting.lam
    cut = evals.shape[0] * np.finfo(float).eps * max(float(evals[-1]), 0.0)
    return xp.where(evals + lam > cut, 1.0 / xp.maximum(evals + lam, cut), 0.0)


def flow_rate(setting) -> float:
    """``c = 2 h / psi_p``: gradient descent on ``A`` with step ``eta`` moves
    ``B = sqrt(h) A / sqrt(p)`` by ``-eta (2h/(p d)) (B (S + lam) + C)``, i.e. at rate
    ``2h d/p = 2h/psi_p`` in ``tau = k eta / d^2`` (``docs/model.md``, "Training time").
    The setting's ``psi_p`` is used, so at a ``d`` where ``psi_p d`` is not an integer the
    clock is that of ``p = psi_p d``."""
    return 2.0 * setting.h / setting.psi_p


def flow_filter(evals, lam: float, ctau: float):
    """Gradient flow from ``B = 0`` for a time ``tau`` at rate ``c`` (``ctau = c tau``):

        g(s) = (1 - exp(-c tau (s + lam))) / (s + lam) = c tau phi1(c tau (s + lam)),

    ``phi1(y) = -expm1(-y)/y`` (``phi1(0) = 1``), so that ``c tau (s + lam)`` far below 1
    loses no digits and ``lam = 0``, ``s = 0`` gives the limit ``c tau``.  Eigenvalues below 0
    are round-off of a positive semi-definite Gram and are read as 0.
    """
    xp = _namespace(evals)
    y = ctau * (xp.maximum(evals, 0.0) + lam)
    safe = xp.where(y > 0.0, y, 1.0)
    return ctau * xp.where(y > 0.0, -xp.expm1(-safe) / safe, 1.0)


def ridge_solve(S, C, lam: float, ops=None):
    """``K = (S + lam I)^{-1} C^T`` (p x d), so that ``B = -K^T``.

    ``lam > 0``: a Cholesky solve.  ``lam = 0`` is the ridgeless limit ``lam -> 0+``: the
    minimum-norm solution through the pseudo-inverse of ``S`` (eigenvalues below
    ``p eps max_eig`` are treated as zero); so is a ridge too small for a Cholesky
    factorisation to succeed.
    """
    if ops is None:
        from .simulate.fit import HOST as ops
    xp = ops.xp
    p = S.shape[0]
    if lam > 0:
        A = S.copy()
        A[xp.arange(p), xp.arange(p)] += lam
        K = ops.cholesky_solve(A, C.T)
        if K is not None:
            return K
    evals, evecs = xp.linalg.eigh(S)
    inv = _ridge_filter(evals, _Lam(lam))
    return evecs @ (inv[:, None] * (evecs.T @ C.T))


class _Lam:
    __slots__ = ("lam",)

    def __init__(self, lam):
        self.lam = lam


class Ridge(Estimator):
    """Gradient flow on the ridge objective for the setting's time ``tau``
    (``docs/model.md``): ``g(s) = (1 - exp(-c tau (s + lam)))/(s + lam)``, ``c = 2h/psi_p``
    (:func:`flow_filter`).  At ``tau = inf`` it is ridge regression, ``g(s) = 1/(s + lam)``,
    by a Cholesky solve (the eigendecomposition only for the ridgeless limit); a finite
    ``tau`` goes through ``eigh``."""

    def __init__(self):
        super().__init__("ridge", _ridge_filter, has_theory=True,
                         description="ridge: g(s) = 1/(s + lam); at a finite training time tau "
                                     "gradient flow, (1 - exp(-c tau (s + lam)))/(s + lam)")

    def solve(self, S, C, setting, ops):
        if getattr(setting, "tau", math.inf) == math.inf:
            return ridge_solve(S, C, setting.lam, ops)
        return super().solve(S, C, setting, ops)


_REGISTRY = Registry("estimator", "estimator", Estimator, builtins=(Ridge(),))


def register_estimator(est: Estimator, *, overwrite: bool = False) -> Estimator:
    """Add ``est`` under ``est.name`` (``Setting(estimator=est.name)`` then finds it)."""
    return _REGISTRY.register(est, overwrite)


def get_estimator(name: str) -> Estimator:
    return _REGISTRY.get(name)


def registered_estimators() -> tuple[str, ...]:
    return _REGISTRY.names()
