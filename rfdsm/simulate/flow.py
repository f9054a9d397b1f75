"""A whole curve over the training time ``tau`` from one eigendecomposition per seed.

Every estimator that is a spectral filter of the training Gram, ``K = g(S) C^T``
(:mod:`rfdsm.estimators`), is diagonal in the eigenbasis ``S = Q diag(s) Q^T``.  With the
projected cross-moment ``Ct = Q^T C^T`` (p x d) and ``c2_i = |Ct_i|^2`` the errors of
``docs/simulator.md`` (Sec. 1) at any filter ``g`` are

    tr(B S B^T) + 2 tr(B C^T)        = sum_i (g_i^2 s_i - 2 g_i) c2_i                 (train)
    tr(B U_pop B^T) + 2 tr(B V_pop^T) = g^T M g - 2 g . w,                           (test, score)
    M = (Q^T U_pop Q) o (Ct Ct^T),    w_i = (Q^T V_pop^T)_i . Ct_i,

so after the moments, one ``eigh`` of ``S`` and the ``O(p^3)`` projections ``M`` and ``w``,
each time of the curve costs ``O(p^2)``: the gradient-flow filter
``g(s) = (1 - exp(-c tau (s + lam)))/(s + lam)`` at each ``tau``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from . import fit as _fit
from .population import population_moments
from .threads import THREADS


@dataclass
class _FlowFit(_fit.FittedScore):
    """A fitted score whose training quadratic form comes from the eigenbasis (``K`` is
    formed only when a metric besides the built-ins needs it)."""

    train_quadratic: float = math.nan

    def quadratic(self, mom) -> float:
        if mom is self.train_moments:
            return self.train_quadratic
        return super().quadratic(mom)


def curve_seed(setting, d: int, seed: int, taus, block_bytes: int, chunk, dtype,
               metrics=None) -> list[dict]:
    """One row per ``tau`` (as :func:`rfdsm.simulate.fit.evaluate_seed` returns for
    ``setting.replace(tau=tau)``), from one set of moments and one ``eigh``."""
    from ..metrics import simulation_metrics
    from . import diagnostics as _  # noqa: F401  (hands the simulator's metric functions over)

    t0 = time.perf_counter()
    metrics = simulation_metrics(metrics)
    need_K = any(m.name not in ("train", "test", "score") for m in metrics)
    p = setting.sizes(d)[1]
    dt = _fit._float_dtype(dtype)
    with THREADS.blas("fit", p):
        dr, W, corr, mom = _fit.training_moments(setting, d, seed, block_bytes, chunk, dt)
        t1 = time.perf_counter()
        with THREADS.blas("solve", p):
            evals, Q = np.linalg.eigh(mom.S)
        Ct = Q.T @ mom.C.T
        t2 = time.perf_counter()
        pop = population_moments(setting.data_model, setting.sigma, W, setting.h, corr)
        M = (Q.T @ pop.S @ Q) * (Ct @ Ct.T)
        w = np.einsum("ik,ik->i", Q.T @ pop.C.T, Ct)
        c2 = np.einsum("ik,ik->i", Ct, Ct)
        t3 = time.perf_counter()
    info = {**mom.info, **pop.info, "time_moments": t1 - t0, "time_eigh": t2 - t1,
            "time_population": t3 - t2, "backend": "cpu", "dtype": dt.name,
            "tau_curve_points": len(taus)}
    shared = time.perf_counter() - t0
    rows = []
    for tau in taus:
        ti = time.perf_counter()
        s_tau = setting.replace(tau=tau)
        setting.estimator_object.check(evals, s_tau)
        g = setting.estimator_object.filter(evals.copy(), s_tau)
        K = Q @ (g[:, None] * Ct) if need_K else None
        fitted = _FlowFit(s_tau, int(d), int(seed), W, K, mom, pop, dr, _fit.HOST,
                          float(g @ M @ g - 2.0 * g @ w), dict(info),
                          train_quadratic=float(np.sum((g * g * evals - 2.0 * g) * c2)))
        row = {"seed": int(seed)}
        for metric in metrics:
            row[metric.name] = float(metric.function("simulate")(fitted))
        # the shared fit is split evenly: the curve's rows add up to its wall time
        wall = shared / len(taus) + time.perf_counter() - ti
        row["wall_time"] = wall
        row["diagnostics"] = {**info, "time_total": wall, "time_curve_fit": shared}
        rows.append(row)
    return rows
