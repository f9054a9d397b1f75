"""The record of one sampling run: the generated points, the measures, the parameters."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..core.setting import Setting

__all__ = ["SampleResult", "ROW_COLUMNS"]

#: The columns a sampling run adds to a row of the result table (``rfdsm.sweep``).
ROW_COLUMNS = ("n_samples", "f_mem", "f_mem_lo", "f_mem_hi", "frechet", "frechet_floor",
               "frechet_floor_sd", "kl_bound", "kl_bound_theory")


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Generated points and the numbers that say whether they generalise (``docs/sampling.md``).

    ``samples`` (``n_samples x d``): the points at ``t_min``; ``training`` (``n x d``): the
    training points ``x_nu`` of the seed; ``ratios``: the nearest-neighbour ratio of each
    generated point; ``f_mem`` the fraction below ``threshold`` and ``f_mem_ci`` its bootstrap
    interval; ``frechet`` the per-dimension squared 2-Wasserstein distance between the
    Gaussian fit of ``samples`` and the target ``N(0, a^2 Sigma + h I)`` at ``t_min``, with
    ``frechet_floor`` (+- ``frechet_floor_sd``) its value for exact samples of the same size;
    ``kl_bound`` the Girsanov bound per dimension from the score errors this run's scores have
    (exact for the RF fits, 0 plus the prior term for the true score, Monte Carlo for the
    empirical score), ``kl_bound_theory`` the same from ``rfdsm.theory``'s score error at
    each grid time (RF only; None where the theory has no equations).  ``score_errors`` and
    ``score_errors_theory``: the per-time errors ``1/d E|s - s*|^2`` on the grid ``times``.
    """

    setting: Setting
    d: int
    n: int
    p: int
    seed: int
    score: str
    method: str
    schedule: str
    n_samples: int
    t_min: float
    T: float
    steps: int
    times: tuple
    threshold: float
    samples: np.ndarray = field(repr=False)
    training: np.ndarray = field(repr=False)
    ratios: np.ndarray = field(repr=False)
    f_mem: float = math.nan
    f_mem_ci: tuple = (math.nan, math.nan)
    frechet: float = math.nan
    frechet_floor: float = math.nan
    frechet_floor_sd: float = math.nan
    kl_bound: float | None = None
    kl_bound_theory: float | None = None
    prior_kl: float = 0.0
    score_errors: tuple | None = None
    score_errors_theory: tuple | None = None
    theory_converged: bool | None = None
    wall_time: float = 0.0
    diagnostics: dict = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        """False only when the theory's score error was computed and did not converge at some
        grid time (the simulated numbers are exact and have no convergence to judge)."""
        return self.theory_converged is not False

    def parameters(self) -> dict[str, Any]:
        """The run's parameters: the setting (its ``t`` is not used by the sampler), ``d``,
        ``n``, ``p`` and the sampler's options."""
        return {**self.setting.to_dict(), "d": self.d, "n": self.n, "p": self.p,
                "seed": self.seed, "score": self.score, "method": self.method,
                "schedule": self.schedule, "n_samples": self.n_samples, "t_min": self.t_min,
                "T": self.T, "steps": self.steps, "times": len(self.times),
                "threshold": self.threshold}

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """Strict JSON (NaN -> null, inf -> "inf"); the point arrays only with ``arrays``."""
        from ..core.result import _json_number

        out = {"f_mem": self.f_mem, "f_mem_ci": list(self.f_mem_ci), "frechet": self.frechet,
               "frechet_floor": self.frechet_floor, "frechet_floor_sd": self.frechet_floor_sd,
               "kl_bound": self.kl_bound, "kl_bound_theory": self.kl_bound_theory,
               "prior_kl": self.prior_kl, "converged": self.converged,
               "parameters": self.parameters(), "grid_times": list(self.times),
               "score_errors": _list(self.score_errors),
               "score_errors_theory": _list(self.score_errors_theory),
               "wall_time": self.wall_time, "diagnostics": dict(self.diagnostics),
               "version": __version__}
        if arrays:
            out.update(samples=self.samples.tolist(), training=self.training.tolist(),
                       ratios=self.ratios.tolist())
        return _json_number(out)

    def row(self) -> dict[str, Any]:
        """The sampling columns of this run's row in the result table (:data:`ROW_COLUMNS`)."""
        lo, hi = self.f_mem_ci
        return {"n_samples": self.n_samples, "f_mem": self.f_mem, "f_mem_lo": lo,
                "f_mem_hi": hi, "frechet": self.frechet, "frechet_floor": self.frechet_floor,
                "frechet_floor_sd": self.frechet_floor_sd,
                "kl_bound": math.nan if self.kl_bound is None else self.kl_bound,
                "kl_bound_theory": (math.nan if self.kl_bound_theory is None
                                    else self.kl_bound_theory)}


def _list(x):
    return None if x is None else [float(v) for v in x]
