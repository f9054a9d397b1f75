"""Full-batch gradient descent with a finite step (and heavy-ball momentum) from ``A = 0``
(``docs/model.md``, "Optimizers"): the built-in estimator ``gd``.

A step of size ``eta`` on ``A`` advances the training time by ``delta = eta / d^2`` (the
setting's ``step``), so ``k = tau / delta`` steps reach ``tau`` and every optimizer sits on the
time axis of gradient flow.  With ``c = 2h/psi_p`` the ``k``-step filter is
``g_k(s) = (1 - (1 - c delta (s + lam))^k)/(s + lam)`` (momentum ``beta``: its two-term
recursion, :class:`~rfdsm.estimators.base.StepRule`); ``delta -> 0`` at fixed ``tau`` is
gradient flow, ``tau = inf`` with a stable step the ridge minimiser.  A step is stable while
``c delta (s_max + lam) < 2 (1 + beta)``; an unstable one is refused when the Gram's largest
eigenvalue is known (in the fit), never returned as a number.
"""

from __future__ import annotations

import math

from .base import Estimator, Resolvent, StepRule, flow_rate

__all__ = ["GradientDescent"]


def _steps(setting) -> int:
    step = setting.step
    if not step > 0:
        raise ValueError("step must be > 0 for estimator gd (the step delta = eta/d^2 in tau "
                         "units; step -> 0 is gradient flow, estimator ridge with tau)")
    k = setting.tau / step
    if abs(k - round(k)) > 1e-9 * max(1.0, k):
        raise ValueError(f"tau = {setting.tau:g} must be a whole number of steps of "
                         f"step = {step:g} (tau / step = {k:.6g})")
    return int(round(k))


def _form(setting):
    if setting.tau == math.inf:
        return Resolvent(setting.lam)  # where the step is stable (checked in the fit)
    return StepRule(setting.lam, flow_rate(setting) * setting.step, _steps(setting),
                    setting.momentum)


class GradientDescent(Estimator):
    """``k = tau / step`` steps of gradient descent (heavy ball ``momentum``) from ``A = 0``."""

    def __init__(self):
        super().__init__("gd", form=_form,
                         description="gradient descent with a finite step (Setting.step, in tau "
                                     "units) and heavy-ball momentum (Setting.momentum)")

    def check(self, evals, setting) -> None:
        s_max = float(evals[-1])
        rate = flow_rate(setting) * setting.step
        if setting.step > 0 and not StepRule(setting.lam, rate, 1, setting.momentum).stable(s_max):
            limit = 2.0 * (1.0 + setting.momentum) / (flow_rate(setting) * (s_max + setting.lam))
            raise ValueError(f"step = {setting.step:g} is unstable here: gradient descent "
                             f"diverges (c step (s_max + lam) = {rate * (s_max + setting.lam):.4g}"
                             f" >= 2 (1 + momentum)); take step < {limit:.4g}")
