"""Evaluators: the ways a :class:`rfdsm.Setting` becomes rows of the result table.

An evaluator is an object with

    ``name``         its config section (``[theory]``), entry of ``sweep.evaluators`` and value
                     of the table's ``evaluator`` column
    ``finite_size``  True: evaluated at a dimension ``d`` and seeds (the simulator), its rows
                     carry ``d`` and ``seed``; False: the ``d -> inf`` limit (the theory),
                     one value per setting
    ``style``        how figures draw it: ``"line"`` (a curve through the settings) or
                     ``"points"`` (seed means with standard-error bars)
    ``label``        the word legends use for it ("theory", "simulation")
    ``options``      the keys of its config section besides ``grid`` (simulate: d, seeds, seed)

and the methods (defaults in :class:`Evaluator`)

    ``parse(section) -> options``            check the section's options (ValueError naming
                                             ``<name>.<key>``)
    ``check(settings, options)``             refuse grid points it cannot evaluate
    ``count(section, points, curve_points)`` ``(rows, tasks)`` from the raw section by
                                             arithmetic, before anything is expanded
    ``tasks(settings, options, curve)``      picklable task dicts, each with a unique ``key``
                                             (prefixed ``<name>:``), ``kind`` (the name) and
                                             ``rows``
    ``run(task) -> rows``                    the table rows of one task (:meth:`Result.rows`)

Sweeps (:mod:`rfdsm.sweep`), the command line and the figures (:mod:`rfdsm.plots`) use only
these, never an evaluator's name: a new evaluator (e.g. a sampler) is a module with a
subclass of :class:`Evaluator` and one :func:`register_evaluator` call.  Task keys are part of
the on-disk journal: the built-ins' keys must never change, or old sweeps stop resuming.

The module is light (no numpy work, no solver import) so that the CLI and config validation
can read the registry; each ``run`` imports its machinery when it is called.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from . import params as _params
# shared with the config parser (one copy of each message); re-exported for it
from ._config_checks import check_int, count_values, parse_dims, show  # noqa: F401
from .setting import Setting

__all__ = ["Evaluator", "STYLES", "register_evaluator", "unregister_evaluator",
           "get_evaluator", "registered_evaluators", "evaluator_names", "setting_key",
           "group_curves", "check_int", "count_values", "show"]

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


class Theory(Evaluator):
    """The ``d -> inf`` limit (:func:`rfdsm.theory`): one task per curve along the sweep's
    curve axis, solved in order so that each point starts from its neighbour's solution."""

    name, finite_size, style, label = "theory", False, "line", "theory"
    options = ("metrics",)

    def parse(self, section):
        # limits of metrics computed only on request (rfdsm.metrics, default=False)
        return {"metrics": _metric_names(section["metrics"], "theory")} if "metrics" in section \
            else {}

    def count(self, section, points, curve_points):
        return points, points // curve_points

    def check(self, settings, options):
        # refuse at load time what the equations do not cover (an estimator or data model
        # without theory, a finite tau on structured data), not one failed task per curve later
        from .theory import solver_for

        for s in settings:
            try:
                solver_for(s)
            except ValueError as exc:
                raise ValueError(f"[theory] grid point {s}: {exc}") from None

    def tasks(self, settings, options, curve):
        tasks = [self._task(c) for c in group_curves(settings, curve)]
        if options.get("metrics"):
            for t in tasks:
                t["metrics"] = list(options["metrics"])
        return tasks

    def run(self, task):
        from .theory import theory_curve

        settings = [as_setting(s) for s in task["settings"]]
        results = list(theory_curve(settings, metrics=task["metrics"]) if task.get("metrics")
                       else theory_curve(settings))
        if len(results) != len(settings) or any(r.setting != s
                                                 for r, s in zip(results, settings)):
            raise RuntimeError("the theory returned results that do not match the requested "
                               "settings")
        return [row for r in results for row in r.rows()]


def _metric_names(value, evaluator: str = "simulate") -> list[str]:
    """``[<evaluator>] metrics``: registered metrics besides train/test/score and the default
    ones (e.g. the diagnostics of rfdsm.diagnostics, computed on request), with a function
    for that evaluator."""
    from .diagnostics import DIAGNOSTICS
    from .metrics import get_metric

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
        if getattr(metric, evaluator) is None:
            raise ValueError(f"{key}: the metric {v!r} has no {evaluator} function")
    return list(dict.fromkeys(value))


class Simulate(Evaluator):
    """The exact finite-``d`` simulator (:func:`rfdsm.simulate`): one task per
    (setting, d, seed), the largest dimensions first so that the long tasks start early and a
    pool drains evenly.

    Settings that differ only in ``tau`` share their draws, moments and the eigenbasis of the
    training Gram, so they are one task per (d, seed): :func:`rfdsm.simulate.simulate_tau_curve`
    gives all their rows from one fit.  A group of one setting keeps the task key of a sweep
    without a ``tau`` axis, so journals written before the grouping resume."""

    name, finite_size, style, label = "simulate", True, "points", "simulation"
    options = ("d", "seeds", "seed", "metrics")

    def parse(self, section):
        out = {"d": parse_dims(section, "simulate", "the dimension(s) to simulate"), "seeds": check_int(section.get("seeds", 1), "simulate.seeds", 1),
               "seed": check_int(section.get("seed", 0), "simulate.seed", 0)}
        if "metrics" in section:  # metrics computed only on request (rfdsm.metrics, default=False)
            out["metrics"] = _metric_names(section["metrics"])
        return out

    def check(self, settings, options):
        for s in settings:
            for d in options["d"]:
                try:
                    s.sizes(d)
                except ValueError as exc:
                    raise ValueError(f"simulate.d = {show(d)} with psi_n = {s.psi_n:g}, "
                                     f"psi_p = {s.psi_p:g}: {exc}") from None

    def count(self, section, points, curve_points):
        seeds = section.get("seeds", 1)
        seeds = seeds if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1 \
            else 1
        rows = points * count_values(section.get("d")) * seeds
        return rows, rows

    def count_grid(self, section, sizes, curve):
        # the grid is a product, so grouping along tau divides the tasks by its length
        rows, _ = self.count(section, math.prod(sizes.values()), sizes.get(curve, 1))
        return rows, rows // sizes.get("tau", 1)

    def tasks(self, settings, options, curve):
        from .metrics import simulation_metrics

        # the metrics travel with the task (by value), like the setting's objects: one
        # registered only in the parent (a script's __main__, a notebook) reaches the workers
        metrics = simulation_metrics(options.get("metrics"))
        first, count = options["seed"], options["seeds"]
        out = []
        for group in group_curves(settings, "tau"):
            keys = "\n".join(setting_key(s) for s in group)
            for d in options["d"]:
                for seed in range(first, first + count):
                    task = {"key": f"simulate:{digest(f'{keys}|{d}|{seed}')}",
                            "kind": self.name, "d": d, "seed": seed, "rows": len(group),
                            "evaluator": self, "metrics": metrics}
                    if len(group) == 1:  # the task format (and key) of the first journals
                        task["setting"] = group[0]
                    else:
                        task["settings"] = list(group)
                    out.append(task)
        out.sort(key=lambda t: -t["d"])
        return out

    def run(self, task):
        from .simulate import simulate, simulate_tau_curve

        d, seed, metrics = task["d"], task["seed"], task.get("metrics")
        if "settings" not in task:
            return simulate(as_setting(task["setting"]), d, seed=seed, metrics=metrics).rows()
        settings = [as_setting(s) for s in task["settings"]]
        try:
            results = simulate_tau_curve(settings[0], [s.tau for s in settings], d, seed=seed,
                                         metrics=metrics)
        except NotImplementedError:
            # an estimator given only by its solve() has no filter to apply per tau
            results = [simulate(s, d, seed=seed, metrics=metrics) for s in settings]
        if [r.setting for r in results] != settings:
            raise RuntimeError("the tau curve returned results that do not match the "
                               "requested settings")
        return [row for r in results for row in r.rows()]


# --- the registry --------------------------------------------------------------------------
_REGISTRY: dict[str, Evaluator] = {}
_BUILTINS = ("theory", "simulate")


def register_evaluator(evaluator: Evaluator, *, overwrite: bool = False) -> Evaluator:
    """Add ``evaluator`` (an :class:`Evaluator` instance) under ``evaluator.name``.

    Sweeps accept its name in ``sweep.evaluators`` and its section ``[<name>]`` with the keys
    ``options`` and ``grid``; figures draw its rows by ``style``.  For worker processes and
    Dask, define its class in an importable module (tasks carry the object, and unpickling it
    imports that module)."""
    ev = evaluator
    if not isinstance(ev, Evaluator):
        raise ValueError(f"an evaluator must be an rfdsm.evaluators.Evaluator, got "
                         f"{type(ev).__name__}")
    name = ev.name
    if not isinstance(name, str) or not name or ":" in name or name in _RESERVED:
        raise ValueError(f"evaluator name must be a non-empty string without ':' and other "
                         f"than {', '.join(_RESERVED)}, got {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"evaluator {name!r} is already registered (pass overwrite=True)")
    if name in _BUILTINS and name in _REGISTRY:
        raise ValueError(f"the built-in evaluator {name!r} cannot be replaced")
    if ev.style not in STYLES:
        raise ValueError(f"evaluator {name!r}: style must be one of {STYLES}, got {ev.style!r}")
    if not isinstance(ev.finite_size, bool):
        raise ValueError(f"evaluator {name!r}: finite_size must be True or False")
    opts = ev.options
    if not isinstance(opts, tuple) or not all(isinstance(o, str) for o in opts) \
            or "grid" in opts:
        raise ValueError(f"evaluator {name!r}: options must be a tuple of key names other "
                         f"than 'grid', got {opts!r}")
    if not ev.label:
        ev.label = name
    _REGISTRY[name] = ev
    return ev


def unregister_evaluator(name: str) -> None:
    """Remove a registered evaluator (the built-ins stay)."""
    if name in _BUILTINS:
        raise ValueError(f"the built-in evaluator {name!r} cannot be removed")
    _REGISTRY.pop(name, None)


def get_evaluator(name: str) -> Evaluator:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown evaluator {name!r} (registered: "
                         f"{', '.join(_REGISTRY)})") from None


def registered_evaluators() -> tuple[str, ...]:
    """Names in registration order (the built-ins first): the order of a sweep's tasks."""
    return tuple(_REGISTRY)


def evaluator_names(**where) -> tuple[str, ...]:
    """Registered names whose attributes equal ``where``, e.g. ``finite_size=False``."""
    return tuple(n for n, ev in _REGISTRY.items()
                 if all(getattr(ev, k) == v for k, v in where.items()))


register_evaluator(Theory())
register_evaluator(Simulate())

# the sampler (rfdsm/sample/evaluator.py): f_mem in the table beside the learning curves
from .sample.evaluator import Sample  # noqa: E402  (needs Evaluator, defined above)

register_evaluator(Sample())
