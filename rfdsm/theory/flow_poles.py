"""The gradient-flow filter as a short sum of resolvents (docs/theory.md, Sec. 10, eqs. D1-D3).

At training time ``tau`` the fit is the filter ``g(u) = (1 - exp(-c tau (u + lam)))/(u + lam)``
of the training Gram (``c = 2h/psi_p``, ``docs/model.md``).  The trapezoidal rule on a Talbot
contour for the inverse Laplace transform of ``1/(s + X)`` (Trefethen, Weideman & Schmelzer 2006,
"Talbot quadratures and rational approximations", BIT 46) is a rational approximation of
``exp(-X)`` on ``[0, inf)`` with poles off that half-line,

    exp(-X) ~ r(X) = sum_k c_k/(X + s_k),  s_k = s(theta_k),  c_k = e^{s_k} s'(theta_k)/(i N),  (D1)

``s(theta) = N (-0.6122 + 0.5017 theta cot(0.6407 theta) + 0.2645 i theta)``, ``theta_k`` the
``N`` midpoints of ``(-pi, pi)``, with error about ``3.89^-N``.  Scaling the ``c_k`` so that
``r(0) = 1`` exactly, the pole of ``(1 - r(X))/X`` at ``X = 0`` cancels and

    g(u) ~ sum_k beta_k / (u + lam_k),   beta_k = c_k / s_k,   lam_k = lam + s_k/(c tau),      (D2)

a sum of ``N`` resolvents at complex ridges (conjugate pairs; ``sum_k beta_k = 1`` since
``g(u) ~ 1/u`` at large ``u``).  Only the half with ``Im s_k < 0`` is kept (the other half is
its complex conjugate); there ``z_k = -lam_k`` has ``Im z_k > 0``.  The relative error of the
filter itself, ``max_X |g_N - g|/g`` over ``X = c tau (u + lam) >= 0`` (:func:`filter_error`),
is ``7e-8, 4e-10, 2e-12, 2e-13, 8e-15`` at ``N = 16, 20, 24, 26, 28``; beyond ``N = 28``
rounding (the ``|beta_k|`` sum to ``~e^{0.17 N}``) takes over.                             (D3)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["talbot_half", "ridges", "filter_error", "DEFAULT_POLES"]

#: Contour points per rule: the answer (first) and the check that estimates its error.
DEFAULT_POLES = (28, 26)

_SIGMA, _MU, _ALPHA, _NU = -0.6122, 0.5017, 0.6407, 0.2645  # TWS 2006, optimised Talbot


@lru_cache(maxsize=16)
def talbot_half(N: int):
    """``(s_k, beta_k)`` of (D1)-(D2) for the ``N/2`` contour points with ``Im s_k < 0``
    (read-only arrays); ``N`` even, ``>= 4``."""
    if N < 4 or N % 2:
        raise ValueError(f"the number of contour points must be even and >= 4, got {N!r}")
    th = -np.pi + (2.0 * np.arange(1, N + 1) - 1.0) * np.pi / N
    s = N * (_SIGMA + _MU * th / np.tan(_ALPHA * th) + 1j * _NU * th)
    ds = N * (_MU * (1.0 / np.tan(_ALPHA * th) - _ALPHA * th / np.sin(_ALPHA * th) ** 2)
              + 1j * _NU)
    c = np.exp(s) * ds / (1j * N)
    r0 = float(np.sum(c / s).real)  # r(0), real by the conjugate symmetry
    half = th < 0
    s, beta = s[half], (c / s / r0)[half]
    s.flags.writeable = beta.flags.writeable = False
    return s, beta


def ridges(lam: float, ctau: float, N: int):
    """``(z_k, beta_k)`` with ``z_k = -lam_k = -lam - s_k/(c tau)`` (``Im z_k > 0``), eq. (D2)."""
    s, beta = talbot_half(N)
    return -lam - s / ctau, beta


@lru_cache(maxsize=16)
def filter_error(N: int) -> float:
    """``max |g_N(X) - g(X)| / g(X)`` over ``X = c tau (u + lam)`` in ``[0, 1e9]`` (eq. (D3));
    ``g(X) = (1 - e^{-X})/X`` in units of ``c tau``, ``g_N`` its approximation (D2)."""
    s, beta = talbot_half(N)
    X = np.concatenate([[0.0], np.geomspace(1e-12, 1e9, 4000)])
    gN = 2.0 * np.real((beta[None, :] / (X[:, None] + s[None, :])).sum(axis=1))
    safe = np.where(X > 0, X, 1.0)
    g = np.where(X > 0, -np.expm1(-safe) / safe, 1.0)
    return float(np.max(np.abs(gN - g) / g))
