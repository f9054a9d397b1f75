"""Gaussian data with a covariance: ``x_0 ~ N(0, Sigma)`` (``docs/model.md``, "Structured data").

The limiting spectrum of ``Sigma`` is a finite mixture of atoms: a fraction ``w_k`` of the
``d`` eigenvalues equals ``v_k`` (``sum_k w_k = 1``, ``v_k >= 0``, not all zero).  Examples:
data on a linear subspace of dimension ``D = psi_d d``, ``{psi_d: 1, 1 - psi_d: 0}``
(:func:`subspace`; George, Veiga & Macris 2025, App. B), or a spiked covariance
``{0.05: 10, 0.95: 1}``.  With ``Gamma = a^2 Sigma + h I`` the law of the noised point
``y = a x_0 + sqrt(h) eps``:

* true score ``s*(y) = -Gamma^{-1} y``;
* Bayes level ``bayes(t) = (1/d) tr(a^2 Sigma Gamma^{-1}) = sum_k w_k a^2 v_k / (a^2 v_k + h)``
  (``psi_d a^2`` on a subspace, since ``a^2 + h = 1``);
* population moments: the preactivations ``w_i.y/sqrt d`` have the covariance
  ``W Gamma W^T / d``, i.e. those of isotropic data with ``W Gamma^{1/2}`` in place of ``W``,
  so the Mehler series of ``rfdsm.simulate.fit.population_moments`` runs on the correlations
  of ``W Gamma^{1/2}`` (variances ``|Gamma^{1/2} w_i|^2/d``, no longer ~1: the Hermite
  coefficients are taken at those), while Stein's lemma on ``eps`` keeps
  ``V_pop = sqrt(h/d) W^T diag(E sigma'(g_i))`` with ``W`` itself.

At dimension ``d`` the eigenvalues sit on the coordinate axes in blocks, the largest first,
the block of atom ``k`` ending at coordinate ``round(d (w_1 + ... + w_k))`` (so a subspace has
``D = round(psi_d d)`` coordinates).  The orientation is irrelevant for an isotropic ``W``
(:mod:`rfdsm.data`).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from .data import DataModel

__all__ = ["Spectrum", "subspace", "parse_spectrum", "WEIGHT_SUM_TOL"]

#: How far from 1 the weights may sum (they are then divided by their sum).
WEIGHT_SUM_TOL = 1e-9


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _check_atoms(weights, values):
    """Atoms as two tuples of floats, merged, zero weights refused, the largest value first."""
    try:
        w = [float(v) for v in weights]
        v = [float(x) for x in values]
    except (TypeError, ValueError):
        raise ValueError(f"data: a spectrum needs lists of numbers, got weights={weights!r}, "
                         f"values={values!r}") from None
    if not w or len(w) != len(v):
        raise ValueError(f"data: a spectrum needs as many weights as values (at least one), "
                         f"got {len(w)} weights and {len(v)} values")
    if not all(math.isfinite(x) and x > 0 for x in w):
        raise ValueError(f"data: the spectrum's weights must be finite numbers > 0, got {w}")
    if not all(math.isfinite(x) and x >= 0 for x in v):
        raise ValueError(f"data: the spectrum's values (eigenvalues of Sigma) must be finite "
                         f"numbers >= 0, got {v}")
    total = math.fsum(w)
    if abs(total - 1.0) > WEIGHT_SUM_TOL:
        raise ValueError(f"data: the spectrum's weights must sum to 1, got {total!r}")
    if max(v) == 0.0:
        raise ValueError("data: the spectrum's values must not all be 0 (Sigma = 0 has no data)")
    merged: dict[float, float] = {}
    for wk, vk in zip(w, v):
        merged[vk] = merged.get(vk, 0.0) + wk / total
    order = sorted(merged, reverse=True)
    return tuple(merged[x] for x in order), tuple(order)


class Spectrum(DataModel):
    """``x_0 ~ N(0, Sigma)``, the spectrum of ``Sigma`` the atoms ``{weights[k]: values[k]}``.

    ``Spectrum([0.25, 0.75], [1, 0])`` is data on a subspace of dimension ``d/4``; its name is
    its text form ``spectrum(0.25:1,0.75:0)``.  ``weights`` must be > 0 and sum to 1, ``values``
    >= 0 and not all 0 (a ValueError naming ``data`` otherwise).
    """

    PREFIX = "spectrum("
    has_theory = True

    def __init__(self, weights, values):
        self.weights, self.values = _check_atoms(weights, values)
        self.name = self.PREFIX + ",".join(f"{_num(w)}:{_num(v)}"
                                           for w, v in zip(self.weights, self.values)) + ")"
        self.description = "x_0 ~ N(0, Sigma), spectrum " + self.name[len("spectrum"):]

    @property
    def fingerprint(self) -> str:
        """By the text form, which spells every atom exactly (``repr`` of the floats): a probe
        sample at a small ``d`` would leave an atom of small weight without coordinates."""
        fp = self.__dict__.get("_fingerprint")
        if fp is None:
            parts = [self.name, type(self).__qualname__, f"{float(self.bayes(0.3)):.12g}"]
            fp = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
            self.__dict__["_fingerprint"] = fp
        return fp

    # the law at dimension d ----------------------------------------------------------------
    def counts(self, d: int) -> np.ndarray:
        """Coordinates per atom at dimension ``d`` (cumulative rounding: they sum to ``d``)."""
        edges = np.rint(d * np.cumsum(self.weights)).astype(int)
        edges[-1] = d
        return np.diff(np.concatenate(([0], edges)))

    def eigenvalues(self, d: int) -> np.ndarray:
        """The ``d`` eigenvalues of ``Sigma`` on the coordinate axes (largest first)."""
        lam = np.repeat(np.asarray(self.values), self.counts(d))
        if not np.any(lam > 0):
            raise ValueError(f"d = {d} leaves the data no dimension: data {self.name} needs "
                             f"round(d w) >= 1 for an atom with a value > 0 (psi_d d >= 1 on "
                             f"a subspace); d must be larger")
        return lam

    def check_size(self, d: int) -> None:
        """A ValueError when ``d`` leaves every atom with a value > 0 without coordinates."""
        self.eigenvalues(d)

    def support(self, d: int) -> np.ndarray:
        """Boolean mask of the coordinates where ``Sigma > 0`` (the data subspace)."""
        return self.eigenvalues(d) > 0

    def _gamma(self, h: float, d: int) -> np.ndarray:
        # a^2 = 1 - h: the callers of population_moments pass h only
        return (1.0 - h) * self.eigenvalues(d) + h

    def sample(self, n, d, rng):
        return rng.standard_normal((n, d)) * np.sqrt(self.eigenvalues(d))[None, :]

    def bayes(self, t):
        a2 = np.exp(-2.0 * np.asarray(t, dtype=float))
        h = -np.expm1(-2.0 * np.asarray(t, dtype=float))
        out = sum(w * (a2 * v) / (a2 * v + h) for w, v in zip(self.weights, self.values))
        return float(out) if np.ndim(out) == 0 else out

    def score_offset(self, t, h, d):
        return float(np.mean(1.0 / self._gamma(h, d)))

    def true_score(self, y, h):
        return -np.asarray(y) / self._gamma(h, np.shape(y)[-1])[None, :]

    def population_moments(self, act, W, h, corr=None, ops=None):
        # corr (of W itself) is not the one needed here: the preactivations have covariance
        # W Gamma W^T / d, the Gram of W Gamma^{1/2}
        from .simulate import fit

        ops = fit.HOST if ops is None else ops
        half = ops.to_device(np.sqrt(self._gamma(h, W.shape[1])))
        return fit.population_moments(act, W, h, ops.correlations(W * half[None, :]), ops)

    # the limit -----------------------------------------------------------------------------
    @property
    def mean(self) -> float:
        """``(1/d) tr Sigma`` in the limit."""
        return math.fsum(w * v for w, v in zip(self.weights, self.values))

    @property
    def psi_d(self) -> float:
        """The fraction of dimensions the data occupy (mass of the atoms > 0)."""
        return math.fsum(w for w, v in zip(self.weights, self.values) if v > 0)

    def restricted(self, psi_d: float) -> "Spectrum":
        """This spectrum on a subspace of ``psi_d d`` dimensions (0 on its complement)."""
        if psi_d == 1.0:
            return self
        return Spectrum([w * psi_d for w in self.weights] + [1.0 - psi_d],
                        list(self.values) + [0.0])


def subspace(psi_d: float) -> Spectrum:
    """Data on a linear subspace of dimension ``D = psi_d d``: ``Sigma = Pi``, the projection."""
    return Spectrum([psi_d, 1.0 - psi_d], [1.0, 0.0]) if psi_d < 1.0 else Spectrum([1.0], [1.0])


def parse_spectrum(value) -> Spectrum:
    """A :class:`Spectrum` from its text form ``spectrum(w1:v1,w2:v2,...)`` or a mapping
    ``{"weights": [...], "values": [...]}`` (the TOML form)."""
    if isinstance(value, dict):
        if set(value) != {"weights", "values"}:
            raise ValueError(f"data: a spectrum table has the keys weights and values, got "
                             f"{sorted(value)}")
        return Spectrum(value["weights"], value["values"])
    text = str(value).strip()
    if not (text.startswith(Spectrum.PREFIX) and text.endswith(")")):
        raise ValueError(f"data: a spectrum is written spectrum(w1:v1,w2:v2,...), got {value!r}")
    pairs = [p.split(":") for p in text[len(Spectrum.PREFIX):-1].split(",")]
    if any(len(p) != 2 for p in pairs):
        raise ValueError(f"data: a spectrum is written spectrum(w1:v1,w2:v2,...) (weight:value "
                         f"pairs), got {value!r}")
    return Spectrum([p[0] for p in pairs], [p[1] for p in pairs])
