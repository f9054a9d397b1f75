"""Exact population moments ``U_pop = E phi phi^T``, ``V_pop = E eps phi^T`` of a fresh noised
point ``y = a x_0 + sqrt(h) eps``, read from the data model's law (``docs/simulator.md``,
Secs. 1 and 4); the test and score errors follow from them.

* :class:`~rfdsm.data.GaussianLaw` ``N(mu, Sigma)``: ``y ~ N(a mu, Gamma)``,
  ``Gamma = a^2 Sigma + h I``.  The preactivation ``u_i = w_i.y / sqrt d`` has mean
  ``a w_i.mu / sqrt d`` and the covariance ``W Gamma W^T / d`` (the Gram of
  ``W Gamma^{1/2}``), so ``U_pop`` is the Mehler series on those correlations with Hermite
  coefficients at each feature's own mean and scale; ``eps`` and ``u_i`` are jointly Gaussian
  with ``Cov(eps, u_i) = sqrt(h/d) w_i`` whatever ``Sigma`` and ``mu``, so Stein's lemma keeps
  ``V_pop = sqrt(h/d) W^T diag(E sigma'(u_i))``.
* :class:`~rfdsm.data.MixtureLaw`: both moments are linear in the law, ``sum_k pi_k`` of the
  components' (``eps`` is independent of the class).
* :class:`~rfdsm.data.SampledLaw`: no closed form; refused here by name.
"""

from __future__ import annotations

import math

import numpy as np

from ..data import GaussianLaw, MixtureLaw
from . import fit as _fit

__all__ = ["population_moments", "law_of"]


def law_of(model):
    """The law of ``model`` (a data model or a law descriptor), checked against its sample."""
    checked = getattr(model, "checked_law", None)
    return checked() if checked is not None else model


def _gaussian(law: GaussianLaw, act, W, h, corr, ops):
    p, d = W.shape
    if law.is_isotropic:  # Gamma = I: the correlations of W itself
        return _fit.population_moments(act, W, h, corr, ops)
    O = law.orientation(d)
    half = np.sqrt(law.gamma(h, d))
    if O is None:
        Wg = W * ops.to_device(half)[None, :]
    else:
        Wg = W @ ops.to_device(O @ (half[:, None] * O.T))
    means = None
    if not law.is_centred:
        means = math.sqrt(1.0 - h) * ops.to_host(W @ ops.to_device(law.mean(d))) / math.sqrt(d)
    return _fit.population_moments(act, W, h, ops.correlations(Wg), ops, means=means)


def population_moments(model, act, W, h: float, corr=None, ops=_fit.HOST,
                       cache: dict | None = None) -> "_fit.Moments":
    """``(U_pop, V_pop)`` of the law of ``model`` (a :class:`~rfdsm.data.DataModel` or a law)
    for features ``W`` at noise level ``h``; ``corr``: :func:`mehler.correlations` of ``W``.

    ``cache`` (a dict kept across calls with the same ``W``, e.g. the sampler's times): for
    ``N(0, I)``, ``y ~ N(0, I)`` at every time, so ``U_pop`` does not depend on ``h`` and
    ``V_pop`` is ``sqrt(h)`` times its value at ``h = 1``: formed once, scaled per call."""
    law = law_of(model)
    if cache is not None and isinstance(law, GaussianLaw) and law.is_isotropic:
        if "h=1" not in cache:
            cache["h=1"] = _gaussian(law, act, W, 1.0, corr, ops)
        pop = cache["h=1"]
        return _fit.Moments(pop.S, math.sqrt(h) * pop.C, pop.noise_sq, pop.info)
    if isinstance(law, GaussianLaw):
        return _gaussian(law, act, W, h, corr, ops)
    if isinstance(law, MixtureLaw):
        parts = [_gaussian(c, act, W, h, corr, ops) for c in law.components]
        U = sum(pi * m.S for pi, m in zip(law.weights, parts))
        C = sum(pi * m.C for pi, m in zip(law.weights, parts))
        info = {k: max(m.info[k] for m in parts) for k in parts[0].info}
        return _fit.Moments(U, C, 1.0, info)
    name = getattr(model, "name", type(model).__name__)
    raise ValueError(f"data model {name!r}: the simulator has no exact population moments for "
                     f"{law.describe()} (a law given by a sampler); they need Monte Carlo")
