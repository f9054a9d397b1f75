"""Data models: the target distribution of ``x_0``.

A data model supplies what depends on the law of ``x_0`` and nothing else:

* ``sample(n, d, rng) -> X`` (n x d), training points and the fresh points of Monte Carlo
  checks;
* ``bayes(t)``: the smallest possible test error at diffusion time ``t``, reached by the true
  score (a number, or elementwise on an array or a column);
* ``population_moments(act, W, h, corr, ops)``: the exact Gram ``U_pop = E phi phi^T`` and
  cross-moment ``V_pop = E eps phi^T`` of a fresh noised point ``y = a x_0 + sqrt(h) eps``
  (``docs/simulator.md``, Sec. 4), from which the test and score errors follow;
* ``has_theory``: :func:`rfdsm.theory` has its equations.

The training moments given the points (finite ``m`` and ``m = inf``) see the data only
through ``X``, so they need nothing from the data model.  Built-in: :class:`Isotropic`,
``x_0 ~ N(0, I_d)``, for which ``y ~ N(0, I_d)`` at every ``t`` (``docs/model.md``).  A new
data model (e.g. a covariance ``Sigma``) is a subclass plus one :func:`register_data`.
Identity is by content (:attr:`DataModel.fingerprint`) and a pickled model travels by
value, as for activations and estimators.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ._registry import ByContent, Registry

__all__ = ["DataModel", "Isotropic", "register_data", "get_data", "registered_data"]

_PROBE_T = (0.01, 0.3, 2.0)


class DataModel(ByContent):
    """Base class; subclasses set ``name`` and implement the methods."""

    name: str = ""
    description: str = ""
    has_theory: bool = False
    _registry_kind = "data model"

    def sample(self, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def bayes(self, t):
        raise NotImplementedError

    def population_moments(self, act, W, h: float, corr=None, ops=None):
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """Name, class, Bayes levels and a small sample at fixed probes (12 digits)."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            x = self.sample(3, 4, np.random.default_rng(12345))
            parts = [self.name, type(self).__qualname__,
                     [f"{float(self.bayes(t)):.12g}" for t in _PROBE_T],
                     [f"{v:.12g}" for v in np.ravel(x)]]
            fp = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
            self.__dict__["_fingerprint"] = fp
        return fp


class Isotropic(DataModel):
    """``x_0 ~ N(0, I_d)``: ``y ~ N(0, I_d)``, the true score is ``-y`` and the Bayes test
    error is ``a^2 = exp(-2t)`` (``E[x_0 | y] = a y``)."""

    name = "isotropic"
    description = "x_0 ~ N(0, I_d)"
    has_theory = True

    def sample(self, n, d, rng):
        return rng.standard_normal((n, d))

    def bayes(self, t):
        if isinstance(t, (int, float)):
            return math.exp(-2.0 * t)
        return np.exp(-2.0 * t)

    def population_moments(self, act, W, h, corr=None, ops=None):
        # y ~ N(0, I): the Mehler series with means 0 and Stein's lemma (rfdsm.simulate.fit)
        from .simulate import fit

        return fit.population_moments(act, W, h, corr, fit.HOST if ops is None else ops)


_REGISTRY = Registry("data model", "data", DataModel, builtins=(Isotropic(),))


def register_data(model: DataModel, *, overwrite: bool = False) -> DataModel:
    """Add ``model`` under ``model.name`` (``Setting(data=model.name)`` then finds it)."""
    return _REGISTRY.register(model, overwrite)


def get_data(name: str) -> DataModel:
    return _REGISTRY.get(name)


def registered_data() -> tuple[str, ...]:
    return _REGISTRY.names()
