"""Early stopping: the training time ``tau*`` that minimises the test error along a gradient-flow
curve, beside the end of training (``tau = inf``) and the best ridge at ``tau = inf``.

Bonnaire, Urfin, Biroli & Mezard (2025, Sec. 3) argue that stopping between ``tau_gen`` and
``tau_mem`` (:mod:`rfdsm.timescales`) avoids memorisation; these functions say how much test
error that saves:

* :func:`stopping_point` on one curve: the grid point of least test error (an attained value,
  so ``tau*`` is known to the grid's spacing and ``test*`` is an upper bound of the minimum; at
  an end of the curve ``status = "at_bound"``: the minimum may lie outside it);
* :func:`early_stopping` on a ``tau`` curve of :class:`rfdsm.Result` (per seed for a simulation,
  then mean and standard error), with the curve's ``tau = inf`` point when it has one;
* :func:`optimal_stopping`: the theory's ``tau*`` refined by a bounded search on ``log tau``;
* :func:`optimal_ridge`: ``lam*`` minimising the theory's test error at ``tau = inf``
  (:func:`rfdsm.optimal.optimal_lambda` at ``tau = inf``);
* :func:`early_stopping_table`: all of it per setting of a result table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.status import Outcome

__all__ = ["StoppingPoint", "stopping_point", "early_stopping", "optimal_stopping",
           "optimal_ridge", "early_stopping_table"]


@dataclass(frozen=True)
class StoppingPoint(Outcome):
    """``tau_star`` and ``test_star`` (seed means for a simulation, with ``_se``), the test error
    at ``tau = inf`` of the same curve (NaN when it has no such point), ``status`` (``"ok"`` or
    ``"at_bound"``), ``message`` and the ``per_seed`` ``(tau_star, test_star)`` pairs."""

    tau_star: float
    test_star: float
    test_inf: float = math.nan
    tau_star_se: float | None = None
    test_star_se: float | None = None
    test_inf_se: float | None = None
    status: str = "ok"
    message: str = ""
    source: str = ""
    per_seed: tuple = field(default=())


def stopping_point(taus, test) -> tuple[float, float, str, str]:
    """``(tau_star, test_star, status, message)`` of one curve (``tau = inf`` points ignored)."""
    taus = np.asarray(taus, dtype=float)
    test = np.asarray(test, dtype=float)
    if taus.shape != test.shape or taus.ndim != 1:
        raise ValueError("taus and test must be one-dimensional and of equal length")
    keep = np.isfinite(taus)
    taus, test = taus[keep], test[keep]
    if taus.size < 3 or np.any(taus <= 0) or np.any(np.diff(taus) <= 0):
        raise ValueError("a curve needs at least 3 finite, positive, increasing training times")
    if not np.all(np.isfinite(test)):
        raise ValueError("the test errors of the curve must be finite numbers")
    i = int(np.argmin(test))
    if i in (0, taus.size - 1):
        where = "first" if i == 0 else "last"
        return (float(taus[i]), float(test[i]), "at_bound",
                f"the least test error is at the {where} tau = {taus[i]:g} of the curve: "
                "tau* may lie outside it")
    return float(taus[i]), float(test[i]), "ok", ""


def _mean_se(v):
    v = np.asarray(v, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None)


def early_stopping(results) -> StoppingPoint:
    """:func:`stopping_point` of a ``tau`` curve of :class:`rfdsm.Result` (one setting apart
    from ``tau``, one evaluator), per seed for a simulation; ``test_inf`` from its ``tau = inf``
    point when the curve has one."""
    from .timescales import per_seed_curves

    taus, curves = per_seed_curves(results)
    src = results[0].evaluator
    pts, infs = [], []
    for _, (_train, test, _score) in curves.items():
        pts.append(stopping_point(taus, test))
        if np.isinf(taus).any():
            infs.append(float(test[np.flatnonzero(np.isinf(taus))[0]]))
    return _combine(pts, infs, src)


def _combine(pts, infs, src) -> StoppingPoint:
    tau_m, tau_se = _mean_se([p[0] for p in pts])
    test_m, test_se = _mean_se([p[1] for p in pts])
    inf_m, inf_se = _mean_se(infs) if infs else (math.nan, None)
    edge = [p for p in pts if p[2] != "ok"]
    status = "at_bound" if edge else "ok"
    msg = (f"{len(edge)} of {len(pts)} curves: {edge[0][3]}" if edge and len(pts) > 1
           else (edge[0][3] if edge else ""))
    return StoppingPoint(tau_m, test_m, inf_m, tau_se, test_se, inf_se, status, msg, src,
                         tuple((p[0], p[1]) for p in pts))


def optimal_ridge(setting, lam_range=None):
    """The theory's best ridge at ``tau = inf`` for ``setting`` (its ``lam`` and ``tau``
    ignored): :func:`rfdsm.optimal.optimal_lambda` of the test error (a scan and a bounded
    search on ``log lam``), whose :class:`rfdsm.optimal.OptimalRidge` it returns (``lam``,
    ``value``, ``status``)."""
    from .optimal import LAM_RANGE, optimal_lambda

    return optimal_lambda(setting.replace(tau=math.inf), "test",
                          lam_range=LAM_RANGE if lam_range is None else lam_range)


def optimal_stopping(setting, taus=None, *, xatol: float = 1e-3) -> StoppingPoint:
    """The theory's ``tau*`` for ``setting`` (its own ``tau`` ignored): the least test error
    on the grid ``taus`` (default ``10^(k/4)`` from ``0.1`` to ``1e8``), then Brent's bounded
    search on ``log10 tau`` between the grid neighbours of that point, to ``xatol``;
    ``test_inf`` is the theory at ``tau = inf``.  The grid must bracket the minimum (else
    ``status = "at_bound"`` and the grid point is returned)."""
    from scipy.optimize import minimize_scalar

    from .. import theory

    taus = np.array([10.0 ** (k / 4) for k in range(-4, 33)] if taus is None else taus, float)
    if taus.ndim != 1 or taus.size < 3 or np.any(~np.isfinite(taus)) or np.any(np.diff(taus) <= 0):
        raise ValueError("taus must hold at least 3 finite, increasing training times")
    results = [theory(setting.replace(tau=float(t))) for t in taus]
    inf = theory(setting.replace(tau=math.inf))
    ok = all(r.converged for r in results) and inf.converged
    test = np.array([r.test for r in results])
    tau_g, test_g, status, msg = stopping_point(taus, test)
    if status == "ok":
        i = int(np.argmin(test))
        res = minimize_scalar(lambda x: theory(setting.replace(tau=10.0 ** x)).test,
                              bounds=(math.log10(taus[i - 1]), math.log10(taus[i + 1])),
                              method="bounded", options={"xatol": xatol})
        tau_g, test_g = 10.0 ** float(res.x), float(res.fun)
    if not ok:
        msg = (msg + "; " if msg else "") + "some theory points did not converge"
    return StoppingPoint(tau_g, test_g, inf.test, status=status, message=msg, source="theory")


def early_stopping_table(df, *, ridge: bool = True, lam_range=None):
    """One row per evaluator x setting (apart from ``tau``) x ``d`` of a result table with a
    ``tau`` axis: ``tau_star``, ``test_star``, ``test_inf`` (with ``_se`` over seeds),
    ``status``; with ``ridge``, the theory's ``lam_star`` and ``test_ridge`` at ``tau = inf``
    (one search per setting apart from ``lam``)."""
    import pandas as pd

    from ..core import params
    from ..core.setting import Setting
    from .timescales import _missing, _normalised

    df = _normalised(df)
    keys = ["evaluator", *[c for c in params.names() if c != "tau"], "d"]
    rows, ridge_cache = [], {}
    for key, sub in df.groupby(keys, dropna=False, sort=True):
        rec = dict(zip(keys, key))
        seeds = sub["seed"] if "seed" in sub and sub["seed"].notna().any() else None
        groups = sub.groupby(seeds, sort=True) if seeds is not None else [(None, sub)]
        pts, infs = [], []
        for _, cur in groups:
            cur = cur.sort_values("tau")
            pts.append(stopping_point(cur["tau"], cur["test"]))
            inf_rows = cur[np.isinf(cur["tau"])]
            if len(inf_rows):
                infs.append(float(inf_rows["test"].iloc[0]))
        sp = _combine(pts, infs, str(rec["evaluator"]))
        rec.update(n_seeds=len(pts), tau_star=sp.tau_star, tau_star_se=sp.tau_star_se,
                   test_star=sp.test_star, test_star_se=sp.test_star_se, test_inf=sp.test_inf,
                   test_inf_se=sp.test_inf_se, status=sp.status)
        if ridge:
            kw = {k: rec[k] for k in params.names()
                  if k in rec and k not in ("tau", "lam") and not _missing(rec[k])}
            ck = tuple(sorted((k, str(v)) for k, v in kw.items()))
            if ck not in ridge_cache:
                ridge_cache[ck] = optimal_ridge(Setting(**kw), lam_range)
            opt = ridge_cache[ck]
            rec.update(lam_star=opt.lam, test_ridge=opt.value, ridge_status=opt.status)
        rows.append(rec)
    return pd.DataFrame(rows)
