"""The result record returned by both evaluators (simulator and asymptotic solver)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._version import __version__
from .setting import Setting

__all__ = ["Result", "ERRORS"]

#: The three reported errors of docs/model.md, all divided by d.
ERRORS = ("train", "test", "score")


def _json_number(x):
    if x is None:
        return None
    if isinstance(x, int) and not isinstance(x, bool):
        return x
    x = float(x)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


@dataclass(frozen=True)
class Result:
    """Errors of the fitted score for one :class:`Setting`, from one evaluator.

    ``train``, ``test``, ``score`` are as defined in ``docs/model.md``.  For the simulator they are
    means over seeds and ``*_se`` their standard errors (``None`` with a single seed); the
    per-seed values are in ``per_seed``.  For the asymptotic solver the ``*_se`` are ``None``,
    ``d`` is ``None`` and ``converged``/``residual``/``iterations`` describe the fixed-point solve.
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

    @property
    def gap(self) -> float:
        """Generalisation gap ``test - train``."""
        return self.test - self.train

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``inf`` written as the string ``"inf"``)."""
        out: dict[str, Any] = {"evaluator": self.evaluator}
        out.update({k: _json_number(v) if k == "m" else v for k, v in self.setting.to_dict().items()})
        for k in ("d", "n", "p"):
            out[k] = getattr(self, k)
        for k in ERRORS:
            out[k] = _json_number(getattr(self, k))
            out[f"{k}_se"] = _json_number(getattr(self, f"{k}_se"))
        out["bayes"] = self.setting.bayes
        out["converged"] = bool(self.converged)
        out["residual"] = _json_number(self.residual)
        out["iterations"] = self.iterations
        out["wall_time"] = self.wall_time
        out["per_seed"] = [
            {k: (_json_number(v) if isinstance(v, float) else v) for k, v in row.items()}
            for row in self.per_seed
        ]
        out["diagnostics"] = {
            k: (_json_number(v) if isinstance(v, float) else v) for k, v in self.diagnostics.items()
        }
        out["version"] = __version__
        return out

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per seed for a simulation, a single row for the theory."""
        base = {"evaluator": self.evaluator, **self.setting.to_dict(), "d": self.d,
                "n": self.n, "p": self.p, "converged": bool(self.converged),
                "residual": self.residual, "iterations": self.iterations,
                "version": __version__}
        if not self.per_seed:
            return [{**base, "seed": None, "train": self.train, "test": self.test,
                     "score": self.score, "wall_time": self.wall_time}]
        return [{**base, **row} for row in self.per_seed]
