"""Generation with the learned RF score, and whether the generated points generalise.

``rfdsm.sample(setting, d=..., n_samples=..., seed=..., score="rf" | "true" | "empirical")``
fits one RF score per time of a grid (the same ``W`` and training set at every time), runs
the reverse-time sampler of ``docs/sampling.md`` from ``N(0, I)`` at ``T`` down to ``t_min``
and returns a :class:`~rfdsm.sample.record.SampleResult`: the generated points, the
memorised fraction ``f_mem`` with its bootstrap interval, the nearest-neighbour ratios, the
Frechet distance to the target law and the Girsanov KL bound from the score errors (simulated
and, for the RF score, from :func:`rfdsm.theory`).

Light at import (NumPy only): the fits, the sampler and the theory load when a run starts.
``rfdsm.sample`` is this module, and calling it calls :func:`sample`.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np

from ..core.setting import Setting
from .options import DEFAULTS, KINDS, check_options

__all__ = ["sample", "KINDS", "DEFAULTS", "SampleResult"]

#: Spawn keys of the seed's streams beyond those of the fit's draw (``W``, data, noise, Monte
#: Carlo: keys 0-3, ``rfdsm.simulate.fit.draw``): sampler, bootstrap, Frechet floor, score MC,
#: and the half steps of step doubling (what the full steps' noise leaves free).
_STREAMS = {"sampler": 4, "bootstrap": 5, "floor": 6, "score_mc": 7, "refine": 8}
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
    t_min, T : end and start of the reverse process, ``0 < t_min < T``.
    steps : integrator steps, on the ``schedule`` ``"log"`` (geometric) or ``"linear"``.
    times : the score grid: an integer ``K`` (log-spaced from ``t_min`` to ``T``) or an
        increasing sequence in ``[t_min, T]``; a step uses the grid time nearest its start
        in ``log t``.
    threshold : the memorisation criterion ``|x - x^(1)| / |x - x^(2)| < threshold``.
    n_bootstrap : resamplings behind the 95 % interval of ``f_mem``.
    theory : also integrate :func:`rfdsm.theory`'s score error over the grid (RF only).
    block_bytes, chunk : as for :func:`rfdsm.simulate` (memory of the streamed fits).
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
    _check_memory(setting, int(d), n, p, opts)
    from .run import run

    return run(setting, int(d), seed, opts, block_bytes, chunk)


def _check_memory(setting, d, n, p, opts) -> None:
    """Refuse, before allocating, a run this machine cannot hold: per grid time a ``p x d``
    readout (RF), the fit's ``p x p`` moments, and the ``n_samples x p`` feature blocks."""
    N, K = opts["n_samples"], len(opts["times"])
    need = 8.0 * (3.0 * N * d + float(n) * d)
    if opts["score"] == "rf":
        need += 8.0 * (K * float(p) * d + 6.0 * float(p) * p + min(N, 4096) * float(p))
    try:
        have = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.9 * have:
        raise ValueError(f"d = {d}, p = {p}, {K} grid times and n_samples = {N} need about "
                         f"{need / 2**30:.3g} GiB, more than this machine's "
                         f"{have / 2**30:.3g} GiB: choose a smaller d, psi_p, times or "
                         "n_samples")


class _CallableModule(types.ModuleType):
    """``rfdsm.sample`` is this subpackage and the function: importing a submodule binds the
    attribute to the module, so the module forwards calls."""

    def __call__(self, *args, **kwargs):
        return sample(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
