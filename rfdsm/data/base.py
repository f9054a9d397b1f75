"""The data seam: a data model states the law of ``x_0``; the evaluators read that law.

A :class:`DataModel` answers one question, :meth:`DataModel.law`, with a *law descriptor*:

* :class:`GaussianLaw` -- ``x_0 ~ N(mu, Sigma)`` with ``Sigma = O diag(v) O^T``: the limiting
  spectrum of ``Sigma`` as atoms (a fraction ``w_k`` of the ``d`` eigenvalues equals ``v_k``),
  the mean's energy in each eigenspace (``r_k = |P_k mu|^2 / d``, ``O(1)``: a mean of norm
  ``O(1)`` is invisible in the proportional limit, ``docs/model.md``, "Targets with a mean")
  and optionally the orientation ``O`` at dimension ``d`` (default: the coordinate axes, which
  is no loss for an isotropic ``W``: ``W O`` has the law of ``W``);
* :class:`MixtureLaw` -- ``sum_k pi_k`` of Gaussian laws;
* :class:`SampledLaw` -- only a sampler, with its quenched state (drawn once per seed and shared
  by every draw of that seed): population quantities then need Monte Carlo.

Everything that depends on the law alone is computed from the descriptor, once, here: the
sample, the Bayes level ``bayes(t)`` (the test error of the true score), the true score
``s*(y)`` of the noised law, and the constant ``(1/d) E|s*(y)|^2`` of the score error.  The
population moments of the features, the theory's traces and the sampler's reference law are
the evaluators' business: they read the descriptor and never the model's name.  This module
imports no evaluator (``.importlinter`` checks it).

A model that overrides :meth:`DataModel.sample` must still describe the same law;
:meth:`DataModel.checked_law` draws a small probe sample through the model and refuses a law
that the sample contradicts (mean or variances off by far more than sampling error), so that a
sample from one law is never scored against the population of another.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core import diffusion
from ..core.registry import ByContent

__all__ = ["DataModel", "GaussianLaw", "MixtureLaw", "SampledLaw", "check_atoms",
           "WEIGHT_SUM_TOL"]

#: How far from 1 the weights of a spectrum may sum (they are then divided by their sum).
WEIGHT_SUM_TOL = 1e-9

_PROBE_T = (0.01, 0.3, 2.0)


def check_atoms(weights, values, what: str = "spectrum"):
    """Atoms as two tuples of floats, merged, zero weights refused, the largest value first."""
    try:
        w = [float(v) for v in weights]
        v = [float(x) for x in values]
    except (TypeError, ValueError):
        raise ValueError(f"data: a {what} needs lists of numbers, got weights={weights!r}, "
                         f"values={values!r}") from None
    if not w or len(w) != len(v):
        raise ValueError(f"data: a {what} needs as many weights as values (at least one), "
                         f"got {len(w)} weights and {len(v)} values")
    if not all(math.isfinite(x) and x > 0 for x in w):
        raise ValueError(f"data: the {what}'s weights must be finite numbers > 0, got {w}")
    if not all(math.isfinite(x) and x >= 0 for x in v):
        raise ValueError(f"data: the {what}'s values (eigenvalues of Sigma) must be finite "
                         f"numbers >= 0, got {v}")
    total = math.fsum(w)
    if abs(total - 1.0) > WEIGHT_SUM_TOL:
        raise ValueError(f"data: the {what}'s weights must sum to 1, got {total!r}")
    if max(v) == 0.0:
        raise ValueError(f"data: the {what}'s values must not all be 0 (Sigma = 0 has no data)")
    merged: dict[float, float] = {}
    for wk, vk in zip(w, v):
        merged[vk] = merged.get(vk, 0.0) + wk / total
    order = sorted(merged, reverse=True)
    return tuple(merged[x] for x in order), tuple(order)


@dataclass(frozen=True)
class GaussianLaw:
    """``x_0 ~ N(mu, Sigma)``, ``Sigma = O diag(v) O^T``.

    ``weights``, ``values``: the atoms of the limiting spectrum of ``Sigma`` (at dimension
    ``d`` the block of atom ``k`` ends at coordinate ``round(d (w_1 + ... + w_k))``, largest
    value first).  ``mean_norms``: ``r_k = |P_k mu|^2 / d`` per atom (``None``: centred); at
    dimension ``d`` the mean is constant, ``sqrt(r_k / w_k)``, on the coordinates of atom
    ``k``.  ``basis``: ``d -> O`` (orthogonal, d x d), or ``None`` for the coordinate axes.
    With ``Gamma = a^2 Sigma + h I`` the noised point ``y = a x_0 + sqrt(h) eps`` is
    ``N(a mu, O diag(gamma) O^T)``, its true score ``-Gamma^{-1} (y - a mu)``.
    """

    weights: tuple = (1.0,)
    values: tuple = (1.0,)
    mean_norms: tuple | None = None
    basis: Callable | None = field(default=None, compare=False)

    def __post_init__(self):
        w, v = check_atoms(self.weights, self.values)
        if len(w) != len(tuple(self.weights)) or tuple(v) != tuple(float(x) for x in self.values):
            if self.mean_norms is not None:
                raise ValueError("data: give a law with a mean its atoms once each, largest "
                                 "value first (mean_norms are per atom)")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "values", v)
        if self.mean_norms is not None:
            r = tuple(float(x) for x in self.mean_norms)
            if len(r) != len(w) or not all(math.isfinite(x) and x >= 0 for x in r):
                raise ValueError(f"data: mean_norms (|P_k mu|^2/d per atom) must be {len(w)} "
                                 f"finite numbers >= 0, got {self.mean_norms!r}")
            object.__setattr__(self, "mean_norms", None if not any(r) else r)

    # facts of the limit -----------------------------------------------------------------------
    @property
    def is_centred(self) -> bool:
        return self.mean_norms is None

    @property
    def is_isotropic(self) -> bool:
        """``N(0, I)``: one atom at 1 and no mean (the orientation is then irrelevant)."""
        return self.values == (1.0,) and self.is_centred

    @property
    def mean_norm(self) -> float:
        """``r = |mu|^2 / d``."""
        return 0.0 if self.mean_norms is None else math.fsum(self.mean_norms)

    @property
    def trace(self) -> float:
        """``(1/d) tr Sigma`` in the limit."""
        return math.fsum(w * v for w, v in zip(self.weights, self.values))

    @property
    def psi_d(self) -> float:
        """The fraction of dimensions where ``Sigma > 0``."""
        return math.fsum(w for w, v in zip(self.weights, self.values) if v > 0)

    def bayes(self, t):
        """``(1/d) tr(a^2 Sigma Gamma^{-1})``: ``a^2`` for ``N(0, I)``, ``psi_d a^2`` on a
        subspace; the mean does not enter (``docs/model.md``)."""
        if self.values == (1.0,):  # a^2 / (a^2 + h) with a^2 + h = 1, exactly
            return diffusion.a2_h(t)[0]
        a2, h = diffusion.a2_h(np.asarray(t, dtype=float))
        out = sum(w * (a2 * v) / (a2 * v + h) for w, v in zip(self.weights, self.values))
        return float(out) if np.ndim(out) == 0 else out

    # the law at dimension d -------------------------------------------------------------------
    def counts(self, d: int) -> np.ndarray:
        """Coordinates per atom at dimension ``d`` (cumulative rounding: they sum to ``d``)."""
        edges = np.rint(d * np.cumsum(self.weights)).astype(int)
        edges[-1] = d
        return np.diff(np.concatenate(([0], edges)))

    def eigenvalues(self, d: int) -> np.ndarray:
        """The ``d`` eigenvalues of ``Sigma`` (largest first)."""
        lam = np.repeat(np.asarray(self.values), self.counts(d))
        if not np.any(lam > 0):
            raise ValueError(f"d = {d} leaves the data no dimension: an atom with a value > 0 "
                             f"needs round(d w) >= 1 coordinates (psi_d d >= 1 on a subspace); "
                             f"d must be larger")
        return lam

    def check_size(self, d: int) -> None:
        self.eigenvalues(d)

    def support(self, d: int) -> np.ndarray:
        """Mask of the eigen-coordinates where ``Sigma > 0``."""
        return self.eigenvalues(d) > 0

    def orientation(self, d: int):
        """``O`` at dimension ``d``, or ``None`` for the coordinate axes."""
        return None if self.basis is None else np.asarray(self.basis(d), dtype=float)

    def mean(self, d: int) -> np.ndarray:
        """``mu`` at dimension ``d`` (zeros for a centred law)."""
        if self.mean_norms is None:
            return np.zeros(d)
        counts = self.counts(d)
        level = [math.sqrt(r / w) for r, w in zip(self.mean_norms, self.weights)]
        mu = np.repeat(np.asarray(level), counts)
        O = self.orientation(d)
        return mu if O is None else O @ mu

    def gamma(self, h: float, d: int) -> np.ndarray:
        """Eigenvalues of ``Gamma = a^2 Sigma + h I`` (``a^2 = 1 - h``)."""
        return (1.0 - h) * self.eigenvalues(d) + h

    def sample(self, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
        x = rng.standard_normal((n, d))
        if self.values != (1.0,):
            x = x * np.sqrt(self.eigenvalues(d))[None, :]
        O = self.orientation(d)
        if O is not None:
            x = x @ O.T
        if self.mean_norms is not None:
            x = x + self.mean(d)[None, :]
        return x

    def score_offset(self, t: float, h: float, d: int) -> float:
        """``(1/d) E|s*(y)|^2 = (1/d) tr Gamma^{-1}`` at dimension ``d``."""
        if self.values == (1.0,):
            return 1.0  # Gamma = I exactly
        return float(np.mean(1.0 / self.gamma(h, d)))

    def true_score(self, y, h: float):
        """``s*(y) = -Gamma^{-1} (y - a mu)`` on the rows of ``y``."""
        y = np.asarray(y, dtype=float)
        d = y.shape[-1]
        if self.mean_norms is not None:
            y = y - math.sqrt(1.0 - h) * self.mean(d)[None, :]
        if self.values == (1.0,):
            return -y
        O = self.orientation(d)
        g = self.gamma(h, d)
        if O is None:
            return -y / g[None, :]
        return -((y @ O) / g[None, :]) @ O.T

    def describe(self) -> str:
        atoms = ",".join(f"{w:g}:{v:g}" for w, v in zip(self.weights, self.values))
        out = f"N(mu, Sigma), spectrum {atoms}"
        return out + (f", |mu|^2/d = {self.mean_norm:g}" if self.mean_norms else ", mu = 0")


@dataclass(frozen=True)
class MixtureLaw:
    """``x_0 ~ sum_k pi_k N(mu_k, Sigma_k)``: ``weights`` ``pi_k > 0`` summing to 1 and the
    components' :class:`GaussianLaw`."""

    weights: tuple
    components: tuple

    def __post_init__(self):
        pis = tuple(float(x) for x in self.weights)
        if (len(pis) != len(self.components) or not pis
                or not all(math.isfinite(x) and x > 0 for x in pis)):
            raise ValueError(f"data: a mixture needs one weight > 0 per component, got "
                             f"{self.weights!r}")
        if abs(math.fsum(pis) - 1.0) > WEIGHT_SUM_TOL:
            raise ValueError(f"data: the mixture's weights must sum to 1, got {math.fsum(pis)!r}")
        if not all(isinstance(c, GaussianLaw) for c in self.components):
            raise ValueError("data: a mixture's components must be GaussianLaw descriptors")
        object.__setattr__(self, "weights", pis)
        object.__setattr__(self, "components", tuple(self.components))

    def sample(self, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
        """Class labels from ``pi``, then each point from its component."""
        labels = rng.choice(len(self.weights), size=n, p=np.asarray(self.weights))
        x = np.empty((n, d))
        for k, comp in enumerate(self.components):
            rows = np.flatnonzero(labels == k)
            x[rows] = comp.sample(rows.size, d, rng)
        return x

    def describe(self) -> str:
        return "mixture of " + "; ".join(f"{p:g} x {c.describe()}"
                                         for p, c in zip(self.weights, self.components))


@dataclass(frozen=True)
class SampledLaw:
    """A law known through its sampler only: ``sample(n, d, rng, state)`` with the quenched
    ``state = quench(d, rng)`` drawn once per seed and shared by every draw of that seed."""

    quench: Callable = field(compare=False)
    sample: Callable = field(compare=False)
    text: str = "a sampler"

    def describe(self) -> str:
        return self.text


class DataModel(ByContent):
    """Base class of data models: subclasses set ``name`` and implement :meth:`law`.

    ``sample``, ``bayes``, ``score_offset`` and ``true_score`` follow from the law; a subclass
    overrides them only for a law the descriptor cannot state in closed form.
    """

    name: str = ""
    description: str = ""
    _registry_kind = "data model"

    def law(self):
        """The law of ``x_0``: a :class:`GaussianLaw`, :class:`MixtureLaw` or
        :class:`SampledLaw`."""
        raise NotImplementedError(
            f"data model {self.name!r} describes no law: define law() returning an "
            "rfdsm.data.GaussianLaw (mean and covariance spectrum), MixtureLaw or SampledLaw")

    def checked_law(self):
        """:meth:`law`, after a probe sample drawn through :meth:`sample` (``n = 400`` points
        at ``d = 64``, a fixed seed) was found consistent with it: a ValueError naming the
        data model when the sample's mean or variances contradict the law (``docs/model.md``:
        results are computed from the law, so a sample of another law would be scored
        against the wrong population).  Cached on the model."""
        cached = self.__dict__.get("_checked_law")
        if cached is not None:
            return cached
        law = self.law()
        if isinstance(law, GaussianLaw) and type(self).sample is not DataModel.sample:
            _probe(self, law)
        self.__dict__["_checked_law"] = law
        return law

    def sample(self, n: int, d: int, rng: np.random.Generator) -> np.ndarray:
        law = self.law()
        if isinstance(law, (GaussianLaw, MixtureLaw)):
            return law.sample(n, d, rng)
        raise NotImplementedError(f"data model {self.name!r}: a law given by a sampler is "
                                  "sampled with its quenched state (SampledLaw.sample)")

    def bayes(self, t):
        law = self.law()
        if isinstance(law, GaussianLaw):
            return law.bayes(t)
        raise NotImplementedError(f"data model {self.name!r}: the Bayes level of "
                                  f"{law.describe()} has no closed form")

    def score_offset(self, t: float, h: float, d: int) -> float:
        """``(1/d) E|s*(y)|^2``: ``(1/d) tr Gamma^{-1}`` for a Gaussian law."""
        law = self.law()
        if isinstance(law, GaussianLaw):
            return law.score_offset(t, h, d)
        return (1.0 - float(self.bayes(t))) / h

    def true_score(self, y, h: float):
        law = self.law()
        if isinstance(law, GaussianLaw):
            return law.true_score(y, h)
        raise NotImplementedError(f"data model {self.name!r} does not give its true score")

    @property
    def has_theory(self) -> bool:
        """Kept for old callers: whether the law is one the theory has equations for (a
        centred Gaussian).  The theory itself routes on :meth:`law`."""
        try:
            law = self.law()
        except NotImplementedError:
            return False
        return isinstance(law, GaussianLaw) and law.is_centred

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


#: The probe of :meth:`DataModel.checked_law`: size, seed and how many standard deviations of
#: a chi-square statistic count as a contradiction (a false alarm is a 10-sigma event).
PROBE_N, PROBE_D, PROBE_SEED, PROBE_SIGMAS = 400, 64, 20260101, 10.0


def _probe(model, law: GaussianLaw) -> None:
    d, n = PROBE_D, PROBE_N
    x = np.asarray(model.sample(n, d, np.random.default_rng(PROBE_SEED)), dtype=float)
    if x.shape != (n, d):
        raise ValueError(f"data model {model.name!r}: sample(n, d, rng) must return an n x d "
                         f"array, got shape {x.shape} for n = {n}, d = {d}")
    O = law.orientation(d)
    z = (x - law.mean(d)[None, :]) if O is None else (x - law.mean(d)[None, :]) @ O
    v = law.eigenvalues(d)
    flat = v == 0.0
    if np.any(np.abs(z[:, flat]) > 1e-9 * max(1.0, float(np.max(np.abs(x))))):
        raise ValueError(f"data model {model.name!r}: its sample leaves the support of its law "
                         f"({law.describe()}); describe the law it samples in law()")
    z, v = z[:, ~flat], v[~flat]
    k = v.size
    # n |mean|^2 / v ~ chi2(k); sum of (n-1) s^2 / v ~ chi2(k (n-1))
    mean_stat = float(np.sum(n * z.mean(axis=0) ** 2 / v))
    var_stat = float(np.sum(((z - z.mean(axis=0)) ** 2).sum(axis=0) / v))
    dof = k * (n - 1)
    bad = []
    if abs(mean_stat - k) > PROBE_SIGMAS * math.sqrt(2.0 * k):
        bad.append(f"mean off by |dx|^2/d = {float(np.sum(z.mean(axis=0) ** 2)) / d:.3g}")
    if abs(var_stat - dof) > PROBE_SIGMAS * math.sqrt(2.0 * dof):
        bad.append(f"variances {var_stat / dof:.3g} times the law's")
    if bad:
        raise ValueError(f"data model {model.name!r}: its sample contradicts its law "
                         f"({law.describe()}): {', '.join(bad)}; define law() to describe the "
                         "law it samples (rfdsm.data.GaussianLaw takes mean_norms), so that the "
                         "errors are measured against the right population")
