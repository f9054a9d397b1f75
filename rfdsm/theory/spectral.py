"""The Marchenko-Pastur law of ``S = W W^T / d`` as a quadrature rule.

``W`` is ``p x d`` with i.i.d. N(0,1) entries and ``gamma = p/d = psi_p``.  As ``d -> inf`` the
eigenvalue distribution of ``S`` (a ``p x p`` matrix) converges to the Marchenko-Pastur law of
ratio ``gamma``: an atom of mass ``max(0, 1 - 1/gamma)`` at 0 and the density

    rho(s) = sqrt((s_+ - s)(s - s_-)) / (2 pi gamma s),   s_-+ = (1 -+ sqrt(gamma))^2,

of total mass ``M = min(1, 1/gamma)``.  With ``s(theta) = s_- + c (1 - cos theta)``,
``c = (s_+ - s_-)/2 = 2 sqrt(gamma)``, the density part becomes
``(2/pi) sin(theta)^2 / s(theta) d theta`` on ``[0, pi]``: an even, ``2 pi``-periodic, analytic
integrand, for which the midpoint rule in ``theta`` converges geometrically.  The rate is set
by the zeros of ``s(theta)``, at ``theta = +-i eta`` with ``cosh eta = 1 + s_-/c``, i.e.
``eta ~ |1 - sqrt(gamma)|``: close to ``gamma = 1`` the factor ``1/s`` is a feature of width
``eta`` at ``theta = 0`` (a dip of the integrand, where ``sin(theta)^2`` vanishes), which
``nodes`` midpoints resolve only when ``nodes * eta >> 1``; at ``nodes = 400`` and
``|gamma - 1| ~ 1e-3`` the mass alone is off by ``4e-4``.  (At ``gamma = 1`` exactly,
``s_- = 0`` and the integrand is ``(2/pi) cos(theta/2)^2``, smooth again.)

Edge correction (singularity subtraction).  For ``f`` analytic on ``[0, s_+]``,

    int f rho ds = f(0) M + int (f(s) - f(0)) rho(s) ds,

and in the second integral ``(f(s) - f(0))/s`` is analytic, so the ``1/s`` feature is gone and
the midpoint rule converges at a rate independent of ``gamma``.  As a rule this is the midpoint
nodes plus one node at ``s = 0`` of weight ``M - sum(midpoint weights)``: the mass the midpoint
rule gets wrong is put where the feature is.  The correction weight can have either sign (near
``gamma = 1`` it is negative: the midpoint rule overshoots the dip); it is below ``1e-15`` in
size unless ``|gamma - 1| <~ 35 / nodes``.  With it the rule integrates ``s^k``, ``k < nodes``,
exactly (``(s^k - 0)/s`` times ``sin(theta)^2`` is then a trigonometric polynomial of degree
``< 2 nodes``), the mass included.

The correction node belongs to the *continuous* part: a function defined differently on the
atom (e.g. the solvers' ``0/0 := 0`` on the atom of the linear activation,
:func:`rfdsm.theory.common.ratio`) must take its right limit ``f(0+)`` there, not its value
on the atom.  :func:`mp_parts` keeps the pieces apart for that purpose; :func:`mp_rule`
returns them as one rule.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np

__all__ = ["mp_rule", "mp_parts", "MPParts", "DEFAULT_NODES"]

DEFAULT_NODES = 400


class MPParts(NamedTuple):
    """The Marchenko-Pastur rule of ratio ``gamma`` in pieces (read-only arrays).

    ``atom``: mass at ``s = 0`` (``max(0, 1 - 1/gamma)``); ``edge``: weight of the correction
    node at ``s = 0+`` (continuous part, see the module docstring); ``s``, ``w``: midpoint nodes
    (all ``> 0``; the smallest is ``~2.5/nodes^2`` at ``gamma = 1``) and their weights.
    ``atom + edge + w.sum() == 1`` to rounding.
    """

    atom: float
    edge: float
    s: np.ndarray
    w: np.ndarray


@lru_cache(maxsize=4096)
def _parts(gamma: float, nodes: int) -> MPParts:
    r = math.sqrt(gamma)
    lo = (1.0 - r) ** 2
    c = 2.0 * r  # (s_+ - s_-)/2, without the cancellation of the difference
    theta = (np.arange(nodes) + 0.5) * (math.pi / nodes)
    # 1 - cos(theta) = 2 sin(theta/2)^2: no cancellation at small theta, where s_- ~ 0 matters
    s = lo + 2.0 * c * np.sin(0.5 * theta) ** 2
    w = (2.0 / nodes) * np.sin(theta) ** 2 / s  # (2/pi) sin^2/s times the step pi/nodes
    mass = 1.0 if gamma <= 1.0 else 1.0 / gamma
    atom = 1.0 - mass
    edge = mass - float(math.fsum(w))
    s.setflags(write=False)
    w.setflags(write=False)
    return MPParts(atom, edge, s, w)


def _check(gamma, nodes):
    gamma = float(gamma)
    if not (math.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a finite number > 0, got {gamma!r}")
    if isinstance(nodes, bool) or int(nodes) != nodes or nodes < 1:
        raise ValueError(f"nodes must be an integer >= 1, got {nodes!r}")
    return gamma, int(nodes)


def mp_parts(gamma: float, nodes: int = DEFAULT_NODES) -> MPParts:
    """The rule of :func:`mp_rule` as :class:`MPParts` (atom, edge correction, midpoint part)."""
    return _parts(*_check(gamma, nodes))


@lru_cache(maxsize=4096)
def _rule(gamma: float, nodes: int, edge: float = 0.0):
    p = _parts(gamma, nodes)
    head_s, head_w = [edge], [p.edge]
    if p.atom > 0.0:
        head_s, head_w = [0.0, edge], [p.atom, p.edge]
    s = np.concatenate((head_s, p.s))
    w = np.concatenate((head_w, p.w))
    s.setflags(write=False)
    w.setflags(write=False)
    return s, w


def mp_rule(gamma: float, nodes: int = DEFAULT_NODES, *,
            edge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``s`` and weights ``w`` (read-only arrays) of the MP law of ratio ``gamma > 0``,
    such that ``sum(w * f(s)) ~ int f dMP_gamma`` for ``f`` analytic on ``[0, s_+]``.

    The first node is the atom at 0 when ``gamma > 1``; the next is the edge-correction node,
    at ``s = edge`` (see the module docstring: it stands for the right limit ``f(0+)`` and is
    not part of the atom; the solvers put it at a tiny ``edge > 0``,
    :data:`rfdsm.theory.common.S_EDGE`, so that ratios that are ``0/0`` on the atom take that
    limit); then ``nodes`` midpoint nodes.  ``w.sum() == 1`` to rounding, and ``sum(w * s^k)``
    is exact for ``k < nodes`` (to rounding; at ``edge = 0``).
    """
    return _rule(*_check(gamma, nodes), float(edge))
