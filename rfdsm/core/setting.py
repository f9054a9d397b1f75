"""The problem description shared by the simulator and the asymptotic solver.

A :class:`Setting` pins the quantities of ``docs/model.md`` that survive the proportional
limit: ``psi_n = n/d``, ``psi_p = p/d``, the number ``m`` of noise samples per data point
(an integer >= 1, or ``math.inf`` for the exact noise expectation), the diffusion time
``t > 0``, the ridge ``lam >= 0`` (``lam = 0`` is the ridgeless limit ``lam -> 0+``), the
training time ``tau`` (``inf``: the trained-to-convergence minimiser), three objects: the
activation, the estimator (:mod:`rfdsm.estimators`) and the data model (:mod:`rfdsm.data`),
and the intrinsic dimension ratio ``psi_d = D/d`` of the data.  Everything is validated once,
here, at construction, by the rows of the parameter table (:mod:`rfdsm.params`).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields

from . import diffusion
from .params import PARAMS, M_MAX, _show, parse_m  # noqa: F401 (parse_m, M_MAX: public here too)

__all__ = ["Setting", "parse_m"]


@dataclass(frozen=True, eq=False)
class Setting:
    """One point of the model of ``docs/model.md``.

    Parameters
    ----------
    psi_n : float > 0
        ``n / d``, data points per dimension.
    psi_p : float > 0
        ``p / d``, random features per dimension.
    m : int >= 1 or math.inf
        Noise samples per data point; ``inf`` is the exact expectation over the noise.
    t : float > 0
        Diffusion time; ``a = exp(-t)``, ``h = 1 - exp(-2t)``.
    lam : float >= 0
        Ridge; ``0`` means the ridgeless limit ``lam -> 0+`` (minimum-norm interpolator).
    tau : float > 0 or math.inf
        Training time of gradient flow on ``A`` from ``A = 0`` (``docs/model.md``, "Training
        time"): ``tau = k eta / d^2`` after ``k`` steps of size ``eta``.  ``inf`` (default) is
        the minimiser; ``lam = 0`` with ``tau = inf`` stays the ridgeless limit, while a
        finite ``tau`` with ``lam = 0`` is plain (unregularised) gradient flow.
    activation : str or Activation
        Name of a registered activation (``tanh``, ``erf``, ``relu``, ``linear`` or one added
        with :func:`rfdsm.register_activation`), or an :class:`rfdsm.Activation`.  The setting
        keeps the activation object itself (``setting.sigma``), resolved once here:
        re-registering the name later does not change this setting, equality and hashing see
        the function's content, and a pickled setting carries the function to worker
        processes.  ``setting.activation`` is the name.
    estimator : str or Estimator
        How ``B`` is fitted: ``"ridge"`` (``docs/model.md``) or a name given to
        :func:`rfdsm.estimators.register_estimator`; held by content like the activation
        (``setting.estimator_object``), ``setting.estimator`` is the name.
    data : str, dict or DataModel
        The law of ``x_0``: ``"isotropic"`` (``N(0, I_d)``), a covariance spectrum
        ``"spectrum(w1:v1,w2:v2,...)"`` or ``{"weights": [...], "values": [...]}``
        (:class:`rfdsm.data.Spectrum`), or a name given to :func:`rfdsm.data.register_data`;
        ``setting.data`` is the name.
    psi_d : float in (0, 1]
        ``D/d``: the data lie on a subspace of dimension ``D`` and follow the data model's law
        there, 0 on its complement (``docs/model.md``, "Structured data"); ``psi_d = 0.25``
        with isotropic data is ``x_0 ~ N(0, Pi)``, ``Pi`` the projection on ``d/4``
        coordinates.  ``setting.data_model`` is the law of ``x_0`` with ``psi_d`` applied.
    step : float >= 0
        Estimator ``gd``: the step ``delta = eta / d^2`` in ``tau`` units (``docs/model.md``,
        "Optimizers"); ``tau / step`` steps.  Unused (0) by ``ridge``.
    momentum : float in [0, 1)
        Estimator ``gd``: heavy-ball momentum ``beta``.
    """

    psi_n: float
    psi_p: float
    m: int | float = 1
    t: float = 0.1
    lam: float = 0.01
    tau: float = math.inf
    activation: str = "tanh"
    estimator: str = "ridge"
    data: str = "isotropic"
    psi_d: float = 1.0
    step: float = 0.0
    momentum: float = 0.0

    def __post_init__(self):
        # every parameter through its row of the table (rfdsm/params.py), in table order
        for p in PARAMS:
            value = p.parse(getattr(self, p.name))
            if p.kind == "object":  # held by content, named by its name
                object.__setattr__(self, "_" + p.name, value)
                value = value.name
            object.__setattr__(self, p.name, value)
        model = self._data
        if self.psi_d != 1.0:
            if not callable(getattr(model, "restricted", None)):
                raise ValueError(f"psi_d = {self.psi_d:g} < 1 needs a data model with a "
                                 f"covariance spectrum (isotropic or spectrum(...)), got data "
                                 f"model {model.name!r}")
            model = model.restricted(self.psi_d)
        object.__setattr__(self, "_data_model", model)

    def _objects(self) -> tuple:
        return tuple(getattr(self, "_" + p.name) for p in PARAMS if p.kind == "object")

    def __eq__(self, other):
        if not isinstance(other, Setting):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self._objects() == other._objects()

    def __hash__(self):
        return hash((tuple(self.to_dict().values()), self._objects()))

    # Derived quantities of docs/model.md ------------------------------------------------------
    @property
    def a(self) -> float:
        """``a = exp(-t)``."""
        return diffusion.a(self.t)

    @property
    def h(self) -> float:
        """``h = 1 - exp(-2t)``."""
        return diffusion.h(self.t)

    @property
    def bayes(self) -> float:
        """The best possible test error, from the data model (isotropic: ``a^2 = exp(-2t)``;
        ``(1/d) tr(a^2 Sigma (a^2 Sigma + h I)^{-1})`` for a covariance, ``psi_d a^2`` on a
        subspace)."""
        return self._data_model.bayes(self.t)

    @property
    def sigma(self):
        """The :class:`rfdsm.activations.Activation` object (fixed at construction)."""
        return self._activation

    @property
    def estimator_object(self):
        """The :class:`rfdsm.estimators.Estimator` (fixed at construction)."""
        return self._estimator

    @property
    def data_model(self):
        """The :class:`rfdsm.data.DataModel` of ``x_0`` (fixed at construction): the data
        model, restricted to a subspace of dimension ``psi_d d`` when ``psi_d < 1``."""
        return self._data_model

    def sizes(self, d: int) -> tuple[int, int]:
        """``(n, p) = (round(psi_n d), round(psi_p d))`` at dimension ``d``; both must be >= 1."""
        try:
            if isinstance(d, bool):
                raise TypeError
            d = operator.index(d)  # Python or NumPy integers; floats (also 10.0) are refused
        except TypeError:
            raise ValueError(f"d must be an integer >= 1, got {d!r}") from None
        if d < 1:
            raise ValueError(f"d must be an integer >= 1, got {d!r}")
        try:
            n, p = round(self.psi_n * d), round(self.psi_p * d)
        except OverflowError:
            raise ValueError(f"d must be an integer >= 1 that fits a float, got {_show(d)}") from None
        if n < 1 or p < 1:
            raise ValueError(
                f"d = {d} gives n = {n}, p = {p}; d must be large enough that "
                "round(psi_n d) >= 1 and round(psi_p d) >= 1"
            )
        check = getattr(self._data_model, "check_size", None)
        if check is not None:  # e.g. a subspace needs round(psi_d d) >= 1 coordinates
            check(d)
        return n, p

    def replace(self, **changes) -> "Setting":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown setting parameter(s): {sorted(unknown)}")
        values.update({p.name: getattr(self, "_" + p.name) for p in PARAMS if p.kind == "object"})
        values.update(changes)
        return Setting(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
