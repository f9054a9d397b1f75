"""Generalised Marchenko-Pastur traces: the resolvent of ``W Delta W^T/d + c I_p``.

docs/theory.md, Sec. 12, eqs. (H5)-(H8).

With data of covariance ``Sigma`` the Gaussian-equivalent covariances of the features are no
longer functions of ``S = W W^T/d`` alone: each is a *member* of the family

    X = W diag(A) W^T / d + alpha I_p,                                                  (H5)

with ``A`` constant on the coordinates of each atom of the spectrum of ``Sigma`` (weights
``pi_k``; the atom ``k`` covers ``pi_k d`` columns of ``W``).  A member is stored as
``(A, alpha)``, ``A`` one number per atom.  For ``Q = (W Delta W^T/d + c)^{-1}`` (itself a member
inverted; ``Delta >= 0``, ``c > 0``) and ``d, p -> inf``, ``p/d = psi_p``, leave-one-column-out
(Silverstein & Bai 1995; Couillet & Liao 2022, Thm. 2.6, columns of ``W`` as the samples) gives
``Q ~ I_p / (c + sum_k pi_k Delta_k u_k)`` with ``u_k = 1/(1 + Delta_k e)`` and
``e = lim (1/d) tr Q`` the root of

    e (c + sum_k pi_k Delta_k u_k) = psi_p,                                              (H6)

and, for members ``X = (A, alpha)``, ``Y = (B, beta)``,

    (1/d) tr(X Q)     = e (alpha + sum_k pi_k A_k u_k),                                  (H7)
    (1/d) tr(X Q Y Q) = e (alpha + sum_k pi_k A_k u_k^2)(beta + sum_k pi_k B_k u_k^2)
                          / (c + sum_k pi_k Delta_k u_k^2)  +  e^2 sum_k pi_k A_k B_k u_k^2.   (H8)

(H8) is ``-d/deta`` of (H7) with ``Q`` the resolvent of ``D + eta Y`` (the derivative of the
deterministic equivalent is that of the derivative); the denominator is ``d/de`` of the left
side of (H6), positive, so the root of (H6) is unique and (H8) symmetric and positive for
``X, Y >= 0``.  With one atom (isotropic data) these are the Marchenko-Pastur averages
``psi_p <f(s)>`` of the other solvers (tested to ``1e-12``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = ["Member", "Resolvent", "SingularResolvent"]


class SingularResolvent(ArithmeticError):
    """``c <= 0``: nothing regularises the resolvent (no ridge and no nonlinear part, e.g.
    ``t -> 0``); the solvers report such a setting as not converged."""


class Member(NamedTuple):
    """``W diag(A) W^T/d + alpha I`` (eq. (H5)): ``A`` one value per atom."""

    A: np.ndarray
    alpha: float

    def __add__(self, other):
        return Member(self.A + other.A, self.alpha + other.alpha)

    def scaled(self, c: float) -> "Member":
        return Member(c * self.A, c * self.alpha)

    @staticmethod
    def combine(*terms) -> "Member":
        """``sum_j c_j X_j`` for pairs ``(c_j, X_j)``."""
        A = sum(c * X.A for c, X in terms)
        return Member(np.asarray(A, dtype=float), float(sum(c * X.alpha for c, X in terms)))


class Resolvent:
    """``Q = (W Delta W^T/d + c I_p)^{-1}`` in the limit: ``e`` of (H6) and the traces (H7)-(H8).

    ``pi``: weights of the atoms; ``D``: the member ``(Delta, c)`` inverted; ``warm``: a
    previous ``e`` (any positive value is a valid start, see :meth:`_solve`).
    """

    def __init__(self, pi, psi_p: float, D: Member, warm: float | None = None,
                 tol: float = 1e-15, max_iter: int = 200):
        self.pi = np.asarray(pi, dtype=float)
        self.psi_p = float(psi_p)
        self.delta = np.asarray(D.A, dtype=float)
        self.c = float(D.alpha)
        if not (self.c > 0 and np.all(self.delta >= 0)):
            raise SingularResolvent(f"the resolvent needs c > 0 and Delta >= 0, got "
                                    f"c = {self.c!r}, Delta = {self.delta}")
        self.e, self.iterations, self.converged = self._solve(warm, tol, max_iter)
        self.u = 1.0 / (1.0 + self.delta * self.e)
        self.slope = self.c + float(np.dot(self.pi, self.delta * self.u * self.u))

    def _H(self, e):
        u = 1.0 / (1.0 + self.delta * e)
        # H(e) = e G(e) - psi_p and H'(e) = c + sum pi Delta u^2 (> 0: H increases, concave)
        return (e * (self.c + float(np.dot(self.pi, self.delta * u))) - self.psi_p,
                self.c + float(np.dot(self.pi, self.delta * u * u)))

    def _solve(self, warm, tol, max_iter):
        """Newton's method on (H6).  ``H`` is increasing and concave, so from a point with
        ``H <= 0`` the iterates increase monotonically onto the root (a warm start right of
        the root is not used)."""
        e = self.psi_p / (self.c + float(np.dot(self.pi, self.delta)))  # H <= 0 here
        if warm is not None and math.isfinite(warm) and warm > 0 and self._H(warm)[0] <= 0:
            e = float(warm)
        done = False
        it = 0
        for it in range(1, max_iter + 1):
            H, dH = self._H(e)
            new = e - H / dH
            done = abs(new - e) <= tol * new
            e = new
            if done:
                break
        return e, it, done

    @property
    def residual(self) -> float:
        return abs(self._H(self.e)[0]) / self.psi_p

    def t1(self, X: Member) -> float:
        """``(1/d) tr(X Q)``, eq. (H7)."""
        return self.e * (X.alpha + float(np.dot(self.pi, X.A * self.u)))

    def t2(self, X: Member, Y: Member) -> float:
        """``(1/d) tr(X Q Y Q)``, eq. (H8)."""
        u2 = self.u * self.u
        x = X.alpha + float(np.dot(self.pi, X.A * u2))
        y = Y.alpha + float(np.dot(self.pi, Y.A * u2))
        return self.e * x * y / self.slope + self.e ** 2 * float(np.dot(self.pi, X.A * Y.A * u2))
