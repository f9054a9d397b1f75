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

from ..core.registry import Registry
from .base import (STYLES, Evaluator, as_setting, canonical, digest, group_curves,  # noqa: F401
                   setting_key)

__all__ = ["Evaluator", "register_evaluator", "unregister_evaluator", "get_evaluator",
           "registered_evaluators", "evaluator_names", "setting_key", "digest", "as_setting",
           "group_curves", "canonical", "STYLES"]

_RESERVED = ("sweep", "grid")


def _load_builtins() -> tuple:
    """The built-in evaluators, made on first use (the registry imports no plug-in at import
    time), in the order of a sweep's tasks."""
    from .sample import Sample
    from .simulate import Simulate
    from .theory import Theory

    out = (Theory(), Simulate(), Sample())
    for ev in out:
        ev.label = ev.label or ev.name
    return out


_REGISTRY = Registry("evaluator", "evaluator", Evaluator, builtins=_load_builtins)


def __getattr__(name):
    # the built-in adapters' classes, for callers that subclass or inspect them
    if name in ("Theory", "Simulate", "Sample"):
        import importlib

        return getattr(importlib.import_module(f".{name.lower()}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    return _REGISTRY.register(ev, overwrite)


def unregister_evaluator(name: str) -> None:
    """Remove a registered evaluator (the built-ins stay)."""
    _REGISTRY.unregister(name)


def get_evaluator(name: str) -> Evaluator:
    try:
        return _REGISTRY._items[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown evaluator {name!r} (registered: "
                         f"{', '.join(_REGISTRY.names())})") from None


def registered_evaluators() -> tuple[str, ...]:
    """Names in registration order (the built-ins first): the order of a sweep's tasks."""
    return _REGISTRY.names()


def evaluator_names(**where) -> tuple[str, ...]:
    """Registered names whose attributes equal ``where``, e.g. ``finite_size=False``."""
    return tuple(n for n, ev in _REGISTRY._items.items()
                 if all(getattr(ev, k) == v for k, v in where.items()))
