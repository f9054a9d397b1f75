"""Structured data, finite ``m``: eqs. (F4)-(F11) on the generalised family (docs/theory.md (H12)).

The fixed point of Sec. 8 in the unknowns ``omega = (omega_s, omega_i)``, with
``Qbar = (c0 + alpha C + theta Sc)^{-1}`` a member of the family of :mod:`.gmp` and every
average ``r <X/D>`` replaced by ``(d/N) (1/d) tr(X Q)``, ``r <X Y/D^2>`` by
``(d/N) (1/d) tr(X Q Y Q)`` (``N = m n``).  The solve follows :mod:`.finite_m`: Newton's method
in ``log alpha, log theta`` on eq. (F6b) from the monotone start, then Newton in ``omega`` with
damped fixed-point steps as the fallback; below (``c0, c1 = lam, 1``) and above
(``c0, c1 = 1, lam``, eq. (F5)) the interpolation threshold ``p = N``.
"""

from __future__ import annotations

import math

import numpy as np

from . import finite_m as _fm
from .common import Solution
from .driver import FixedPoint
from .gmp import Member, Resolvent
from .structured import _Eqs

__all__ = ["StructuredFiniteM"]


class _System:
    """Eqs. (F4)-(F5) as functions of ``x = (omega_s, omega_i)`` on the family of ``ge``."""

    def __init__(self, ge, setting, above):
        self.ge, self.m, self.lam = ge, int(setting.m), setting.lam
        self.psi_p = setting.psi_p
        self.inv = 1.0 / (setting.psi_n * self.m)  # d / N
        self.c0, self.c1 = (1.0, setting.lam) if above else (setting.lam, 1.0)
        self._e = None  # the last resolvent's e: a warm start for the next

    def resolvent(self, alpha, theta):
        ge = self.ge
        D = Member.combine((alpha, ge.C), (theta, ge.Sc), (self.c0, ge.I))
        R = Resolvent(ge.pi, self.psi_p, D, self._e)
        self._e = R.e
        return R

    def traces(self, R):
        """``(ws, wi, CC, CS, SS)``: ``omega`` from ``Q`` and the second-order terms."""
        ge, k = self.ge, self.inv
        return (k * R.t1(ge.C), k * R.t1(ge.Sc), k * R.t2(ge.C, ge.C), k * R.t2(ge.C, ge.Sc),
                k * R.t2(ge.Sc, ge.Sc))

    weights = _fm._System.weights  # (F4): the same weights of omega, only D is new

    def evaluate(self, x):
        alpha, theta, g_alpha, g_theta = self.weights(x)
        R = self.resolvent(alpha, theta)
        ws, wi, CC, CS, SS = self.traces(R)
        F = np.array([x[0] - ws, x[1] - wi])
        J = np.eye(2) + np.array([CC * g_alpha + CS * g_theta, CS * g_alpha + SS * g_theta])
        return F, J, (alpha, theta, g_alpha, g_theta, R)

    def start(self, above):
        if not above:
            return np.zeros(2)
        ge = self.ge  # omega at D = c0 = 1: (d/N) psi_p (alpha + sum pi A) of C and Sc
        return self.inv * self.psi_p * np.array([ge.C.alpha + np.dot(ge.pi, ge.C.A),
                                                 ge.Sc.alpha + np.dot(ge.pi, ge.Sc.A)])

    def valid(self, x):
        if not (np.all(np.isfinite(x)) and np.all(x >= 0)):
            return False
        if self.c1 + x[1] <= 0 or self.c1 + x[1] + self.m * x[0] <= 0:
            return False
        return self.weights(x)[1] > 0


def _weight_equations(sys, y):
    """Eq. (F6b) in the weights ``y = (alpha, theta)`` (as in :mod:`.finite_m`)."""
    alpha, theta = y
    m, c1 = sys.m, sys.c1
    ws, wi, CC, CS, SS = sys.traces(sys.resolvent(alpha, theta))
    G = np.array([alpha * (c1 + wi + m * ws) - 1.0, theta * c1 - 1.0 + alpha * ws + theta * wi])
    J = np.array([[c1 + wi + m * ws - alpha * (CS + m * CC), -alpha * (SS + m * CS)],
                  [ws - alpha * CC - theta * CS, c1 + wi - alpha * CS - theta * SS]])
    return G, J, np.array([ws, wi])


def _solve_weights(sys, y):
    """Newton in ``log alpha, log theta`` (:func:`rfdsm.theory.finite_m._solve_weights`) on
    the equations above: ``(omega, iterations)``."""
    return _fm._solve_weights(sys, y, equations=_weight_equations)


def _polish(sys, x, tol, max_iter):
    """Newton on ``F(omega) = 0``, a damped fixed-point step where Newton fails."""
    F, J, _ = sys.evaluate(x)
    done, it, fallback = False, 0, 0
    for it in range(1, max_iter + 1):
        norm = float(np.abs(F).max())
        new = None
        try:
            cand = x + np.linalg.solve(J, -F)
        except np.linalg.LinAlgError:
            cand = None
        if cand is not None and sys.valid(cand):
            Fc, Jc, _ = sys.evaluate(cand)
            if float(np.abs(Fc).max()) <= norm or norm == 0.0:
                new, F, J = cand, Fc, Jc
        if new is None:
            new = 0.5 * (x + (x - F))
            F, J, _ = sys.evaluate(new)
            fallback += 1
        delta = float(np.abs(new - x).max())
        x = new
        scale = max(float(np.abs(x).max()), 1e-300)
        if delta <= tol * scale or float(np.abs(F).max()) <= 1e-15 * scale:
            done = True
            break
    res = float(np.abs(F).max()) / max(float(np.abs(x).max()), 1e-300)
    return x, res, it, done, fallback


class StructuredFiniteM(_Eqs):
    """Finite ``m >= 1``: eqs. (F4)-(F11) on the family (eq. (H12)); state ``(branch, omega)``."""

    name = "finite-m structured deterministic equivalent (docs/theory.md eq. H12)"

    def prepare(self, ge):
        s = self.setting
        self.ratio_pn = s.psi_p / (s.psi_n * int(s.m))  # p/N: every feature carries variance
        self.above = self.ratio_pn > 1.0
        self.branch = "above" if self.above else "below"
        if s.lam == 0.0 and abs(self.ratio_pn - 1.0) <= 1e-12:
            diag = {"solver": self.name, "divergent": True, "p_eff_over_N": self.ratio_pn}
            return Solution(0.0, math.inf, math.inf, True, 0.0, 0, None, diag)
        return None

    def solve(self, ge, warm):
        sys = _System(ge, self.setting, self.above)
        x, pre = None, 0
        try:
            branch, ws, wi = warm
            if str(branch) == self.branch and sys.valid(np.array([ws, wi], dtype=float)):
                x = np.array([ws, wi], dtype=float)
        except (TypeError, ValueError):
            pass
        if x is None:
            alpha, theta, _, _ = sys.weights(sys.start(self.above))
            x, pre = _solve_weights(sys, np.array([alpha, theta]))
            if not sys.valid(x):
                x = sys.start(self.above)
        x, res, it, done, fallback = _polish(sys, x, self.tol, self.max_iter)
        method = "newton" if fallback == 0 else "newton with fixed-point fallback"
        return FixedPoint(x, res, it + pre, done, method, {"fallback": fallback})

    def errors(self, ge, x):
        sys = _System(ge, self.setting, self.above)
        _, J, (alpha, theta, g_alpha, g_theta, R) = sys.evaluate(x)
        k, th2, lam = sys.inv, theta * theta, self.setting.lam

        def parts(T, dim):  # (F8)-(F11) for the targets T (dimension fraction dim), eq. (H13)
            tT = R.t1(T)
            rhs = np.array([k * th2 * R.t2(ge.C, T),
                            k * th2 * R.t2(ge.Sc, T) + k * (dim - 2.0 * theta * tT)])
            try:
                dx = np.linalg.solve(J, rhs)
            except np.linalg.LinAlgError:
                dx = np.full(2, math.nan)
            dE = Member.combine((float(g_alpha @ dx), ge.C), (float(g_theta @ dx), ge.Sc),
                                (-th2, T))
            k3 = lambda Psi: -R.t2(Psi, dE)  # noqa: E731  (F11)
            train = sys.c1 * (theta * dim - th2 * tT) - (k3(ge.I.scaled(lam)) if lam > 0 else 0.0)
            return train, dim + k3(ge.Sigma) - 2.0 * theta * tT

        train, test = parts(ge.T, 1.0)
        train_par, test_par = parts(ge.T_par, ge.psi_d)
        return train, test, {"alpha": alpha, "theta": theta, "omega_s": float(x[0]),
                             "omega_i": float(x[1]), "jacobian_det": float(np.linalg.det(J)),
                             "train_par": train_par, "test_par": test_par}

    def state(self, x):
        return (self.branch, float(x[0]), float(x[1]))

    def describe(self, fp):
        return {"method": fp.method, "branch": self.branch, "p_eff_over_N": self.ratio_pn}
