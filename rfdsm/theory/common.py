"""Pieces shared by the asymptotic solvers: the solution record and the GE constants.

Every solver (``m = 1``, finite ``m > 1``, ``m = inf``) returns a :class:`Solution`;
:func:`rfdsm.theory.theory` turns it into an :class:`rfdsm.Result`.  :func:`ge_constants`
gives the Gaussian-equivalence coefficients of ``docs/theory.md`` (eqs. (T1)-(T3)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

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
    across copies (docs/theory.md, eq. (T2)).
    """

    mu0: float
    mu1: float
    mu_star2: float
    kappa_s2: float
    kappa_i2: float


@lru_cache(maxsize=256)
def _ge_constants(act, t: float) -> GEConstants:
    # keyed on the Activation object (hashed by identity), not its name: a name registered
    # again with overwrite=True is another activation
    mu0, mu1, mu_star = act.coefficients
    a, h = math.exp(-t), -math.expm1(-2.0 * t)
    # E[sigma(g) sigma(g')] for two copies sharing x: = E_u[sbar(a u)^2],
    # sbar(c) = E_z sigma(c + sqrt(h) z); u ~ N(0,1) by Gauss-Hermite (sbar is smooth in u).
    z, w = np.polynomial.hermite_e.hermegauss(160)
    w = w / math.sqrt(2.0 * math.pi)
    beta, _ = act.moments(a * z, np.full_like(z, math.sqrt(h)), 0)
    # centred before squaring: E_u[sbar(a u)] = mu0, and cross - mu0^2 would lose the digits
    # of kappa_s^2 to cancellation when |mu0| is large
    cross_c = float(np.dot(w, (beta[0] - mu0) ** 2))
    kappa_s2 = max(cross_c - a * a * mu1 * mu1, 0.0)
    mu_star2 = mu_star * mu_star
    kappa_s2 = min(kappa_s2, mu_star2)
    return GEConstants(mu0, mu1, mu_star2, kappa_s2, mu_star2 - kappa_s2)


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
    midpoint nodes of :func:`rfdsm.theory.spectral.mp_parts`.  Arrays: ``Sigma = mu1^2 s +
    mu_star^2`` (population feature covariance), ``C = mu1^2 a^2 s + kappa_s^2`` (noise-averaged
    feature), ``Sc = mu1^2 h s + kappa_i^2`` (conditional, ``C + Sc = Sigma``), ``T = mu1^2 h s``
    (``V^T V``).
    """

    s: np.ndarray
    w: np.ndarray
    Sigma: np.ndarray
    C: np.ndarray
    Sc: np.ndarray
    T: np.ndarray


@lru_cache(maxsize=1024)
def _nodes(psi_p: float, nodes: int):
    from .spectral import mp_parts

    p = mp_parts(psi_p, nodes)
    head_s, head_w = [S_EDGE], [p.edge]
    if p.atom > 0.0:
        head_s, head_w = [0.0, S_EDGE], [p.atom, p.edge]
    s, w = np.concatenate((head_s, p.s)), np.concatenate((head_w, p.w))
    s.setflags(write=False)
    w.setflags(write=False)
    return s, w


def ge_spectrum(setting, nodes: int) -> GESpectrum:
    k = ge_constants(setting)
    s, w = _nodes(float(setting.psi_p), int(nodes))
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
