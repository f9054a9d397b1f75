"""Pieces shared by the asymptotic solvers: the solution record and the GE constants.

Every solver (``m = 1``, finite ``m > 1``, ``m = inf``) returns a :class:`Solution`;
:func:`rfdsm.theory.theory` turns it into an :class:`rfdsm.Result`.  :func:`ge_constants`
gives the Gaussian-equivalence coefficients of ``docs/theory.md`` (eqs. (T1)-(T3)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import numpy as np

from .constants import kappa_constants
from .spectral import mp_rule

__all__ = ["Solution", "GEConstants", "ge_constants"]


@dataclass
class Solution:
    """Limiting errors of one setting, plus what the solve needs to be trusted and continued.

    ``state`` is the solver's own warm start (e.g. the fixed-point values) to pass as ``warm=``
    to the next point of a curve; ``diagnostics`` is a flat dict of JSON-friendly values.
    """

    train: float
    test: float
    score: float
    converged: bool
    residual: float
    iterations: int
    state: Any = None
    diagnostics: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GEConstants:
    """Gaussian-equivalence coefficients for activation ``sigma`` at time ``t``.

    ``mu0, mu1, mu_star`` as in docs/model.md; ``kappa_s2`` the nonlinear variance shared by two noisy
    copies of the same data point, ``kappa_i2 = mu_star^2 - kappa_s2`` the part independent
    across copies (docs/theory.md, eq. (T2)).  ``error_s``, ``error_i`` bound their errors
    (docs/theory.md, Sec. 6); ``method`` says how they were computed.
    """

    mu0: float
    mu1: float
    mu_star2: float
    kappa_s2: float
    kappa_i2: float
    error_s: float = 0.0
    error_i: float = 0.0
    method: str = ""

    @property
    def error(self) -> float:
        return max(self.error_s, self.error_i)

    def probe(self) -> "GEConstants":
        """The constants displaced by their error bounds, ``kappa_s2`` and ``kappa_i2`` in
        opposite directions (the quadratures give ``kappa_i2 = mu_star2 - kappa_s2``, so their
        errors are opposite), the smaller one upwards so that both stay >= 0."""
        sign = -1.0 if self.kappa_s2 > self.kappa_i2 else 1.0
        return replace(self, kappa_s2=max(self.kappa_s2 + sign * self.error_s, 0.0),
                       kappa_i2=max(self.kappa_i2 - sign * self.error_i, 0.0))


@lru_cache(maxsize=256)
def _ge_constants(act, t: float) -> GEConstants:
    # keyed on the Activation object (hashed by its contents), not its name: a name registered
    # again with overwrite=True is another activation
    mu0, mu1, _ = act.coefficients
    kappa_s2, kappa_i2, mu_star2, err_s, err_i, method = kappa_constants(act, t)
    return GEConstants(mu0, mu1, mu_star2, kappa_s2, kappa_i2, err_s, err_i, method)


def ge_constants(setting) -> GEConstants:
    """:class:`GEConstants` of ``setting`` (cached by activation and ``t``)."""
    return _ge_constants(setting.sigma, float(setting.t))


#: Where the edge-correction node of the Marchenko-Pastur rule is evaluated: ``s = 0+``.  The node
#: stands for the right limit ``f(0+)`` of the continuous part (rfdsm/theory/spectral.py); a
#: positive ``s`` makes every ratio of GE covariances take that limit even where they all vanish
#: at ``s = 0`` (``mu_star = 0``), instead of the ``0/0 := 0`` of the atom.  The integrands are
#: ratios of products of at most three covariances, so ``S_EDGE^3`` must not underflow, and
#: the shift changes ``<f>`` by ``|edge weight| S_EDGE |f'(0)| <~ 1e-33 |f'(0)|``.
S_EDGE = 1e-30


@dataclass(frozen=True)
class GESpectrum:
    """The GE covariances of docs/theory.md, eq. (T4), as functions of the eigenvalue ``s`` of
    ``S = W W^T/d``, on the nodes of the Marchenko-Pastur rule of ratio ``psi_p``.

    ``<f> = sum(w * f)`` approximates ``int f dMP_{psi_p}``.  Nodes: the atom ``s = 0`` (when
    ``psi_p > 1``, first), the edge-correction node (at ``s = S_EDGE``, i.e. ``0+``), then the
    midpoint nodes (:func:`rfdsm.theory.spectral.mp_rule` with ``edge=S_EDGE``).  Arrays:
    ``Sigma = mu1^2 s + mu_star^2`` (population feature covariance), ``C = mu1^2 a^2 s +
    kappa_s^2`` (noise-averaged feature), ``Sc = mu1^2 h s + kappa_i^2`` (conditional, ``C + Sc
    = Sigma``), ``T = mu1^2 h s`` (``V^T V``).
    """

    s: np.ndarray
    w: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    Sc: np.ndarray
    T: np.ndarray


#: Constants whose error bound is below this (relative to the smaller of them) are taken as
#: exact; above it the solvers re-solve with the constants displaced by the bound and report the
#: change (``diagnostics["constants_effect"]``).
CONSTANTS_EXACT = 1e-13


def constants_need_probe(k: GEConstants) -> bool:
    return k.error_s > CONSTANTS_EXACT * k.kappa_s2 or k.error_i > CONSTANTS_EXACT * k.kappa_i2


def ge_spectrum(setting, nodes: int, probe: bool = False) -> GESpectrum:
    """:class:`GESpectrum` of ``setting``; ``probe``: with the constants displaced by their
    error bounds (:meth:`GEConstants.probe`)."""
    k = ge_constants(setting)
    if probe:
        k = k.probe()
    s, w = mp_rule(float(setting.psi_p), int(nodes), edge=S_EDGE)
    m1 = k.mu1 * k.mu1
    a2, h = setting.a ** 2, setting.h
    return GESpectrum(s, w, m1 * s + k.mu_star2, m1 * a2 * s + k.kappa_s2, m1 * h * s + k.kappa_i2,
                      m1 * h * s)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with ``0/0 := 0``.

    Zeros of the denominator only occur at the atom ``s = 0`` of the linear activation
    (``mu_star = 0``), where every numerator that multiplies them vanishes as well: those
    directions carry neither signal nor features and drop out of every trace.
    """
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=(den != 0))
    return out


#: Round-off allowed below the physical bounds ``train >= 0`` and ``test >= a^2``, relative to
#: the scale of the errors (the accuracy the solvers aim at: fixed point and quadrature to 1e-9).
BOUND_TOL = 1e-9

#: Errors below this are compared absolutely, here and in the quadrature refinement of
#: :func:`rfdsm.theory.driver.drive` (train = O(lam^2) just above an interpolation threshold
#: need only be resolved to ``1e-6`` times the tolerance, absolutely).
QUAD_FLOOR = 1e-6


def constants_effect(setting, nodes: int, solve_at, base) -> float:
    """How much train and test move when the constants move by their error bound.

    ``solve_at(spectrum) -> (train, test)`` re-solves on a :class:`GESpectrum` (warm-started
    by the caller); ``base`` is the ``(train, test)`` of the unshifted solve.  Relative change,
    absolute below ``1e-6``; 0 when the constants are exact to :data:`CONSTANTS_EXACT`.
    """
    k = ge_constants(setting)
    if not constants_need_probe(k):
        return 0.0
    moved = np.array(solve_at(ge_spectrum(setting, nodes, probe=True)), dtype=float)
    base = np.asarray(base, dtype=float)
    if not (np.all(np.isfinite(moved)) and np.all(np.isfinite(base))):
        return 0.0 if np.array_equal(moved, base) else math.inf
    return float(np.max(np.abs(moved - base) / np.maximum(np.abs(base), QUAD_FLOOR)))


def physical_bounds(setting, train: float, test: float):
    """``(train, warning)``: a round-off negative ``train`` (within :data:`BOUND_TOL`) clipped to
    0, and a warning (or ``None``) when ``train < 0`` or ``test < a^2`` beyond round-off: the limit
    of a nonnegative loss cannot be negative, and no score beats the true one (docs/model.md)."""
    bayes = setting.bayes
    problems = []
    if train < -BOUND_TOL * max(1.0, abs(test)):
        problems.append(f"train = {train:.6g} < 0")
    elif train < 0.0:
        train = 0.0
    if test < bayes - BOUND_TOL * max(bayes, abs(test)):
        level = "a^2 = exp(-2t)" if setting.data_model.law().is_isotropic else "bayes"
        problems.append(f"test = {test:.6g} < {level} = {bayes:.6g} (the Bayes level, "
                        "i.e. score < 0)")
    if not problems:
        return train, None
    return train, ("unphysical result, not converged: " + "; ".join(problems)
                   + f" beyond the round-off tolerance {BOUND_TOL:g}")


#: Below this ratio of the copy-specific variance ``Sc`` to the feature variance ``Sigma``
#: (``t -> 0``) the finite-m and m = inf equations are not resolved in double precision: ``Sc``
#: is lost beside ``C`` in every ``D``, and results there (e.g. t = 1e-40) are rounding noise.
SC_RESOLVED = 1e-13


def constants_warning(setting, effect: float, tol: float, sp: GESpectrum) -> dict:
    """Diagnostics on the GE constants, with a warning when their error moves the result or
    ``Sc/Sigma`` is below :data:`SC_RESOLVED`.  The caller marks the result not converged when
    the returned dict has a ``"warning"``."""
    k = ge_constants(setting)
    out = {"constants_method": k.method, "constants_error": k.error, "constants_effect": effect}
    live = sp.Sigma > 0
    sc_ratio = float(np.min(sp.Sc[live] / sp.Sigma[live])) if np.any(live) else 1.0
    out["sc_over_sigma"] = sc_ratio
    problems = []
    if not effect <= tol:
        problems.append(f"kappa_s^2, kappa_i^2 ({k.method}) are known only to "
                        f"+-({k.error_s:.2g}, {k.error_i:.2g}), which moves train/test by "
                        f"{effect:.2g} (relative) > {tol:g}")
    if sc_ratio < SC_RESOLVED:
        problems.append(f"t = {setting.t:.3g} is too small for double precision: the noise part "
                        f"of the features is {sc_ratio:.2g} of their variance (< {SC_RESOLVED:g})")
    if problems:
        out["warning"] = "; ".join(problems) + ": not converged"
    return out
