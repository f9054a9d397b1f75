"""Metrics: numbers computed from a fitted score.

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

Light (no NumPy work at import): the registry is read when a simulation starts.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

__all__ = ["Metric", "register_metric", "unregister_metric", "get_metric", "registered_metrics",
           "simulation_metrics", "theory_metrics", "TRAIN_ROUNDOFF"]

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

    def __reduce__(self):
        if _BUILTINS.get(self.name) is self:
            return (_builtin, (self.name,))
        import cloudpickle

        return (_unpickle, (self.name, cloudpickle.dumps((self.simulate, self.theory)),
                            self.description, self.default))


def _builtin(name):
    return _BUILTINS[name]


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
_REGISTRY: dict[str, Metric] = dict(_BUILTINS)


def register_metric(name: str, simulate: Callable | None = None, theory: Callable | None = None,
                    *, description: str = "", overwrite: bool = False,
                    default: bool = True) -> Metric:
    """Add a metric: ``simulate(fitted) -> float`` on each seed's
    :class:`~rfdsm.simulate.fit.FittedScore` and/or ``theory(setting, result) -> float``, the
    limit from the theory's :class:`~rfdsm.Result`.  ``default=False``: a simulation computes
    it only when it is named (its cost is not to be paid by every fit)."""
    from . import params

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"metric name must be an identifier, got {name!r}")
    if name in _BUILTINS:
        raise ValueError(f"the built-in metric {name!r} cannot be replaced")
    if name in _RESERVED or name in params.names() or name.endswith("_se"):
        raise ValueError(f"metric name {name!r} is a column of the result table already "
                         "(or ends in _se, kept for standard errors)")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"metric {name!r} is already registered (pass overwrite=True)")
    for what, fn in (("simulate", simulate), ("theory", theory)):
        if fn is not None and not callable(fn):
            raise ValueError(f"metric {name!r}: {what} must be callable")
    if simulate is None and theory is None:
        raise ValueError(f"metric {name!r} needs a simulate or a theory function")
    if not isinstance(default, bool):
        raise ValueError(f"metric {name!r}: default must be True or False, got {default!r}")
    metric = Metric(name, simulate, theory, description, default)
    _REGISTRY[name] = metric
    return metric


def unregister_metric(name: str) -> None:
    """Remove a registered metric (the built-ins stay)."""
    if name in _BUILTINS:
        raise ValueError(f"the built-in metric {name!r} cannot be removed")
    _REGISTRY.pop(name, None)


def get_metric(name: str) -> Metric:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r} (registered: {', '.join(_REGISTRY)})") from None


def registered_metrics() -> tuple[str, ...]:
    """Names in registration order, the built-ins (``train, test, score``) first."""
    return tuple(_REGISTRY)


def simulation_metrics(metrics=None) -> tuple[Metric, ...]:
    """The metrics a simulation computes: the built-ins, then ``metrics`` (names or
    :class:`Metric` objects; default: every registered metric with a ``simulate`` and
    ``default=True``)."""
    if metrics is None:
        return tuple(m for m in _REGISTRY.values() if m.simulate is not None and m.default)
    out = dict(_BUILTINS)
    for m in metrics:
        m = m if isinstance(m, Metric) else get_metric(m)
        if m.simulate is None:
            raise ValueError(f"metric {m.name!r} has no simulate function")
        out[m.name] = m
    return tuple(out.values())


def theory_metrics(metrics=None) -> tuple[Metric, ...]:
    """The metrics whose limits :func:`rfdsm.theory` adds to its result: ``metrics`` (names or
    :class:`Metric` objects; ``"all"``: every registered one with a ``theory``; default: those
    with a ``theory`` and ``default=True``, as a simulation that names none)."""
    if metrics is None or metrics == "all":
        return tuple(m for m in _REGISTRY.values()
                     if m.theory is not None and (m.default or metrics == "all"))
    out = []
    for m in metrics:
        m = m if isinstance(m, Metric) else get_metric(m)
        if m.name in _BUILTINS:
            continue  # train, test, score are the record's own fields
        if m.theory is None:
            raise ValueError(f"metric {m.name!r} has no theory function")
        out.append(m)
    return tuple(out)


# test_emp, beta, bias2, variance (docs/model.md, "Empirical test loss, bias and variance")
from . import diagnostics as _diagnostics  # noqa: E402,F401  (registers them)
# test_par, test_perp, score_par, score_perp (docs/model.md, "Structured data")
from . import subspace as _subspace  # noqa: E402,F401  (registers them)
