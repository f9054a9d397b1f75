"""The loop shared by the asymptotic solvers: refine the quadrature, solve, score, judge.

Every solver (``m = 1``, finite ``m``, ``m = inf``) is a fixed point of equations on the
Marchenko-Pastur rule of :func:`rfdsm.theory.common.ge_spectrum`, followed by errors computed
from that fixed point.  :func:`drive` does the rest once for all of them:

1. solve on a rule of ``nodes`` midpoints, warm-started from the previous rule (or the caller's
   ``warm``), and double ``nodes`` until train and test agree with the previous rule to
   ``quad_tol`` (:func:`quadrature_change`) or ``max_nodes`` is reached;
2. re-solve with the GE constants displaced by their error bound
   (:func:`rfdsm.theory.common.constants_effect`) when the constants enter the equations;
3. check the physical bounds ``train >= 0``, ``test >= a^2``
   (:func:`rfdsm.theory.common.physical_bounds`);
4. ``converged`` when the fixed-point iteration met its step criterion with residual
   ``<= RESIDUAL_TOL``, the quadrature is resolved, the errors are finite (unless the solver
   declares that they may diverge) and no warning was raised; ``residual`` is the largest of
   the three ways a solve can be off (fixed point, quadrature, GE constants).

A solver supplies an object with the interface of :class:`Equations`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .common import (QUAD_FLOOR, Solution, constants_effect, constants_warning, ge_spectrum,
                     physical_bounds)

__all__ = ["FixedPoint", "Equations", "drive", "verdict", "quadrature_change", "QUAD_FLOOR",
           "RESIDUAL_TOL"]

#: A fixed point whose relative residual is above this is not converged.
RESIDUAL_TOL = 1e-9


@dataclass
class FixedPoint:
    """One solve on one rule: the solution ``x`` (in the solver's variables), its relative
    ``residual``, the ``iterations`` taken, whether the iteration met its own step criterion
    (``done``), and counters summed by :func:`drive` over the rules (e.g. Newton steps)."""

    x: Any
    residual: float
    iterations: int
    done: bool
    method: str = "newton"
    counts: dict = field(default_factory=dict)


class Equations:
    """What a solver supplies to :func:`drive` for one setting (subclass it).

    ``name`` goes to ``diagnostics["solver"]``.  ``may_diverge``: the errors themselves can be
    infinite (the ridgeless interpolation threshold of ``m = 1``), so a non-finite result
    identical on two rules is resolved and may be converged; otherwise a non-finite result is
    never converged.  ``uses_constants``: ``kappa_s^2, kappa_i^2`` enter the equations (probe
    them and report on them).
    """

    name: str
    may_diverge: bool
    uses_constants: bool

    def __init__(self, setting, tol, max_iter):
        self.setting, self.tol, self.max_iter = setting, tol, max_iter
        self.r = setting.psi_p / setting.psi_n

    def prepare(self, sp) -> Solution | None:
        """Set up on the rule ``sp``; a :class:`Solution` when the answer needs no solve
        (:func:`drive` adds the rule's ``nodes`` to its diagnostics)."""
        return None

    def solve(self, sp, warm) -> FixedPoint:
        """The fixed point on ``sp``, from ``warm`` (a ``state``, or ``None``) if usable."""

    def errors(self, sp, x) -> tuple[float, float, dict]:
        """``(train, test, diagnostics)`` at the fixed point ``x``."""

    def state(self, x) -> Any:
        """``x`` as the warm start of a later solve (``Solution.state``)."""

    def describe(self, fp: FixedPoint, counts: dict) -> dict:
        """Diagnostics of the solve (``method`` first), given the last solve and the counts."""


def verdict(*, done: bool, residual: float, finite: bool, diag: dict,
            quadrature_error: float = 0.0, quad_tol: float = math.inf,
            may_diverge: bool = False) -> bool:
    """The one convergence verdict of every solver (step 4 of the module docstring): the
    iteration met its step criterion (``done``) with ``residual <= RESIDUAL_TOL``, the
    quadrature is resolved, the errors are finite (or may be infinite: ``may_diverge``) and
    no warning was raised in ``diag``."""
    return bool(done and residual <= RESIDUAL_TOL and quadrature_error <= quad_tol
                and (finite or may_diverge) and "warning" not in diag)


def quadrature_change(cur, prev, may_diverge: bool = False) -> float:
    """Largest change of ``(train, test)`` between two rules: relative, absolute below
    :data:`QUAD_FLOOR`.  A non-finite result on either rule is unresolved (``inf``, never the
    ``nan`` of the difference, which would drop out of ``max(residuals)``), unless ``may_diverge``
    and the two are identical (``0``)."""
    if not (np.all(np.isfinite(cur)) and np.all(np.isfinite(prev))):
        return 0.0 if may_diverge and np.array_equal(cur, prev) else math.inf
    return float(np.max(np.abs(cur - prev) / np.maximum(np.abs(cur), QUAD_FLOOR)))


def drive(setting, eqs: Equations, warm=None, *, nodes: int, quad_tol: float,
          max_nodes: int) -> Solution:
    """Solve ``eqs`` for ``setting`` on refined rules and judge the result (module docstring)."""
    prev, total_it, counts = None, 0, {}
    while True:
        sp = ge_spectrum(setting, nodes)
        early = eqs.prepare(sp)
        if early is not None:
            early.diagnostics.setdefault("nodes", nodes)
            return early
        fp = eqs.solve(sp, warm)
        total_it += fp.iterations
        for k, v in fp.counts.items():
            counts[k] = counts.get(k, 0) + v
        train, test, info = eqs.errors(sp, fp.x)
        cur = np.array([train, test])
        if prev is not None:
            qerr = quadrature_change(cur, prev, eqs.may_diverge)
            if qerr <= quad_tol or nodes >= max_nodes:
                break
        prev, warm = cur, eqs.state(fp.x)
        nodes *= 2
    return _judge(setting, eqs, sp, fp, cur, info, counts=counts, nodes=nodes, qerr=qerr,
                  iterations=total_it, quad_tol=quad_tol)


def _judge(setting, eqs, sp, fp, cur, info, *, counts, nodes, qerr, iterations,
           quad_tol) -> Solution:
    """Steps 2-4 of the module docstring on the last rule ``sp`` (of ``nodes`` midpoints)."""
    finite = bool(np.all(np.isfinite(cur)))
    kerr = 0.0
    if eqs.uses_constants and finite:
        def solve_at(sp2):  # warm-started from the unshifted solution
            return eqs.errors(sp2, eqs.solve(sp2, eqs.state(fp.x)).x)[:2]

        kerr = constants_effect(setting, nodes, solve_at, cur)
    train, warning = physical_bounds(setting, float(cur[0]), float(cur[1]))
    test = float(cur[1])
    diag = {"solver": eqs.name, **eqs.describe(fp, counts), "nodes": nodes,
            "quadrature_error": qerr, **info}
    if eqs.uses_constants:
        diag.update(constants_warning(setting, kerr, quad_tol, sp))
    if warning:
        diag["warning"] = "; ".join(filter(None, (warning, diag.get("warning"))))
    converged = verdict(done=fp.done, residual=fp.residual, finite=finite, diag=diag,
                        quadrature_error=qerr, quad_tol=quad_tol, may_diverge=eqs.may_diverge)
    score = (test - setting.bayes) / setting.h
    return Solution(float(train), test, float(score), converged, max(fp.residual, qerr, kerr),
                    iterations, eqs.state(fp.x), diag)
