"""``d -> inf`` limits of the diagnostics ``test_emp``, ``beta``, ``bias2``, ``variance``
(``docs/theory.md``, Sec. 11, eqs. (G1)-(G9)).

They are computed at the fixed point the solver of the setting found (its ``state`` and the
rule of its last refinement, ``diagnostics["nodes"]``), then once more on the rule of half the
nodes (or twice, until the change is below ``QUAD_TOL``), so that their own quadrature error
is known:

* ``beta = -(1/(h d)) tr(B V^T)``: ``psi_p <T/(Sigma + kappa)>/h`` (``m = 1``, (G2)),
  ``theta psi_p <T/D>/h`` (finite ``m``, (F8)), ``psi_p <T/D>/h`` (``m = inf``, (T14));
* ``bias2 = (1 - beta)^2`` and ``variance = score - bias2`` ((G3));
* ``test_emp``: ``train`` for ``m = inf`` ((G4)); for finite ``m`` (``m = 1`` included) eq. (G8),
  the derivative in a source ``eta`` carried by an extra, shared column of every block.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..metrics import implement
from ..metrics.diagnostics import DIAGNOSTICS
from .common import ge_spectrum, ratio

__all__ = ["limits", "flow_limits", "finite_m_values", "QUAD_TOL"]

#: Relative change between two rules below which a diagnostic is resolved (that of the errors).
QUAD_TOL = 1e-9
_MAX_NODES = 12800


def finite_m_values(sys, x, h: float) -> dict:
    """``test_emp``, ``beta`` and the pieces of eqs. (F8)-(F11) and (G5)-(G8) at the solution
    ``x = (omega_s, omega_i)`` of eq. (F4) (``sys``: :class:`rfdsm.theory.finite_m._System`)."""
    sp, r, psi_p, m, c1 = sys.sp, sys.r, sys.psi_p, sys.m, sys.c1
    _, J, (alpha, theta, g_alpha, g_theta, D, cD, sD) = sys.evaluate(x)
    w = sp.w
    tD = ratio(sp.T, D)
    k1 = theta * psi_p * float(np.dot(w, tD))  # (F8): tr(K R V^T)/d
    th2 = theta * theta
    rhs = np.array([r * th2 * float(np.dot(w, cD * tD)),
                    r * th2 * float(np.dot(w, sD * tD)) + sys.inv_n * (1.0 - 2.0 * k1)])  # (F10)
    CC, CS, SS = (r * float(np.dot(w, u * v)) for u, v in ((cD, cD), (cD, sD), (sD, sD)))
    ws, wi = float(x[0]), float(x[1])
    # (G6): the source's direct effect on the weights, then (G7): through omega
    pa, pt = (c1 + wi) ** 2 * alpha * alpha, m * ws * ws * alpha * alpha
    try:
        dx = np.linalg.solve(J, rhs)
        om = np.linalg.solve(J, -np.array([CC * pa + CS * pt, CS * pa + SS * pt]))
    except np.linalg.LinAlgError:  # only at a divergence
        return {"test_emp": math.nan, "beta": k1 / h, "k1": k1}
    dE = float(g_alpha @ dx) * sp.C + float(g_theta @ dx) * sp.Sc - th2 * sp.T
    k3_sc = -psi_p * float(np.dot(w, sD * ratio(dE, D)))  # (F11) with Psi = Sc
    a_p, t_p = pa + float(g_alpha @ om), pt + float(g_theta @ om)
    shared = t_p * (1.0 - 2.0 * k1) + th2 * psi_p * float(np.dot(w, tD * (a_p * cD + t_p * sD)))
    return {"test_emp": 1.0 + shared + k3_sc - 2.0 * k1, "beta": k1 / h, "k1": k1,
            "shared": shared, "k3_sc": k3_sc}  # (G8)


def _finite_m_at(setting, nodes, warm):
    """``(values, state)`` on the rule of ``nodes``, the fixed point polished from ``warm``."""
    from . import finite_m as fm

    eqs = fm.FiniteMEquations(setting, 1e-13, 200)
    sp = ge_spectrum(setting, nodes)
    early = eqs.prepare(sp)
    if early is not None:  # the ridgeless interpolation threshold: test_emp diverges as test
        return {"test_emp": math.inf, "beta": _threshold_beta(setting, sp)}, None
    system = fm._System(sp, setting, eqs.above)
    x, *_ = fm._solve(system, eqs._start(warm), 1e-13, 200)
    return finite_m_values(system, x, setting.h), eqs.state(x)


def _threshold_beta(setting, sp) -> float:
    """``beta`` of the ridgeless fit at the interpolation threshold ``p_eff = N``: the limit
    ``lam -> 0+`` of (F8), which stays finite while ``test``, ``test_emp`` and ``variance``
    diverge.

    Below the threshold (form (F4)) at ``p_eff/N = 1`` the weights vanish together as
    ``lam -> 0``, ``alpha = delta a``, ``theta = delta b`` with ``lam/delta -> 0``, so that
    ``D = delta (a C + b Sc)`` and ``omega = O(1/delta)``.  To leading order the definition of
    ``theta`` holds identically (``alpha omega_s + theta omega_i = p_eff/N = 1``) and that of
    ``alpha``, ``alpha (omega_i + m omega_s) = 1``, fixes the ratio ``rho = b/a``:

        r <(Sc + m C)/(C + rho Sc)> = 1,        beta = rho psi_p <T/(C + rho Sc)> / h,

    with ``r = psi_p/(m psi_n)``.  The left side decreases from ``r (m + <Sc/C>) > 1`` at
    ``rho = 0`` to 0, so the root is unique.  At ``m = 1`` it is ``rho = 1`` (``alpha =
    theta``) and ``beta = psi_p <T/Sigma>/h``, (G2) of the ``m = 1`` solver at ``kappa = 0``."""
    r, m = setting.psi_p / (setting.psi_n * int(setting.m)), int(setting.m)
    num = sp.Sc + m * sp.C

    def excess(log_rho):
        return r * float(np.dot(sp.w, ratio(num, sp.C + math.exp(log_rho) * sp.Sc))) - 1.0

    lo, hi = -1.0, 1.0
    while excess(lo) <= 0.0 and lo > -700.0:
        lo *= 2.0
    while excess(hi) >= 0.0 and hi < 700.0:
        hi *= 2.0
    if not excess(lo) > 0.0 > excess(hi):  # pragma: no cover - the bracket always exists
        return math.nan
    from scipy.optimize import brentq

    rho = math.exp(brentq(excess, lo, hi, xtol=1e-15, rtol=1e-15))
    return rho * setting.psi_p * float(np.dot(sp.w, ratio(sp.T, sp.C + rho * sp.Sc))) / setting.h


def _m1_beta(setting, nodes, kappa):
    """(G2): ``beta = psi_p <T/(Sigma + kappa)>/h`` with ``kappa`` of eq. (T8) on the rule."""
    from .m1 import _solve_kappa

    sp = ge_spectrum(setting, nodes)
    kappa, *_ = _solve_kappa(sp, setting.psi_p / setting.psi_n, setting.lam, kappa, 1e-13, 100)
    return setting.psi_p * float(np.dot(sp.w, ratio(sp.T, sp.Sigma + kappa))) / setting.h, kappa


def _refined(evaluate, nodes):
    """``evaluate(nodes, warm) -> (values, warm)`` on the rule of ``nodes`` and on a neighbour
    rule (half, then doubling), until ``test_emp`` and ``beta`` agree to ``QUAD_TOL``:
    ``(values, change)``."""
    cur, warm = evaluate(nodes, None)
    other, _ = evaluate(max(nodes // 2, 50), warm)
    err = _change(cur, other)
    while err > QUAD_TOL and nodes < _MAX_NODES:
        nodes *= 2
        nxt, warm = evaluate(nodes, warm)
        err, cur = _change(nxt, cur), nxt
    return cur, err


def _change(a, b) -> float:
    out = 0.0
    for k in ("test_emp", "beta"):
        x, y = a[k], b[k]
        if math.isnan(x) and math.isnan(y) or x == y:
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            return math.inf
        out = max(out, abs(x - y) / max(abs(x), 1e-6))
    return out


@lru_cache(maxsize=512)
def _limits(setting, state, nodes, train, score):
    if setting.m == math.inf:
        # (G4): the noise average on the training points is the m = inf training loss itself
        beta_of = _minf_beta(setting)
        vals, err = _refined(beta_of, nodes)
        vals = {"test_emp": train, "beta": vals["beta"]}
    else:
        warm = state if setting.m != 1 else None

        def at(nodes_, warm_):
            out, st = _finite_m_at(setting, nodes_, warm_ if warm_ is not None else warm)
            if setting.m == 1:  # beta from the m = 1 solver's kappa (G2), the same limit
                out["beta"], _ = _m1_beta(setting, nodes_, state)
            return out, st

        vals, err = _refined(at, nodes)
    beta = vals["beta"]
    bias2 = (1.0 - beta) ** 2 if math.isfinite(beta) else math.nan
    variance = score - bias2 if math.isfinite(score) else math.inf
    return {"test_emp": float(vals["test_emp"]), "beta": float(beta), "bias2": float(bias2),
            "variance": float(variance), "quadrature_error": float(err)}


def _minf_beta(setting):
    from . import minf

    def at(nodes, warm):
        sp = ge_spectrum(setting, nodes)
        eqs = minf.MinfEquations(setting, 1e-13, 100)
        fp = eqs.solve(sp, warm)
        _, _, info = eqs.errors(sp, fp.x)
        return {"test_emp": 0.0, "beta": info["trQT_over_d"] / setting.h}, fp.x  # (T14)
    return at


def limits(setting, result) -> dict:
    """``{"test_emp", "beta", "bias2", "variance", "quadrature_error"}`` for the theory
    :class:`rfdsm.Result` ``result`` of ``setting`` (its fixed point and rule)."""
    if setting.tau != math.inf:
        # the fixed point of a finite-tau result is the flow's, not that of (G1)-(G9): only
        # what the flow itself gave (flow_limits) is known there
        return {k: result.metrics.get(k) for k in
                ("test_emp", "beta", "bias2", "variance", "quadrature_error")}
    diag = result.diagnostics
    state = diag.get("state")
    if isinstance(state, list):
        state = tuple(state)
    nodes = int(diag.get("nodes", 400))
    return _limits(setting, state, nodes, float(result.train), float(result.score))


def flow_limits(setting, train, score, s1) -> dict:
    """The diagnostics that the finite-``tau`` flow (docs/theory.md, end of Sec. 10) gives at
    once from its first-order sum ``S1 = -(1/d) tr(B V^T)``: ``beta = S1/h`` (G2),
    ``bias2 = (1 - beta)^2``, ``variance = score - bias2``; at ``m = inf`` also
    ``test_emp = train`` (G4: the noise average on the training points is the training loss)."""
    beta = s1 / setting.h
    bias2 = (1.0 - beta) ** 2
    out = {"beta": beta, "bias2": bias2, "variance": score - bias2}
    if setting.m == math.inf:
        out["test_emp"] = train
    return {k: float(v) for k, v in out.items()}



def _limit(name):
    def fn(setting, result):
        # the equations of docs/theory.md, Sec. 11, are those of the isotropic target
        if not getattr(setting.data_model.law(), "is_isotropic", False):
            return None
        return limits(setting, result)[name]
    fn.__name__ = fn.__qualname__ = f"theory_{name}"
    return fn


implement("theory", {name: _limit(name) for name in DIAGNOSTICS})
