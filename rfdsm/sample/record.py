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
               "frechet_floor_sd", "frechet_disc_error", "f_mem_disc_error",
               "kl_score_integral", "kl_score_integral_theory", "kl_bound", "kl_bound_se",
               "kl_bound_theory")

#: Deprecated names, kept as aliases: the quantity is not a bound (``docs/sampling.md``).
_ALIASES = {"kl_bound_theory": "kl_score_integral_theory"}


@dataclass(frozen=True, eq=False)
class SampleResult:
    """Generated points and the numbers that say whether they generalise (``docs/sampling.md``).

    ``samples`` (``n_samples x d``): the points at ``t_min``; ``training`` (``n x d``): the
    training points ``x_nu`` of the seed; ``ratios``: the nearest-neighbour ratio of each
    generated point; ``f_mem`` the fraction below ``threshold`` and ``f_mem_ci`` its bootstrap
    interval; ``frechet`` the per-dimension squared 2-Wasserstein distance between the
    Gaussian fit of ``samples`` and the target ``N(0, a^2 Sigma + h I)`` at ``t_min``, with
    ``frechet_floor`` (+- ``frechet_floor_sd``) its value for exact samples of the same size;
    ``discretisation_error``: step doubling's estimate of the error of ``frechet`` and
    ``f_mem`` from the finite steps (with the two measures of the half-step run);
    ``kl_score_integral`` the prior term plus the score errors summed over the steps, per
    dimension (exact errors for the RF fits, 0 for the true score, Monte Carlo for the
    empirical score), ``kl_score_integral_theory`` the same from ``rfdsm.theory``'s score
    error at each grid time (RF only; None where the theory has no equations): the
    score-error part of the Girsanov KL, not a bound on the KL of the generated law
    (``kl_bound_theory``: its deprecated name).  ``kl_bound`` (+- ``kl_bound_se``): the
    upper bound on ``KL(p_{t_min} || q_{t_min}) / d`` from the chain rule over the steps,
    discretisation and grid times included, with one Monte Carlo term (None for the ODE and
    off Gaussian laws).  ``score_errors`` and
    ``score_errors_theory``: the per-time errors ``1/d E|s - s*|^2`` on the grid ``times``.
    ``status`` (``rfdsm.core.status``): ``not_converged`` when the discretisation error is
    not small or the theory did not converge, with ``message`` saying which.
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
    kl_score_integral: float | None = None
    kl_score_integral_theory: float | None = None
    kl_bound: float | None = None
    kl_bound_se: float | None = None
    prior_kl: float = 0.0
    score_errors: tuple | None = None
    score_errors_theory: tuple | None = None
    theory_converged: bool | None = None
    discretisation_error: dict | None = None
    discretisation_message: str = ""
    wall_time: float = 0.0
    diagnostics: dict = field(default_factory=dict)

    def __getattr__(self, name):
        if name in _ALIASES:
            import warnings

            warnings.warn(f"SampleResult.{name} is {_ALIASES[name]}: the score-error integral, "
                          "not a bound on the KL of the generated law (that is kl_bound)",
                          DeprecationWarning,
                          stacklevel=2)
            return getattr(self, _ALIASES[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def converged(self) -> bool:
        """False when the step-doubling estimate of the discretisation error is not small, or
        when the theory's score error was computed and did not converge at some grid time."""
        return self.theory_converged is not False and not self.discretisation_message

    @property
    def status(self) -> str:
        """``ok``, or ``not_converged`` (:attr:`message` says why)."""
        from ..core import status as _status

        return _status.OK if self.converged else _status.NOT_CONVERGED

    @property
    def success(self) -> bool:
        return self.converged

    @property
    def message(self) -> str:
        """Empty on success, else one line: the discretisation error, the theory, or both."""
        parts = [self.discretisation_message] if self.discretisation_message else []
        if self.theory_converged is False:
            parts.append("the theory's score error did not converge "
                         f"({self.diagnostics.get('theory', '')})")
        return "; ".join(parts)

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
        from ..core.result import plain

        out = {"f_mem": self.f_mem, "f_mem_ci": list(self.f_mem_ci), "frechet": self.frechet,
               "frechet_floor": self.frechet_floor, "frechet_floor_sd": self.frechet_floor_sd,
               "discretisation_error": self.discretisation_error,
               "kl_score_integral": self.kl_score_integral,
               "kl_score_integral_theory": self.kl_score_integral_theory,
               "kl_bound": self.kl_bound, "kl_bound_se": self.kl_bound_se,
               "kl_bound_theory": self.kl_score_integral_theory,
               "prior_kl": self.prior_kl, "converged": self.converged,
               "status": self.status, "message": self.message,
               "parameters": self.parameters(), "grid_times": list(self.times),
               "score_errors": _list(self.score_errors),
               "score_errors_theory": _list(self.score_errors_theory),
               "wall_time": self.wall_time, "diagnostics": dict(self.diagnostics),
               "version": __version__}
        if arrays:
            out.update(samples=self.samples.tolist(), training=self.training.tolist(),
                       ratios=self.ratios.tolist())
        return plain(out)

    def row(self) -> dict[str, Any]:
        """The sampling columns of this run's row in the result table (:data:`ROW_COLUMNS`)."""
        lo, hi = self.f_mem_ci
        err = self.discretisation_error or {}
        kl = _nan(self.kl_score_integral)
        kl_th = _nan(self.kl_score_integral_theory)
        return {"n_samples": self.n_samples, "f_mem": self.f_mem, "f_mem_lo": lo,
                "f_mem_hi": hi, "frechet": self.frechet, "frechet_floor": self.frechet_floor,
                "frechet_floor_sd": self.frechet_floor_sd,
                "frechet_disc_error": err.get("frechet", math.nan),
                "f_mem_disc_error": err.get("f_mem", math.nan),
                "kl_score_integral": kl, "kl_score_integral_theory": kl_th,
                "kl_bound": _nan(self.kl_bound), "kl_bound_se": _nan(self.kl_bound_se),
                "kl_bound_theory": kl_th}


def _nan(x):
    return math.nan if x is None else x


def _list(x):
    return None if x is None else [float(v) for v in x]
