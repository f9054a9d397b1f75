"""The reverse-time process of the forward OU ``dx = -x dt + sqrt(2) dW`` (``docs/sampling.md``).

In the reverse clock ``u = T - t`` the generating SDE and the probability-flow ODE are

    dx = (x + 2 s(x, t)) du + sqrt(2) dB,        dx/du = x + s(x, t),

started from ``N(0, I)`` at ``t = T`` and run down to ``t = t_min``.  A step from ``t`` to
``t' = t - D`` freezes the score at its value at the start and integrates the linear part
exactly (the exponential integrator):

    SDE:  x' = e^D x + 2 (e^D - 1) s + sqrt(e^{2D} - 1) xi,      xi ~ N(0, I)
    ODE:  x' = e^D x + (e^D - 1) s.

The score of a step is that of the grid time nearest (in ``log t``) to the step's start
time; when the grid is the step times themselves every step uses its own time.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["METHODS", "SCHEDULES", "step_times", "grid_indices", "reverse"]

METHODS = ("sde", "ode")
SCHEDULES = ("log", "linear")


def step_times(t_min: float, T: float, steps: int, schedule: str = "log") -> np.ndarray:
    """``steps + 1`` times from ``T`` down to ``t_min``: geometric (``"log"``, equal steps in
    ``log t``, fine where the score changes fastest, near ``t = 0``) or equal steps
    (``"linear"``).  The end points are exact."""
    if schedule == "log":
        taus = np.geomspace(T, t_min, steps + 1)
    else:
        taus = np.linspace(T, t_min, steps + 1)
    taus[0], taus[-1] = T, t_min
    return taus


def grid_indices(starts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For each start time, the index of the grid time nearest to it in ``log t``."""
    lg = np.log(grid)
    ls = np.log(np.asarray(starts, dtype=float))
    return np.abs(ls[:, None] - lg[None, :]).argmin(axis=1)


def reverse(score, x: np.ndarray, taus: np.ndarray, idx: np.ndarray, method: str,
            rng: np.random.Generator) -> np.ndarray:
    """Run the sampler from the points ``x`` at ``taus[0]`` to ``taus[-1]`` (in place).

    ``score(k, x)``: the score of grid index ``k`` on the rows of ``x``; ``idx[j]``: the grid
    index of step ``j`` (from ``taus[j]`` to ``taus[j+1]``); the SDE draws one standard normal
    block per step from ``rng``, in step order."""
    for j in range(len(taus) - 1):
        D = float(taus[j] - taus[j + 1])
        e = math.expm1(D)  # e^D - 1 without cancellation for small steps
        s = score(int(idx[j]), x)
        if method == "sde":
            x += e * x
            x += (2.0 * e) * s
            x += math.sqrt(math.expm1(2.0 * D)) * rng.standard_normal(x.shape)
        else:
            x += e * x
            x += e * s
    return x
