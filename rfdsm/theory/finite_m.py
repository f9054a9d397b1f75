"""Finite ``m``: ``m`` noise samples per data point (docs/theory.md, Sec. 8, eqs. (F1)-(F12)).

The ``m`` Gaussian-equivalent features of one data point share the noise-averaged part
``phibar_nu`` (covariance ``C``) and differ by independent parts ``delta_{nu j}`` (covariance
``Sc``) that alone correlate with the targets ``eps_{nu j}``.  Leaving one block of ``m``
columns out gives a deterministic equivalent driven by two scalars (eq. (F4)): with
``r = psi_p / (m psi_n) = p/N``,

    D(s)    = c0 + alpha C(s) + theta Sc(s),
    omega_s = r <C/D>,   omega_i = r <Sc/D>,
    alpha   = 1 / (c1 + omega_i + m omega_s),   theta = (1 - omega_s alpha) / (c1 + omega_i),

where ``(c0, c1) = (lam, 1)`` below the interpolation threshold (``p_eff < N``) and
``(c0, c1) = (1, lam)`` above it (the same equations rescaled by ``lam``, eq. (F5), so that
the ridgeless limit ``lam = 0`` is regular on both sides).  Train, test and score errors are
eqs. (F8)-(F11); the second-order traces come from differentiating an augmented resolvent in
an auxiliary parameter ``zeta`` (eq. (F7)), i.e. from the 2 x 2 linear system (F10) whose
matrix is also the Jacobian (F6) of the fixed point.  The solve is Newton's method in the
bounded weights ``(alpha, theta)`` (eq. (F6b)), polished by Newton's method in ``omega``.

At ``m = 1``, ``alpha = theta`` and the equations are those of the ``m = 1`` solver; as
``m -> inf``, ``m omega_s -> delta``, ``omega_i -> 0``, ``theta -> 1`` and they become those of
the ``m = inf`` solver (eq. (F12)), the errors approaching it as ``O(1/m)``.
"""

from __future__ import annotations

import math

import numpy as np

from .common import Solution, ratio
from .driver import Equations, FixedPoint, drive

__all__ = ["solve_finite_m", "FiniteMEquations"]


class _System:
    """Eqs. (F4)-(F5) on one Marchenko-Pastur rule, as functions of ``x = (omega_s, omega_i)``."""

    def __init__(self, sp, setting, above):
        self.sp = sp
        self.m = int(setting.m)
        self.lam = setting.lam
        self.psi_p = setting.psi_p
        self.r = setting.psi_p / (setting.psi_n * self.m)  # p / N
        self.inv_n = 1.0 / (setting.psi_n * self.m)  # d / N
        self.above = above
        self.c0, self.c1 = (1.0, setting.lam) if above else (setting.lam, 1.0)

    def weights(self, x):
        """``alpha``, ``theta`` and their gradients in ``x`` (rows: d/d omega_s, d/d omega_i)."""
        ws, wi = x
        m, c1 = self.m, self.c1
        alpha = 1.0 / (c1 + wi + m * ws)
        theta = (1.0 - ws * alpha) / (c1 + wi)
        g_alpha = np.array([-m * alpha * alpha, -alpha * alpha])
        # theta (c1 + wi) = 1 - ws alpha, differentiated; d theta / d omega_s simplifies to -alpha^2
        g_theta = np.array([-alpha * alpha, (-ws * g_alpha[1] - theta) / (c1 + wi)])
        return alpha, theta, g_alpha, g_theta

    def evaluate(self, x):
        """Residual ``F(x) = x - (r<C/D>, r<Sc/D>)``, Jacobian ``dF/dx`` and the pieces reused."""
        sp, r = self.sp, self.r
        alpha, theta, g_alpha, g_theta = self.weights(x)
        D = self.c0 + alpha * sp.C + theta * sp.Sc
        w = sp.w
        # <f g/D^2> as <(f/D)(g/D)>: D^2 overflows for lam > ~1e154
        cD, sD = ratio(sp.C, D), ratio(sp.Sc, D)
        CC, CS, SS = float(np.dot(w, cD * cD)), float(np.dot(w, cD * sD)), float(np.dot(w, sD * sD))
        F = np.array([x[0] - r * float(np.dot(w, cD)), x[1] - r * float(np.dot(w, sD))])
        # d<C/D>/dx = -<C (C dalpha + Sc dtheta)/D^2>, hence the Jacobian (also the matrix of (F10))
        J = np.eye(2) + r * np.array([CC * g_alpha + CS * g_theta, CS * g_alpha + SS * g_theta])
        return F, J, (alpha, theta, g_alpha, g_theta, D, cD, sD)

    def fixed_point_map(self, x):
        return x - self.evaluate(x)[0]

    def start(self):
        """Monotone starting point: the map is increasing in ``x``; below the threshold it is
        iterated up from 0, above it down from its value at ``x = inf`` (where ``D = c0``)."""
        sp, r = self.sp, self.r
        if not self.above:
            return np.zeros(2)
        return np.array([r * float(np.dot(sp.w, sp.C)), r * float(np.dot(sp.w, sp.Sc))])

    def valid(self, x):
        if not (np.all(np.isfinite(x)) and np.all(x >= 0)):
            return False
        if self.c1 + x[1] <= 0 or self.c1 + x[1] + self.m * x[0] <= 0:
            return False
        _, theta, _, _ = self.weights(x)
        return theta > 0


def _weight_equations(sys, y):
    """Eq. (F6b) in the weights ``y = (alpha, theta)``: residual, Jacobian and ``omega``.

    ``G1 = alpha (c1 + omega_i + m omega_s) - 1`` and ``G2 = theta (c1 + omega_i) + alpha omega_s
    - 1`` are the definitions of ``alpha`` and ``theta`` multiplied out, with ``omega`` computed
    from ``D``.  Since ``alpha omega_s + theta omega_i = r <(alpha C + theta Sc)/D> = r (1 - c0
    <1/D>)``, ``G2 = theta c1 - 1 + r - r c0 <1/D>`` (so ``theta = 1 - p_eff/N`` exactly when
    ``lam = 0`` below the threshold).  At the interpolation threshold ``omega`` (form (F4)) or
    the weights (form (F5)) grow without bound; Newton's method in the logarithms of the weights
    copes with either, and ``G2`` is nearly linear in them.
    """
    sp, r, m, c0, c1 = sys.sp, sys.r, sys.m, sys.c0, sys.c1
    alpha, theta = y
    D = c0 + alpha * sp.C + theta * sp.Sc
    w = sp.w
    cD, sD = ratio(sp.C, D), ratio(sp.Sc, D)  # products of these, not D^2 (overflow)
    ws, wi = r * float(np.dot(w, cD)), r * float(np.dot(w, sD))
    CC = r * float(np.dot(w, cD * cD))
    CS = r * float(np.dot(w, cD * sD))
    SS = r * float(np.dot(w, sD * sD))
    G = np.array([alpha * (c1 + wi + m * ws) - 1.0,
                  theta * c1 - 1.0 + alpha * ws + theta * wi])
    # d(alpha ws + theta wi)/dalpha = ws - alpha CC - theta CS = c0 r <C/D^2>, and likewise
    J = np.array([[c1 + wi + m * ws - alpha * (CS + m * CC), -alpha * (SS + m * CS)],
                  [ws - alpha * CC - theta * CS, c1 + wi - alpha * CS - theta * SS]])
    return G, J, np.array([ws, wi])


def _solve_weights(sys, y, tol=1e-12, max_iter=60, equations=None):
    """Newton's method in ``log(alpha), log(theta)`` with backtracking on ``|G|``.

    Returns ``(omega, iterations)``; the result is only a starting point, polished (and judged)
    by :func:`_solve` in the ``omega`` variables.  ``equations(sys, y) -> (G, J, omega)``:
    (F6b) and the definition of ``alpha`` (default :func:`_weight_equations`; the structured
    data model supplies its own traces, docs/theory.md Sec. 12).
    """
    eq = equations or _weight_equations
    G, J, x = eq(sys, y)
    it = 0
    for it in range(1, max_iter + 1):
        g0 = float(np.abs(G).max())
        if g0 == 0.0:
            break
        try:
            du = np.linalg.solve(J * y[None, :], -G)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(du)):
            break
        t, accepted = 1.0, False
        for _ in range(40):
            yn = y * np.exp(np.clip(t * du, -30.0, 30.0))
            Gn, Jn, xn = eq(sys, yn)
            if np.all(np.isfinite(Gn)) and float(np.abs(Gn).max()) < g0 * (1.0 - 1e-4 * t):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            break
        step = float(np.abs(yn - y).max() / np.abs(yn).max())
        y, G, J, x = yn, Gn, Jn, xn
        if step <= tol:
            break
    return x, it


def _solve(sys, warm, tol, max_iter):
    """The fixed point of (F4): Newton in the weights (:func:`_solve_weights`), then Newton's
    method on ``F(omega) = 0`` with a fixed-point-iteration fallback.

    In the second stage a Newton step is accepted when it stays in the domain and does not
    increase ``|F|``; otherwise one damped step of the monotone map is taken.  Returns
    ``(x, residual, iterations, converged, newton_steps, fallback_steps)``.
    """
    x = None
    if warm is not None:
        w = np.asarray(warm, dtype=float)
        if w.shape == (2,) and sys.valid(w):
            x = w
    pre = 0
    if x is None:
        alpha, theta, _, _ = sys.weights(sys.start())
        x, pre = _solve_weights(sys, np.array([alpha, theta]), max_iter=min(max_iter, 60))
        if not sys.valid(x):
            x = sys.start()
    newton = fallback = 0
    done = False
    it = 0
    F, J, _ = sys.evaluate(x)
    for it in range(1, max_iter + 1):
        norm = float(np.abs(F).max())
        step = None
        try:
            step = np.linalg.solve(J, -F)
        except np.linalg.LinAlgError:
            pass
        new = None
        if step is not None and np.all(np.isfinite(step)):
            cand = x + step
            if sys.valid(cand):
                Fc, Jc, _ = sys.evaluate(cand)
                if float(np.abs(Fc).max()) <= norm or norm == 0.0:
                    new, F, J = cand, Fc, Jc
                    newton += 1
        if new is None:
            cand = 0.5 * (x + sys.fixed_point_map(x))
            new = cand
            F, J, _ = sys.evaluate(new)
            fallback += 1
        delta = float(np.abs(new - x).max())
        x = new
        scale = max(float(np.abs(x).max()), 1e-300)
        # near the threshold J is nearly singular and steps stall above tol at rounding level
        if delta <= tol * scale or float(np.abs(F).max()) <= 1e-15 * scale:
            done = True
            break
    scale = max(float(np.abs(x).max()), 1e-300)
    res = float(np.abs(F).max()) / scale
    return x, res, it + pre, done, newton + pre, fallback


def _errors(sys, x):
    """Train and test errors, eqs. (F8)-(F11), at the solution ``x`` of (F4)."""
    sp, r, psi_p, lam, c1 = sys.sp, sys.r, sys.psi_p, sys.lam, sys.c1
    F, J, (alpha, theta, g_alpha, g_theta, D, cD, sD) = sys.evaluate(x)
    w = sp.w
    tD = ratio(sp.T, D)  # second-order traces as products of such ratios, not through D^2
    tT = psi_p * float(np.dot(w, tD))  # tr(T Qbar)/d
    k1 = theta * tT  # (F8): tr(K R V^T)/d
    one_minus_k2 = c1 * (theta - theta * theta * tT)  # (F9): 1 - tr(K R K^T)/d, kept apart
    # from the 1 because train = O(lam^2) above the threshold
    # (F10): zeta-derivatives of (omega_s, omega_i); the matrix is the Jacobian J.
    th2 = theta * theta
    # the copy-specific source (1 - 2 theta psi_p <T/D>)/(m psi_n) comes from the target block
    # of (F7)
    rhs = np.array([r * th2 * float(np.dot(w, cD * tD)),
                    r * th2 * float(np.dot(w, sD * tD)) + sys.inv_n * (1.0 - 2.0 * theta * tT)])
    det = float(np.linalg.det(J))
    try:
        dx = np.linalg.solve(J, rhs)
    except np.linalg.LinAlgError:  # only at a divergence; reported as non-finite, not converged
        dx = np.full(2, math.nan)
    d_alpha, d_theta = float(g_alpha @ dx), float(g_theta @ dx)
    dE = d_alpha * sp.C + d_theta * sp.Sc - th2 * sp.T  # d E / d zeta at zeta = 0

    def k3(Psi):  # (F11): tr(R K^T K R Psi)/d = -psi_p <Psi E'/D^2>
        return -psi_p * float(np.dot(w, ratio(Psi, D) * ratio(dE, D)))

    # k3 is linear in Psi: lam k3(1) = k3(lam), and lam/D <= 1 in form (F4), where D >= lam
    train = one_minus_k2 - (k3(np.full_like(D, lam)) if lam > 0 else 0.0)
    test = 1.0 + k3(sp.Sigma) - 2.0 * k1
    info = {"alpha": alpha, "theta": theta, "omega_s": float(x[0]), "omega_i": float(x[1]),
            "jacobian_det": det}
    return train, test, info


def _threshold(sp, setting):
    """``p_eff / N``: features that carry variance (``Sigma > 0``) per training sample.

    ``Sigma(s) = mu1^2 s + mu_star^2`` vanishes only on the atom ``s = 0`` of a linear
    activation (``mu_star = 0``, ``psi_p > 1``), leaving ``p_eff = d``.
    """
    p_eff = setting.psi_p
    if sp.s[0] == 0.0 and sp.Sigma[0] == 0.0:
        p_eff = min(setting.psi_p, 1.0)
    return p_eff / (setting.psi_n * int(setting.m))


class FiniteMEquations(Equations):
    """Eqs. (F4)-(F11) for :func:`rfdsm.theory.driver.drive`; the fixed point is ``omega =
    (omega_s, omega_i)``, the ``state`` ``(branch, omega_s, omega_i)``: a warm start is used
    only on its own side of the interpolation threshold.  The ridgeless fit exactly at the
    threshold is answered without a solve (``test = inf``); any other non-finite result is a
    failure."""

    name = "finite-m deterministic equivalent (docs/theory.md eqs. F4-F11)"
    may_diverge = False
    uses_constants = True

    def __init__(self, setting, tol, max_iter):
        m = setting.m
        if not (isinstance(m, int) and m >= 1):
            raise ValueError(f"m must be a finite integer >= 1 for the finite-m solver, got {m!r}")
        super().__init__(setting, tol, max_iter)

    def prepare(self, sp):
        # (the same on every rule: it depends only on the atom of the rule and mu_star)
        self.ratio_pn = _threshold(sp, self.setting)
        self.above = self.ratio_pn > 1.0
        self.branch = "above" if self.above else "below"
        if self.setting.lam == 0.0 and abs(self.ratio_pn - 1.0) <= 1e-12:
            diag = {"solver": self.name, "divergent": True, "p_eff_over_N": self.ratio_pn}
            return Solution(0.0, math.inf, math.inf, True, 0.0, 0, None, diag)
        return None

    def _start(self, warm):
        try:
            branch, ws, wi = warm
            x = np.array([float(ws), float(wi)])
        except (TypeError, ValueError):
            return None
        return x if str(branch) == self.branch else None

    def solve(self, sp, warm):
        sys = _System(sp, self.setting, self.above)
        x, res, it, done, nn, nf = _solve(sys, self._start(warm), self.tol, self.max_iter)
        return FixedPoint(x, res, it, done, counts={"newton": nn, "fallback": nf})

    def errors(self, sp, x):
        return _errors(_System(sp, self.setting, self.above), x)

    def state(self, x):
        return (self.branch, float(x[0]), float(x[1]))

    def describe(self, fp, counts):
        return {"method": "newton" if counts["fallback"] == 0 else
                "newton with fixed-point fallback", "branch": self.branch,
                "p_eff_over_N": self.ratio_pn, "newton_steps": counts["newton"],
                "fallback_steps": counts["fallback"]}


def solve_finite_m(setting, warm=None, *, tol=1e-13, max_iter=200, nodes=400, quad_tol=1e-9,
                   max_nodes=12800) -> Solution:
    """Limiting ``train``, ``test``, ``score`` for a finite number ``m >= 1`` of noise samples.

    ``warm`` is the ``state`` of a previous solution (``(branch, omega_s, omega_i)``), used as
    the Newton starting point when it belongs to the same branch.  The Marchenko-Pastur rule is
    refined (``nodes`` doubled) until train and test agree with the previous rule to
    ``quad_tol`` (relative; absolute ``1e-6 quad_tol`` for errors below ``1e-6``), the last change
    being reported as ``quadrature_error`` (:func:`rfdsm.theory.driver.drive`).  The ridgeless
    fit (``lam = 0``) exactly at the interpolation threshold ``p_eff = N = m n`` diverges:
    ``test = inf`` with ``diagnostics["divergent"] = True``.  ``max_iter`` is twice that of the
    ``m = 1`` and ``m = inf`` solvers: the second stage of :func:`_solve` may fall back on damped
    fixed-point steps, which converge linearly.
    """
    return drive(setting, FiniteMEquations(setting, tol, max_iter), warm, nodes=nodes,
                 quad_tol=quad_tol, max_nodes=max_nodes)
