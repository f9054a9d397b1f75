"""The declarative table of setting parameters.

One row per parameter of :class:`rfdsm.Setting` (``docs/model.md``): its name (the ``Setting``
field, the TOML grid key and the column of the stored table), its default, the text of its
allowed range, the function that checks and normalises a value, its command-line help and its
plot label.  Every boundary reads this table: ``Setting`` validation, sweep grids
(``rfdsm.sweep.config``), command-line flags (``rfdsm.cli``), table columns and sort keys
(``rfdsm.sweep.store``) and axis labels (``rfdsm.plots``); none of them spells the parameter
list itself.

A new parameter (such as the training time ``tau``) is one :class:`Param` row here plus its
field in ``Setting`` (a test checks that the two agree).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["Param", "PARAMS", "REQUIRED", "param", "names", "parse_m", "parse_tau", "parse_psi_d",
           "check_number", "M_MAX"]

#: The largest finite ``m``: beyond ``2**53`` not every integer is a float, and the solvers and
#: the simulator's size checks compute with ``float(m)``, so a larger ``m`` would silently
#: become another one.  (Its effect is already that of ``m = inf`` to ~1e-16.)
M_MAX = 2**53

_INF_SPELLINGS = ("inf", "infinity", "+inf")


class _Required:
    def __repr__(self):
        return "REQUIRED"


#: Default of a parameter that has none (``psi_n``, ``psi_p``).
REQUIRED = _Required()


def _show(value) -> str:
    # a 400-digit integer in an error line helps nobody
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_number(name: str, value, allowed: str, ok=lambda v: True) -> float:
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
    x = check_number("m", value, allowed)
    if x == math.inf:
        return math.inf
    if x > M_MAX:
        raise ValueError(f"m must be {allowed}, got {_show(value)}: a float above 2**53 is not "
                         "an exact integer; give m as an integer")
    if not (x >= 1 and x == int(x)):
        raise bad
    return int(x)


def _positive(name):
    allowed = "a finite number > 0"
    return allowed, lambda v: check_number(name, v, allowed, lambda x: math.isfinite(x) and x > 0)


def _activation(value):
    from ..activations import Activation, get_activation, registered_activations

    if isinstance(value, Activation):
        return value
    if isinstance(value, str) and value in registered_activations():
        return get_activation(value)
    raise ValueError(f"activation must be one of {sorted(registered_activations())} or an "
                     f"rfdsm.Activation, got {value!r}")


def _registered(what: str, module: str, cls: str, get: str, listed: str, example: str):
    """The parser of an object-valued parameter: an instance of ``module.cls`` as it is, or
    the name of a registered one (resolved here, once: the setting then holds the object)."""
    def parse(value):
        import importlib

        mod = importlib.import_module(module, __package__)
        if isinstance(value, getattr(mod, cls)):
            return value
        names = getattr(mod, listed)()
        if isinstance(value, str) and value in names:
            return getattr(mod, get)(value)
        raise ValueError(f"{what} must be one of {sorted(names)} or an {example}, got "
                         f"{value!r}")
    return parse


def _data(value):
    """The data model: an instance, a registered name, a text form (``spectrum(w1:v1,...)``,
    ``shifted(r)``: :data:`rfdsm.data.TEXT_FORMS`) or a TOML table
    ``{weights = [...], values = [...]}`` (a spectrum)."""
    from .. import data

    if isinstance(value, data.DataModel):
        return value
    if isinstance(value, dict):
        return data.parse_spectrum(value)  # its ValueError names data
    if isinstance(value, str) and data._text_form(value) is not None:
        return data.get_data(value)  # the parser's ValueError names data
    names = data.registered_data()
    if isinstance(value, str) and value in names:
        return data.get_data(value)
    raise ValueError(f"data must be one of {sorted(names)}, a spectrum spectrum(w1:v1,w2:v2,...) "
                     f"(weights w_k > 0 summing to 1, eigenvalues v_k >= 0), a shifted Gaussian "
                     f"shifted(r) (r = |mu|^2/d >= 0), a table {{weights = [...], values = "
                     f"[...]}} or an rfdsm.data.DataModel, got {value!r}")


_PSI_D = "a number in (0, 1] (1: the data fill all d dimensions)"


def parse_psi_d(value) -> float:
    """The intrinsic dimension ratio ``psi_d = D/d`` in ``(0, 1]``."""
    return check_number("psi_d", value, _PSI_D, lambda x: 0.0 < x <= 1.0)


@dataclass(frozen=True)
class Param:
    """One setting parameter.

    ``parse(value)`` returns the canonical value or raises a ValueError naming the parameter
    and ``allowed``; ``kind`` is ``"float"`` (a float column; ``m`` too, ``inf`` for the noise
    average) or ``"object"`` (a registered object stored by name, e.g. the activation);
    ``ranges``: a TOML grid may give a ``{start, stop, num, spacing}`` range for it;
    ``curve``: the asymptotic solver can continue along it from one point to the next;
    ``sort``: its rank among the sort keys of the stored table (slowest-varying first);
    ``fill``: a table without its column (written before the parameter existed) holds the
    default there; ``symbol``: its TeX symbol in figure titles (none: the name is written out).
    """

    name: str
    default: Any
    allowed: str
    parse: Callable[[Any], Any]
    help: str
    label: str
    kind: str = "float"
    ranges: bool = False
    curve: bool = False
    sort: int = 0
    fill: bool = False
    symbol: str = ""

    @property
    def flag(self) -> str:
        """The command-line flag, e.g. ``--psi-n``."""
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


_PSI_N, _PSI_P, _T = _positive("psi_n"), _positive("psi_p"), _positive("t")
_LAM = "a finite number >= 0 (0 = ridgeless limit)"
_TAU = "a number > 0 or inf (inf = trained to convergence)"


def parse_tau(value) -> float:
    """Normalise the training time: a float ``> 0`` or ``math.inf`` (the minimiser).

    Text that overflows a float (``"1e400"``) is refused: ``inf`` is written ``inf``.
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _INF_SPELLINGS:
            return math.inf
        try:
            overflows = math.isinf(float(text)) and "inf" not in text
        except ValueError:
            overflows = False  # check_number names the bad text
        if overflows:
            raise ValueError(f"tau must be {_TAU}, got {_show(value)}, which overflows a "
                             "float; write inf for the trained-to-convergence estimator")
    return check_number("tau", value, _TAU, lambda x: x > 0)

_STEP = "a finite number >= 0 (0: no finite step)"
_MOMENTUM = "a number in [0, 1)"


def parse_step(value) -> float:
    """The step ``delta = eta / d^2`` of estimator ``gd``, in ``tau`` units."""
    return check_number("step", value, _STEP, lambda x: math.isfinite(x) and x >= 0)


def parse_momentum(value) -> float:
    """The heavy-ball momentum ``beta`` of estimator ``gd``."""
    return check_number("momentum", value, _MOMENTUM, lambda x: 0.0 <= x < 1.0)


#: The parameters in the order of the ``Setting`` fields, of grid keys and of table columns.
PARAMS: tuple[Param, ...] = (
    Param("psi_n", REQUIRED, _PSI_N[0], _PSI_N[1], "n/d > 0 (data points per dimension)",
          r"$\psi_n = n/d$", ranges=True, curve=True, sort=4, symbol=r"\psi_n"),
    Param("psi_p", REQUIRED, _PSI_P[0], _PSI_P[1], "p/d > 0 (random features per dimension)",
          r"$\psi_p = p/d$", ranges=True, curve=True, sort=5, symbol=r"\psi_p"),
    Param("m", 1, "an integer >= 1 or inf", parse_m,
          "noise samples per data point: integer >= 1 or inf (the exact noise average)",
          r"$m$ (noise samples per data point)", sort=3, symbol="m"),
    Param("t", 0.1, _T[0], _T[1], "diffusion time > 0", r"diffusion time $t$",
          ranges=True, curve=True, sort=1, symbol="t"),
    Param("lam", 0.01, _LAM,
          lambda v: check_number("lam", v, _LAM, lambda x: math.isfinite(x) and x >= 0),
          "ridge >= 0 (0: ridgeless limit)", r"ridge $\lambda$", ranges=True, curve=True, sort=2,
          symbol=r"\lambda"),
    Param("tau", math.inf, _TAU, parse_tau,
          "training time > 0 of gradient flow from A = 0 (tau = k eta / d^2 after k steps of "
          "size eta); inf: the ridge minimiser", r"training time $\tau$", ranges=True,
          sort=6, fill=True, symbol=r"\tau"),
    Param("activation", "tanh", "a registered activation name", _activation,
          "tanh, erf, relu (centred), linear, or a name given to rfdsm.register_activation",
          r"activation $\sigma$", kind="object", sort=0, symbol=r"\sigma"),
    Param("estimator", "ridge", "a registered estimator name",
          _registered("estimator", "..estimators", "Estimator", "get_estimator",
                      "registered_estimators", "rfdsm.estimators.Estimator"),
          "ridge, or a name given to rfdsm.estimators.register_estimator",
          "estimator", kind="object", sort=-1, fill=True),
    Param("data", "isotropic", "a registered data model name or a spectrum", _data,
          "isotropic (x_0 ~ N(0, I)); shifted(r): x_0 ~ N(mu, I), |mu|^2/d = r; "
          "spectrum(w1:v1,w2:v2,...): x_0 ~ N(0, Sigma), a fraction "
          "w_k of the eigenvalues of Sigma equal to v_k; or a name given to "
          "rfdsm.data.register_data",
          "data model", kind="object", sort=-2, fill=True),
    Param("psi_d", 1.0, _PSI_D, parse_psi_d,
          "D/d in (0, 1]: the data lie on a subspace of dimension D (the data model's spectrum "
          "there, 0 on its complement); 1: all of R^d", r"$\psi_d = D/d$", ranges=True,
          sort=-3, fill=True, symbol=r"\psi_d"),
    Param("step", 0.0, _STEP, parse_step,
          "step of estimator gd in tau units, delta = eta/d^2 (0: unused; gradient flow)",
          r"step $\delta$", ranges=True, sort=-4, fill=True, symbol=r"\delta"),
    Param("momentum", 0.0, _MOMENTUM, parse_momentum,
          "heavy-ball momentum beta in [0, 1) of estimator gd", r"momentum $\beta$",
          ranges=True, sort=-5, fill=True, symbol=r"\beta"),
)

_BY_NAME = {p.name: p for p in PARAMS}


def param(name: str) -> Param:
    """The :class:`Param` called ``name`` (a ValueError listing the parameters otherwise)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown setting parameter {name!r} (parameters: "
                         f"{', '.join(names())})") from None


def sort_keys() -> tuple[str, ...]:
    """Parameter names by their ``sort`` rank."""
    return tuple(p.name for p in sorted(PARAMS, key=lambda p: p.sort))


def names(**where) -> tuple[str, ...]:
    """Parameter names, in table order; ``names(ranges=True)`` those with that attribute."""
    return tuple(p.name for p in PARAMS if all(getattr(p, k) == v for k, v in where.items()))
