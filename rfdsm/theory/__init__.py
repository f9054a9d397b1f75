"""Asymptotic (``d, n, p -> inf``) errors of the model of ``docs/model.md``; see ``docs/theory.md``.

:func:`theory` evaluates one :class:`rfdsm.Setting`, :func:`theory_curve` a sequence of them
with continuation (each point warm-started from its neighbour).  ``m = 1`` and ``m = inf`` are
solved by :mod:`.m1` and :mod:`.minf`, finite ``m > 1`` by :mod:`.finite_m`: each supplies its
equations (fixed point and errors on a Marchenko-Pastur rule) to the one refine / solve / judge
loop of :mod:`.driver`.  A finite training time ``tau`` is solved by :mod:`.flow` (any ``m``).
"""

from __future__ import annotations

import dataclasses
import math
import time
import sys
import types

import numpy as np

from ..core.result import Result, plain
from ..core.setting import Setting
from .common import Solution
from .routing import route
from . import spectrum  # callable: rfdsm.theory.spectrum(setting), docs/theory.md Sec. 9
from .plateau import plateau  # the psi_p -> inf limit, docs/theory.md Sec. 11.4

__all__ = ["theory", "theory_curve", "solver_for", "spectrum", "plateau"]


def solver_for(setting: Setting):
    """The solver function ``f(setting, warm=None) -> Solution`` for ``setting``; a
    ValueError for an estimator or data law the theory has no equations for.  The solver
    reads ``setting`` as the built-in ridge: :func:`.routing.route` gives the setting to
    hand it for an estimator with another form."""
    return route(setting).solver


def _to_result(setting: Setting, sol: Solution, wall: float, metrics=None) -> Result:
    diag = {k: plain(v, strict=False) for k, v in (sol.diagnostics or {}).items()}
    limits = diag.pop("metrics", None) or {}  # a solver's limits of registered metrics
    diag["state"] = plain(sol.state, strict=False)
    if not sol.converged:
        diag.setdefault("warning", "the fixed-point solve did not converge: the errors are not "
                                   "trustworthy (see residual)")
    if setting.tau != math.inf:
        # the flow gives some diagnostics at once (docs/theory.md Sec. 10); like every metric
        # with default=False they are reported when asked for
        from ..metrics import theory_metrics

        asked = {m.name for m in theory_metrics(metrics)}
        limits = {k: v for k, v in limits.items() if k in asked}
    res = Result(setting=setting, evaluator="theory", train=float(sol.train), test=float(sol.test),
                 score=float(sol.score), converged=bool(sol.converged),
                 residual=float(sol.residual), iterations=int(sol.iterations), wall_time=wall,
                 diagnostics=diag, metrics=limits)
    if setting.tau != math.inf:
        from ..metrics.diagnostics import DIAGNOSTICS

        # "all" at a finite tau names what the same setting has at tau = inf (the diagnostics
        # of isotropic data, the only data model the flow is solved for) and the flow lacks
        return _with_metric_limits(setting, res, metrics,
                                   "the theory has this limit at tau = inf only",
                                   every=DIAGNOSTICS)
    return _with_metric_limits(setting, res, metrics)


def _note_missing(res: Result, metrics, reason: str, every=()) -> Result:
    """Name, in ``diagnostics["metrics_without_limit"]``, the metrics asked for that have no
    limit here: a requested column is never silently absent.  ``metrics = "all"`` asks for
    the names in ``every`` (those this setting would otherwise be expected to have)."""
    if metrics is None:
        return res
    from ..metrics import get_metric
    from ..core.result import ERRORS

    if metrics == "all":
        names = list(every)
    else:
        names = [m.name if hasattr(m, "name") else get_metric(m).name for m in metrics]
    missing = [n for n in names if n not in ERRORS and n not in res.metrics]
    if missing:
        res.diagnostics["metrics_without_limit"] = {n: reason for n in missing}
    return res


def _with_metric_limits(setting: Setting, res: Result, metrics=None,
                        reason: str = "the theory has no equations for it in this setting",
                        every=()) -> Result:
    """``res`` with the limits of registered metrics (:func:`rfdsm.metrics.theory_metrics` of
    ``metrics``: by default those computed without being named) added to ``metrics``, where
    their ``theory`` function gives a value for this setting; the diagnostics of
    docs/theory.md, Sec. 11, when asked for.  The others asked for are named with ``reason``
    (:func:`_note_missing`)."""
    import dataclasses

    from ..metrics import theory_metrics
    from . import diagnostics as _  # noqa: F401  (hands the theory's metric functions over)

    extra = {}
    for metric in theory_metrics(metrics):
        if metric.name not in res.metrics:
            value = metric.function("theory")(setting, res)
            if value is not None:
                extra[metric.name] = float(value)
    res = dataclasses.replace(res, metrics={**res.metrics, **extra}) if extra else res
    return _note_missing(res, metrics, reason, every)


def _warm_state(warm, setting):
    if isinstance(warm, Result):
        # states of different solvers mean different things
        return warm.diagnostics.get("state") if warm.setting.m == setting.m else None
    if isinstance(warm, Solution):
        return warm.state
    return warm


def theory(setting: Setting, *, warm=None, metrics=None, **solver_options) -> Result:
    """Limits of ``train``, ``test``, ``score`` for ``setting`` as ``d -> inf``.

    ``warm``: a previous :class:`rfdsm.Result` of the theory for the same ``m`` (or its
    ``diagnostics["state"]``), used as the starting point of the fixed-point solve.
    ``solver_options`` (e.g. ``tol``, ``max_iter``, ``nodes``) go to the solver.  A solve that
    did not converge returns ``converged=False`` with its residual; it never raises for that.
    An activation with ``mu0 = E sigma(g) != 0`` has the limit of its centred version
    ``sigma - mu0`` (``docs/theory.md``, Sec. 0).
    Ridgeless (``lam = 0``) at the interpolation threshold of ``m = 1`` gives ``test = inf``
    (``diagnostics["divergent"]``).  ``metrics``: registered metrics whose limits go to
    ``Result.metrics`` (names, or ``"all"``; default: those a simulation computes unasked, as
    for :func:`rfdsm.simulate`), e.g. ``rfdsm.diagnostics.DIAGNOSTICS``.
    """
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    way = route(setting)
    solver, solved = way.solver, way.setting
    t0 = time.perf_counter()
    if solver_options:
        sol = solver(solved, _warm_state(warm, solved), **solver_options)
    else:
        sol = solver(solved, _warm_state(warm, solved))
    res = _to_result(solved, sol, time.perf_counter() - t0, metrics)
    # the record names the setting asked for; the numbers are those of its form
    return res if solved == setting else dataclasses.replace(res, setting=setting)


def theory_curve(settings, metrics=None, **solver_options) -> list[Result]:
    """:func:`theory` along a sequence of settings, each warm-started from the previous point
    with the same ``m`` (continuation).  Order the settings along the curve for best effect."""
    settings = list(settings)
    for s in settings:
        if not isinstance(s, Setting):
            raise ValueError(f"settings must be rfdsm.Setting objects, got {type(s).__name__}")
    out, last, i = [], {}, 0
    while i < len(settings):
        s, j = settings[i], i + 1
        # a run along tau is one continuation path (docs/theory.md Sec. 10); an estimator with
        # another form is solved point by point at the form's parameters
        if s.tau != math.inf and route(s).setting == s:
            while j < len(settings) and settings[j].tau != math.inf and \
                    settings[j].replace(tau=s.tau) == s:
                j += 1
            out.extend(_flow_curve(settings[i:j], solver_options, metrics))
            i = j
            continue
        res = theory(s, warm=last.get(s.m), metrics=metrics, **solver_options)
        if res.converged:
            last[s.m] = res
        out.append(res)
        i = j
    return out


def _flow_curve(settings, solver_options, metrics=None) -> list[Result]:
    """Finite-tau settings equal up to tau, solved together; wall time split evenly; each
    result carries the ``metrics`` asked for as :func:`theory` gives them."""
    from .flow import solve_flow_curve

    for s in settings:
        solver_for(s)  # the same refusals as theory()
    t0 = time.perf_counter()
    sols = solve_flow_curve(settings, **solver_options)
    wall = (time.perf_counter() - t0) / len(settings)
    return [_to_result(s, sol, wall, metrics) for s, sol in zip(settings, sols)]


class _CallableModule(types.ModuleType):
    """``rfdsm.theory`` is both this subpackage and the evaluator: importing the subpackage
    rebinds the attribute ``rfdsm.theory`` to the module, so the module itself forwards calls."""

    def __call__(self, *args, **kwargs):
        return theory(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
