"""``m = inf``: the exact noise expectation (docs/theory.md, Sec. 4).

The noise-averaged Gram ``U = (1/n) sum_nu phibar_nu phibar_nu^T + Sc`` is a sample covariance
plus a deterministic (given ``W``) matrix, whose resolvent has the deterministic equivalent
``Qbar = 1/D``, ``D = x C + Sc + lam`` with ``x = 1/(1 + delta)`` solving eq. (T13):

    h(x) = 1 - x - (psi_p/psi_n) <x C / (x C + Sc + lam)> = 0.

``h`` is convex and strictly decreasing on ``[0, 1]`` with ``h(0) = 1 > 0 > h(1)``, so Newton's
method started at ``x = 0`` (or at any warm start with ``h >= 0``) increases monotonically onto
the unique root.  Train and test errors are eqs. (T14)-(T17).
"""

from __future__ import annotations

import math

import numpy as np

from .common import Solution, ratio
from .driver import Equations, FixedPoint, drive

__all__ = ["solve_minf", "MinfEquations"]


def _h(sp, r, A, x):
    D = x * sp.C + A
    # second-order terms are products of ratios (here C/D <= 1/x and A/D <= 1), never formed
    # through D^2, which overflows for lam > ~1e154
    return 1.0 - x - r * float(np.dot(sp.w, ratio(x * sp.C, D))), \
        -1.0 - r * float(np.dot(sp.w, ratio(sp.C, D) * ratio(A, D)))


def _solve_x(sp, r, A, warm, tol, max_iter):
    x = 0.0
    if warm is not None and 0.0 < warm < 1.0 and _h(sp, r, A, warm)[0] >= 0:
        x = float(warm)
    it, done = 0, False
    for it in range(1, max_iter + 1):
        hx, dh = _h(sp, r, A, x)
        new = min(x - hx / dh, 1.0)
        done = abs(new - x) <= tol * new
        x = new
        if done:
            break
    return x, abs(_h(sp, r, A, x)[0]), it, done


def _errors(sp, setting, x):
    lam, psi_p = setting.lam, setting.psi_p
    r = psi_p / setting.psi_n
    w, C, T = sp.w, sp.C, sp.T
    D = x * C + sp.Sc + lam
    cD, tD = ratio(C, D), ratio(T, D)  # (products of these instead of D^2: see _h)
    F = psi_p * float(np.dot(w, tD))  # tr(Q T)/d, (T14)
    den = 1.0 - r * x * x * float(np.dot(w, cD * cD))
    if not den > 0.0:
        # positive at any exact root; lost to rounding only when nothing regularises U (lam = 0
        # and a vanishing Sc, e.g. t -> 0): no finite answer can be given, and it is not converged
        return math.nan, math.nan, {"delta": math.nan, "trQT_over_d": F, "stability": den}

    def second(M):
        # tr(Q T Q M)/d = -d/deta psi_p <T/D_eta>, D_eta = x_eta C + Sc + lam + eta M  (T15)-(T16);
        # linear in M, so lam tr(Q T Q)/d = second(lam), where lam/D <= 1
        ddelta = -r * float(np.dot(w, cD * ratio(M, D))) / den
        return psi_p * float(np.dot(w, tD * ratio(M - C * (x * x) * ddelta, D)))

    test = 1.0 + second(sp.Sigma) - 2.0 * F  # (T17)
    train = 1.0 - F - (second(np.full_like(D, lam)) if lam > 0 else 0.0)  # (T17)
    delta = 1.0 / x - 1.0 if x > 0 else math.inf  # x = 0 only if no Newton step was taken
    return train, test, {"delta": delta, "trQT_over_d": F, "stability": den}


class MinfEquations(Equations):
    """Eq. (T13) and eqs. (T14)-(T17) for :func:`rfdsm.theory.driver.drive`; the fixed point and
    the ``state`` are ``x = 1/(1 + delta)``.  No finite setting makes the errors diverge: a
    non-finite result (the stability denominator lost to rounding) is a failure."""

    name = "m=inf deterministic equivalent (docs/theory.md eqs. T12-T17)"
    may_diverge = False
    uses_constants = True

    def solve(self, sp, warm):
        x, res, it, done = _solve_x(sp, self.r, sp.Sc + self.setting.lam, warm, self.tol,
                                    self.max_iter)
        return FixedPoint(x, res, it, done)

    def errors(self, sp, x):
        return _errors(sp, self.setting, x)

    def state(self, x):
        return x

    def describe(self, fp, counts):
        return {"method": "newton", "x": fp.x}


def solve_minf(setting, warm=None, *, tol=1e-13, max_iter=100, nodes=400, quad_tol=1e-9,
               max_nodes=12800) -> Solution:
    """Limiting ``train``, ``test``, ``score`` for ``m = inf``; ``state`` is ``x = 1/(1+delta)``.

    The Marchenko-Pastur rule is refined as in :func:`rfdsm.theory.m1.solve_m1`.
    """
    return drive(setting, MinfEquations(setting, tol, max_iter), warm, nodes=nodes,
                 quad_tol=quad_tol, max_nodes=max_nodes)
