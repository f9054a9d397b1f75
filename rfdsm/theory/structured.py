"""Structured data ``x_0 ~ N(0, Sigma)``: the solvers for ``m = 1``, finite ``m`` and ``m = inf``
(docs/theory.md, Sec. 12, eqs. (H1)-(H14)).

The equations are those of Secs. 3, 4 and 8 with every Marchenko-Pastur average
``psi_p <f>`` replaced by a trace of the generalised family (:mod:`.gmp`, eqs. (H7)-(H8)):
``psi_p <X/D>`` by ``(1/d) tr(X Q)`` and ``psi_p <X Y/D^2>`` by ``(1/d) tr(X Q Y Q)``, ``Q`` the
deterministic equivalent of the resolvent of each case.  No quadrature is refined: the traces
are algebraic in one scalar ``e`` per resolvent.  Each solver also returns the split of the
errors into the data's support (``par``) and its complement (``perp``), eq. (H13): the targets
restricted to the support carry ``T_par`` instead of ``T`` and ``psi_d`` instead of 1.

Isotropic data never reach this module (:func:`rfdsm.theory.solver_for` routes them to the
Marchenko-Pastur solvers, whose numbers do not change); a one-atom spectrum ``{1: 1}`` is the
same law and these equations reproduce those solvers to ``~1e-12``.
"""

from __future__ import annotations

import math

import numpy as np

from .common import (QUAD_FLOOR, SC_RESOLVED, Solution, constants_need_probe,
                     physical_bounds)
from .driver import FixedPoint, verdict
from .ge_structured import structured_ge
from .gmp import Member, Resolvent, SingularResolvent

__all__ = ["solve_data", "solve_structured", "StructuredM1", "StructuredMinf", "check_structured"]


def check_structured(setting) -> None:
    """Refuse what these equations do not cover (a ValueError naming it)."""
    if setting.sigma.coefficients[2] == 0.0 or setting.sigma.name == "linear":
        raise ValueError("the structured-data theory needs a nonlinear activation (mu_star > 0: "
                         "the linear activation's Gram is singular on the complement of the "
                         "data); evaluate it with rfdsm.simulate")


class _Eqs:
    """Shared by the three cases: ``solve(ge, warm) -> FixedPoint``, ``errors(ge, x)``."""

    name = ""
    uses_constants = True

    def __init__(self, setting, tol, max_iter):
        self.setting, self.tol, self.max_iter = setting, tol, max_iter

    def prepare(self, ge):
        return None

    def state(self, x):
        return x

    def describe(self, fp):
        return {"method": fp.method}


class StructuredMinf(_Eqs):
    """``m = inf``: eqs. (T13)-(T17) with ``Q ~ (x C + Sc + lam)^{-1}`` a member, eq. (H10)."""

    name = "m=inf structured deterministic equivalent (docs/theory.md eqs. H10-H11)"

    def _resolvent(self, ge, x, warm_e=None):
        D = Member.combine((x, ge.C), (1.0, ge.Sc), (self.setting.lam, ge.I))
        return Resolvent(ge.pi, self.setting.psi_p, D, warm_e)

    def _h(self, ge, x, warm_e=None):
        R = self._resolvent(ge, x, warm_e)
        t1c = R.t1(ge.C)
        psi_n = self.setting.psi_n
        # (H10): h(x) = 1 - x - x (1/n) tr(C Q); dh/dx = -1 - (tr(CQ) - x tr(CQCQ))/n < 0
        return 1.0 - x - x * t1c / psi_n, -1.0 - (t1c - x * R.t2(ge.C, ge.C)) / psi_n, R

    def solve(self, ge, warm):
        lo, hi = 0.0, 1.0  # h(0) = 1 > 0 > h(1)
        x = float(warm) if warm is not None and 0.0 < float(warm) < 1.0 else 0.0
        e, done, it = None, False, 0
        for it in range(1, self.max_iter + 1):
            hx, dh, R = self._h(ge, x, e)
            e = R.e
            if hx > 0:
                lo = max(lo, x)
            else:
                hi = min(hi, x)
            new = x - hx / dh
            if not lo <= new <= hi:  # a safeguard; Newton from the left stays inside
                new = 0.5 * (lo + hi)
            done = abs(new - x) <= self.tol * new
            x = new
            if done:
                break
        return FixedPoint(x, abs(self._h(ge, x, e)[0]), it, done)

    def errors(self, ge, x):
        s = self.setting
        R = self._resolvent(ge, x)
        den = 1.0 - x * x * R.t2(ge.C, ge.C) / s.psi_n
        if not den > 0.0:
            return math.nan, math.nan, {"stability": den}

        def parts(T, dim):  # (H11): the errors of the targets T (dimension fraction dim)
            F = R.t1(T)

            def second(M):  # tr(Q T Q M)/d with delta' of (T16)
                ddelta = -R.t2(ge.C, M) / s.psi_n / den
                return R.t2(T, M) - x * x * ddelta * R.t2(T, ge.C)

            test = dim + second(ge.Sigma) - 2.0 * F
            train = dim - F - (second(ge.I.scaled(s.lam)) if s.lam > 0 else 0.0)
            return train, test

        train, test = parts(ge.T, 1.0)
        train_par, test_par = parts(ge.T_par, ge.psi_d)
        return train, test, {"x": x, "stability": den, "resolvent_e": R.e,
                             "train_par": train_par, "test_par": test_par}


class StructuredM1(_Eqs):
    """``m = 1``: eqs. (T8)-(T11) with traces of ``Sigma_phi`` and ``T``, eq. (H9)."""

    name = "m=1 structured ridge deterministic equivalent (docs/theory.md eq. H9)"
    uses_constants = False

    def _resolvent(self, ge, kappa, warm_e=None):
        return Resolvent(ge.pi, self.setting.psi_p,
                         Member(ge.Sigma.A, ge.Sigma.alpha + kappa), warm_e)

    def _g(self, ge, kappa, warm_e=None):
        R = self._resolvent(ge, kappa, warm_e)
        r = 1.0 / self.setting.psi_n
        # g = kappa (1 - df1/n) - lam, g' = 1 - df2/n (convex: Newton from g >= 0 decreases)
        return (kappa * (1.0 - r * R.t1(ge.Sigma)) - self.setting.lam,
                1.0 - r * R.t2(ge.Sigma, ge.Sigma), R)

    def solve(self, ge, warm):
        s = self.setting
        if s.lam == 0.0 and s.psi_p <= s.psi_n * (1.0 + 1e-12):
            return FixedPoint(0.0, 0.0, 0, True, "exact (kappa = 0: p <= n)")
        kappa = s.lam + (s.psi_p / s.psi_n) * float(ge.Sigma.alpha + np.dot(ge.pi, ge.Sigma.A))
        if warm is not None and math.isfinite(warm) and warm > 0 and self._g(ge, warm)[0] >= 0:
            kappa = float(warm)
        e, done, it = None, False, 0
        for it in range(1, self.max_iter + 1):
            g, dg, R = self._g(ge, kappa, e)
            e = R.e
            if abs(g) <= 8.0 * np.finfo(float).eps * max(kappa, s.lam):
                done = True
                break
            new = kappa - (g / dg if dg > 0 else kappa)
            new = new if new > 0 else 0.5 * kappa
            done = abs(new - kappa) <= self.tol * new
            kappa = new
            if done:
                break
        g = self._g(ge, kappa, e)[0]
        return FixedPoint(kappa, abs(g) / max(kappa, s.lam), it, done)

    def errors(self, ge, kappa):
        s = self.setting
        R0 = self._resolvent(ge, 0.0)  # Sigma_phi^{-1}: mu_star^2 > 0 (check_structured)
        R = self._resolvent(ge, kappa) if kappa > 0 else R0
        r = 1.0 / s.psi_n
        df1 = r * R.t1(ge.Sigma)
        df2 = r * R.t2(ge.Sigma, ge.Sigma)
        one_minus_df1 = s.lam / kappa if kappa > 0 else 1.0 - df1
        den = 1.0 - df2
        if den <= 1e-13:
            return 0.0, math.inf, {"df2_over_n": df2, "divergent": True}

        def parts(T, dim):  # (H9): noise and bias of the targets T (dimension fraction dim)
            noise = dim - R0.t1(T)
            # kappa^2 tr(T Sigma^-1 (Sigma + kappa)^-2)/d by partial fractions
            bias = (R0.t1(T) - R.t1(T) - kappa * R.t2(T, ge.I)) if kappa > 0 else 0.0
            test = (noise + bias) / den
            return one_minus_df1 ** 2 * test, test, noise, bias

        train, test, noise, bias = parts(ge.T, 1.0)
        train_par, test_par, _, _ = parts(ge.T_par, ge.psi_d)
        return train, test, {"kappa": kappa, "noise_floor": noise, "bias": bias,
                             "df2_over_n": df2, "train_par": train_par, "test_par": test_par}


def _effect(setting, eqs, fp, base):
    """How much train and test move when the GE constants move by their error bounds."""
    k = structured_ge(setting).constants
    if not (eqs.uses_constants and constants_need_probe(k)):
        return 0.0
    ge2 = structured_ge(setting, k.probe())
    moved = np.array(eqs.errors(ge2, eqs.solve(ge2, eqs.state(fp.x)).x)[:2], dtype=float)
    if not (np.all(np.isfinite(moved)) and np.all(np.isfinite(base))):
        return 0.0 if np.array_equal(moved, base) else math.inf
    return float(np.max(np.abs(moved - base) / np.maximum(np.abs(base), QUAD_FLOOR)))


def _split(setting, info, train, test):
    """The par/perp split (eq. (H13)): train in the diagnostics, test and score as the limits
    of the metrics of :mod:`rfdsm.subspace` (``Result.metrics``, columns of the table)."""
    if "test_par" not in info:
        return {}
    tp, trp = info.pop("test_par"), info.pop("train_par")
    return {"train_par": trp, "train_perp": train - trp,
            "metrics": {"test_par": tp, "test_perp": test - tp,
                        "score_par": (tp - setting.bayes) / setting.h,
                        "score_perp": (test - tp) / setting.h}}


def solve_structured(setting, eqs, warm=None, tol: float = 1e-9) -> Solution:
    """Solve ``eqs`` for ``setting`` and judge it as :func:`rfdsm.theory.driver.drive` does
    (fixed-point residual, GE constants probe, physical bounds); no quadrature to refine."""
    check_structured(setting)
    ge = structured_ge(setting)
    early = eqs.prepare(ge)
    if early is not None:
        return early
    try:
        fp = eqs.solve(ge, warm)
        train, test, info = eqs.errors(ge, fp.x)
    except SingularResolvent as exc:
        return Solution(math.nan, math.nan, math.nan, False, math.inf, 0, None,
                        {"solver": eqs.name, "warning": f"{exc}: not converged"})
    cur = np.array([train, test], dtype=float)
    finite = bool(np.all(np.isfinite(cur)))
    may_diverge = bool(info.get("divergent"))
    kerr = _effect(setting, eqs, fp, cur) if finite else 0.0
    train, warning = physical_bounds(setting, float(train), float(test))
    k = ge.constants
    diag = {"solver": eqs.name, **eqs.describe(fp), "constants_method": k.method,
            "constants_error": k.error, "constants_effect": kerr, "mu1": k.mu1,
            "mu_star2": k.mu_star2, "kappa_s2": k.kappa_s2, "kappa_i2": k.kappa_i2,
            **info, **_split(setting, info, train, float(test))}
    if not kerr <= tol:
        warning = "; ".join(filter(None, (warning, f"the GE constants' error bounds move "
                                          f"train/test by {kerr:.2g} > {tol:g}")))
    # the copy-specific part of the features against their variance, as common.SC_RESOLVED
    # checks it: the smaller of its ratios in the nonlinear part and along the largest atom
    along = setting.h / (setting.a ** 2 * ge.lam.max() + setting.h)
    sc_ratio = min(k.kappa_i2 / k.mu_star2, along)
    diag["sc_over_sigma"] = sc_ratio
    if eqs.uses_constants and sc_ratio < SC_RESOLVED:
        # name the cause: a t too small already for unit eigenvalues, or a data eigenvalue
        # beside which the noise variance h is lost
        unit = setting.h / (setting.a ** 2 + setting.h)
        what = (f"the data eigenvalue {ge.lam.max():.3g} is too large at t = {setting.t:.3g}"
                if unit >= SC_RESOLVED and along < SC_RESOLVED else
                f"t = {setting.t:.3g} is too small")
        warning = "; ".join(filter(None, (warning, f"{what} for double precision (Sc/Sigma "
                                          f"~ {sc_ratio:.2g} < {SC_RESOLVED:g})")))
    if warning:
        diag["warning"] = warning + ": not converged"
    converged = verdict(done=fp.done, residual=fp.residual, finite=finite, diag=diag,
                        may_diverge=may_diverge)
    score = (float(test) - setting.bayes) / setting.h
    return Solution(float(train), float(test), float(score), converged,
                    max(fp.residual, kerr), fp.iterations, eqs.state(fp.x), diag)



def solve_data(setting, warm=None, *, tol=1e-13, max_iter=None, quad_tol=1e-9,
               **quadrature) -> Solution:
    """The structured-data solver for ``setting.m`` (``m = 1``, finite ``m``, ``m = inf``).

    ``tol``, ``max_iter``: of the fixed point; ``quad_tol``: the tolerance on the effect of the
    GE constants' error bounds.  The quadrature options of the Marchenko-Pastur solvers
    (``nodes``, ``max_nodes``) are accepted and have nothing to refine here.
    """
    from .structured_finite_m import StructuredFiniteM

    if setting.m == 1:
        eqs = StructuredM1(setting, tol, max_iter or 100)
    elif setting.m == math.inf:
        eqs = StructuredMinf(setting, tol, max_iter or 100)
    else:
        eqs = StructuredFiniteM(setting, tol, max_iter or 200)
    return solve_structured(setting, eqs, warm, quad_tol)
