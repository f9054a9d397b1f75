"""``x_0 ~ N(0, I_d)``, the target of ``docs/model.md``: ``y ~ N(0, I_d)`` at every ``t``, the
true score is ``-y`` and the Bayes test error is ``a^2 = exp(-2t)`` (``E[x_0 | y] = a y``)."""

from __future__ import annotations

from .base import DataModel, GaussianLaw

__all__ = ["Isotropic"]

_LAW = GaussianLaw()


class Isotropic(DataModel):
    """``x_0 ~ N(0, I_d)``."""

    name = "isotropic"
    description = "x_0 ~ N(0, I_d)"

    def law(self) -> GaussianLaw:
        return _LAW

    def restricted(self, psi_d: float) -> DataModel:
        """Data on the first ``D = psi_d d`` coordinates: the spectrum ``{psi_d: 1, 1 - psi_d: 0}``
        (a subclass, whose law may differ, has to say itself what its restriction is)."""
        if psi_d == 1.0:
            return self
        if type(self) is not Isotropic:
            raise ValueError(f"psi_d = {psi_d:g} < 1 needs a data model with a covariance "
                             f"spectrum (isotropic or spectrum(...)), got data model "
                             f"{self.name!r}")
        from .spectrum import subspace

        return subspace(psi_d)
