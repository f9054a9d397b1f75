"""The problem description shared by the simulator and the asymptotic solver.

A :class:`Setting` pins the six quantities of ``docs/model.md`` that survive the proportional
limit: ``psi_n = n/d``, ``psi_p = p/d``, the number ``m`` of noise samples per data point
(an integer >= 1, or ``math.inf`` for the exact noise expectation), the diffusion time
``t > 0``, the ridge ``lam >= 0`` (``lam = 0`` is the ridgeless limit ``lam -> 0+``) and the
activation name.  Everything is validated once, here, at construction.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, fields

from .activations import get_activation, registered_activations

__all__ = ["Setting", "parse_m"]


def _number(name: str, value, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be {allowed}, got {value!r}") from None
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must be {allowed}, got NaN")
    return value


def parse_m(value) -> int | float:
    """Normalise ``m``: a finite integer >= 1, or ``math.inf`` (also spelled ``"inf"``)."""
    allowed = "an integer >= 1 or inf"
    if isinstance(value, bool):
        raise ValueError(f"m must be {allowed}, got {value!r}")
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("inf", "infinity", "+inf"):
            return math.inf
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"m must be {allowed}, got {value!r}") from None
    value = _number("m", value, allowed)
    if value == math.inf:
        return math.inf
    if not math.isfinite(value) or value < 1 or value != int(value):
        raise ValueError(f"m must be {allowed}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
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
    activation : str
        Name of a registered activation (``tanh``, ``erf``, ``relu``, ``linear`` or one added
        with :func:`rfdsm.register_activation`).
    """

    psi_n: float
    psi_p: float
    m: int | float = 1
    t: float = 0.1
    lam: float = 0.01
    activation: str = "tanh"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for name in ("psi_n", "psi_p"):
            v = _number(name, getattr(self, name), "a finite number > 0")
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
            set_(name, v)
        set_("m", parse_m(self.m))
        t = _number("t", self.t, "a finite number > 0")
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"t must be a finite number > 0, got {t!r}")
        set_("t", t)
        lam = _number("lam", self.lam, "a finite number >= 0 (0 = ridgeless limit)")
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam must be a finite number >= 0 (0 = ridgeless limit), got {lam!r}")
        set_("lam", lam)
        if not isinstance(self.activation, str) or self.activation not in registered_activations():
            raise ValueError(
                f"activation must be one of {sorted(registered_activations())}, "
                f"got {self.activation!r}"
            )

    # Derived quantities of docs/model.md ------------------------------------------------------
    @property
    def a(self) -> float:
        """``a = exp(-t)``."""
        return math.exp(-self.t)

    @property
    def h(self) -> float:
        """``h = 1 - exp(-2t)``."""
        return -math.expm1(-2.0 * self.t)

    @property
    def bayes(self) -> float:
        """The best possible test error ``a^2 = exp(-2t)``."""
        return math.exp(-2.0 * self.t)

    @property
    def sigma(self):
        """The :class:`rfdsm.activations.Activation` object."""
        return get_activation(self.activation)

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
        n, p = round(self.psi_n * d), round(self.psi_p * d)
        if n < 1 or p < 1:
            raise ValueError(
                f"d = {d} gives n = {n}, p = {p}; d must be large enough that "
                "round(psi_n d) >= 1 and round(psi_p d) >= 1"
            )
        return n, p

    def replace(self, **changes) -> "Setting":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown setting parameter(s): {sorted(unknown)}")
        values.update(changes)
        return Setting(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
