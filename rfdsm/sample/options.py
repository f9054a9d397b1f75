"""The sampler's options, checked once at the boundary (API, command line, sweep section).

Each check raises a ValueError naming the option and its allowed range.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..core.checks import check_int
from ..core.params import check_number
from .sampler import METHODS, SCHEDULES

__all__ = ["KINDS", "DEFAULTS", "check_options"]

#: The scores a run can sample with.
KINDS = ("rf", "true", "empirical")

#: Defaults of :func:`rfdsm.sample` (and of ``rfdsm sample``, and a sweep's ``[sample]``).
DEFAULTS = {"n_samples": 1000, "score": "rf", "method": "sde", "t_min": 0.01, "T": 5.0,
            "steps": 200, "times": 40, "schedule": "log", "threshold": 1.0 / 3.0,
            "n_bootstrap": 1000, "theory": True}


def _int(name, value, low):
    return check_int(value, name, low)


def _choice(name, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _times(value, t_min, T):
    """An integer ``K`` (``K`` times log-spaced from ``t_min`` to ``T``; ``K = 1``: ``T``
    alone) or an increasing sequence of times in ``[t_min, T]``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        K = _int("times", value, 1)
        return tuple(float(v) for v in (np.geomspace(t_min, T, K) if K > 1 else [T]))
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"times must be an integer >= 1 or an increasing sequence of times "
                         f"in [t_min, T], got {value!r}")
    out = [check_number("times[]", v, "a finite number > 0",
                        lambda x: math.isfinite(x) and x > 0) for v in value]
    if not out:
        raise ValueError("times is an empty sequence; give at least one time")
    if any(b <= a for a, b in zip(out, out[1:])):
        raise ValueError(f"times must be strictly increasing, got {out}")
    if out[0] < t_min * (1 - 1e-12) or out[-1] > T * (1 + 1e-12):
        raise ValueError(f"times must lie in [t_min, T] = [{t_min:g}, {T:g}], got "
                         f"{out[0]:g} ... {out[-1]:g}")
    return tuple(out)


def check_options(**opts) -> dict:
    """The options of a sampling run with their defaults filled in, checked."""
    unknown = set(opts) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown sampling option(s) {sorted(unknown)} (allowed: "
                         f"{', '.join(DEFAULTS)})")
    o = {**DEFAULTS, **opts}
    positive = "a finite number > 0"
    t_min = check_number("t_min", o["t_min"], positive, lambda x: math.isfinite(x) and x > 0)
    T = check_number("T", o["T"], positive, lambda x: math.isfinite(x) and x > 0)
    if not t_min < T:
        raise ValueError(f"t_min must be smaller than T, got t_min = {t_min:g} >= T = {T:g}")
    thr = check_number("threshold", o["threshold"], "a number in (0, 1]",
                       lambda x: 0 < x <= 1)
    if not isinstance(o["theory"], (bool, np.bool_)):
        raise ValueError(f"theory must be True or False, got {o['theory']!r}")
    return {"n_samples": _int("n_samples", o["n_samples"], 2),
            "score": _choice("score", o["score"], KINDS),
            "method": _choice("method", o["method"], METHODS),
            "t_min": t_min, "T": T, "steps": _int("steps", o["steps"], 1),
            "times": _times(o["times"], t_min, T),
            "schedule": _choice("schedule", o["schedule"], SCHEDULES),
            "threshold": thr, "n_bootstrap": _int("n_bootstrap", o["n_bootstrap"], 1),
            "theory": bool(o["theory"])}
