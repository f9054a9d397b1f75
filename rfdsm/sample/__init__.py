"""Generation with the learned RF score, and whether the generated points generalise.

``rfdsm.sample(setting, d=..., n_samples=..., seed=..., score="rf" | "true" | "empirical")``
fits one RF score per time of a grid (the same ``W`` and training set at every time), runs
the reverse-time sampler of ``docs/sampling.md`` from ``N(0, I)`` at ``T`` down to ``t_min``
and returns a :class:`~rfdsm.sample.record.SampleResult`: the generated points, the
memorised fraction ``f_mem`` with its bootstrap interval, the nearest-neighbour ratios, the
Frechet distance to the target law with the step-doubling estimate of its discretisation
error, an upper bound on the KL of the generated law, and the score-error integral of that KL
(simulated and, for the RF score, from :func:`rfdsm.theory`).

Light at import (NumPy only): the fits, the sampler and the theory load when a run starts.
``rfdsm.sample`` is this module, and calling it calls :func:`sample`.
"""

from __future__ import annotations

import math
import os
import sys
import types

import numpy as np

from ..core.setting import Setting
from .options import DEFAULTS, KINDS, check_options

__all__ = ["sample", "KINDS", "DEFAULTS", "SampleResult", "check_size", "estimate",
           "MAX_SECONDS"]

#: Spawn keys of the seed's streams beyond those of the fit's draw (``W``, data, noise, Monte
#: Carlo: keys 0-3, ``rfdsm.simulate.fit.draw``): sampler, bootstrap, Frechet floor, score MC,
#: the half steps of step doubling (what the full steps' noise leaves free), the Monte Carlo
#: KL bound.
_STREAMS = {"sampler": 4, "bootstrap": 5, "floor": 6, "score_mc": 7, "refine": 8,
            "kl_mc": 9}
#: Fresh points per grid time of the empirical score's Monte Carlo score error.
SCORE_MC = 512
#: Exact draws behind the Frechet floor.
FLOOR_REPS = 20


def __getattr__(name):
    if name == "SampleResult":
        from .record import SampleResult
        return SampleResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[name],)))


def sample(setting: Setting, d: int, n_samples: int = DEFAULTS["n_samples"], seed: int = 0,
           score: str = DEFAULTS["score"], *, method: str = DEFAULTS["method"],
           t_min: float = DEFAULTS["t_min"], T: float = DEFAULTS["T"],
           steps: int = DEFAULTS["steps"], times=DEFAULTS["times"],
           schedule: str = DEFAULTS["schedule"], threshold: float = DEFAULTS["threshold"],
           n_bootstrap: int = DEFAULTS["n_bootstrap"], theory: bool = DEFAULTS["theory"],
           block_bytes: int | None = None, chunk: int | None = None):
    """Generate ``n_samples`` points for ``setting`` at dimension ``d`` and measure them.

    Parameters
    ----------
    setting : the model (``psi_n, psi_p, m, lam, tau``, activation, estimator, data model);
        its ``t`` is not used: the scores are fitted at the grid ``times``.
    d : dimension; ``n = round(psi_n d) >= 2`` training points (``f_mem`` needs two).
    n_samples : generated points (>= 2: the Frechet distance needs a covariance).
    seed : ``W``, the training set and the noise samples (as :func:`rfdsm.simulate`), and the
        sampler's own streams; the same seed gives the same samples.
    score : ``"rf"`` (the fitted RF scores), ``"true"`` (``-(a^2 Sigma + h I)^{-1} y``) or
        ``"empirical"`` (the exact score of the noised training set).
    method : ``"sde"`` (reverse SDE) or ``"ode"`` (probability flow), exponential integrator.
    t_min, T : end and start of the reverse process, ``0 < t_min < T``; beyond the time where
        ``p_T`` is ``N(0, I)`` to double precision (18.4 for unit scales) the sampler starts
        there (``diagnostics["T_start"]``).
    steps : integrator steps, on the ``schedule`` ``"log"`` (geometric) or ``"linear"``.
    times : the score grid: an integer ``K`` (log-spaced from ``t_min`` to ``T``) or an
        increasing sequence in ``[t_min, T]``; a step uses the grid time nearest its start
        in ``log t``.
    threshold : the memorisation criterion ``|x - x^(1)| / |x - x^(2)| < threshold``.
    n_bootstrap : resamplings behind the 95 % interval of ``f_mem``.
    theory : also integrate :func:`rfdsm.theory`'s score error over the grid (RF only).
    block_bytes, chunk : as for :func:`rfdsm.simulate` (memory of the streamed fits).

    Sizes are checked first (:func:`check_size`).  The result's ``status`` is
    ``not_converged`` when the step-doubling estimate of the discretisation error is not small
    (or the theory did not converge), its ``message`` saying which.
    """
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    n, p = setting.sizes(d)
    if n < 2:
        raise ValueError(f"d = {d} with psi_n = {setting.psi_n:g} gives n = {n} training "
                         "point(s); the memorised fraction needs n >= 2: use a larger d")
    from ..simulate import _check_int

    seed = _check_int("seed", seed, 0)
    opts = check_options(n_samples=n_samples, score=score, method=method, t_min=t_min, T=T,
                         steps=steps, times=times, schedule=schedule, threshold=threshold,
                         n_bootstrap=n_bootstrap, theory=theory)
    if block_bytes is not None:
        block_bytes = _check_int("block_bytes", block_bytes, 1)
    if chunk is not None:
        chunk = _check_int("chunk", chunk, 1)
    check_size(setting, int(d), opts)
    from .run import run

    return run(setting, int(d), seed, opts, block_bytes, chunk)


#: Refuse a run whose estimated time exceeds this many seconds (an estimate from below, at
#: :data:`RATE`; raise it for a run known to be worth the wait).
MAX_SECONDS = 3600.0
#: Multiply-adds per second behind the time estimate: above what the sampler's small
#: products reach on one core, so that the estimate errs on the short side.
RATE = 1e10
#: Seconds per score evaluation (one step of one pass) beyond its products, and per grid
#: time for the theory's score error: below the measured ~30 us and ~0.2 s.
STEP_OVERHEAD, THEORY_PER_TIME = 2e-5, 0.05


def estimate(setting, d, opts) -> dict:
    """Memory (bytes) and time (seconds, from below) of a run, before anything is allocated.

    Memory: the points of the full and the half steps and a score's output and temporaries
    (``5 N d``), the training set, the step and grid-index arrays (``(2 K + 6) S`` for ``S``
    steps and ``K`` grid times, the nearest-time search included), the bootstrap's draws and
    percentile copy (``3 B``), the Frechet covariances (``4 d^2``); RF scores: a ``d x p``
    readout per grid time, the fit's ``p x p`` moments and a block of features; the true score:
    a ``d x d`` matrix per grid time.  Time: ``3 S`` score evaluations (the full steps and the
    half steps of step doubling), the ``K`` fits (a ``p x p`` Cholesky and the training Gram),
    the theory (``THEORY_PER_TIME`` per grid time), the nearest-neighbour search (twice)."""
    n, p = setting.sizes(d)
    N, K, S, B = opts["n_samples"], len(opts["times"]), opts["steps"], opts["n_bootstrap"]
    kind = opts["score"]
    nbytes = 8.0 * (5.0 * N * d + float(n) * d + (2.0 * K + 6.0) * S + 3.0 * B
                    + 4.0 * float(d) * d + min(N, 2048) * float(n))
    flops = 4.0 * N * float(n) * d + 20.0 * (float(d) ** 3 + N * float(d) * d)
    if kind == "rf":
        nbytes += 8.0 * (K * float(p) * d + 6.0 * float(p) * p + min(N, 4096) * float(p))
        per_eval = N * (2.0 * d * p + 10.0 * p)
        m_eff = 20.0 if setting.m == math.inf else float(setting.m)
        flops += K * (float(p) ** 3 / 3.0 + m_eff * n * float(p) * (p + d)) + float(p) * p * d
    elif kind == "empirical":
        nbytes += 8.0 * 3.0 * min(N, 4096) * float(n)
        per_eval = N * 4.0 * float(n) * d
        flops += K * SCORE_MC * 4.0 * float(n) * d
    else:
        nbytes += 8.0 * K * float(d) * d
        per_eval = N * 2.0 * float(d) * d
    # the full and the half steps, and the KL bound's Monte Carlo (256 rows per step)
    flops += (3.0 + 256.0 / N) * S * per_eval
    seconds = flops / RATE + 4.0 * S * STEP_OVERHEAD + 5e-8 * B
    if kind == "rf" and opts["theory"]:
        seconds += K * THEORY_PER_TIME
    return {"bytes": nbytes, "seconds": seconds}


def _largest(setting, d, opts, key) -> str:
    """The option most to blame for a large estimate: the one whose default (where it is
    larger than the default) shrinks the estimate ``key`` most."""
    best, least = "n_samples", math.inf
    for name, default in (("steps", DEFAULTS["steps"]), ("n_samples", DEFAULTS["n_samples"]),
                          ("n_bootstrap", DEFAULTS["n_bootstrap"]),
                          ("times", DEFAULTS["times"])):
        value = len(opts["times"]) if name == "times" else opts[name]
        if value <= default:
            continue
        trial = dict(opts)
        trial[name] = (tuple(np.geomspace(opts["t_min"], opts["T"], default))
                       if name == "times" else default)
        got = estimate(setting, d, trial)[key]
        if got < least:
            best, least = name, got
    return best


_FLAGS = {"steps": "--steps", "times": "--times", "n_samples": "--n-samples",
          "n_bootstrap": "--bootstrap"}


def available_bytes() -> float:
    """This machine's physical memory (inf where the system does not say)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def check_size(setting: Setting, d: int, opts: dict) -> None:
    """Refuse, before any work, a run this machine cannot hold (more than 90 % of its memory)
    or that would take longer than :data:`MAX_SECONDS` (:func:`estimate`): a one-line
    ValueError naming the option to reduce."""
    est = estimate(setting, d, opts)
    have = available_bytes()
    for key, over in (("bytes", est["bytes"] > 0.9 * have),
                      ("seconds", est["seconds"] > MAX_SECONDS)):
        if not over:
            continue
        name = _largest(setting, d, opts, key)
        value = len(opts["times"]) if name == "times" else opts[name]
        what = (f"{name} = {value} (flag {_FLAGS[name]}) with d = {d}, p = "
                f"{setting.sizes(d)[1]}, {opts['steps']} steps, {len(opts['times'])} grid "
                f"times, n_samples = {opts['n_samples']}, n_bootstrap = {opts['n_bootstrap']}")
        if key == "bytes":
            raise ValueError(f"{what} needs about {est['bytes'] / 2**30:.3g} GiB, more than "
                             f"this machine's {have / 2**30:.3g} GiB: choose a smaller {name}")
        raise ValueError(f"{what} would take at least {est['seconds'] / 3600:.3g} h (limit "
                         f"rfdsm.sample.MAX_SECONDS = {MAX_SECONDS:g} s): choose a smaller "
                         f"{name}")


class _CallableModule(types.ModuleType):
    """``rfdsm.sample`` is this subpackage and the function: importing a submodule binds the
    attribute to the module, so the module forwards calls."""

    def __call__(self, *args, **kwargs):
        return sample(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
