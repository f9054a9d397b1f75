"""A Gaussian target with a mean: ``x_0 ~ N(mu, I_d)`` with ``|mu|^2 / d = r``
(``docs/model.md``, "Targets with a mean"; the one-class case of a mixture).

Named by its text form ``shifted(r)``.  The law is a :class:`GaussianLaw` with one atom and
the mean norm ``r`` (the mean is constant, ``sqrt(r)``, on every coordinate; its direction
does not matter for an isotropic ``W``); ``psi_d < 1`` puts the data and the mean on a
subspace of dimension ``psi_d d``.  The simulator evaluates it exactly at every ``m`` (the
preactivations get per-feature means, :mod:`rfdsm.simulate.population`); the theory has no
equations for a mean yet and refuses it by name (:mod:`rfdsm.theory.routing`).
"""

from __future__ import annotations

import math

from .base import DataModel, GaussianLaw

__all__ = ["Shifted", "parse_shifted"]


def _num(x: float) -> str:
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


class Shifted(DataModel):
    """``N(mu, I)`` with ``|mu|^2/d = r >= 0`` (restricted: ``N(mu, Pi)``, ``mu`` in the
    subspace)."""

    PREFIX = "shifted("

    def __init__(self, r: float, psi_d: float = 1.0):
        try:
            r = float(r)
        except (TypeError, ValueError):
            raise ValueError(f"data: shifted(r) needs a number r = |mu|^2/d >= 0, got {r!r}") from None
        if not (math.isfinite(r) and r >= 0):
            raise ValueError(f"data: shifted(r) needs a finite r = |mu|^2/d >= 0, got {r!r}")
        self.r, self.psi_d = r, float(psi_d)
        self.name = f"{self.PREFIX}{_num(r)})"
        if self.psi_d < 1.0:
            self.name = f"{self.PREFIX}{_num(r)},psi_d={_num(self.psi_d)})"
            self._law = GaussianLaw((self.psi_d, 1.0 - self.psi_d), (1.0, 0.0), (r, 0.0))
        else:
            self._law = GaussianLaw(mean_norms=(r,))
        self.description = f"x_0 ~ N(mu, I), |mu|^2/d = {r:g}"

    def law(self) -> GaussianLaw:
        return self._law

    def restricted(self, psi_d: float) -> "Shifted":
        """The data and the mean on a subspace of ``psi_d d`` coordinates."""
        return self if psi_d == 1.0 else Shifted(self.r, psi_d * self.psi_d)


def parse_shifted(value) -> Shifted:
    """:class:`Shifted` from its text form ``shifted(r)``."""
    text = str(value).strip()
    if not (text.startswith(Shifted.PREFIX) and text.endswith(")")):
        raise ValueError(f"data: a shifted Gaussian is written shifted(r), r = |mu|^2/d, got {value!r}")
    inner = text[len(Shifted.PREFIX):-1].split(",")
    psi_d = 1.0
    if len(inner) == 2 and inner[1].strip().startswith("psi_d="):
        psi_d = float(inner[1].split("=", 1)[1])
    elif len(inner) != 1:
        raise ValueError(f"data: a shifted Gaussian is written shifted(r), got {value!r}")
    return Shifted(inner[0], psi_d)
