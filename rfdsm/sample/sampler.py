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

Step doubling: :func:`reverse` can carry a second set of points through the same steps cut in
half (:func:`halved`), driven by the same Brownian path: the noise of a step,
``N = sqrt(e^{2D} - 1) xi``, is split into the noises ``N_1``, ``N_2`` of its halves
(``D = D_1 + D_2``, ``N = e^{D_2} N_1 + N_2``) by drawing ``N_1`` from its law given ``N``.
The points of the full steps are exactly those of a run without the halves.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["METHODS", "SCHEDULES", "step_times", "halved", "grid_indices", "reverse",
           "start_time", "EQUILIBRIUM_EPS"]

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


def halved(taus: np.ndarray, schedule: str = "log") -> np.ndarray:
    """The step times ``taus`` with the midpoint of every step inserted (geometric for
    ``"log"``, arithmetic for ``"linear"``): ``out[2j] = taus[j]`` exactly."""
    taus = np.asarray(taus, dtype=float)
    mid = (np.sqrt(taus[:-1] * taus[1:]) if schedule == "log"
           else 0.5 * (taus[:-1] + taus[1:]))
    out = np.empty(2 * taus.size - 1)
    out[0::2], out[1::2] = taus, mid
    return out


#: ``p_T = N(a_T mu, a_T^2 Sigma + h_T I)`` equals ``N(0, I)`` to double precision once
#: ``a_T^2 max(1, |Sigma|, max_i mu_i^2)`` is below this (half the double-precision epsilon).
EQUILIBRIUM_EPS = 2.0 ** -53


def start_time(T: float, scale: float = 1.0) -> float:
    """Where the sampler starts: ``T``, or the time beyond which the forward process has
    forgotten ``x_0`` to double precision, ``(1/2) log(scale / EQUILIBRIUM_EPS)`` (``scale``:
    the largest of 1, the largest eigenvalue of ``Sigma`` and ``max_i mu_i^2``), whichever is
    smaller.  Starting later from ``N(0, I)`` changes nothing but makes the first steps long
    enough for ``e^D`` to overflow."""
    t_eq = 0.5 * math.log(max(1.0, float(scale)) / EQUILIBRIUM_EPS)
    return float(min(T, t_eq))


def grid_indices(starts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For each start time, the index of the grid time nearest to it in ``log t``."""
    lg = np.log(grid)
    ls = np.log(np.asarray(starts, dtype=float))
    return np.abs(ls[:, None] - lg[None, :]).argmin(axis=1)


def reverse(score, x: np.ndarray, taus: np.ndarray, idx: np.ndarray, method: str,
            rng: np.random.Generator, fine=None) -> np.ndarray:
    """Run the sampler from the points ``x`` at ``taus[0]`` to ``taus[-1]`` (in place).

    ``score(k, x)``: the score of grid index ``k`` on the rows of ``x``; ``idx[j]``: the grid
    index of step ``j`` (from ``taus[j]`` to ``taus[j+1]``); the SDE draws one standard normal
    block per step from ``rng``, in step order.

    ``fine``: ``(xf, taus_f, idx_f, rng_f)`` to also run the points ``xf`` (in place) through
    the half steps ``taus_f = halved(taus)`` with their grid indices ``idx_f``, on the same
    Brownian path (``rng_f`` draws what the full steps' noise leaves free).  ``x`` is the
    same with or without ``fine``."""
    if fine is not None:
        xf, taus_f, idx_f, rng_f = fine
    for j in range(len(taus) - 1):
        D = float(taus[j] - taus[j + 1])
        e = math.expm1(D)  # e^D - 1 without cancellation for small steps
        s = score(int(idx[j]), x)
        noise = None
        if method == "sde":
            noise = math.sqrt(math.expm1(2.0 * D)) * rng.standard_normal(x.shape)
            x += e * x
            x += (2.0 * e) * s
            x += noise
        else:
            x += e * x
            x += e * s
        if fine is not None:
            _half_steps(score, xf, taus_f[2 * j:2 * j + 3], idx_f[2 * j:2 * j + 2], method,
                        noise, rng_f)
    return x


def _half_steps(score, xf, t3, k2, method, noise, rng):
    """Two half steps ``t3[0] -> t3[1] -> t3[2]`` whose noises add up (through the linear
    flow) to ``noise``, the full step's: with ``v_1 = e^{2 D_2} (e^{2 D_1} - 1)``,
    ``v_2 = e^{2 D_2} - 1``, ``A = e^{D_2} N_1`` given ``N = A + N_2`` is
    ``N(v_1/(v_1+v_2) N, v_1 v_2/(v_1+v_2))``."""
    D1, D2 = float(t3[0] - t3[1]), float(t3[1] - t3[2])
    if method == "sde":
        v1 = math.exp(2.0 * D2) * math.expm1(2.0 * D1)
        v2 = math.expm1(2.0 * D2)
        v = v1 + v2
        A = (v1 / v) * noise + math.sqrt(v1 * v2 / v) * rng.standard_normal(xf.shape)
        halves = (math.exp(-D2) * A, noise - A)
    for D, k, i in ((D1, k2[0], 0), (D2, k2[1], 1)):
        e = math.expm1(D)
        s = score(int(k), xf)
        xf += e * xf
        if method == "sde":
            xf += (2.0 * e) * s
            xf += halves[i]
        else:
            xf += e * s
