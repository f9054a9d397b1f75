"""The Marchenko-Pastur law of ``S = W W^T / d`` as a quadrature rule.

``W`` is ``p x d`` with i.i.d. N(0,1) entries and ``gamma = p/d = psi_p``.  As ``d -> inf`` the
eigenvalue distribution of ``S`` (a ``p x p`` matrix) converges to the Marchenko-Pastur law of
ratio ``gamma``: an atom of mass ``max(0, 1 - 1/gamma)`` at 0 and the density

    rho(s) = sqrt((b - s)(s - a)) / (2 pi gamma s),   a, b = (1 -+ sqrt(gamma))^2.

With ``s(theta) = a + (b - a)(1 - cos theta)/2`` the density part becomes
``((b-a)/2)^2 sin(theta)^2 / (2 pi gamma s(theta)) d theta`` on ``[0, pi]``, a smooth, even,
``2 pi``-periodic integrand (also at ``gamma = 1``, where ``a = 0``), so the midpoint rule in
``theta`` converges geometrically.  :func:`mp_rule` returns nodes and weights, the atom
included, so that ``sum(w * f(s)) ~ int f dMP`` for any ``f`` continuous on the support.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["mp_rule", "DEFAULT_NODES"]

DEFAULT_NODES = 400


@lru_cache(maxsize=4096)
def _rule(gamma: float, nodes: int):
    a = (1.0 - math.sqrt(gamma)) ** 2
    b = (1.0 + math.sqrt(gamma)) ** 2
    theta = (np.arange(nodes) + 0.5) * (math.pi / nodes)
    s = a + 0.5 * (b - a) * (1.0 - np.cos(theta))
    # sin^2(theta)/s(theta) written stably for gamma -> 1 (a -> 0 and s -> 0 at theta -> 0)
    w = (0.25 * (b - a) ** 2) * np.sin(theta) ** 2 / (2.0 * math.pi * gamma * s) * (math.pi / nodes)
    atom = max(0.0, 1.0 - 1.0 / gamma)
    if atom > 0.0:
        s = np.concatenate(([0.0], s))
        w = np.concatenate(([atom], w))
    s.setflags(write=False)
    w.setflags(write=False)
    return s, w


def mp_rule(gamma: float, nodes: int = DEFAULT_NODES) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``s`` and weights ``w`` (read-only arrays) of the MP law of ratio ``gamma > 0``.

    The atom at 0, when ``gamma > 1``, is the first node.  ``w.sum() == 1`` to rounding.
    """
    gamma = float(gamma)
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    return _rule(gamma, int(nodes))
