"""Gaussian data with a covariance: ``x_0 ~ N(0, Sigma)`` (``docs/model.md``, "Structured data").

The limiting spectrum of ``Sigma`` is a finite mixture of atoms: a fraction ``w_k`` of the
``d`` eigenvalues equals ``v_k`` (``sum_k w_k = 1``, ``v_k >= 0``, not all zero).  Examples:
data on a linear subspace of dimension ``D = psi_d d``, ``{psi_d: 1, 1 - psi_d: 0}``
(:func:`subspace`; George, Veiga & Macris 2025, App. B), or a spiked covariance
``{0.05: 10, 0.95: 1}``.  The model states its law, a centred :class:`GaussianLaw` with these
atoms on the coordinate axes (largest first); everything else (true score
``-Gamma^{-1} y``, Bayes level ``sum_k w_k a^2 v_k / (a^2 v_k + h)``, population moments of
the features, the theory's traces) is computed from that law by the law itself or by the
evaluators.  Its text form ``spectrum(w1:v1,w2:v2,...)`` is its name, so a table, a TOML grid
or the command line names it without a registration.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .base import WEIGHT_SUM_TOL, DataModel, GaussianLaw, check_atoms

__all__ = ["Spectrum", "subspace", "parse_spectrum", "WEIGHT_SUM_TOL"]


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


class Spectrum(DataModel):
    """``x_0 ~ N(0, Sigma)``, the spectrum of ``Sigma`` the atoms ``{weights[k]: values[k]}``.

    ``Spectrum([0.25, 0.75], [1, 0])`` is data on a subspace of dimension ``d/4``; its name is
    its text form ``spectrum(0.25:1,0.75:0)``.  ``weights`` must be > 0 and sum to 1, ``values``
    >= 0 and not all 0 (a ValueError naming ``data`` otherwise).
    """

    PREFIX = "spectrum("

    def __init__(self, weights, values):
        self.weights, self.values = check_atoms(weights, values)
        self.name = self.PREFIX + ",".join(f"{_num(w)}:{_num(v)}"
                                           for w, v in zip(self.weights, self.values)) + ")"
        self.description = "x_0 ~ N(0, Sigma), spectrum " + self.name[len("spectrum"):]
        self._law = GaussianLaw(self.weights, self.values)

    def law(self) -> GaussianLaw:
        return self._law

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

    # the law's facts, under the names older callers use ----------------------------------------
    def counts(self, d: int) -> np.ndarray:
        return self._law.counts(d)

    def eigenvalues(self, d: int) -> np.ndarray:
        return self._law.eigenvalues(d)

    def check_size(self, d: int) -> None:
        self._law.check_size(d)

    def support(self, d: int) -> np.ndarray:
        return self._law.support(d)

    @property
    def mean(self) -> float:
        """``(1/d) tr Sigma`` in the limit."""
        return self._law.trace

    @property
    def psi_d(self) -> float:
        """The fraction of dimensions the data occupy (mass of the atoms > 0)."""
        return self._law.psi_d

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
