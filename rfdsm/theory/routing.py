"""Which equations evaluate a setting: read from the data model's law and the estimator's
spectral form, never from their names.

The theory has equations (``docs/theory.md``) for

* a centred Gaussian law, ``x_0 ~ N(0, Sigma)`` with the spectrum of ``Sigma`` a finite set of
  atoms (isotropic: Secs. 3-8; a covariance spectrum or a subspace: Sec. 12); any orientation
  of ``Sigma`` (``W`` is isotropic);
* an estimator whose form is a resolvent ``1/(s + z)`` (ridge at ``z``, any ``m``), or gradient
  flow ``(1 - exp(-ct (s + lam)))/(s + lam)`` on isotropic data (Sec. 10).

Everything else is refused with a ValueError that names the missing piece; the setting handed
to the solver is the built-in ridge at the form's parameters (:func:`route`), so a user
estimator whose form is the resolvent at ``2 lam`` is solved as ridge at ``2 lam``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..data import GaussianLaw, MixtureLaw
from ..estimators import GradientFlow, Resolvent, flow_rate

__all__ = ["Route", "route", "law_of"]

_KNOWN = "a resolvent 1/(s + z) (ridge) or gradient flow (ridge at a finite tau)"


@dataclass(frozen=True)
class Route:
    """The solver ``solver(setting, warm) -> Solution`` and the ``setting`` to hand it (the
    built-in ridge at the estimator's form)."""

    solver: Callable
    setting: object


def law_of(setting):
    """The checked law of the setting's data model, or a ValueError naming the model."""
    model = setting.data_model
    try:
        return model.checked_law()
    except NotImplementedError as exc:
        raise ValueError(str(exc)) from None


def _refuse(what: str) -> None:
    raise ValueError(f"the theory has no equations for {what}; evaluate it with rfdsm.simulate")


def _check_law(setting, law) -> None:
    name = setting.data_model.name
    if isinstance(law, MixtureLaw):
        _refuse(f"the data model {name!r}: a Gaussian mixture ({len(law.weights)} classes)")
    if not isinstance(law, GaussianLaw):
        _refuse(f"the data model {name!r}: a law given by a sampler ({law.describe()})")
    if not law.is_centred:
        _refuse(f"the data model {name!r}: a law with a mean (|mu|^2/d = {law.mean_norm:g}; "
                "the Gaussian equivalence with per-feature means is not derived)")


def route(setting) -> Route:
    """The solver and the solver's setting for ``setting``; a ValueError naming what the
    theory has no equations for."""
    law = law_of(setting)
    _check_law(setting, law)
    est = setting.estimator_object
    form = est.spectral_form(setting)
    if form is None:
        _refuse(f"the estimator {est.name!r}: it is given by a filter function only (state "
                f"its spectral form with Estimator(..., form=...); the theory evaluates "
                f"{_KNOWN})")
    if isinstance(form, Resolvent):
        solved = setting.replace(estimator="ridge", lam=form.z, tau=math.inf)
    elif isinstance(form, GradientFlow):
        if not law.is_isotropic:
            _refuse(f"finite tau (tau = {form.ct / flow_rate(setting):g}) with the data model "
                    f"{setting.data_model.name!r} (gradient flow is derived for isotropic "
                    "data); use tau = inf")
        tau = form.ct / flow_rate(setting)
        solved = setting.replace(estimator="ridge", lam=form.lam, tau=tau)
    else:
        _refuse(f"the estimator {est.name!r}: {form.describe()} (it has equations for "
                f"{_KNOWN})")
    return Route(_solver(solved, law), solved)


def _solver(setting, law: GaussianLaw):
    if setting.tau != math.inf:  # gradient flow at a finite time, docs/theory.md Sec. 10
        from .flow import solve_flow

        return solve_flow
    if not law.is_isotropic:  # a covariance spectrum (docs/theory.md Sec. 12)
        from .structured import solve_data

        return solve_data
    if setting.m == 1:
        from .m1 import solve_m1

        return solve_m1
    if setting.m == math.inf:
        from .minf import solve_minf

        return solve_minf
    from .finite_m import solve_finite_m

    return solve_finite_m
