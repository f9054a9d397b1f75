"""The over-parameterised plateau: the ``psi_p -> inf`` limit of every error and diagnostic
(``docs/theory.md``, Sec. 11.4, eqs. (G10)-(G16)).

As ``psi_p -> inf`` the spectrum of ``S = W W^T/d`` is an atom at 0 of mass ``1 - 1/psi_p`` (the
``p - d`` directions the features fill with their nonlinear parts) and a bulk of mass
``1/psi_p`` concentrating at ``s/psi_p -> 1``: the features' Gram on the training inputs
becomes the kernel ``mu1^2 y.y'/d + kappa_s^2 [same data point] + kappa_i^2 [same sample]``.
In the rescaled equations (F5) the unknowns scale as ``omega ~ r w``, ``alpha ~ a/r``,
``theta ~ th/r`` (``r = p/N``), the ridge enters only as ``lam/r -> 0``, and the limit is one
scalar equation for the bulk scale ``X`` (eqs. (G10)-(G12)); the errors follow from its
first and second orders ((G13)-(G16)).  At fixed ``lam`` the plateau does not depend on
``lam``: the fit tends to the minimum-norm interpolation of the ``N = m n`` pairs in that
kernel (the approach is ``O(lam m psi_n/psi_p)``).  ``m = inf`` has the closed form (G17):
``train = test_emp = 0``, ``test = a^2/h``, ``beta = 1/h``, ``score = bias2 = a^4/h^2``,
``variance = 0`` (the fitted score is ``-y/h``).
"""

from __future__ import annotations

import math
import time

import numpy as np
from scipy import optimize

from ..core.result import Result
from ..core.setting import Setting
from .common import ge_constants

__all__ = ["plateau", "plateau_values"]


def _weights(X, k, m, a2, h):
    """(G10)-(G11): ``w_s, w_i`` and the weights ``a, th`` at the bulk scale ``X``."""
    ws = k.kappa_s2 + k.mu1 ** 2 * a2 * X
    wi = k.kappa_i2 + k.mu1 ** 2 * h * X
    al = 1.0 / (wi + m * ws)
    th = (1.0 - ws * al) / wi
    return ws, wi, al, th


def _solve_X(k, m, rho, a2, h):
    """The root of (G12), ``1/X = 1 + rho mu1^2 (a^2 a + h th)``, in ``(0, 1)``."""
    mu12 = k.mu1 ** 2

    def f(X):
        _, _, al, th = _weights(X, k, m, a2, h)
        return 1.0 - X * (1.0 + rho * mu12 * (a2 * al + h * th))

    lo = 1e-300
    if not f(lo) > 0 > f(1.0):
        raise ValueError("the plateau equation (G12) has no root in (0, 1) for this setting")
    return optimize.brentq(f, lo, 1.0, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)


def plateau_values(setting: Setting) -> dict:
    """``{"train", "test", "score", "test_emp", "beta", "bias2", "variance", "X"}`` in the limit
    ``psi_p -> inf`` at the setting's ``psi_n, m, t`` (``psi_p`` and ``lam`` do not enter)."""
    k = ge_constants(setting)
    a2, h = setting.a ** 2, setting.h
    if not k.mu_star2 > 0:
        raise ValueError("the plateau needs a nonlinear activation (mu_star > 0): the linear "
                         "activation's features have rank d, and the fit no longer depends on "
                         "psi_p once psi_p > 1")
    if setting.m == math.inf:  # (G17)
        return {"train": 0.0, "test": a2 / h, "score": a2 * a2 / (h * h), "test_emp": 0.0,
                "beta": 1.0 / h, "bias2": (1.0 - 1.0 / h) ** 2, "variance": 0.0, "X": 0.0}
    m, rho = int(setting.m), setting.psi_n * int(setting.m)
    X = _solve_X(k, m, rho, a2, h)
    ws, wi, al, th = _weights(X, k, m, a2, h)
    c, s = k.mu1 ** 2 * a2, k.mu1 ** 2 * h  # bulk covariances C/psi_p and Sc/psi_p = T/psi_p
    k1 = rho * s * th * X  # (G13): tr(K R V^T)/d
    Ga = -al * al * np.array([m, 1.0])
    Gt = np.array([-al * al, (ws * al * al - th) / wi])
    G = np.vstack([Ga, Gt])
    J = np.eye(2) + rho * X * X * np.array([[c * c, c * s], [c * s, s * s]]) @ G  # (G14)
    rhs = np.array([rho * th * th * c * s * X * X,
                    rho * th * th * s * s * X * X + (1.0 - 2.0 * k1) / rho])
    dx = np.linalg.solve(J, rhs)
    e = float(Ga @ dx) * c + float(Gt @ dx) * s - th * th * s

    def k3(g):  # (G15): tr(R K^T K R Psi)/d for a bulk covariance Psi = psi_p g
        return -rho * rho * g * e * X * X

    test = 1.0 + k3(k.mu1 ** 2) - 2.0 * k1
    pa, pt = wi * wi * al * al, m * ws * ws * al * al  # (G16): the shared-part source
    Om = -X * X * np.linalg.solve(J, np.array([c * c * pa + c * s * pt, c * s * pa + s * s * pt]))
    a_p, t_p = pa + rho * float(Ga @ Om), pt + rho * float(Gt @ Om)
    shared = t_p * (1.0 - 2.0 * k1) + rho * rho * th * th * s * (a_p * c + t_p * s) * X * X
    test_emp = 1.0 + shared + k3(s) - 2.0 * k1
    beta = k1 / h
    score = (test - setting.bayes) / h
    bias2 = (1.0 - beta) ** 2
    return {"train": 0.0, "test": test, "score": score, "test_emp": test_emp, "beta": beta,
            "bias2": bias2, "variance": score - bias2, "X": X}


def plateau(setting: Setting) -> Result:
    """The ``psi_p -> inf`` limit of ``setting`` as a :class:`rfdsm.Result` (``evaluator =
    "plateau"``; its ``setting`` keeps the given ``psi_p``, which does not enter, nor does
    ``lam``): ``train, test, score`` and ``metrics`` ``test_emp, beta, bias2, variance``."""
    from .routing import route

    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    route(setting)  # the same refusals as rfdsm.theory
    if not setting.data_model.law().is_isotropic:
        raise ValueError("the plateau (docs/theory.md, Sec. 11.4) is derived for the isotropic "
                         f"target, not the data model {setting.data_model.name!r}")
    if setting.tau != math.inf:
        # (G10)-(G17) are limits of the minimiser; the flow's psi_p -> inf limit is not derived
        raise ValueError(f"the plateau is derived for the minimiser (tau = inf), not for tau = "
                         f"{setting.tau:g}; use rfdsm.theory at a large psi_p instead")
    t0 = time.perf_counter()
    v = plateau_values(setting)
    metrics = {q: float(v[q]) for q in ("test_emp", "beta", "bias2", "variance")}
    bad = not (v["test"] >= setting.bayes * (1 - 1e-9) and v["variance"] >= -1e-9
               and all(math.isfinite(x) for x in v.values()))
    diag = {"limit": "psi_p -> inf (fixed lam)", "X": v["X"],
            "solver": "plateau (docs/theory.md eqs. G10-G17)"}
    if bad:
        diag["warning"] = "unphysical plateau values: not converged"
    return Result(setting=setting, evaluator="plateau", train=v["train"], test=v["test"],
                  score=v["score"], converged=not bad, residual=0.0, iterations=0,
                  wall_time=time.perf_counter() - t0, diagnostics=diag, metrics=metrics)
