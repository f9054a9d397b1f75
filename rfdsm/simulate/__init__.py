"""Finite-size simulation of random-features denoising score matching (``docs/model.md``).

:func:`simulate` draws ``W``, the ``n`` data points and their noise samples, fits the
setting's estimator (:func:`fit_score`, a :class:`~rfdsm.simulate.fit.FittedScore`) and applies
the registered metrics to it (:mod:`rfdsm.metrics`): the exact train error, the exact
population test and score errors, and any metric added with :func:`rfdsm.metrics.register_metric`.
"""

from __future__ import annotations

import sys
import types

import math
import os
import time

import numpy as np

from ..activations import QuadratureError
from ..core.checks import check_int
from ..core.result import ERRORS, Result
from ..core.setting import Setting
from .threads import SMALL_P, THREADS  # noqa: F401  (SMALL_P: the old name, kept)

# .fit (and with it Numba and scipy.linalg) is imported where a fit runs, not here:
# `import rfdsm` binds rfdsm.simulate and must not load Numba (tests/test_imports.py).

__all__ = ["simulate", "simulate_seed", "fit_score", "simulate_tau_curve"]

BACKENDS = ("cpu", "gpu")

#: A Mehler truncation bound (an absolute bound on entries of Grams of O(1) size) above this
#: marks the result as not converged: only reachable at very small d, where correlations
#: between features are large and the series order hits its cap.
SERIES_BOUND_OK = 1e-8

#: Most Monte Carlo test samples per seed.  The Monte Carlo estimate only checks the exact
#: population errors that :func:`simulate` returns anyway; at this size its relative standard
#: error is ~1e-4, it keeps 16 bytes per sample (1.6 GB) and costs ~2 p d flops per sample
#: (minutes at d = 100, p = 400).  Beyond it a run would only burn time and memory.
MC_TEST_MAX = 10**8

#: Most seeds of one call.  Each seed is a full fit; the standard error of the mean falls as
#: ``1/sqrt(n_seeds)``, so beyond this it is already ~0.3% of the spread between seeds, and
#: a call that asks for more would only run for days.
SEEDS_MAX = 10**5


def _blas_threads_for(p: int):
    """BLAS threads of a whole CPU fit with ``p`` features (docs/simulator.md, "Threads");
    inside it the ridge solve runs on one thread whatever ``p``."""
    return THREADS.blas("fit", p)


def _check_int(name, value, low):
    return check_int(value, name, low)


def _check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "gpu":
        from . import gpu

        gpu.require()
    return backend


def _check_dtype(dtype):
    # Only the two supported precisions, spelled as a type, a dtype or its name: np.dtype()
    # itself accepts much more (None, "d", "double precision", ...).
    for dt in (np.float64, np.float32):
        if dtype is dt or (isinstance(dtype, np.dtype) and dtype == dt) or dtype == np.dtype(dt).name:
            return np.dtype(dt)
    raise ValueError(f"dtype must be numpy.float64 or numpy.float32 (or 'float64'/'float32'), got {dtype!r}")


def fit_score(setting: Setting, d: int, seed: int = 0, *, block_bytes: int | None = None,
              chunk: int | None = None, dtype=np.float64):
    """The :class:`~rfdsm.simulate.fit.FittedScore` of one seed at dimension ``d`` (CPU):
    ``fitted(y)`` is ``s_A(y)`` on the rows of ``y``; metrics apply to it."""
    from . import fit

    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    with _blas_threads_for(setting.sizes(d)[1]):
        return fit.fit(setting, int(d), _check_int("seed", seed, 0),
                       block_bytes or fit.DEFAULT_BLOCK_BYTES, chunk, _check_dtype(dtype))


def simulate_seed(setting: Setting, d: int, seed: int, *, block_bytes: int | None = None,
                  chunk: int | None = None, mc_test: int = 0, backend: str = "cpu",
                  dtype=np.float64, metrics=None) -> dict:
    """One realisation at dimension ``d`` for one seed: ``{"seed", "train", "test", "score",
    <metrics>, ...}``."""
    if backend == "gpu":
        from . import gpu

        return gpu.simulate_seed(setting, d, seed, block_bytes=block_bytes, chunk=chunk,
                                 mc_test=mc_test, dtype=dtype, metrics=metrics)
    from . import fit

    p = setting.sizes(d)[1]
    with _blas_threads_for(p):
        return fit.evaluate_seed(setting, d, seed, block_bytes or fit.DEFAULT_BLOCK_BYTES, chunk,
                                 mc_test, dtype, metrics=metrics)


def simulate(setting: Setting, d: int, seed: int = 0, n_seeds: int = 1, *,
             block_bytes: int | None = None, chunk: int | None = None,
             mc_test: int = 0, backend: str = "cpu", dtype=np.float64,
             skip_failed: bool = False, metrics=None, progress: bool = False) -> Result:
    """Simulate ``setting`` at dimension ``d`` (``n = round(psi_n d)``, ``p = round(psi_p d)``).

    Parameters
    ----------
    seed, n_seeds : seeds ``seed, seed+1, ..., seed+n_seeds-1``, one independent draw of
        ``W``, data and noise each; the result holds their mean and standard error.
    block_bytes : memory for the streamed blocks (finite ``m``: noisy features; ``m = inf``:
        Hermite moments); the ``p x nm`` feature matrix is never held whole beyond it.
        Default: ``fit.DEFAULT_BLOCK_BYTES`` on the CPU, ``gpu.DEFAULT_BLOCK_BYTES`` on a GPU.
    chunk : data points per block for finite ``m`` (overrides ``block_bytes``; for tests).
    mc_test : if > 0, also estimate test and score errors by Monte Carlo on that many fresh
        samples (reported in ``diagnostics``; the returned errors are the exact ones); at most
        :data:`MC_TEST_MAX` per seed.
    backend : ``"cpu"`` (NumPy/BLAS and Numba) or ``"gpu"`` (CuPy; the same algorithm and the
        same random draws, so float64 results agree with the CPU to rounding).
    dtype : ``np.float64`` (default) or ``np.float32``: precision of the streamed dense
        products (features, Gram blocks, Mehler series).  Sums over blocks, the ridge solve
        and the population moments stay in float64.  float32 roughly halves the time of the
        dense products; the errors then move by about ``1e-7`` relative with a ridge
        (``lam > 0``), more in the ridgeless limit near the interpolation threshold, where
        the solve amplifies rounding, and more for an activation with a large mean
        ``mu0 = E sigma(g)`` (rounding of the mean feature; ``tanh + 3``: ~3e-6), which is
        better centred first.
    skip_failed : a seed whose Gauss-Hermite quadrature fails (at tiny ``d``, where the
        feature norms ``|w_i|^2/d`` spread widely) raises a ValueError naming the failed
        seeds, by default.  With ``skip_failed=True`` the result keeps the other seeds and
        lists the failed ones in ``diagnostics["skipped_seeds"]`` (with the reason in
        ``diagnostics["skipped_reason"]``); the mean is then over the kept seeds only, a
        selection of draws with less spread-out ``W``.  If every seed fails it still raises.
    metrics : the metrics besides ``train, test, score`` (names or
        :class:`rfdsm.metrics.Metric` objects); default: every registered metric with a
        ``simulate`` function.  Their seed means and standard errors are in
        ``Result.metrics`` (``name``, ``name_se``), the per-seed values in ``per_seed``.
    progress : show a tqdm progress bar of the seeds on stderr (when ``n_seeds > 1``).
    """
    n, p, d, seed, n_seeds, opts = _checked_args(setting, d, seed, n_seeds, skip_failed,
                                                 block_bytes=block_bytes, chunk=chunk,
                                                 mc_test=mc_test, backend=backend, dtype=dtype)
    from ..metrics import simulation_metrics

    names = [m.name for m in simulation_metrics(metrics)]
    t0 = time.perf_counter()
    rows, failed = _run_seeds(setting, d, range(seed, seed + n_seeds), opts, metrics,
                              progress and n_seeds > 1)
    skipped = _skipped(setting, d, n_seeds, rows, failed, skip_failed) if failed else {}
    return _build_result(setting, d, n, p, rows, names, skipped, t0)


def simulate_tau_curve(setting: Setting, taus, d: int, seed: int = 0, n_seeds: int = 1, *,
                       block_bytes: int | None = None, chunk: int | None = None,
                       dtype=np.float64, skip_failed: bool = False, metrics=None) -> list[Result]:
    """:func:`simulate` of ``setting.replace(tau=tau)`` for every ``tau`` of ``taus`` (CPU),
    one :class:`Result` per ``tau`` in the given order.

    Each seed forms its moments and one ``eigh`` of the training Gram once; every ``tau`` is
    then a filter in that eigenbasis (``rfdsm/simulate/flow.py``, ``docs/simulator.md``).
    Same draws as :func:`simulate`, so the numbers agree with it to round-off (~1e-12
    relative; at ``tau = inf`` it is the eigenbasis instead of the Cholesky solve).
    """
    from ..core.params import parse_tau

    if isinstance(taus, (str, bytes)) or not hasattr(taus, "__iter__"):
        raise ValueError(f"taus must be a sequence of training times, got {taus!r}")
    taus = [parse_tau(t) for t in taus]
    if not taus:
        raise ValueError("taus is empty; give at least one training time")
    n, p, d, seed, n_seeds, opts = _checked_args(setting, d, seed, n_seeds, skip_failed,
                                                 block_bytes=block_bytes, chunk=chunk,
                                                 mc_test=0, backend="cpu", dtype=dtype)
    from ..metrics import simulation_metrics
    from . import fit, flow

    names = [m.name for m in simulation_metrics(metrics)]
    t0 = time.perf_counter()
    per_seed, failed = [], []
    for s in range(seed, seed + n_seeds):
        try:
            per_seed.append(flow.curve_seed(setting, d, s, taus,
                                            opts["block_bytes"] or fit.DEFAULT_BLOCK_BYTES,
                                            chunk, opts["dtype"], metrics))
        except QuadratureError as exc:
            failed.append((s, exc))
    skipped = _skipped(setting, d, n_seeds, per_seed, failed, skip_failed) if failed else {}
    return [_build_result(setting.replace(tau=tau), d, n, p, [rows[j] for rows in per_seed],
                          names, skipped, t0) for j, tau in enumerate(taus)]


def _checked_args(setting, d, seed, n_seeds, skip_failed, *, block_bytes, chunk, mc_test,
                  backend, dtype):
    """The arguments of :func:`simulate`, checked and normalised: ``(n, p, d, seed, n_seeds,
    opts)`` with ``opts`` the keywords of :func:`simulate_seed`.  Nothing is allocated before
    every check (the memory estimate included) has passed."""
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    n, p = setting.sizes(d)
    d = int(d)
    seed = _check_int("seed", seed, 0)
    n_seeds = _check_int("n_seeds", n_seeds, 1)
    if n_seeds > SEEDS_MAX:
        raise ValueError(f"n_seeds must be an integer between 1 and {SEEDS_MAX} (one full fit "
                         f"each), got {n_seeds}")
    mc_test = _check_int("mc_test", mc_test, 0)
    if mc_test > MC_TEST_MAX:
        raise ValueError(f"mc_test must be an integer between 0 and {MC_TEST_MAX} (Monte Carlo "
                         f"samples per seed), got {mc_test}")
    if not isinstance(skip_failed, (bool, np.bool_)):
        raise ValueError(f"skip_failed must be True or False, got {skip_failed!r}")
    if block_bytes is not None:
        block_bytes = _check_int("block_bytes", block_bytes, 1)
    backend = _check_backend(backend)
    dtype = _check_dtype(dtype)
    if chunk is not None:
        chunk = _check_int("chunk", chunk, 1)
    _check_memory(setting, d, n, p, block_bytes, mc_test)
    opts = {"block_bytes": block_bytes, "chunk": chunk, "mc_test": mc_test, "backend": backend,
            "dtype": dtype}
    return n, p, d, seed, n_seeds, opts


def _run_seeds(setting, d, seeds, opts, metrics, progress=False):
    """Rows of the seeds that ran and ``(seed, QuadratureError)`` of those that failed: one
    failed seed must not discard the others (see ``skip_failed``)."""
    rows, failed = [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(seeds), unit="seed", desc=f"rfdsm simulate d={d}",
                   file=sys.stderr, dynamic_ncols=True, smoothing=0.1)
    try:
        for s in seeds:
            try:
                rows.append(simulate_seed(setting, d, s, **opts, metrics=metrics))
            except QuadratureError as exc:
                failed.append((s, exc))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows, failed


def _skipped(setting, d, n_seeds, rows, failed, skip_failed) -> dict:
    """The ``diagnostics`` entries naming the ``failed`` seeds, or the ValueError that
    :func:`simulate` raises for them (every seed failed, or ``skip_failed`` is off)."""
    reason = _quadrature_reason(setting, d, failed[0][1])
    seeds = ", ".join(str(s) for s, _ in failed)
    what = (f"the quadrature failed for seed(s) {seeds} ({len(failed)} of {n_seeds}) "
            f"at d = {d}: {reason}")
    if not rows:
        raise ValueError(what)
    if not skip_failed:
        raise ValueError(f"{what}; skip_failed=True (CLI: --skip-failed) keeps the "
                         f"{len(rows)} other seed(s)")
    return {"skipped_seeds": [s for s, _ in failed], "skipped_reason": reason}


def _build_result(setting, d, n, p, rows, names, skipped, t0) -> Result:
    """The :class:`Result` of the kept seeds' ``rows``; ``t0``: when the seeds started."""
    stats = _seed_stats(rows, names)
    # only train/test/score (and their se) are Result fields; other metrics go to .metrics
    extra = {k: stats.pop(k) for k in list(stats) if k.removesuffix("_se") not in ERRORS}
    diagnostics = {**rows[0]["diagnostics"], **skipped}
    if len(rows) > 1:
        diagnostics["per_seed_diagnostics"] = [r["diagnostics"] for r in rows]
    per_seed = tuple({k: r[k] for k in ("seed", *names, "wall_time")} for r in rows)
    bound = max(max(r["diagnostics"].get("series_bound", 0.0),
                    r["diagnostics"].get("population_series_bound", 0.0)) for r in rows)
    return Result(setting=setting, evaluator="simulate", d=d, n=n, p=p, per_seed=per_seed,
                  converged=bound <= SERIES_BOUND_OK, residual=bound,
                  wall_time=time.perf_counter() - t0, diagnostics=diagnostics, metrics=extra,
                  **stats)


def _seed_stats(rows, names) -> dict:
    """Mean and standard error over seeds (``None`` for one seed) of every metric."""
    stats = {}
    for key in names:
        v = np.array([r[key] for r in rows])
        if not np.all(np.isfinite(v)):
            what = f"{key} error" if key in ERRORS else f"value of the metric {key!r}"
            raise FloatingPointError(f"simulation produced a non-finite {what}: {v}")
        stats[key] = float(v.mean())
        stats[f"{key}_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
    return stats


def _quadrature_reason(setting, d, exc) -> str:
    """Why the quadrature of one seed failed, with the advice that fits the activation."""
    # The Gaussian expectations adapt to any scale and shift of the preactivations
    # (rfdsm.activations.gaussian_expectations), so a small d is never the cause: the message
    # names the activation's own (an undeclared jump or kink) or an extreme scale.
    return str(exc)


def _check_memory(setting, d, n, p, block_bytes, mc_test=0):
    """Refuse, before any allocation, a size this machine cannot hold (a clear error instead
    of an allocation failure deep inside NumPy)."""
    from . import fit

    m = setting.m
    per_point = 8.0 * (2 * p + d) * (1.0 if m == math.inf else float(m))  # one data point's block
    fixed = 8.0 * (float(n) * d + 2.0 * p * d + float(n) * p + 5.0 * float(p) * p)
    need = fixed + max(per_point, float(block_bytes or fit.DEFAULT_BLOCK_BYTES))
    if mc_test:
        # fit.mc_errors keeps two floats per sample and a block of 4096 samples' x, eps, y,
        # features and predictions
        need += 16.0 * mc_test + 8.0 * 4096 * (4.0 * d + p)
    try:
        have = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.9 * have:
        raise ValueError(
            f"d = {d}, psi_n = {setting.psi_n:g}, psi_p = {setting.psi_p:g}, m = {m} need about "
            f"{need / 2**30:.3g} GiB (n = {n}, p = {p}), more than this machine's "
            f"{have / 2**30:.3g} GiB: choose a smaller d or ratios"
            + (f" (or a smaller mc_test = {mc_test})" if mc_test else ""))


class _CallableModule(types.ModuleType):
    """``rfdsm.simulate`` is this subpackage and the evaluator at once: calling the module calls
    :func:`simulate`, and its other names (``simulate_tau_curve``, ``fit_score``, ``fit``,
    ``population``, ...) stay reachable from it."""

    def __call__(self, *args, **kwargs):
        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
