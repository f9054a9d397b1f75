"""Metrics: numbers computed from a fitted score, the metric seam.

A metric has a ``name`` (its column in the result table; ``<name>_se`` is the standard error
over seeds), ``simulate(fitted) -> float`` applied to the
:class:`rfdsm.simulate.fit.FittedScore` of one seed, and optionally ``theory(setting, result)``
(its ``d -> inf`` limit, which :func:`rfdsm.theory` adds to ``Result.metrics`` as a simulation
adds the values: unasked for ``default=True``, by name otherwise; :func:`theory_metrics`).  Built-ins, the three errors of
``docs/model.md`` as quadratic forms in ``B`` (``docs/simulator.md``, Sec. 1):

    train = |Z|^2/(N d) + [tr(B U B^T) + 2 tr(B V^T)] / d                 (training U, V)
    test  = 1 + q_pop / d,     score = c + q_pop / (d h),     q_pop = tr(B U_pop B^T) + 2 tr(B V_pop^T)

(``c = (1/d) tr (a^2 Sigma + h I)^{-1}`` of the data model, 1 for isotropic data.)

:func:`rfdsm.simulate` computes every registered metric that has a ``simulate`` function, so
a new diagnostic is a function plus one :func:`register_metric`.  A metric pickles by value
(its functions through cloudpickle), so that it can travel with a task to a worker process.

A metric either carries its own functions (one registered by a user) or is *declared* here
and implemented by the evaluators (``evaluated``: the built-in diagnostics, whose simulation
and limit are the simulator's and the theory's algorithms: :mod:`rfdsm.simulate.diagnostics`
and :mod:`rfdsm.theory.diagnostics` hand their functions to :func:`implement` when they are
imported); :meth:`Metric.function` returns the function an evaluator runs.  The seam imports
no evaluator; the built-in declarations (:mod:`.diagnostics`, :mod:`.split`) are loaded on the
registry's first use.

Light (no NumPy work at import): the registry is read when a simulation starts.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

from ..core.registry import Registry

__all__ = ["Metric", "register_metric", "unregister_metric", "get_metric", "registered_metrics",
           "simulation_metrics", "theory_metrics", "implement", "TRAIN_ROUNDOFF"]

#: Functions of declared metrics, by evaluator ("simulate", "theory") and name.
_IMPLEMENTATIONS: dict[str, dict] = {"simulate": {}, "theory": {}}


def implement(evaluator: str, functions: dict) -> None:
    """An evaluator's functions for metrics declared with ``evaluated=(evaluator, ...)``."""
    _IMPLEMENTATIONS[evaluator].update(functions)

#: Negative train errors down to this are round-off of ``noise_sq + quadratic/d`` (terms of
#: order 1) and are stored as 0; anything below is kept, to show.
TRAIN_ROUNDOFF = 1e-9

#: Names a metric cannot take: they are columns or keys of a result already.
_RESERVED = ("evaluator", "d", "n", "p", "seed", "converged", "residual", "iterations",
             "wall_time", "version", "bayes", "per_seed", "diagnostics")


@dataclass(frozen=True)
class Metric:
    """``simulate(fitted) -> float`` for one seed; ``theory(setting, result) -> float`` (or
    None) for the limit."""

    name: str
    simulate: Callable | None = None
    theory: Callable | None = None
    description: str = ""
    #: computed by a simulation that names no metrics; False: only when asked for by name
    #: (``simulate(..., metrics=[...])``, a sweep's ``[simulate] metrics``), for costly ones
    default: bool = True
    #: evaluators that implement this metric themselves (:func:`implement`)
    evaluated: tuple = ()

    def function(self, evaluator: str):
        """The function ``evaluator`` ("simulate" or "theory") runs for this metric, or None."""
        own = self.simulate if evaluator == "simulate" else self.theory
        if own is not None or evaluator not in self.evaluated:
            return own
        return _IMPLEMENTATIONS[evaluator][self.name]

    def has(self, evaluator: str) -> bool:
        own = self.simulate if evaluator == "simulate" else self.theory
        return own is not None or evaluator in self.evaluated

    def __reduce__(self):
        if _declared().get(self.name) is self or _BUILTINS.get(self.name) is self:
            return (_builtin, (self.name,))
        import cloudpickle

        return (_unpickle, (self.name, cloudpickle.dumps((self.simulate, self.theory)),
                            self.description, self.default))


def _builtin(name):
    return _BUILTINS.get(name) or _declared()[name]


def _unpickle(name, payload, description, default=True):
    simulate, theory = pickle.loads(payload)
    return Metric(name, simulate, theory, description, default)


def _train(f) -> float:
    value = f.train_moments.noise_sq + f.quadratic(f.train_moments) / f.d
    if -TRAIN_ROUNDOFF <= value < 0.0:
        # a nonnegative loss, below 0 only by the cancellation of its O(1) terms (ridgeless fits)
        value = 0.0
    return value


def _test(f) -> float:
    return 1.0 + f.population_quadratic / f.d


def _score(f) -> float:
    # (1/d) E|s*(y)|^2 + q_pop/(d h): 1 for isotropic data, (1/d) tr Gamma^{-1} for a covariance
    offset = f.setting.data_model.score_offset(f.t, f.h, f.d)
    return offset + f.population_quadratic / (f.d * f.h)


_BUILTINS: dict[str, Metric] = {
    "train": Metric("train", _train, description="training loss on the fit's own noise"),
    "test": Metric("test", _test, description="population denoising loss"),
    "score": Metric("score", _score, description="population score error"),
}


def _load_builtins() -> tuple:
    """train, test, score, then the declared diagnostics and subspace split (their modules
    loaded on the registry's first use)."""
    from . import diagnostics, split

    return (*_BUILTINS.values(), *diagnostics.METRICS, *split.METRICS)


_REGISTRY = Registry("metric", "metrics", Metric, builtins=_load_builtins)


def _declared() -> dict:
    return _REGISTRY._builtins


def register_metric(name: str, simulate: Callable | None = None, theory: Callable | None = None,
                    *, description: str = "", overwrite: bool = False,
                    default: bool = True) -> Metric:
    """Add a metric: ``simulate(fitted) -> float`` on each seed's
    :class:`~rfdsm.simulate.fit.FittedScore` and/or ``theory(setting, result) -> float``, the
    limit from the theory's :class:`~rfdsm.Result`.  ``default=False``: a simulation computes
    it only when it is named (its cost is not to be paid by every fit)."""
    from ..core import params

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"metric name must be an identifier, got {name!r}")
    if name in _REGISTRY._builtins:
        raise ValueError(f"the built-in metric {name!r} cannot be replaced")
    if name in _RESERVED or name in params.names() or name.endswith("_se"):
        raise ValueError(f"metric name {name!r} is a column of the result table already "
                         "(or ends in _se, kept for standard errors)")
    for what, fn in (("simulate", simulate), ("theory", theory)):
        if fn is not None and not callable(fn):
            raise ValueError(f"metric {name!r}: {what} must be callable")
    if simulate is None and theory is None:
        raise ValueError(f"metric {name!r} needs a simulate or a theory function")
    if not isinstance(default, bool):
        raise ValueError(f"metric {name!r}: default must be True or False, got {default!r}")
    return _REGISTRY.register(Metric(name, simulate, theory, description, default), overwrite)


def unregister_metric(name: str) -> None:
    """Remove a registered metric (the built-ins stay)."""
    _REGISTRY.unregister(name)


def get_metric(name: str) -> Metric:
    try:
        return _REGISTRY._items[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r} (registered: "
                         f"{', '.join(_REGISTRY.names())})") from None


def registered_metrics() -> tuple[str, ...]:
    """Names in registration order, the built-ins (``train, test, score``) first."""
    return _REGISTRY.names()


def simulation_metrics(metrics=None) -> tuple[Metric, ...]:
    """The metrics a simulation computes: the built-ins, then ``metrics`` (names or
    :class:`Metric` objects; default: every registered metric with a ``simulate`` and
    ``default=True``)."""
    if metrics is None:
        return tuple(m for m in _REGISTRY._items.values() if m.has("simulate") and m.default)
    out = dict(_BUILTINS)
    for m in metrics:
        m = m if isinstance(m, Metric) else get_metric(m)
        if not m.has("simulate"):
            raise ValueError(f"metric {m.name!r} has no simulate function")
        out[m.name] = m
    return tuple(out.values())


def theory_metrics(metrics=None) -> tuple[Metric, ...]:
    """The metrics whose limits :func:`rfdsm.theory` adds to its result: ``metrics`` (names or
    :class:`Metric` objects; ``"all"``: every registered one with a ``theory``; default: those
    with a ``theory`` and ``default=True``, as a simulation that names none)."""
    if metrics is None or metrics == "all":
        return tuple(m for m in _REGISTRY._items.values()
                     if m.has("theory") and (m.default or metrics == "all"))
    out = []
    for m in metrics:
        m = m if isinstance(m, Metric) else get_metric(m)
        if m.name in _BUILTINS:
            continue  # train, test, score are the record's own fields
        if not m.has("theory"):
            raise ValueError(f"metric {m.name!r} has no theory function")
        out.append(m)
    return tuple(out)

