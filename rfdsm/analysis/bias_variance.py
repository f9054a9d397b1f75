"""The diagnostics of ``docs/model.md``, "Empirical test loss, bias and variance": their names
and the bias-variance split pooled over seeds (an analysis of simulation results).

Declared in :mod:`rfdsm.metrics.diagnostics`, with ``default=False``: a
simulation computes them only when they are named (``simulate(..., metrics=DIAGNOSTICS)``, a
sweep's ``[simulate] metrics = [...]``): ``test_emp`` at finite ``m`` runs the Mehler series of
the ``m = inf`` moments, 0.4-10 times the fit; the radial profile of ``bias2`` costs 0-20 % of
a fit at ``d = 100-200``, more in a training-time curve, which then forms ``B`` at every
``tau``; and ``beta, bias2, variance`` exist for the isotropic target only.  The theory gives
their limits when asked the same way (``rfdsm.theory(setting, metrics=DIAGNOSTICS)``, a
sweep's ``[theory] metrics``): a few averages at its fixed point.

* ``test_emp``: the loss with the noise averaged exactly on the ``n`` training points;
* ``beta = -(1/d) E_y[y . s(y)]``: the mean score is ``-beta y`` to leading order;
* ``bias2``, ``variance``: ``score = bias2 + variance`` (isotropic target only).

Per seed (:mod:`rfdsm.simulate.diagnostics`) ``bias2`` is the seed's own radial bias; its mean
over seeds exceeds the bias of the mean score by the seed-to-seed variance of the radial
profile (``O(1/d)``, far below the standard errors: ``docs/theory.md``, Sec. 11.3).  :func:`bias_variance` gives the unbiased estimate from
several seeds (a U-statistic over pairs, exact for any number of seeds >= 2) with jackknife
standard errors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..metrics.diagnostics import DIAGNOSTICS

__all__ = ["DIAGNOSTICS", "BiasVariance", "bias_variance"]


@dataclass(frozen=True)
class BiasVariance:
    """The bias-variance split of the mean score over ``n_seeds`` seeds.

    ``bias2`` is unbiased for the bias of the mean score at this ``d`` (``method``: "pairs",
    the U-statistic of the seeds' radial profiles; "beta", the seed mean of the own biases less
    the sample variance of ``beta``, which leaves the variance of the profiles' shape, at most
    ``shape_bound``; "one seed": no correction possible).  ``variance = score - bias2``.
    ``*_se``: jackknife standard errors (None below 3 seeds).  ``correction``: the seed mean of
    the own biases minus ``bias2``."""

    bias2: float
    variance: float
    score: float
    bias2_se: float | None
    variance_se: float | None
    n_seeds: int
    method: str
    correction: float
    shape_bound: float = 0.0


def _pairs(G, w):
    """U-statistic over pairs ``k != l`` of ``sum_j w_j G_kj G_lj``, and its leave-one-out
    values (for the jackknife)."""
    H = (G * w) @ G.T
    S = G.shape[0]
    off = float(H.sum() - np.trace(H))
    U = off / (S * (S - 1))
    if S < 3:
        return U, None
    rows = H.sum(axis=1) - np.diag(H)
    return U, (off - 2.0 * rows) / ((S - 1) * (S - 2))


def _jackknife(loo):
    if loo is None:
        return None
    S = loo.size
    return float(math.sqrt((S - 1) / S * np.sum((loo - loo.mean()) ** 2)))


def bias_variance(result) -> BiasVariance:
    """Unbiased ``bias2`` and ``variance`` from a simulation ``result`` (an :class:`rfdsm.Result`
    run with the diagnostics, or its per-seed rows: dicts with ``score, bias2, beta`` and,
    when present, ``radial_profile``)."""
    rows, profiles = _seed_rows(result)
    score = np.array([r["score"] for r in rows], dtype=float)
    own = np.array([r["bias2"] for r in rows], dtype=float)
    beta = np.array([r["beta"] for r in rows], dtype=float)
    S = score.size
    if S == 1:
        return BiasVariance(float(own[0]), float(score[0] - own[0]), float(score[0]), None, None,
                            1, "one seed", 0.0)
    loo_score = (score.sum() - score) / (S - 1)
    if profiles is not None:
        from ..simulate.diagnostics import chi2_rule

        d = result[0].get("d") if isinstance(result, (list, tuple)) else result.d
        _, w = chi2_rule(int(d), profiles.shape[1])
        U, loo = _pairs(1.0 - profiles, w)
        method, bound = "pairs", 0.0
    else:
        U = float(own.mean() - beta.var(ddof=1))
        loo = None
        if S >= 3:
            keep = ~np.eye(S, dtype=bool)
            loo = np.array([own[k].mean() - beta[k].var(ddof=1) for k in keep])
        method = "beta"
        bound = float(np.mean(own - (1.0 - beta) ** 2))  # E' rho_k^2 >= the shape variance
    var_loo = None if loo is None else loo_score - loo
    return BiasVariance(U, float(score.mean() - U), float(score.mean()), _jackknife(loo),
                        _jackknife(var_loo), S, method, float(own.mean() - U), bound)


def _seed_rows(result):
    """``(rows, profiles)`` of a Result or a list of row dicts; ``profiles`` (seeds x nodes) or
    None when some seed lacks one."""
    if isinstance(result, (list, tuple)):
        rows = [dict(r) for r in result]
        profs = [r.get("radial_profile") for r in rows]
    else:
        if result.evaluator != "simulate" or not result.per_seed:
            raise ValueError("bias_variance needs a simulation result (per-seed values)")
        rows = [dict(r) for r in result.per_seed]
        diag = result.diagnostics
        per = diag.get("per_seed_diagnostics") or [diag]
        profs = [p.get("radial_profile") for p in per]
    missing = [k for k in ("score", "bias2", "beta") if any(k not in r for r in rows)]
    if missing:
        raise ValueError(f"bias_variance: the result lacks the metric(s) {missing}; simulate "
                         f"with metrics=rfdsm.diagnostics.DIAGNOSTICS")
    if any(p is None for p in profs) or len({len(p) for p in profs}) != 1:
        return rows, None
    return rows, np.array(profs, dtype=float)
