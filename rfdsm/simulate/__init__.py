"""Finite-size simulation of random-features denoising score matching (``docs/model.md``).

:func:`simulate` draws ``W``, the ``n`` data points and their noise samples, fits the ridge
estimator in closed form and returns the exact train error together with the exact
population test and score errors of the fitted score.
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import numpy as np

from ..activations import QuadratureError
from ..result import ERRORS, Result
from ..setting import Setting
from . import fit

__all__ = ["simulate", "simulate_seed"]

BACKENDS = ("cpu", "gpu")

#: A Mehler truncation bound (an absolute bound on entries of Grams of O(1) size) above this
#: marks the result as not converged: only reachable at very small d, where correlations
#: between features are large and the series order hits its cap.
SERIES_BOUND_OK = 1e-8

#: Below this many features the BLAS products of one fit are too small for a second BLAS
#: thread to pay for its synchronisation (measured: at d = 100, p = 400 one thread is 1.5-3x
#: faster on 2 cores; at d = 300, p = 1200 two threads win), so they run on one thread.
SMALL_P = 512
_controller = None


def _blas_threads_for(p: int):
    global _controller
    if p >= SMALL_P:
        return contextlib.nullcontext()
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")

def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


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


def simulate_seed(setting: Setting, d: int, seed: int, *, block_bytes: int | None = None,
                  chunk: int | None = None, mc_test: int = 0, backend: str = "cpu",
                  dtype=np.float64) -> dict:
    """One realisation at dimension ``d`` for one seed: ``{"seed", "train", "test", "score", ...}``."""
    if backend == "gpu":
        from . import gpu

        return gpu.simulate_seed(setting, d, seed, block_bytes=block_bytes, chunk=chunk,
                                 mc_test=mc_test, dtype=dtype)
    p = setting.sizes(d)[1]
    with _blas_threads_for(p):
        return fit.evaluate_seed(setting, d, seed, block_bytes or fit.DEFAULT_BLOCK_BYTES, chunk,
                                 mc_test, dtype)


def simulate(setting: Setting, d: int, seed: int = 0, n_seeds: int = 1, *,
             block_bytes: int | None = None, chunk: int | None = None,
             mc_test: int = 0, backend: str = "cpu", dtype=np.float64) -> Result:
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
        samples (reported in ``diagnostics``; the returned errors are the exact ones).
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
    """
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    n, p = setting.sizes(d)
    d = int(d)
    seed = _check_int("seed", seed, 0)
    n_seeds = _check_int("n_seeds", n_seeds, 1)
    mc_test = _check_int("mc_test", mc_test, 0)
    if block_bytes is not None:
        block_bytes = _check_int("block_bytes", block_bytes, 1)
    backend = _check_backend(backend)
    dtype = _check_dtype(dtype)
    if chunk is not None:
        chunk = _check_int("chunk", chunk, 1)
    _check_memory(setting, d, n, p, block_bytes)
    t0 = time.perf_counter()
    try:
        rows = [simulate_seed(setting, d, seed + k, block_bytes=block_bytes, chunk=chunk,
                              mc_test=mc_test, backend=backend, dtype=dtype)
                for k in range(n_seeds)]
    except QuadratureError as exc:
        # the only such failure is the Gauss-Hermite quadrature: a non-smooth user activation
        # without declared kinks, or features whose norm |w_i|^2/d is far from 1 (tiny d)
        raise ValueError(f"{exc}; or, at d = {d}, the feature norms |w_i|^2/d vary too "
                         "much: try a larger d") from None
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
    bound = max(max(r["diagnostics"].get("series_bound", 0.0),
                    r["diagnostics"].get("population_series_bound", 0.0)) for r in rows)
    return Result(setting=setting, evaluator="simulate", d=d, n=n, p=p, per_seed=per_seed,
                  converged=bound <= SERIES_BOUND_OK, residual=bound,
                  wall_time=time.perf_counter() - t0, diagnostics=diagnostics, **stats)


def _check_memory(setting, d, n, p, block_bytes):
    """Refuse, before any allocation, a size this machine cannot hold (a clear error instead
    of an allocation failure deep inside NumPy)."""
    m = setting.m
    per_point = 8.0 * (2 * p + d) * (1.0 if m == math.inf else float(m))  # one data point's block
    fixed = 8.0 * (float(n) * d + 2.0 * p * d + float(n) * p + 5.0 * float(p) * p)
    need = fixed + max(per_point, float(block_bytes or fit.DEFAULT_BLOCK_BYTES))
    try:
        have = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.9 * have:
        raise ValueError(
            f"d = {d}, psi_n = {setting.psi_n:g}, psi_p = {setting.psi_p:g}, m = {m} need about "
            f"{need / 2**30:.3g} GiB (n = {n}, p = {p}), more than this machine's "
            f"{have / 2**30:.3g} GiB: choose a smaller d or ratios")
