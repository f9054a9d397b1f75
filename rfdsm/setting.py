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

import numpy as np

from .activations import Activation, get_activation, registered_activations

__all__ = ["Setting", "parse_m"]


#: The largest finite ``m``: beyond ``2**53`` not every integer is a float, and the solvers and
#: the simulator's size checks compute with ``float(m)``, so a larger ``m`` would silently
#: become another one.  (Its effect is already that of ``m = inf`` to ~1e-16.)
M_MAX = 2**53

_INF_SPELLINGS = ("inf", "infinity", "+inf")


def _show(value) -> str:
    # a 400-digit integer in an error line helps nobody
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def _number(name: str, value, allowed: str, ok=lambda v: True) -> float:
    """``value`` as a float, or a ValueError ``"<name> must be <allowed>, got <value>"``.

    Booleans are refused: ``float(True) == 1.0``, but a flag passed as a ratio or a time is a
    mistake, not a value.  Integers too large for a float are refused here instead of escaping
    as OverflowError, and so are NaN and values for which ``ok`` is false.
    """
    bad = ValueError(f"{name} must be {allowed}, got {_show(value)}")
    if _is_bool(value):
        raise bad
    try:
        x = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be {allowed}, got {_show(value)}, which is too large "
                         "for a float") from None
    except (TypeError, ValueError):
        raise bad from None
    if math.isnan(x) or not ok(x):
        raise bad
    return x


def parse_m(value) -> int | float:
    """Normalise ``m``: an exact integer ``1 <= m <= 2**53``, or ``math.inf``.

    ``inf`` is spelled ``math.inf`` (any float infinity) or the string ``"inf"``; an integer is
    a Python/NumPy integer, an integral float, or its text.  Refused: booleans, fractions, NaN,
    integers above ``2**53`` (they do not survive ``float(m)``), floats above ``2**53`` (they
    are not exact: ``float(2**53 + 1) == 2**53``) and text that overflows a float (``"1e400"``
    is not a way to write inf).
    """
    allowed = f"an integer between 1 and 2**53 = {M_MAX} or inf"
    bad = ValueError(f"m must be {allowed}, got {_show(value)}")
    if _is_bool(value):
        raise bad
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _INF_SPELLINGS:
            return math.inf
        try:
            value = int(text, 10)  # exact, also beyond 2**53
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise bad from None
            if math.isinf(value) and "inf" not in text:
                raise ValueError(f"m must be {allowed}, got {_show(text)}, which overflows a "
                                 "float; write inf for the exact noise average") from None
    if not isinstance(value, (float, np.floating)):
        try:
            exact = operator.index(value)  # Python and NumPy integers, exactly
        except TypeError:
            exact = None
        if exact is not None:
            if not 1 <= exact <= M_MAX:
                raise bad
            return int(exact)
    x = _number("m", value, allowed)
    if x == math.inf:
        return math.inf
    if x > M_MAX:
        raise ValueError(f"m must be {allowed}, got {_show(value)}: a float above 2**53 is not "
                         "an exact integer; give m as an integer")
    if not (x >= 1 and x == int(x)):
        raise bad
    return int(x)


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
    activation : str or Activation
        Name of a registered activation (``tanh``, ``erf``, ``relu``, ``linear`` or one added
        with :func:`rfdsm.register_activation`), or an :class:`rfdsm.Activation`.  The setting
        keeps the activation object itself (``setting.sigma``), resolved once here:
        re-registering the name later does not change this setting, equality and hashing see
        the function's content, and a pickled setting carries the function to worker
        processes.  ``setting.activation`` is the name.
    """

    psi_n: float
    psi_p: float
    m: int | float = 1
    t: float = 0.1
    lam: float = 0.01
    activation: str = "tanh"

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        positive = lambda v: math.isfinite(v) and v > 0  # noqa: E731
        for name in ("psi_n", "psi_p", "t"):
            set_(name, _number(name, getattr(self, name), "a finite number > 0", positive))
        set_("m", parse_m(self.m))
        set_("lam", _number("lam", self.lam, "a finite number >= 0 (0 = ridgeless limit)",
                            lambda v: math.isfinite(v) and v >= 0))
        act = self.activation
        if isinstance(act, Activation):
            set_("activation", act.name)
        elif isinstance(act, str) and act in registered_activations():
            act = get_activation(act)
        else:
            raise ValueError(
                f"activation must be one of {sorted(registered_activations())} or an "
                f"rfdsm.Activation, got {act!r}"
            )
        set_("_sigma", act)

    def __eq__(self, other):
        if not isinstance(other, Setting):
            return NotImplemented
        return self.to_dict() == other.to_dict() and self._sigma == other._sigma

    def __hash__(self):
        return hash((tuple(self.to_dict().values()), self._sigma))

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
        """The :class:`rfdsm.activations.Activation` object (fixed at construction)."""
        return self._sigma

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
        return n, p

    def replace(self, **changes) -> "Setting":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown setting parameter(s): {sorted(unknown)}")
        values["activation"] = self._sigma
        values.update(changes)
        return Setting(**values)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
