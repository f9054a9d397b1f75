"""One sampling run: scores on the grid, the reverse process, the measures (docs/sampling.md)."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from ..core import diffusion
from . import measures, sampler, scores
from .record import SampleResult

__all__ = ["run", "build_scores", "theory_errors", "WEAK_ORDER", "DISC_RTOL"]

#: Weak order of the exponential integrator with the score frozen over a step (the error of
#: an expectation falls as the step): behind the Richardson factor of step doubling.
WEAK_ORDER = 1
#: A discretisation error below this fraction of the measure's value counts as small.
DISC_RTOL = 0.1
#: Fresh points per step of the KL bound's Monte Carlo term
#: (:func:`rfdsm.sample.measures.kl_bound_mc`).
KL_MC = 256


def _stream(seed, name):
    from . import _stream as stream

    return stream(seed, name)


def build_scores(setting, d: int, seed: int, kind: str, grid, cov, block_bytes=None,
                 chunk=None, mean=None):
    """``(scores, training points)`` of one seed: the grid score of ``kind`` and the ``x_nu``
    (the same draw as :func:`rfdsm.simulate` for every kind)."""
    if kind == "rf":
        sc = scores.fit_rf_scores(setting, d, seed, grid, block_bytes=block_bytes, chunk=chunk)
        return sc, sc.training
    from ..simulate import fit as _fit

    n, p = setting.sizes(d)
    X = _fit.draw(n, p, d, seed, setting.data_model).X
    if kind == "true":
        return scores.TrueScores(grid, cov, mean), X
    return scores.EmpiricalScores(grid, X), X


def theory_errors(setting, grid):
    """``(score errors, converged, note)`` of :func:`rfdsm.theory` at each grid time, or
    ``(None, None, reason)`` where the theory has no equations for the setting."""
    from ..theory import solver_for, theory_curve

    try:
        solver_for(setting)
    except ValueError as exc:
        return None, None, str(exc)
    results = theory_curve([setting.replace(t=float(t)) for t in grid])
    bad = [float(r.setting.t) for r in results if not r.converged]
    note = f"not converged at t = {bad}" if bad else "ok"
    return [r.score for r in results], not bad, note


def _empirical_errors(sc, setting, d, seed, cov, mean):
    """Monte Carlo score errors of the empirical score at each grid time."""
    from . import SCORE_MC

    rng = _stream(seed, "score_mc")
    true = scores.TrueScores(sc.times, cov, mean)
    return [measures.score_error_mc(sc, k, float(t), setting.data_model, d, SCORE_MC, true,
                                    rng) for k, t in enumerate(sc.times)]


def _target(cov, t):
    """Covariance of the noised data law at ``t`` (None: the identity, ``a^2 + h = 1``)."""
    if cov is None:
        return None
    a2, h = diffusion.a2_h(t)
    return a2 * cov + h * np.eye(cov.shape[0])


def _mean_at(mean, t):
    """Mean of the noised data law at ``t`` (None: centred)."""
    return None if mean is None else math.exp(-t) * mean


def _measures(x, X, sc, setting, d, seed, opts, cov, mean, taus, idx) -> dict:
    """Memorisation, Frechet distance and the score-error integral of the points ``x``."""
    from . import FLOOR_REPS

    ratios = measures.nn_ratios(x, X)
    target = _target(cov, opts["t_min"])
    centre = _mean_at(mean, opts["t_min"])
    floor, floor_sd = measures.frechet_floor(x.shape[0], d, target, _stream(seed, "floor"),
                                             FLOOR_REPS, centre)
    prior = measures.prior_kl(float(taus[0]), d, cov, mean)
    errors = (sc.errors if opts["score"] != "empirical"
              else _empirical_errors(sc, setting, d, seed, cov, mean))
    return {"ratios": ratios, "f_mem": measures.memorised_fraction(ratios, opts["threshold"]),
            "f_mem_ci": measures.bootstrap_interval(ratios, opts["threshold"],
                                                    opts["n_bootstrap"],
                                                    _stream(seed, "bootstrap")),
            "frechet": measures.frechet(x, target, centre), "frechet_floor": floor,
            "frechet_floor_sd": floor_sd, "prior_kl": prior,
            "kl_score_integral": measures.kl_score_integral(errors, taus, idx, prior),
            "score_errors": None if errors is None else tuple(float(e) for e in errors)}


def _discretisation(xf, X, meas, opts, cov, mean) -> dict:
    """Step doubling: the measures of the points ``xf`` run through the half steps on the
    same Brownian path, and the Richardson estimate of the error of the full steps'
    measures, ``2^r/(2^r - 1) |Q_full - Q_half|`` for the sampler's weak order ``r = 1``."""
    target = _target(cov, opts["t_min"])
    F_half = measures.frechet(xf, target, _mean_at(mean, opts["t_min"]))
    f_half = measures.memorised_fraction(measures.nn_ratios(xf, X), opts["threshold"])
    factor = 2.0 ** WEAK_ORDER / (2.0 ** WEAK_ORDER - 1.0)
    return {"frechet": factor * abs(meas["frechet"] - F_half),
            "f_mem": factor * abs(meas["f_mem"] - f_half),
            "frechet_half_steps": F_half, "f_mem_half_steps": f_half}


def _judge(meas, err, steps) -> str:
    """Empty when the discretisation error is small, else the one-line reason.

    Small: the Frechet distance's error within ``DISC_RTOL`` of its value or within the
    spread ``frechet_floor_sd`` of exact samples (what ``N`` points resolve), and the error of
    ``f_mem`` within ``DISC_RTOL`` of it or within half its bootstrap interval or ``1/N``."""
    F, eF = meas["frechet"], err["frechet"]
    f, ef = meas["f_mem"], err["f_mem"]
    lo, hi = meas["f_mem_ci"]
    N = meas["ratios"].size
    bad = []
    if not math.isfinite(F) or not eF <= max(DISC_RTOL * F, meas["frechet_floor_sd"]):
        bad.append(f"Frechet distance {F:.4g} +- {eF:.2g}")
    if not ef <= max(DISC_RTOL * f, 0.5 * (hi - lo), 1.0 / N):
        bad.append(f"f_mem {f:.4g} +- {ef:.2g}")
    if not bad:
        return ""
    return ("discretisation error not small (step doubling): " + ", ".join(bad)
            + f"; use more than {steps} steps")


def _kl_bound(sc, setting, d, seed, opts, taus, idx, prior) -> dict:
    """The KL bound of the reverse SDE on Gaussian data (None otherwise: the ODE's kernel is
    deterministic, and a non-Gaussian law gives no closed-form reverse kernel)."""
    from ..data.base import GaussianLaw

    try:
        law = setting.data_model.law()
    except (AttributeError, NotImplementedError):
        law = None
    if opts["method"] != "sde" or not isinstance(law, GaussianLaw):
        return {"kl_bound": None, "kl_bound_se": None}
    B, se = measures.kl_bound_mc(sc, taus, idx, law, d, KL_MC, _stream(seed, "kl_mc"), prior)
    return {"kl_bound": B, "kl_bound_se": se}


def _theory(setting, opts, grid, taus, idx, prior) -> dict:
    """The theory's score errors on the grid and their integral (RF runs that ask for it)."""
    if opts["score"] != "rf" or not opts["theory"]:
        return {"kl_score_integral_theory": None, "score_errors_theory": None,
                "theory_converged": None}, "not asked"
    err, conv, note = theory_errors(setting, grid)
    return {"kl_score_integral_theory": (None if err is None else
                                         measures.kl_score_integral(err, taus, idx, prior)),
            "score_errors_theory": None if err is None else tuple(float(e) for e in err),
            "theory_converged": conv}, note


def run(setting, d: int, seed: int, opts: dict, block_bytes=None, chunk=None) -> SampleResult:
    """The run of :func:`rfdsm.sample` once its arguments are checked."""
    from ..data.base import GaussianLaw

    t0 = time.perf_counter()
    n, p = setting.sizes(d)
    grid = np.array(opts["times"])
    mean, cov = scores.target_law(setting.data_model, d)
    try:
        described = isinstance(setting.data_model.law(), GaussianLaw)
    except (AttributeError, NotImplementedError):
        described = False
    if cov is None and not described and setting.data_model.name != "isotropic":
        warnings.warn(f"data model {setting.data_model.name!r} offers no covariance(d): the "
                      "true score and the Frechet target take Sigma = I", RuntimeWarning,
                      stacklevel=3)
    sc, X = build_scores(setting, d, seed, opts["score"], grid, cov, block_bytes, chunk, mean)
    t1 = time.perf_counter()
    T0 = sampler.start_time(opts["T"], _scale(cov, mean))
    taus = sampler.step_times(opts["t_min"], T0, opts["steps"], opts["schedule"])
    idx = sampler.grid_indices(taus[:-1], grid)
    taus_f = sampler.halved(taus, opts["schedule"])
    idx_f = sampler.grid_indices(taus_f[:-1], grid)
    rng = _stream(seed, "sampler")
    x = rng.standard_normal((opts["n_samples"], d))
    xf = x.copy()
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the per-step products (n_samples x d x p) are small, and a second
    # thread measured slower at every size tried (p = 320 ... 6400; docs/sampling.md, Sec. 5)
    with threadpool_limits(1, user_api="blas"):
        sampler.reverse(sc, x, taus, idx, opts["method"], rng,
                        fine=(xf, taus_f, idx_f, _stream(seed, "refine")))
    t2 = time.perf_counter()
    meas = _measures(x, X, sc, setting, d, seed, opts, cov, mean, taus, idx)
    disc = _discretisation(xf, X, meas, opts, cov, mean)
    with threadpool_limits(1, user_api="blas"):
        meas.update(_kl_bound(sc, setting, d, seed, opts, taus, idx, meas["prior_kl"]))
    t3 = time.perf_counter()
    th, note = _theory(setting, opts, grid, taus, idx, meas["prior_kl"])
    t4 = time.perf_counter()
    diag = {**sc.info, "time_scores": t1 - t0, "time_sampling": t2 - t1,
            "time_measures": t3 - t2, "time_theory": t4 - t3, "theory": note,
            "grid_used": sorted({int(k) for k in idx}), "T_start": float(T0)}
    if opts["score"] == "rf":
        diag["test_errors"] = [float(v) for v in sc.tests]
    return SampleResult(
        setting=setting, d=d, n=n, p=p, seed=seed, score=opts["score"], method=opts["method"],
        schedule=opts["schedule"], n_samples=opts["n_samples"], t_min=opts["t_min"],
        T=opts["T"], steps=opts["steps"], times=tuple(opts["times"]),
        threshold=opts["threshold"], samples=x, training=X, **meas, **th,
        discretisation_error=disc,
        discretisation_message=_judge(meas, disc, opts["steps"]),
        wall_time=time.perf_counter() - t0, diagnostics=diag)


def _scale(cov, mean) -> float:
    """The largest of ``|Sigma|`` and ``max_i mu_i^2``: how long the forward process takes to
    forget ``x_0`` (:func:`rfdsm.sample.sampler.start_time`)."""
    out = 1.0
    if cov is not None:
        out = max(out, float(np.max(np.abs(np.linalg.eigvalsh(cov)))))
    if mean is not None:
        out = max(out, float(np.max(mean * mean)))
    return out
