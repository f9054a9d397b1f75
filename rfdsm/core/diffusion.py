"""The forward Ornstein-Uhlenbeck process of ``docs/model.md``, written once:
``x_t = a x_0 + sqrt(h) eps``, ``a = exp(-t)``, ``h = 1 - exp(-2t)``.

Scalars give floats, arrays arrays (elementwise); ``h`` through ``expm1`` so that a small
``t`` keeps its digits.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["a", "h", "a2_h"]


def a(t):
    """``a = exp(-t)``."""
    return math.exp(-t) if isinstance(t, (int, float)) else np.exp(-np.asarray(t, dtype=float))


def h(t):
    """``h = 1 - exp(-2t)``."""
    if isinstance(t, (int, float)):
        return -math.expm1(-2.0 * t)
    return -np.expm1(-2.0 * np.asarray(t, dtype=float))


def a2_h(t):
    """``(a^2, h)``; ``a^2 + h = 1``."""
    if isinstance(t, (int, float)):
        return math.exp(-2.0 * t), -math.expm1(-2.0 * t)
    t = np.asarray(t, dtype=float)
    return np.exp(-2.0 * t), -np.expm1(-2.0 * t)
