"""Optimal regularisation: the ridge ``lam*`` that minimises an error of the theory.

:func:`optimal_lambda` minimises ``theory(setting.replace(lam=lam)).<quantity>`` (default the
test error) over ``log lam`` in ``[lam_min, lam_max]``: a coarse logarithmic scan brackets the
smallest value (the error need not be unimodal in ``lam``), then a bounded Brent search
(``scipy.optimize.minimize_scalar``) refines it inside the bracket.  :func:`optimal_envelope`
does it along a curve (e.g. over ``psi_p``), each search started from the previous optimum's
neighbourhood.  ``docs/gallery.md``, "Diagnostics", uses both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.setting import Setting
from ..core.status import Outcome

__all__ = ["OptimalRidge", "optimal_lambda", "optimal_envelope", "LAM_RANGE"]

#: Default search interval of ``lam``.
LAM_RANGE = (1e-8, 1e4)
_QUANTITIES = ("test", "score", "train", "test_emp", "bias2", "variance")


@dataclass(frozen=True)
class OptimalRidge(Outcome):
    """``lam`` (the minimiser), ``value`` (the error there) and ``result`` (the theory's
    :class:`rfdsm.Result` at ``lam``); ``status`` (:mod:`rfdsm.core.status`): ``"ok"``,
    ``"at_bound"`` (the minimum may lie beyond the interval, ``lam -> 0`` or ``lam -> inf``:
    the message says which) or ``"failed"``; ``message`` says why; ``evaluations`` of the
    theory."""

    setting: Setting
    quantity: str
    lam: float
    value: float
    status: str
    message: str
    evaluations: int
    result: object = field(repr=False, default=None)

    @property
    def converged(self) -> bool:
        return self.status == "ok"


def _check(setting, quantity, lam_range, scan):
    if not isinstance(setting, Setting):
        raise ValueError(f"setting must be an rfdsm.Setting, got {type(setting).__name__}")
    if quantity not in _QUANTITIES:
        raise ValueError(f"quantity must be one of {list(_QUANTITIES)}, got {quantity!r}")
    try:
        lo, hi = (float(v) for v in lam_range)
    except (TypeError, ValueError):
        raise ValueError(f"lam_range must be two numbers (lam_min, lam_max), got "
                         f"{lam_range!r}") from None
    if not (0 < lo < hi < math.inf):
        raise ValueError(f"lam_range must satisfy 0 < lam_min < lam_max < inf, got {lam_range!r}")
    if isinstance(scan, bool) or not isinstance(scan, int) or scan < 3:
        raise ValueError(f"scan must be an integer >= 3 (points of the coarse search), got "
                         f"{scan!r}")
    return lo, hi


def optimal_lambda(setting: Setting, quantity: str = "test", *, lam_range=LAM_RANGE,
                   scan: int = 25, xtol: float = 1e-4) -> OptimalRidge:
    """``lam*`` minimising ``quantity`` of the theory at ``setting`` (its own ``lam`` is
    ignored); ``xtol`` is the tolerance of the search in ``log(lam)``."""
    from scipy import optimize

    from ..theory import theory

    lo, hi = _check(setting, quantity, lam_range, scan)
    extra = [] if quantity in ("train", "test", "score") else [quantity]
    calls = {"n": 0}
    cache: dict[float, object] = {}

    def value(loglam):
        lam = float(math.exp(loglam))
        calls["n"] += 1
        res = theory(setting.replace(lam=lam), metrics=extra)
        cache[loglam] = res
        v = res.metrics.get(quantity) if quantity in res.metrics else getattr(res, quantity)
        return float(v) if res.converged and math.isfinite(v) else math.inf

    grid = np.linspace(math.log(lo), math.log(hi), scan)
    vals = np.array([value(g) for g in grid])
    if not np.isfinite(vals).any():
        return OptimalRidge(setting, quantity, math.nan, math.nan, "failed",
                            "the theory did not converge at any lam of the scan", calls["n"])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, scan - 1)]
    opt = optimize.minimize_scalar(value, bounds=(a, b), method="bounded",
                                   options={"xatol": xtol})
    best = float(opt.x) if opt.fun <= vals[i] else float(grid[i])
    fun = min(float(opt.fun), float(vals[i]))
    lam = math.exp(best)
    res = cache.get(best) or theory(setting.replace(lam=lam), metrics=extra)
    step = grid[1] - grid[0]
    if best <= grid[0] + step * 1e-3 or (i == 0 and best - grid[0] < xtol * 10):
        status, msg = "at_bound", f"the minimum is at lam_min = {lo:g}: it may lie below"
    elif best >= grid[-1] - step * 1e-3 or (i == scan - 1 and grid[-1] - best < xtol * 10):
        status, msg = "at_bound", f"the minimum is at lam_max = {hi:g}: it may lie above"
    elif not opt.success:
        status, msg = "failed", f"bounded search: {opt.message}"
    else:
        status, msg = "ok", f"minimum inside [{lo:g}, {hi:g}] (bounded Brent search in log lam)"
    return OptimalRidge(setting.replace(lam=lam), quantity, lam, fun, status, msg, calls["n"],
                        res)


def optimal_envelope(settings, quantity: str = "test", **kw) -> list[OptimalRidge]:
    """:func:`optimal_lambda` at each setting of a sequence (e.g. a ``psi_p`` curve)."""
    settings = list(settings)
    return [optimal_lambda(s, quantity, **kw) for s in settings]
