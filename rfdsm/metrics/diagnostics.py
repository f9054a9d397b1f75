"""The diagnostics of ``docs/model.md``, "Empirical test loss, bias and variance", declared as
metrics (``default=False``: computed only when named, ``metrics=DIAGNOSTICS``).

* ``test_emp``: the loss with the noise averaged exactly on the ``n`` training points;
* ``beta = -(1/d) E_y[y . s(y)]``: the mean score is ``-beta y`` to leading order;
* ``bias2``, ``variance``: ``score = bias2 + variance`` (isotropic target only).

Their values are the evaluators' algorithms: per seed :mod:`rfdsm.simulate.diagnostics`
(``test_emp`` at finite ``m`` runs the Mehler series of the ``m = inf`` moments, 0.4-10 times
the fit; the radial profile of ``bias2`` 0-20 % of a fit at ``d = 100-200``), the limits
:mod:`rfdsm.theory.diagnostics` (a few averages at the fixed point; ``docs/theory.md``,
Sec. 11).  :func:`rfdsm.diagnostics.bias_variance` pools several seeds without the bias of
the per-seed radial profile.
"""

from __future__ import annotations

__all__ = ["DIAGNOSTICS", "METRICS"]

#: The names of the diagnostic metrics, for ``simulate(..., metrics=DIAGNOSTICS)``.
DIAGNOSTICS = ("test_emp", "beta", "bias2", "variance")

_DESCRIPTIONS = {
    "test_emp": "loss with the noise averaged on the training points (m = inf training loss)",
    "beta": "-(1/d) E[y.s(y)]: the mean score is -beta y to leading order",
    "bias2": "(1/d) E|s*(y) - <s(y)>|^2 (per seed: its own radial bias)",
    "variance": "score - bias2: the spread of s around its mean over draws",
}


def _declare():
    from . import Metric

    return tuple(Metric(name, description=_DESCRIPTIONS[name], default=False,
                        evaluated=("simulate", "theory")) for name in DIAGNOSTICS)


METRICS = _declare()
