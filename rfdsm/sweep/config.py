"""Sweep configurations: parse and validate a TOML grid, expand it into tasks.

A configuration (see ``scripts/*.toml``) has a table per registered evaluator besides two::

    [sweep]                       # evaluators = ["theory", "simulate"], curve = "psi_p"
    [grid]                        # psi_n, psi_p, m, t, lam, activation (psi_n, psi_p required)
    [theory]    grid = {...}      # optional: grid entries that replace [grid] for the theory
    [simulate]  d = [...]         # dimensions; seeds = count, seed = first seed; grid = {...}

An evaluator's table takes ``grid`` and the evaluator's ``options``; the evaluators, their
options and their tasks come from the registry (:mod:`rfdsm.evaluators`), nothing here names
one.

A grid entry is a scalar, a non-empty list, or (for ``psi_n, psi_p, t, lam, tau, psi_d``) a
range table ``{start, stop, num, spacing = "linear" | "log"}``; ``data`` also takes a spectrum
table ``{weights = [...], values = [...]}`` (or a list of them).  Every value and every grid point is checked
with :class:`rfdsm.Setting` (and ``Setting.sizes(d)`` for simulations) before any work starts;
a problem raises :class:`ConfigError` naming the key and the reason.  The rows are counted
from list lengths and range sizes before anything is expanded; more than ``max_rows``
(default :data:`DEFAULT_MAX_ROWS`) is refused.
"""

from __future__ import annotations

import itertools
import json
import math
import tomllib
from pathlib import Path

import numpy as np

from ..activations import get_activation
from ..core import params as _params
from ..core.checks import check_int, count_values as _count, show as _show
from ..core.setting import Setting
from ..evaluators import (canonical as _canonical, digest, get_evaluator, group_curves,
                          registered_evaluators)
from ..evaluators import setting_key  # noqa: F401  (re-exported: its old home)

__all__ = ["ConfigError", "SweepConfig", "load_config", "PARAMS", "CURVE_AXES",
           "DEFAULT_MAX_ROWS"]

#: Setting parameters a grid may vary, in the order used for keys and sorting (rfdsm/params.py).
PARAMS = _params.names()
#: Axes along which the asymptotic solver can continue from one point to the next.
CURVE_AXES = _params.names(curve=True)
_RANGE_PARAMS = _params.names(ranges=True)
_RANGE_KEYS = ("start", "stop", "num", "spacing")

_SWEEP_KEYS = ("name", "description", "evaluators", "curve")

#: Largest sweep (rows of the table) accepted unless the caller raises the limit: a typo such
#: as ``seeds = 100000000`` must be refused at once, not expanded until memory runs out.  A
#: million rows is ~1 GB of task descriptions and far more work than one machine does in a day.
DEFAULT_MAX_ROWS = 1_000_000


class ConfigError(ValueError):
    """A sweep configuration that cannot be run; the message names the key and the reason."""


def _type_name(v) -> str:
    return type(v).__name__


def _check_keys(table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"unknown key '{where}{key}' (allowed: {', '.join(allowed)})")


def _table(cfg: dict, key: str, where: str = "") -> dict | None:
    value = cfg.get(key)
    if value is not None and not isinstance(value, dict):
        raise ConfigError(f"{where}{key} must be a table, got {_type_name(value)}")
    return value


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_finite(v) -> bool:
    # TOML integers are unbounded: math.isfinite(10**400) raises OverflowError
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _int(value, where: str, low: int) -> int:
    try:
        return check_int(value, where, low)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _clean(x: float) -> float:
    # 12 significant digits: range points print cleanly and meet hand-written values
    # (e.g. psi_p = 1 on a log range) exactly.
    return float(f"{x:.12g}")


def _expand_range(spec: dict, where: str) -> list[float]:
    _check_keys(spec, _RANGE_KEYS, f"{where}.")
    for key in ("start", "stop", "num"):
        if key not in spec:
            raise ConfigError(f"{where}: a range table needs start, stop and num (missing {key!r})")
    start, stop = spec["start"], spec["stop"]
    for key, v in (("start", start), ("stop", stop)):
        if not _is_number(v) or not _is_finite(v):
            raise ConfigError(f"{where}.{key} must be a finite number, got {_show(v)}")
    num = _int(spec["num"], f"{where}.num", 1)
    spacing = spec.get("spacing", "linear")
    if spacing not in ("linear", "log"):
        raise ConfigError(f"{where}.spacing must be 'linear' or 'log', got {spacing!r}")
    if spacing == "log":
        if start <= 0 or stop <= 0:
            raise ConfigError(f"{where}: log spacing needs start > 0 and stop > 0")
        values = np.geomspace(start, stop, num)
    else:
        values = np.linspace(start, stop, num)
    return [_clean(v) for v in values]


def _grid_sizes(table) -> dict[str, int]:
    if not isinstance(table, dict):
        return {}
    return {param: _count(spec) for param, spec in table.items() if param in PARAMS}


def _normalise_value(param: str, value, where: str):
    """One grid value, checked by its row of the parameter table; returns the canonical value
    (the name, for an object such as the activation).  TOML types are checked first, so that
    the message says what was written (a string where a number belongs, say)."""
    row = _params.param(param)
    if row.kind == "object":
        # a table only where the parser takes one: data = {weights = [...], values = [...]}
        if not isinstance(value, str) and not (param == "data" and isinstance(value, dict)):
            raise ConfigError(f"{where} must be a string, got {_type_name(value)} {value!r}")
    elif param == "m":
        if isinstance(value, str):
            if value.strip().lower() not in ("inf", "infinity", "+inf"):
                raise ConfigError(f"{where} must be an integer >= 1 or inf, got string {value!r}")
        elif not _is_number(value):
            raise ConfigError(f"{where} must be an integer >= 1 or inf, got "
                              f"{_type_name(value)} {value!r}")
    elif not _is_number(value):
        raise ConfigError(f"{where} must be a number, got {_type_name(value)} {value!r}")
    try:
        out = row.parse(value)  # refuses an integer beyond float range by name
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return out.name if row.kind == "object" else out


def _parse_grid(table: dict, where: str) -> dict[str, list]:
    _check_keys(table, PARAMS, f"{where}.")
    out = {}
    for param, spec in table.items():
        key = f"{where}.{param}"
        if isinstance(spec, dict) and param == "data":  # a spectrum table, not a range
            raw = [spec]
        elif isinstance(spec, dict):
            if param not in _RANGE_PARAMS:
                raise ConfigError(f"{key}: range tables are allowed only for "
                                  f"{', '.join(_RANGE_PARAMS)}; give a list")
            raw = _expand_range(spec, key)
        elif isinstance(spec, list):
            if not spec:
                raise ConfigError(f"{key} is an empty list; give at least one value")
            raw = spec
        else:
            raw = [spec]
        values = [_normalise_value(param, v, f"{key}[{i}]" if len(raw) > 1 else key)
                  for i, v in enumerate(raw)]
        seen = set()
        for v in values:  # one pass: values.count() per value is quadratic in a long list
            if v in seen:
                raise ConfigError(f"{key} lists the value {v!r} more than once")
            seen.add(v)
        out[param] = values
    return out


def _settings(grid: dict[str, list], where: str) -> list[Setting]:
    for param in ("psi_n", "psi_p"):
        if param not in grid:
            raise ConfigError(f"{where}: grid.{param} is required")
    names = [p for p in PARAMS if p in grid]
    out = []
    for combo in itertools.product(*(grid[p] for p in names)):
        point = dict(zip(names, combo))
        try:
            out.append(Setting(**point))
        except ValueError as exc:  # pragma: no cover - values were checked one by one
            raise ConfigError(f"{where}: grid point {point}: {exc}") from None
    return out


def _either(names) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and/or {quoted[-1]}"


class SweepConfig:
    """A validated sweep: evaluators, grids, their options; expands into tasks.

    ``tasks()`` lists the tasks of every evaluator in registry order, each evaluator's as its
    :meth:`~rfdsm.evaluators.Evaluator.tasks` makes them (the simulator: one per
    (setting, d, seed); the theory: one per curve of settings that differ only along
    ``curve``, in increasing order, so that the solver can continue from one point to the
    next).  ``hash`` identifies the work to do: cosmetic keys (``name``, ``description``) and
    the spelling of values do not enter it.  ``n_rows`` and ``n_tasks`` give the work per
    evaluator; a sweep of more than ``max_rows`` rows in all is refused before its grid is
    expanded.  ``options[name]`` holds each evaluator's checked section options.
    """

    def __init__(self, raw: dict, source_text: str | None = None, *,
                 max_rows: int = DEFAULT_MAX_ROWS):
        max_rows = _int(max_rows, "max_rows", 1)
        if not isinstance(raw, dict):
            raise ConfigError(f"a sweep configuration is a table, got {_type_name(raw)}")
        self.source_text = source_text
        _check_keys(raw, ("sweep", "grid", *registered_evaluators()), "")
        sweep = _table(raw, "sweep") or {}
        _check_keys(sweep, _SWEEP_KEYS, "sweep.")
        for key in ("name", "description"):
            if key in sweep and not isinstance(sweep[key], str):
                raise ConfigError(f"sweep.{key} must be a string, got {_type_name(sweep[key])}")
        self.name = sweep.get("name", "")
        self.description = sweep.get("description", "")
        self.evaluators = _evaluators(sweep)

        self.curve = sweep.get("curve", "psi_p")
        if self.curve not in CURVE_AXES:
            raise ConfigError(f"sweep.curve must be one of {', '.join(CURVE_AXES)}, "
                              f"got {self.curve!r}")

        grid_table = _table(raw, "grid")
        if grid_table is None:
            raise ConfigError("the [grid] table is required (at least psi_n and psi_p)")
        self._count_work(raw, grid_table, max_rows)
        base = _parse_grid(grid_table, "grid")

        for ev_name in registered_evaluators():
            section = _table(raw, ev_name)
            if section is not None and ev_name not in self.evaluators:
                raise ConfigError(f"[{ev_name}] is given but {ev_name!r} is not in "
                                  "sweep.evaluators")
            if section is not None:
                _check_keys(section, (*get_evaluator(ev_name).options, "grid"), f"{ev_name}.")

        self.grids: dict[str, dict[str, list]] = {}
        self.settings: dict[str, list[Setting]] = {}
        for ev_name in self.evaluators:
            section = _table(raw, ev_name) or {}
            override = _table(section, "grid", f"{ev_name}.") or {}
            grid = {**base, **_parse_grid(override, f"{ev_name}.grid")}
            self.grids[ev_name] = grid
            self.settings[ev_name] = _settings(grid, f"[{ev_name}]")

        self.options: dict[str, dict] = {}
        for ev_name in self.evaluators:
            ev = get_evaluator(ev_name)
            try:
                self.options[ev_name] = ev.parse(_table(raw, ev_name) or {})
                ev.check(self.settings[ev_name], self.options[ev_name])
            except ConfigError:
                raise
            except ValueError as exc:  # the evaluator's message names its key
                raise ConfigError(str(exc)) from None

    # the simulator's options under the names of earlier versions
    d = property(lambda self: self.options.get("simulate", {}).get("d", []))
    seeds = property(lambda self: self.options.get("simulate", {}).get("seeds", 0))
    seed = property(lambda self: self.options.get("simulate", {}).get("seed", 0))

    def _count_work(self, raw: dict, grid_table: dict, max_rows: int) -> None:
        """Rows and tasks per evaluator, by arithmetic on the list lengths and range sizes, so
        that an oversized grid is refused before anything is expanded."""
        self.n_rows: dict[str, int] = {}
        self.n_tasks: dict[str, int] = {}
        for ev_name in self.evaluators:
            section = raw.get(ev_name) if isinstance(raw.get(ev_name), dict) else {}
            sizes = {**_grid_sizes(grid_table), **_grid_sizes(section.get("grid"))}
            self.n_rows[ev_name], self.n_tasks[ev_name] = get_evaluator(ev_name).count_grid(
                section, sizes, self.curve)
        self.check_size(max_rows)

    def check_size(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        """Refuse the sweep if it has more than ``max_rows`` rows (:class:`ConfigError`)."""
        max_rows = _int(max_rows, "max_rows", 1)
        total = sum(self.n_rows.values())
        if total > max_rows:
            parts = ", ".join(f"{k} {v:,}" for k, v in self.n_rows.items())
            raise ConfigError(f"the sweep has {total:,} rows ({parts}), more than the limit of "
                              f"{max_rows:,}; shrink the grid (seeds, d, list lengths, range "
                              "num), or raise the limit with --max-rows N (API: max_rows=N)")

    # ------------------------------------------------------------------------------------
    def normalised(self) -> dict:
        """The configuration as canonical JSON-ready data (what the hash is taken of)."""
        out = {"evaluators": list(self.evaluators), "curve": self.curve}
        for ev_name in self.evaluators:
            out[ev_name] = {"grid": {p: [_canonical(v) for v in vals]
                                     for p, vals in sorted(self.grids[ev_name].items())},
                            **get_evaluator(ev_name).normalised(self.options[ev_name])}
        # the functions, not only their names: a name registered again with other content
        # is another sweep (a resume would otherwise mix the two functions)
        default = _params.param("activation").default
        out["activations"] = {name: get_activation(name).fingerprint for ev in self.evaluators
                              for name in self.grids[ev].get("activation", [default])}
        for row in _params.PARAMS:  # the younger objects (estimator, data model) likewise,
            names = {n for ev in self.evaluators for n in self.grids[ev].get(row.name, [])}
            if row.fill and row.kind == "object" and names:  # only where a grid names them
                out[row.name] = {n: row.parse(n).fingerprint for n in sorted(names)}
        return out

    @property
    def hash(self) -> str:
        return digest(json.dumps(self.normalised(), sort_keys=True), 64)

    def curves(self) -> list[list[Setting]]:
        """The settings of the ``d -> inf`` evaluators (the theory) grouped by all parameters
        except ``curve``, each group sorted along it."""
        return [c for ev in self.evaluators if not get_evaluator(ev).finite_size
                for c in group_curves(self.settings[ev], self.curve)]

    def tasks(self) -> list[dict]:
        """Picklable task descriptions, each with a unique ``key`` and its row count."""
        tasks = [t for ev in self.evaluators for t in get_evaluator(ev).tasks(
            self.settings[ev], self.options[ev], self.curve)]
        if len({t["key"] for t in tasks}) != len(tasks):  # pragma: no cover - digest clash
            raise ConfigError("internal error: two tasks share a key")
        return tasks


def _evaluators(sweep: dict) -> tuple[str, ...]:
    """``sweep.evaluators`` checked against the registry, in registry order."""
    known = registered_evaluators()
    if "evaluators" not in sweep:
        raise ConfigError(f"sweep.evaluators is required: a list with {_either(known)}")
    ev = sweep["evaluators"]
    if isinstance(ev, str):
        ev = [ev]
    if not isinstance(ev, list) or not ev:
        raise ConfigError(f"sweep.evaluators must be a non-empty list of {_either(known)}, "
                          f"got {ev!r}")
    for e in ev:
        if not isinstance(e, str) or e not in known:
            raise ConfigError(f"sweep.evaluators: unknown evaluator {e!r} "
                              f"(allowed: {', '.join(known)})")
    return tuple(e for e in known if e in ev)


def __getattr__(name):
    if name == "EVALUATORS":  # the registered names, as the constant of earlier versions
        return registered_evaluators()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_config(source, *, max_rows: int = DEFAULT_MAX_ROWS) -> SweepConfig:
    """A :class:`SweepConfig` from a TOML file path, a dict with the structure that such a file
    parses to, or a :class:`SweepConfig` (returned as is).

    A grid of more than ``max_rows`` rows is refused (counted before anything is expanded).
    Errors from a file name it once, in front of the message."""
    if isinstance(source, SweepConfig):
        source.check_size(max_rows)
        return source
    if isinstance(source, dict):
        return SweepConfig(source, max_rows=max_rows)
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the sweep config {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:  # e.g. a binary file given by mistake
        raise ConfigError(f"{path}: not a TOML text file (byte {exc.object[exc.start]:#04x} at "
                          f"offset {exc.start} is not UTF-8)") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    try:
        return SweepConfig(raw, source_text=text, max_rows=max_rows)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
