"""The errors split into the data's support and its complement: four registered metrics.

For data with covariance ``Sigma`` (:class:`rfdsm.data.Spectrum`; a subspace when ``psi_d < 1``)
let ``Pi`` project on the coordinates where ``Sigma > 0`` (the data subspace) and
``Pi_perp = I - Pi``.  Every error is a sum over the ``d`` output coordinates, so

    test_par  = (1/d) E|Pi (B phi + eps)|^2,       test_perp  = (1/d) E|Pi_perp (B phi + eps)|^2,
    score_par = (1/d) E|Pi (s_A - s*)(y)|^2,        score_perp = (1/d) E|Pi_perp (s_A - s*)(y)|^2,

with ``test = test_par + test_perp`` and ``score = score_par + score_perp`` (all divided by ``d``,
not by the dimension of each part).  The Bayes error lies in the subspace (``eps`` is a function
of ``y`` on the complement, where ``y = sqrt(h) eps``), so ``test_perp = h score_perp`` and
``test_par = h score_par + bayes``.  Exactly, with the population moments of the fit
(``docs/simulator.md``, Sec. 1) taken one output coordinate ``j`` at a time:
``q_j = (K^T U_pop K)_jj - 2 (K^T V_pop^T)_jj``, ``test_par = sum_{j in Pi} (1 + q_j)/d`` and
``score_par = sum_{j in Pi} (1/gamma_j + q_j/h)/d``, ``gamma_j = a^2 lambda_j + h``.

The theory gives the same four numbers (``docs/theory.md``, eq. (H13)) as its
``Result.metrics`` for a covariance spectrum (so they are columns of a sweep's table), which
the metrics' ``theory`` functions read.  A simulation computes them only when they are named
(``default=False``: ``simulate(..., metrics=SPLIT_METRICS)``, a sweep's ``[simulate] metrics``),
so that the tables of other sweeps keep their columns.  For isotropic data ``par`` is the
whole error and ``perp`` is 0.  Declared here, loaded with the registry of metrics.
"""

from __future__ import annotations

import numpy as np


__all__ = ["SPLIT_METRICS", "split_errors", "METRICS"]

#: The metric names, in the order of the table's columns.
SPLIT_METRICS = ("test_par", "test_perp", "score_par", "score_perp")


def split_errors(f) -> dict:
    """The four split errors of a :class:`rfdsm.simulate.fit.FittedScore` (cached on it)."""
    cached = f.__dict__.get("_split_errors")
    if cached is not None:
        return cached
    model, d, h = f.setting.data_model, f.d, f.h
    law = model.law()
    test = 1.0 + f.population_quadratic / d
    score = model.score_offset(f.t, h, d) + f.population_quadratic / (d * h)
    if law.psi_d == 1.0:  # the data fill every direction
        out = {"test_par": test, "test_perp": 0.0, "score_par": score, "score_perp": 0.0}
    else:
        if law.orientation(d) is not None:
            raise ValueError(f"data model {model.name!r}: the subspace split is computed on the "
                             "coordinate axes; its law has another orientation")
        xp = f.ops.xp
        K, pop = f.K, f.population
        q = f.ops.to_host(xp.sum(K * (pop.S @ K), axis=0) - 2.0 * xp.sum(K * pop.C.T, axis=0))
        inside = law.support(d)
        gamma = law.gamma(h, d)
        parts = {}
        for name, mask in (("par", inside), ("perp", ~inside)):
            parts[f"test_{name}"] = float(np.sum(1.0 + q[mask]) / d)
            parts[f"score_{name}"] = float(np.sum(1.0 / gamma[mask] + q[mask] / h) / d)
        out = {k: parts[k] for k in SPLIT_METRICS}
    f.__dict__["_split_errors"] = out
    return out


def _declare():
    from . import Metric

    def sim(name):
        return lambda f: split_errors(f)[name]

    def lim(name):
        return lambda setting, result: result.metrics.get(name)

    return tuple(Metric(name, sim(name), lim(name), default=False,
                        description=f"{name.split('_')[0]} error in the data "
                                    f"{'subspace' if name.endswith('par') else 'complement'}, / d")
                 for name in SPLIT_METRICS)


METRICS = _declare()
