"""Finite-size simulation of random-features denoising score matching (``MODEL.md``).

:func:`simulate` draws ``W``, the ``n`` data points and their noise samples, fits the ridge
estimator in closed form and returns the exact train error together with the exact
population test and score errors of the fitted score.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..result import ERRORS, Result
from ..setting import Setting
from . import fit, mehler

__all__ = ["simulate", "simulate_seed"]


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def simulate_seed(setting: Setting, d: int, seed: int, *, block_bytes: int = fit.DEFAULT_BLOCK_BYTES,
                  chunk: int | None = None, mc_test: int = 0) -> dict:
    """One realisation at dimension ``d`` for one seed: ``{"seed", "train", "test", "score", ...}``."""
    n, p = setting.sizes(d)
    act = setting.sigma
    a, h = setting.a, setting.h
    t0 = time.perf_counter()
    dr = fit.draw(n, p, d, seed)
    corr = mehler.correlations(dr.W)
    if setting.m == math.inf:
        mom = fit.noise_averaged_moments(act, dr, a, h, block_bytes, corr=corr)
    else:
        mom = fit.finite_m_moments(act, dr, int(setting.m), a, h, block_bytes, chunk=chunk)
    t1 = time.perf_counter()
    K = fit.ridge_solve(mom.S, mom.C, setting.lam)
    t2 = time.perf_counter()
    pop = fit.population_moments(act, dr.W, h, corr=corr)
    q_pop = fit.quadratic(K, pop)
    t3 = time.perf_counter()
    row = {
        "seed": int(seed),
        "train": mom.noise_sq + fit.quadratic(K, mom) / d,
        "test": 1.0 + q_pop / d,
        "score": 1.0 + q_pop / (d * h),
    }
    diag = {**mom.info, **pop.info, "time_moments": t1 - t0, "time_solve": t2 - t1,
            "time_population": t3 - t2}
    if mc_test:
        diag.update(fit.mc_errors(act, dr, K, a, h, mc_test))
    diag["time_total"] = time.perf_counter() - t0
    row["wall_time"] = diag["time_total"]
    row["diagnostics"] = diag
    return row


def simulate(setting: Setting, d: int, seed: int = 0, n_seeds: int = 1, *,
             block_bytes: int = fit.DEFAULT_BLOCK_BYTES, chunk: int | None = None,
             mc_test: int = 0) -> Result:
    """Simulate ``setting`` at dimension ``d`` (``n = round(psi_n d)``, ``p = round(psi_p d)``).

    Parameters
    ----------
    seed, n_seeds : seeds ``seed, seed+1, ..., seed+n_seeds-1``, one independent draw of
        ``W``, data and noise each; the result holds their mean and standard error.
    block_bytes : memory for the streamed blocks (finite ``m``: noisy features; ``m = inf``:
        Hermite moments); the ``p x nm`` feature matrix is never held whole beyond it.
    chunk : data points per block for finite ``m`` (overrides ``block_bytes``; for tests).
    mc_test : if > 0, also estimate test and score errors by Monte Carlo on that many fresh
        samples (reported in ``diagnostics``; the returned errors are the exact ones).
    """
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    n, p = setting.sizes(d)
    d = int(d)
    seed = _check_int("seed", seed, 0)
    n_seeds = _check_int("n_seeds", n_seeds, 1)
    mc_test = _check_int("mc_test", mc_test, 0)
    block_bytes = _check_int("block_bytes", block_bytes, 1)
    if chunk is not None:
        chunk = _check_int("chunk", chunk, 1)
    t0 = time.perf_counter()
    rows = [simulate_seed(setting, d, seed + k, block_bytes=block_bytes, chunk=chunk, mc_test=mc_test)
            for k in range(n_seeds)]
    stats = {}
    for key in ERRORS:
        v = np.array([r[key] for r in rows])
        if not np.all(np.isfinite(v)):
            raise FloatingPointError(f"simulation produced a non-finite {key} error: {v}")
        stats[key] = float(v.mean())
        stats[f"{key}_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
    diagnostics = dict(rows[0]["diagnostics"])
    if n_seeds > 1:
        diagnostics["per_seed_diagnostics"] = [r["diagnostics"] for r in rows]
    per_seed = tuple({k: r[k] for k in ("seed", "train", "test", "score", "wall_time")} for r in rows)
    return Result(setting=setting, evaluator="simulate", d=d, n=n, p=p, per_seed=per_seed,
                  converged=True, wall_time=time.perf_counter() - t0, diagnostics=diagnostics,
                  **stats)
