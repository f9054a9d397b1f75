"""The evaluator seam: what an evaluator is to a sweep (tasks, rows, options), and the
helpers that key settings and tasks (:mod:`rfdsm.evaluators`)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from ..core import params as _params
# shared with the config parser (one copy of each message); re-exported for it
from ..core.checks import check_int, count_values, parse_dims, show  # noqa: F401
from ..core.setting import Setting

__all__ = ["Evaluator", "STYLES", "setting_key", "digest", "as_setting", "group_curves",
           "canonical"]

#: How a figure can draw an evaluator's rows.
STYLES = ("line", "points")
#: Top-level config tables that an evaluator's section would shadow.
_RESERVED = ("sweep", "grid")


def canonical(v):
    """A JSON value that tells floats apart exactly (``repr``), with ``inf`` spelled ``inf``."""
    if isinstance(v, float):
        return "inf" if v == math.inf else repr(v)
    return v


#: The parameters every task key spells out: the key format of the first journals.
_KEYED = ("psi_n", "psi_p", "m", "t", "lam", "activation")


def setting_key(s: Setting) -> str:
    """A canonical text for a setting (exact float repr; ``m = inf`` spelled ``inf``).

    A parameter added to the table after :data:`_KEYED` enters the text only away from its
    default, so that the keys of existing sweep directories stay valid and they resume."""
    values = {k: v for k, v in s.to_dict().items()
              if k in _KEYED or v != _params.param(k).default}
    return json.dumps({k: canonical(v) for k, v in values.items()}, sort_keys=True)


def digest(text: str, size: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def as_setting(value) -> Setting:
    # Tasks carry Setting objects, whose activation travels by value (a function registered
    # only in the parent, e.g. under `if __name__ == "__main__":`, is unknown to a worker's
    # registry); plain dicts of built-in parameters are accepted too.
    return value if isinstance(value, Setting) else Setting(**value)


def group_curves(settings, curve: str) -> list[list[Setting]]:
    """``settings`` grouped by every parameter except ``curve``, each group sorted along it."""
    groups: dict[tuple, list[Setting]] = {}
    for s in settings:
        rest = tuple(canonical(getattr(s, p)) for p in _params.names() if p != curve)
        groups.setdefault(rest, []).append(s)
    return [sorted(g, key=lambda s: getattr(s, curve)) for g in groups.values()]


# --- the interface -------------------------------------------------------------------------
class Evaluator:
    """Base class: one task per setting, no options.  Subclasses set the attributes and
    override :meth:`run` (and whatever else differs)."""

    name: str = ""
    finite_size: bool = False
    style: str = "line"
    label: str = ""
    options: tuple[str, ...] = ()

    def parse(self, section: dict) -> dict[str, Any]:
        """The checked options of the config section ``[<name>]`` (JSON values: they enter
        the config hash)."""
        return {}

    def check(self, settings: list[Setting], options: dict) -> None:
        """Raise ValueError for a grid point this evaluator cannot evaluate."""

    def count(self, section: dict, points: int, curve_points: int) -> tuple[int, int]:
        """``(rows, tasks)`` for ``points`` settings (``curve_points`` of them along the
        sweep's curve axis), from the raw ``section``."""
        return points, points

    def count_grid(self, section: dict, sizes: dict[str, int], curve: str) -> tuple[int, int]:
        """:meth:`count` from the number of values of each grid axis (``sizes``, parameters
        missing from it have one): the hook for an evaluator whose tasks group along an axis
        other than the sweep's curve."""
        return self.count(section, math.prod(sizes.values()), sizes.get(curve, 1))

    def normalised(self, options: dict) -> dict:
        """What of the options enters the config hash besides the grid."""
        return dict(options)

    def tasks(self, settings: list[Setting], options: dict, curve: str) -> list[dict]:
        return [self._task([s]) for s in settings]

    def run(self, task: dict) -> list[dict]:
        raise NotImplementedError(f"evaluator {self.name!r} does not implement run(task)")

    def _task(self, settings: list[Setting]) -> dict:
        key = digest("\n".join(setting_key(s) for s in settings))
        # the object travels with the task: a worker process unpickles it by importing the
        # module that defines it, which registers it there too
        return {"key": f"{self.name}:{key}", "kind": self.name, "settings": list(settings),
                "rows": len(settings), "evaluator": self}

    def __repr__(self):
        return f"<evaluator {self.name!r} ({self.style}, finite_size={self.finite_size})>"



def _metric_names(value, evaluator: str = "simulate") -> list[str]:
    """``[<evaluator>] metrics``: registered metrics besides train/test/score and the default
    ones (e.g. the diagnostics of rfdsm.diagnostics, computed on request), with a function
    for that evaluator."""
    from ..metrics import get_metric
    from ..metrics.diagnostics import DIAGNOSTICS

    key = f"{evaluator}.metrics"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{key} must be a list of metric names, got {value!r}")
    # "diagnostics" names the four of docs/model.md, as on the command line (--metrics)
    value = [n for v in value for n in (DIAGNOSTICS if v == "diagnostics" else (v,))]
    for v in value:
        try:
            metric = get_metric(v)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}, or diagnostics") from None
        if not metric.has(evaluator):
            raise ValueError(f"{key}: the metric {v!r} has no {evaluator} function")
    return list(dict.fromkeys(value))
