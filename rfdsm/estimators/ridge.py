"""The built-in estimator ``ridge`` (``docs/model.md``): gradient flow on the ridge objective
for the setting's training time ``tau``, the ridge minimiser at ``tau = inf``."""

from __future__ import annotations

import math

import numpy as np

from .base import Estimator, GradientFlow, Resolvent, flow_rate

__all__ = ["Ridge", "ridge_solve", "cholesky_solve"]


def _ridge_form(setting):
    tau = getattr(setting, "tau", math.inf)
    if tau == math.inf:
        return Resolvent(setting.lam)
    return GradientFlow(setting.lam, flow_rate(setting) * tau)


def cholesky_solve(A, B):
    """``A^{-1} B`` for a positive definite ``A`` (overwritten), or None if it is not."""
    from scipy import linalg

    try:
        return linalg.cho_solve(linalg.cho_factor(A, lower=False, overwrite_a=True), B)
    except linalg.LinAlgError:
        return None


class _Host:
    """NumPy / SciPy for :func:`ridge_solve` called without a backend (the simulator passes
    its own ``ops``, whose host version uses the same :func:`cholesky_solve`)."""

    xp = np
    cholesky_solve = staticmethod(cholesky_solve)


def ridge_solve(S, C, lam: float, ops=None):
    """``K = (S + lam I)^{-1} C^T`` (p x d), so that ``B = -K^T``.

    ``lam > 0``: a Cholesky solve.  ``lam = 0`` is the ridgeless limit ``lam -> 0+``: the
    minimum-norm solution through the pseudo-inverse of ``S`` (eigenvalues below
    ``p eps max_eig`` are treated as zero); so is a ridge too small for a Cholesky
    factorisation to succeed.
    """
    ops = _Host if ops is None else ops
    xp = ops.xp
    p = S.shape[0]
    if lam > 0:
        A = S.copy()
        A[xp.arange(p), xp.arange(p)] += lam
        K = ops.cholesky_solve(A, C.T)
        if K is not None:
            return K
    evals, evecs = xp.linalg.eigh(S)
    inv = Resolvent(lam).filter(evals)
    return evecs @ (inv[:, None] * (evecs.T @ C.T))


class Ridge(Estimator):
    """Gradient flow on the ridge objective for the setting's time ``tau``
    (``docs/model.md``): ``g(s) = (1 - exp(-c tau (s + lam)))/(s + lam)``, ``c = 2h/psi_p``
    (:func:`flow_filter`).  At ``tau = inf`` it is ridge regression, ``g(s) = 1/(s + lam)``,
    by a Cholesky solve (the eigendecomposition only for the ridgeless limit); a finite
    ``tau`` goes through ``eigh``."""

    def __init__(self):
        super().__init__("ridge", form=_ridge_form,
                         description="ridge: g(s) = 1/(s + lam); at a finite training time tau "
                                     "gradient flow, (1 - exp(-c tau (s + lam)))/(s + lam)")

    def solve(self, S, C, setting, ops):
        if getattr(setting, "tau", math.inf) == math.inf:
            return ridge_solve(S, C, setting.lam, ops)
        return super().solve(S, C, setting, ops)
