"""The result record returned by both evaluators (simulator and asymptotic solver)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import status as _status
from .._version import __version__
from .setting import Setting

__all__ = ["Result", "ERRORS", "plain"]

#: The three reported errors of docs/model.md, all divided by d.
ERRORS = ("train", "test", "score")


def plain(x, strict: bool = True):
    """Python values (no NumPy types) for any value a Result holds, element by element through
    dicts, lists, tuples and arrays; the one normaliser of rfdsm's records.

    ``strict``: valid RFC 8259 JSON, which has no NaN or Infinity: NaN becomes ``null`` (a value
    that does not exist, e.g. the standard error of one Monte Carlo sample), ``+-inf`` the
    string ``"inf"``/``"-inf"`` (so ``m = inf`` stays readable, and ``float("inf")`` parses it
    back), dict keys strings, other objects ``str``.  Otherwise floats stay as they are and
    other objects become their ``repr`` (diagnostics kept in memory).
    """
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if strict and math.isnan(x):
            return None
        if strict and math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    if isinstance(x, dict):
        return {(str(k) if strict else k): plain(v, strict) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v, strict) for v in x]
    return str(x) if strict else repr(x)


@dataclass(frozen=True)
class Result:
    """Errors of the fitted score for one :class:`Setting`, from one evaluator.

    ``train``, ``test``, ``score`` are as defined in ``docs/model.md``.  For the simulator they are
    means over seeds and ``*_se`` their standard errors (``None`` with a single seed); the
    per-seed values are in ``per_seed``.  For the asymptotic solver the ``*_se`` are ``None``,
    ``d`` is ``None`` and ``converged``/``residual``/``iterations`` describe the fixed-point solve.
    ``metrics`` holds the registered metrics besides the three errors (:mod:`rfdsm.metrics`),
    as ``{name: mean, name + "_se": standard error}``; they become columns of :meth:`to_dict`
    (both) and of :meth:`rows` (the value: per seed for a simulation).
    """

    setting: Setting
    evaluator: str
    train: float
    test: float
    score: float
    train_se: float | None = None
    test_se: float | None = None
    score_se: float | None = None
    d: int | None = None
    n: int | None = None
    p: int | None = None
    per_seed: tuple = ()
    converged: bool = True
    residual: float | None = None
    iterations: int | None = None
    wall_time: float = 0.0
    diagnostics: dict = field(default_factory=dict, compare=False)
    metrics: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        """:mod:`rfdsm.status`: ``ok``; ``divergent`` (the limit itself is infinite, e.g. the
        ridgeless interpolation threshold of ``m = 1``); ``not_converged``."""
        if not self.converged:
            return _status.NOT_CONVERGED
        if self.diagnostics.get("divergent"):
            return _status.DIVERGENT
        return _status.OK

    @property
    def success(self) -> bool:
        """The numbers can be used as they stand (``converged``)."""
        return bool(self.converged)

    @property
    def message(self) -> str:
        """Empty when converged without remark; else the warning of the evaluator."""
        text = self.diagnostics.get("warning") or ""
        if not text and not self.converged:
            text = "did not converge (see residual and diagnostics)"
        return str(text)

    @property
    def bayes(self) -> float:
        """The Bayes level of the setting's data model, the least possible ``test`` error."""
        return self.setting.bayes

    @property
    def gap(self) -> float:
        """Generalisation gap ``test - train``."""
        return self.test - self.train

    def to_dict(self) -> dict[str, Any]:
        """A dictionary that is strict JSON: ``json.dumps(..., allow_nan=False)`` accepts it.

        NaN is written as ``null`` and ``+-inf`` as the string ``"inf"``/``"-inf"`` (``m = inf``
        is ``"m": "inf"``), everywhere including ``per_seed`` and ``diagnostics``.
        """
        out: dict[str, Any] = {"evaluator": self.evaluator}
        out.update(self.setting.to_dict())
        for k in ("d", "n", "p"):
            out[k] = getattr(self, k)
        for k in ERRORS:
            out[k] = getattr(self, k)
            out[f"{k}_se"] = getattr(self, f"{k}_se")
        out.update(self.metrics)
        out["bayes"] = self.setting.bayes
        out["converged"] = bool(self.converged)
        out["residual"] = self.residual
        out["iterations"] = self.iterations
        out["wall_time"] = self.wall_time
        out["per_seed"] = list(self.per_seed)
        out["diagnostics"] = dict(self.diagnostics)
        out["version"] = __version__
        return plain(out)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per seed for a simulation, a single row for the theory."""
        base = {"evaluator": self.evaluator, **self.setting.to_dict(), "d": self.d,
                "n": self.n, "p": self.p, "converged": bool(self.converged),
                "residual": self.residual, "iterations": self.iterations,
                "version": __version__}
        if not self.per_seed:
            values = {k: v for k, v in self.metrics.items() if not k.endswith("_se")}
            return [{**base, "seed": None, "train": self.train, "test": self.test,
                     "score": self.score, **values, "wall_time": self.wall_time}]
        return [{**base, **row} for row in self.per_seed]
