"""Estimators: how the readout ``B`` is fitted from the training moments, the estimator seam.

Every estimator is a spectral filter ``g`` of the training Gram, ``B = -C g(S)``, and states
it in a form the evaluators read (:mod:`rfdsm.estimators.base`: :class:`Resolvent`,
:class:`GradientFlow`, :class:`StepRule`).  Built-in: ``ridge`` (:mod:`.ridge`; gradient flow
at the setting's ``tau``, the minimiser at ``tau = inf``) and ``gd`` (:mod:`.gd`: gradient descent
with a finite ``step`` and ``momentum``).  A new estimator is an
:class:`Estimator` (or a subclass) plus one :func:`register_estimator`; identity is by
content and a pickled estimator carries its functions by value.
"""

from __future__ import annotations

from ..core.registry import Registry
from .base import (Estimator, GradientFlow, Resolvent, SpectralForm, StepRule, flow_filter,
                   flow_rate)
from .ridge import Ridge, ridge_solve

__all__ = ["Estimator", "SpectralForm", "Resolvent", "GradientFlow", "StepRule", "Ridge",
           "register_estimator", "get_estimator", "registered_estimators", "ridge_solve",
           "flow_filter", "flow_rate"]

def _builtins():
    from .gd import GradientDescent

    return (Ridge(), GradientDescent())


_REGISTRY = Registry("estimator", "estimator", Estimator, builtins=_builtins)


def register_estimator(est: Estimator, *, overwrite: bool = False) -> Estimator:
    """Add ``est`` under ``est.name`` (``Setting(estimator=est.name)`` then finds it)."""
    return _REGISTRY.register(est, overwrite)


def get_estimator(name: str) -> Estimator:
    return _REGISTRY.get(name)


def registered_estimators() -> tuple[str, ...]:
    return _REGISTRY.names()
