"""``m = 1``: random-features ridge regression with a linear teacher (docs/theory.md, Sec. 3).

With one noise sample per data point the fit is ridge regression of the targets ``eps_nu`` on
i.i.d. Gaussian-equivalent features of covariance ``Sigma`` and cross-covariance ``V``.  Its
deterministic equivalent is driven by one scalar, the effective ridge ``kappa`` of eq. (T8):

    lam = kappa (1 - df1(kappa)/n),   df1/n = (psi_p/psi_n) <Sigma/(Sigma + kappa)>,

and the errors are eqs. (T9)-(T11).  ``g(kappa) = kappa (1 - df1/n) - lam`` is convex and
increasing at its largest root, so Newton's method started where ``g >= 0`` decreases
monotonically onto that root (for ``lam = 0`` the largest root is the ridgeless limit).
"""

from __future__ import annotations

import math

import numpy as np

from .common import Solution, ratio
from .driver import Equations, FixedPoint, drive
from .driver import QUAD_FLOOR  # noqa: F401  (defined here before the driver existed)

__all__ = ["solve_m1", "M1Equations"]

#: ``|g(kappa)| <= _ROUNDING max(kappa, lam)`` is a root to working precision.
_ROUNDING = 8.0 * np.finfo(float).eps


def _g(sp, r, lam, kappa):
    """``g(kappa)`` and ``g'(kappa) = 1 - df2/n``."""
    q = ratio(sp.Sigma, sp.Sigma + kappa)
    return kappa * (1.0 - r * np.dot(sp.w, q)) - lam, 1.0 - r * np.dot(sp.w, q * q)


def _solve_kappa(sp, r, lam, warm, tol, max_iter):
    """Largest root of ``g``: ``(kappa, residual, iterations, method, step_converged)``."""
    reach = r * float(np.dot(sp.w, sp.Sigma > 0))  # df1(0+)/n: rank of Sigma over n
    if lam == 0.0 and reach <= 1.0 + 1e-12:  # (the weights sum to 1 only up to rounding)
        return 0.0, 0.0, 0, "exact (kappa = 0: p_eff <= n)", True
    # g >= 0 here since kappa Sigma/(Sigma + kappa) <= Sigma
    kappa = lam + r * float(np.dot(sp.w, sp.Sigma))
    if warm is not None and math.isfinite(warm) and warm > 0 and _g(sp, r, lam, warm)[0] >= 0:
        kappa = float(warm)
    it, done = 0, False
    for it in range(1, max_iter + 1):
        g, dg = _g(sp, r, lam, kappa)
        if abs(g) <= _ROUNDING * max(kappa, lam):
            # g is at its rounding floor (its terms are O(kappa + lam)); near the interpolation
            # threshold dg ~ 1 - df2/n is small and further steps only hop between neighbouring
            # floating-point numbers, by more than tol
            done = True
            break
        step = g / dg if dg > 0 else kappa  # dg > 0 on the right of the root
        new = kappa - step
        if not new > 0:  # only through rounding at a tiny root; bisect towards 0 instead
            new = 0.5 * kappa
        done = abs(new - kappa) <= tol * new
        kappa = new
        if done:
            break
    g, _ = _g(sp, r, lam, kappa)
    return kappa, abs(g) / max(kappa, lam), it, "newton", done


def _errors(sp, setting, kappa):
    r = setting.psi_p / setting.psi_n
    w, Sig, T = sp.w, sp.Sigma, sp.T
    q = ratio(Sig, Sig + kappa)
    # 1 - df1/n = lam/kappa at the root; the ratio avoids the cancellation near lam -> 0+
    one_minus_df1 = setting.lam / kappa if kappa > 0 else 1.0 - r * float(np.dot(w, q))
    df2 = r * float(np.dot(w, q * q))
    noise = 1.0 - setting.psi_p * float(np.dot(w, ratio(T, Sig)))  # (T9)
    # kappa^2 <T/(Sig (Sig + kappa)^2)> as a product of ratios bounded by 1 (T/Sig <= 1 and
    # kappa/(Sig + kappa)): (Sig + kappa)^2 overflows for lam > ~1e154
    shrink = ratio(np.full_like(Sig, kappa), Sig + kappa)
    bias = setting.psi_p * float(np.dot(w, ratio(T, Sig) * shrink * shrink))
    den = 1.0 - df2
    if den <= 1e-13:  # interpolation threshold of the ridgeless fit: the variance diverges
        return 0.0, math.inf, {"noise_floor": noise, "bias": bias, "df2_over_n": df2,
                               "divergent": True}
    test = (noise + bias) / den  # (T10)
    train = one_minus_df1 ** 2 * test  # (T11)
    return train, test, {"noise_floor": noise, "bias": bias, "df2_over_n": df2,
                         "df1_over_n": 1.0 - one_minus_df1}


class M1Equations(Equations):
    """Eq. (T8) and eqs. (T9)-(T11) for :func:`rfdsm.theory.driver.drive`; the fixed point and
    the ``state`` are ``kappa``.  The errors diverge at the ridgeless interpolation threshold
    (``test = inf``, a limit, not a failure), and ``kappa_s^2, kappa_i^2`` do not enter (only
    ``Sigma`` and ``T`` do)."""

    name = "m=1 ridge deterministic equivalent (docs/theory.md eqs. T8-T11)"
    may_diverge = True
    uses_constants = False

    def solve(self, sp, warm):
        kappa, res, it, method, done = _solve_kappa(sp, self.r, self.setting.lam, warm,
                                                    self.tol, self.max_iter)
        return FixedPoint(kappa, res, it, done, method)

    def errors(self, sp, kappa):
        return _errors(sp, self.setting, kappa)

    def state(self, kappa):
        return kappa

    def describe(self, fp, counts):
        return {"method": fp.method, "kappa": fp.x}


def solve_m1(setting, warm=None, *, tol=1e-13, max_iter=100, nodes=400, quad_tol=1e-9,
             max_nodes=12800) -> Solution:
    """Limiting ``train``, ``test``, ``score`` for ``m = 1``; ``state`` is ``kappa``.

    The Marchenko-Pastur rule is refined (``nodes`` doubled) until train and test agree with
    the previous rule to ``quad_tol`` (relative, absolute below :data:`QUAD_FLOOR`); the last
    change is reported as ``quadrature_error`` (:func:`rfdsm.theory.driver.drive`).
    """
    return drive(setting, M1Equations(setting, tol, max_iter), warm, nodes=nodes,
                 quad_tol=quad_tol, max_nodes=max_nodes)
