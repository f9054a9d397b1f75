"""Data models: the target distribution of ``x_0``.

A data model supplies what depends on the law of ``x_0`` and nothing else:

* ``sample(n, d, rng) -> X`` (n x d), training points and the fresh points of Monte Carlo
  checks;
* ``bayes(t)``: the smallest possible test error at diffusion time ``t``, reached by the true
  score (a number, or elementwise on an array or a column);
* ``population_moments(act, W, h, corr, ops)``: the exact Gram ``U_pop = E phi phi^T`` and
  cross-moment ``V_pop = E eps phi^T`` of a fresh noised point ``y = a x_0 + sqrt(h) eps``
  (``docs/simulator.md``, Sec. 4), from which the test and score errors follow;
* ``score_offset(t, h, d)``: ``(1/d) E|s*(y)|^2 = (1/d) tr (a^2 Sigma + h I)^{-1}`` at
  dimension ``d``, the constant of the score error ``score = offset + q_pop/(d h)``
  (``docs/simulator.md``, Sec. 1; the default ``(1 - bayes(t))/h`` is that identity);
* ``true_score(y, h)``: ``s*(y)`` on the rows of ``y`` at noise level ``h`` (the Monte Carlo check);
* ``has_theory``: :func:`rfdsm.theory` has its equations.

The training moments given the points (finite ``m`` and ``m = inf``) see the data only
through ``X``, so they need nothing from the data model.  Built-in: :class:`Isotropic`,
``x_0 ~ N(0, I_d)``, for which ``y ~ N(0, I_d)`` at every ``t`` (``docs/model.md``), and
:class:`Spectrum`, ``x_0 ~ N(0, Sigma)`` with the limiting spectrum of ``Sigma`` a finite
mixture of atoms (data on a subspace of dimension ``D = psi_d d`` is the spectrum
``{psi_d: 1, 1 - psi_d: 0}``, :func:`subspace`; ``docs/model.md``, "Structured data").
Its text form ``spectrum(w1:v1,w2:v2,...)`` (weight ``w_k`` of the eigenvalue ``v_k``) is its
name, so a table, a TOML grid or the command line names it without a registration
(:func:`parse_spectrum`; TOML also takes ``{weights = [...], values = [...]}``).  A new data
model is a subclass plus one :func:`register_data`.  Identity is by content
(:attr:`DataModel.fingerprint`) and a pickled model travels by value, as for activations and
estimators.

The orientation of ``Sigma`` does not matter: ``W`` has i.i.d. Gaussian entries, so
``W O`` has the law of ``W`` for any orthogonal ``O``, and data ``O x_0`` with features
``W O^T`` give the same errors as ``x_0`` with ``W`` (``tests/test_structured.py`` checks
both the distribution and the exact identity).  :class:`Spectrum` therefore puts its
eigenvalues on the coordinate axes, in blocks, the largest first.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from ._registry import ByContent, Registry

__all__ = ["DataModel", "Isotropic", "Spectrum", "subspace", "parse_spectrum", "register_data",
           "get_data", "registered_data"]

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

    def score_offset(self, t: float, h: float, d: int) -> float:
        """``(1/d) tr (a^2 Sigma + h I)^{-1}``; by ``test = h score + bayes`` it is
        ``(1 - bayes)/h`` (override for the exact finite-``d`` value)."""
        return (1.0 - float(self.bayes(t))) / h

    def true_score(self, y, h: float):
        raise NotImplementedError(f"data model {self.name!r} does not give its true score")

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

    def score_offset(self, t, h, d):
        return 1.0  # tr(I)/d: the score error of the very first version, 1 + q_pop/(d h)

    def true_score(self, y, h):
        return -y

    def restricted(self, psi_d: float) -> "DataModel":
        """Data on the first ``D = psi_d d`` coordinates: the spectrum ``{psi_d: 1, 1 - psi_d: 0}``
        (a subclass, whose law may differ, has to say itself what its restriction is)."""
        if psi_d == 1.0:
            return self
        if type(self) is not Isotropic:
            raise ValueError(f"psi_d = {psi_d:g} < 1 needs a data model with a covariance "
                             f"spectrum (isotropic or spectrum(...)), got data model "
                             f"{self.name!r}")
        return subspace(psi_d)


from .covariance import Spectrum, parse_spectrum, subspace  # noqa: E402  (subclasses DataModel)

_REGISTRY = Registry("data model", "data", DataModel, builtins=(Isotropic(),))


def register_data(model: DataModel, *, overwrite: bool = False) -> DataModel:
    """Add ``model`` under ``model.name`` (``Setting(data=model.name)`` then finds it)."""
    if isinstance(getattr(model, "name", None), str) and model.name.startswith(Spectrum.PREFIX):
        raise ValueError(f"data model names starting with {Spectrum.PREFIX!r} are the text "
                         f"form of a spectrum, got {model.name!r}")
    return _REGISTRY.register(model, overwrite)


def get_data(name: str) -> DataModel:
    """The registered data model ``name``, or the :class:`Spectrum` its text form names."""
    if isinstance(name, str) and name.strip().startswith(Spectrum.PREFIX):
        return parse_spectrum(name)
    return _REGISTRY.get(name)


def registered_data() -> tuple[str, ...]:
    return _REGISTRY.names()


from . import subspace as _subspace  # noqa: E402,F401  (registers the par/perp split metrics)
