"""``rfdsm validate``: the asymptotic theory against the finite-size simulator, in the limit.

The theory is the ``d -> inf`` limit of the simulated errors, so the test is a test of that
limit (``docs/theory.md``, Sec. 7).  For each setting and quantity ``q`` the seed means
``E_d`` at ``k >= 3`` sizes are fitted by weighted least squares (weights ``1/se_d^2``) to

    E_d = c0 + c1/d        (or, with ``order=2`` and k >= 4 sizes, c0 + c1/d + c2/d^2),

and the setting passes when the residuals are those of this law and the intercept agrees with
the theory:

    |c0 - theory| <= crit * se(c0) + FLOOR * |theory|,

with ``se(c0)`` from the fit (scaled up by ``sqrt(chi2/dof)`` when the residuals exceed their
errors), ``crit`` the Student-t quantile at the Bonferroni level ``alpha/(2 N)`` for the ``N``
checks of the run and the Welch-Satterthwaite degrees of freedom of ``c0`` (each ``se_d``
comes from only ``n_seeds`` seeds), and ``FLOOR = 1e-4`` the accuracy claimed for the two
evaluators (theory quadrature ``<= 1e-9``; Mehler truncation ``<= 1e-8``).  A fit whose
residuals are too large for the ``1/d`` law (chi-square test at the same level) fails with
that reason: curvature the linear law lacks is caught there, not hidden in a tolerance.
Nothing here is calibrated on the settings it checks.
"""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from ..core.setting import Setting
from .validate_sets import INF, SETS, SOFTPLUS, default_settings, softplus

__all__ = ["Fit", "extrapolate", "critical_value", "check", "default_settings",
           "validation_table", "summarize", "FLOOR", "ALPHA",
           "SETS", "softplus", "SOFTPLUS"]

#: Relative floor of the allowance: the accuracy the evaluators state for themselves (the
#: theory's quadrature and fixed-point residual <= 1e-9, the simulator's Mehler truncation
#: bound <= 1e-8), with a margin of 1e4 for round-off in sums over seeds.  Statistical and
#: finite-size effects are not in it: they are in se(c0).
FLOOR = 1e-4
#: Family-wise level: the probability that a correct theory fails any check of one run.
ALPHA = 0.05
QUANTITIES = ("train", "test", "score")


class Fit(dict):
    """Result of :func:`extrapolate` (a dict with attribute access): ``intercept``, ``se``
    (inflated by ``birge``), ``dof`` (Welch-Satterthwaite, of ``se``), ``seed_dof`` (``n_seeds
    - 1``, of each ``se_d``), ``chi2``,
    ``chi2_dof`` (``k`` minus the number of coefficients), ``coef`` (``c0, c1[, c2]``),
    ``order`` (1 or 2)."""

    __getattr__ = dict.__getitem__


def extrapolate(ds, values, ses, n_seeds=None, order: int = 1) -> Fit:
    """Weighted least-squares fit of ``values`` (seed means at sizes ``ds``, standard errors
    ``ses``) to ``sum_j c_j d^-j``, ``j <= order`` (1 or 2; ``order + 2`` sizes or more, so
    that one degree of freedom is left to test the fit).

    ``se(c0)^2`` = ``[(X^T W X)^-1]_00`` with ``W = diag(1/se^2)``, times ``chi2/dof`` when
    that exceeds 1 (Birge ratio: residuals larger than their errors, e.g. curvature the fit
    lacks).  ``dof`` is the Welch-Satterthwaite number of degrees of freedom of ``se(c0)``
    from ``n_seeds`` seeds per size (``inf`` when ``n_seeds`` is None: errors taken as known).
    """
    d = np.asarray(ds, dtype=float).ravel()
    y = np.asarray(values, dtype=float).ravel()
    s = np.asarray(ses, dtype=float).ravel()
    if not (d.size == y.size == s.size):
        raise ValueError(f"ds, values and ses must have the same length, got {d.size}, "
                         f"{y.size}, {s.size}")
    if np.unique(d).size != d.size or not np.all(d >= 1) or not np.all(np.isfinite(d)):
        raise ValueError(f"ds must be distinct finite sizes >= 1, got {list(ds)}")
    if isinstance(order, bool) or order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if d.size < order + 2:
        raise ValueError(f"ds: a fit of order {order} in 1/d needs at least {order + 2} sizes "
                         f"(one more than its {order + 1} coefficients, to test the fit), got "
                         f"{d.size}")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ValueError("values must be finite and ses finite and > 0 (a standard error "
                         "needs >= 2 seeds that differ)")
    if n_seeds is not None and (np.ndim(n_seeds) == 0 and n_seeds < 2
                                or np.any(np.asarray(n_seeds) < 2)):
        raise ValueError(f"n_seeds must be >= 2 (or None), got {n_seeds!r}")
    x = d.min() / d  # in (0, 1]: a well-conditioned design
    X = np.vander(x, order + 1, increasing=True)
    w = 1.0 / s**2
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    g = cov @ (X.T * w)  # coefficients as linear combinations of the values
    coef = g @ y
    resid = y - X @ coef
    chi2 = float(np.sum(w * resid**2))
    chi2_dof = d.size - (order + 1)
    birge = math.sqrt(max(1.0, chi2 / chi2_dof))
    terms = (g[0] * s) ** 2
    var = float(terms.sum())
    if n_seeds is None:
        dof = seed_dof = math.inf
    else:
        nu = np.broadcast_to(np.asarray(n_seeds, dtype=float) - 1.0, d.shape)
        dof = var**2 / float(np.sum(terms**2 / nu))
        seed_dof = float(nu.min())
    scale = d.min() ** np.arange(order + 1)  # back from x = d_min/d to 1/d
    return Fit(intercept=float(coef[0]), se=birge * math.sqrt(var), dof=dof, seed_dof=seed_dof,
               chi2=chi2, chi2_dof=chi2_dof, birge=birge,
               coef=tuple(float(c) for c in coef * scale), order=order)


def critical_value(n_checks: int, dof: float, alpha: float = ALPHA) -> float:
    """Two-sided Student-t quantile at the Bonferroni level ``alpha/(2 n_checks)``: a correct
    theory fails any of ``n_checks`` checks with probability at most ``alpha``."""
    from scipy import stats

    if not (0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if n_checks < 1:
        raise ValueError(f"n_checks must be >= 1, got {n_checks!r}")
    q = 1.0 - alpha / (2.0 * n_checks)
    return float(stats.norm.ppf(q) if math.isinf(dof) else stats.t.ppf(q, dof))


def check(fit: Fit, theory: float, n_checks: int, alpha: float = ALPHA,
          converged: bool = True) -> dict:
    """Whether ``theory`` is the ``d -> inf`` limit of a fit: ``ok``, the allowance ``crit
    se(c0) + FLOOR |theory|``, ``z = (c0 - theory)/se(c0)`` and the ``reason`` of a failure."""
    from scipy import stats

    crit = critical_value(n_checks, fit.dof, alpha)
    allow = crit * fit.se + FLOOR * abs(theory)
    # The residual test: chi2/chi2_dof against F(chi2_dof, n_seeds - 1), since each se_d is
    # an estimate from n_seeds seeds: the conservative (heavy-tailed) reference, so that few
    # seeds do not turn noise into false failures.
    level = alpha / n_checks
    p_fit = float(stats.chi2.sf(fit.chi2, fit.chi2_dof) if math.isinf(fit.seed_dof)
                  else stats.f.sf(fit.chi2 / fit.chi2_dof, fit.chi2_dof, fit.seed_dof))
    dev = fit.intercept - theory
    reason = ""
    if not converged:
        reason = "theory not converged"
    elif not math.isfinite(theory):
        reason = "theory not finite"
    elif p_fit < level:
        reason = f"1/d law does not fit (chi2 = {fit.chi2:.3g} on {fit.chi2_dof} dof)"
    elif abs(dev) > allow:
        reason = f"intercept off by {dev / fit.se:+.1f} se (allowed {crit:.2f} se + floor)"
    return {"ok": not reason, "allow": allow, "crit": crit, "z": dev / fit.se, "p_fit": p_fit,
            "reason": reason}


def validation_table(settings=None, ds=None, n_seeds: int = 4, seed: int = 0, *,
                     progress=None, metrics=(), on_start=None):
    """Theory vs simulation as a tidy :class:`pandas.DataFrame`.

    One row per (setting, quantity, d): ``psi_n, psi_p, m, t, lam, tau, activation, quantity, d,
    n, p, theory, converged, residual, sim, sim_se, n_seeds, rel_dev``
    (``(sim - theory)/|theory|``).  ``progress(text)``, when given, is called after each
    simulation, and ``on_start(setting, d)`` before it (a progress bar names the running
    simulation: one can take minutes).  ``metrics``: registered metrics checked besides the
    three errors (e.g. ``rfdsm.diagnostics.DIAGNOSTICS``), for the settings where the theory
    gives their limit.
    """
    import pandas as pd

    from ..simulate import simulate
    from ..theory import theory

    settings = default_settings() if settings is None else list(settings)
    ds = sorted(int(d) for d in (SETS["default"][1] if ds is None else ds))
    if len(set(ds)) < 3 or ds[0] < 1:
        raise ValueError(f"ds: the extrapolation needs at least 3 distinct sizes >= 1, got {ds!r}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 2:
        raise ValueError(f"n_seeds must be an integer >= 2 (for standard errors), got {n_seeds!r}")
    rows, curves = [], {}
    for st in settings:
        th = theory(st, metrics=metrics) if metrics else theory(st)
        extra = [q for q in metrics if q in getattr(th, "metrics", {})]
        for d in ds:
            if on_start is not None:
                on_start(st, d)
            t0 = time.perf_counter()
            sim = (simulate(st, d, seed=seed, n_seeds=n_seeds, metrics=extra) if extra else
                   _tau_curve_point(st, settings, d, seed, n_seeds, curves) if st.tau != INF
                   else simulate(st, d, seed=seed, n_seeds=n_seeds))
            for q in (*QUANTITIES, *extra):
                if q in QUANTITIES:
                    tv, sv, se = getattr(th, q), getattr(sim, q), getattr(sim, q + "_se")
                else:
                    tv, sv, se = th.metrics[q], sim.metrics[q], sim.metrics[q + "_se"]
                rows.append({
                    "psi_n": st.psi_n, "psi_p": st.psi_p, "m": st.m, "t": st.t, "lam": st.lam,
                    "tau": st.tau, "activation": st.activation, "psi_d": st.psi_d, "data": st.data,
                    "quantity": q, "d": d, "n": sim.n, "p": sim.p,
                    "theory": tv, "converged": bool(th.converged and sim.converged),
                    "residual": th.residual, "sim": sv, "sim_se": se, "n_seeds": n_seeds,
                    "rel_dev": (sv - tv) / abs(tv) if tv != 0 else math.inf,
                })
            if progress is not None:
                progress(f"{_label(st)} d={d}: {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows)


def _tau_curve_point(st, settings, d, seed, n_seeds, curves):
    """``simulate(st, d, ...)`` at a finite ``tau``, from one fit per seed for all the
    settings that differ from ``st`` only in a finite ``tau``
    (:func:`rfdsm.simulate.simulate_tau_curve`: the same draws, equal to round-off)."""
    from ..simulate import simulate_tau_curve

    if (st, d) not in curves:
        group = [s for s in settings if s.tau != INF and s.replace(tau=st.tau) == st]
        res = simulate_tau_curve(st, [s.tau for s in group], d, seed=seed, n_seeds=n_seeds)
        curves.update({(s, d): r for s, r in zip(group, res)})
    return curves.pop((st, d))


def _m_text(m) -> str:
    return "inf" if m == math.inf else str(int(m))


def _label(st: Setting) -> str:
    return (f"m={_m_text(st.m)} psi_n={st.psi_n:g} psi_p={st.psi_p:g} t={st.t:g} "
            f"lam={st.lam:g} {st.activation}"
            + (f" psi_d={st.psi_d:g}" if st.psi_d != 1 else "")
            + (f" tau={st.tau:g}" if st.tau != INF else "")
            + (f" {st.data}" if st.data != "isotropic" else ""))


KEYS = ["m", "psi_n", "psi_p", "t", "lam", "tau", "activation", "psi_d", "data", "quantity"]


def summarize(df, alpha: float = ALPHA, order: int = 1):
    """One row per setting and quantity with the fit and its verdict, and the overall verdict.

    Columns: the setting, ``quantity``, ``theory``, ``intercept``, ``se`` (of the intercept),
    ``dof``, ``chi2``, ``slope`` (``c1``: the ``1/d`` coefficient), ``z``, ``crit``,
    ``allow``, ``ok``, ``reason``; the number of checks ``N`` of the Bonferroni level is the
    number of rows.
    """
    import pandas as pd

    keys = [k for k in KEYS if k in df.columns]  # (psi_d, data: absent from older tables)
    groups = list(df.groupby(keys, sort=False))
    out = []
    for key, g in groups:
        g = g.sort_values("d")
        row = dict(zip(keys, key))
        row["theory"] = float(g["theory"].iloc[0])
        try:
            fit = extrapolate(g["d"], g["sim"], g["sim_se"], n_seeds=g["n_seeds"].to_numpy(),
                              order=order)
        except ValueError as exc:
            row.update(intercept=math.nan, se=math.nan, dof=math.nan, chi2=math.nan,
                       slope=math.nan, z=math.nan, crit=math.nan, allow=math.nan, ok=False,
                       reason=str(exc))
        else:
            verdict = check(fit, row["theory"], len(groups), alpha, bool(g["converged"].all()))
            row.update(intercept=fit.intercept, se=fit.se, dof=fit.dof, chi2=fit.chi2,
                       slope=fit.coef[1], **{k: verdict[k] for k in
                                             ("z", "crit", "allow", "ok", "reason")})
        out.append(row)
    wide = pd.DataFrame(out)
    return wide, bool(len(wide) and wide["ok"].all())
