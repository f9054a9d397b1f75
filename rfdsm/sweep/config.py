"""Sweep configurations: parse and validate a TOML grid, expand it into tasks.

A configuration (see ``scripts/*.toml``) has up to four tables::

    [sweep]                       # evaluators = ["theory", "simulate"], curve = "psi_p"
    [grid]                        # psi_n, psi_p, m, t, lam, activation (psi_n, psi_p required)
    [theory]    grid = {...}      # optional: grid entries that replace [grid] for the theory
    [simulate]  d = [...]         # dimensions; seeds = count, seed = first seed; grid = {...}

A grid entry is a scalar, a non-empty list, or (for ``psi_n, psi_p, t, lam``) a range table
``{start, stop, num, spacing = "linear" | "log"}``.  Every value and every grid point is checked
with :class:`rfdsm.Setting` (and ``Setting.sizes(d)`` for simulations) before any work starts;
a problem raises :class:`ConfigError` naming the key and the reason.  The rows are counted
from list lengths and range sizes before anything is expanded; more than ``max_rows``
(default :data:`DEFAULT_MAX_ROWS`) is refused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from pathlib import Path

import numpy as np

from .. import params as _params
from ..activations import get_activation
from ..setting import Setting

__all__ = ["ConfigError", "SweepConfig", "load_config", "PARAMS", "CURVE_AXES",
           "DEFAULT_MAX_ROWS"]

#: Setting parameters a grid may vary, in the order used for keys and sorting (rfdsm/params.py).
PARAMS = _params.names()
#: Axes along which the asymptotic solver can continue from one point to the next.
CURVE_AXES = _params.names(curve=True)
EVALUATORS = ("theory", "simulate")
_RANGE_PARAMS = _params.names(ranges=True)
_RANGE_KEYS = ("start", "stop", "num", "spacing")

_TOP_KEYS = ("sweep", "grid", "theory", "simulate")
_SWEEP_KEYS = ("name", "description", "evaluators", "curve")
_THEORY_KEYS = ("grid",)
_SIMULATE_KEYS = ("d", "seeds", "seed", "grid")

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


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else f"{text[:12]}...{text[-6:]} ({len(text)} characters)"


def _int(value, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where} must be an integer >= {low}, got {_type_name(value)} {_show(value)}")
    if value < low:
        raise ConfigError(f"{where} must be an integer >= {low}, got {_show(value)}")
    return value


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


def _count(spec) -> int:
    """Number of values of one grid entry, read off without expanding it.  A malformed entry
    counts 1: the full parse then reports it with its proper message."""
    if isinstance(spec, dict):
        num = spec.get("num")
        return num if isinstance(num, int) and not isinstance(num, bool) and num >= 1 else 1
    if isinstance(spec, list):
        return max(len(spec), 1)
    return 1


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
        if not isinstance(value, str):
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
        if isinstance(spec, dict):
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


def _canonical(v):
    if isinstance(v, float):
        return "inf" if v == math.inf else repr(v)
    return v


def setting_key(s: Setting) -> str:
    """A canonical text for a setting (exact float repr; ``m = inf`` spelled ``inf``)."""
    return json.dumps({k: _canonical(v) for k, v in s.to_dict().items()}, sort_keys=True)


def _digest(text: str, size: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


class SweepConfig:
    """A validated sweep: evaluators, grids, simulation sizes; expands into tasks.

    ``tasks()`` lists one task per (setting, d, seed) for the simulator and one per curve for
    the theory (settings that differ only along ``curve``, in increasing order, so that the
    solver can continue from one point to the next).  ``hash`` identifies the work to do:
    cosmetic keys (``name``, ``description``) and the spelling of values do not enter it.
    ``n_rows`` and ``n_tasks`` give the work per evaluator; a sweep of more than ``max_rows``
    rows in all is refused before its grid is expanded.
    """

    def __init__(self, raw: dict, source_text: str | None = None, *,
                 max_rows: int = DEFAULT_MAX_ROWS):
        max_rows = _int(max_rows, "max_rows", 1)
        if not isinstance(raw, dict):
            raise ConfigError(f"a sweep configuration is a table, got {_type_name(raw)}")
        self.source_text = source_text
        _check_keys(raw, _TOP_KEYS, "")
        sweep = _table(raw, "sweep") or {}
        _check_keys(sweep, _SWEEP_KEYS, "sweep.")
        for key in ("name", "description"):
            if key in sweep and not isinstance(sweep[key], str):
                raise ConfigError(f"sweep.{key} must be a string, got {_type_name(sweep[key])}")
        self.name = sweep.get("name", "")
        self.description = sweep.get("description", "")

        if "evaluators" not in sweep:
            raise ConfigError("sweep.evaluators is required: a list with 'theory' and/or "
                              "'simulate'")
        ev = sweep["evaluators"]
        if isinstance(ev, str):
            ev = [ev]
        if not isinstance(ev, list) or not ev:
            raise ConfigError("sweep.evaluators must be a non-empty list of 'theory' and/or "
                              f"'simulate', got {ev!r}")
        for e in ev:
            if e not in EVALUATORS:
                raise ConfigError(f"sweep.evaluators: unknown evaluator {e!r} "
                                  f"(allowed: {', '.join(EVALUATORS)})")
        self.evaluators = tuple(e for e in EVALUATORS if e in ev)

        self.curve = sweep.get("curve", "psi_p")
        if self.curve not in CURVE_AXES:
            raise ConfigError(f"sweep.curve must be one of {', '.join(CURVE_AXES)}, "
                              f"got {self.curve!r}")

        grid_table = _table(raw, "grid")
        if grid_table is None:
            raise ConfigError("the [grid] table is required (at least psi_n and psi_p)")
        self._count_work(raw, grid_table, max_rows)
        base = _parse_grid(grid_table, "grid")

        for ev_name, allowed in (("theory", _THEORY_KEYS), ("simulate", _SIMULATE_KEYS)):
            section = _table(raw, ev_name)
            if section is not None and ev_name not in self.evaluators:
                raise ConfigError(f"[{ev_name}] is given but {ev_name!r} is not in "
                                  "sweep.evaluators")
            if section is not None:
                _check_keys(section, allowed, f"{ev_name}.")

        self.grids: dict[str, dict[str, list]] = {}
        self.settings: dict[str, list[Setting]] = {}
        for ev_name in self.evaluators:
            section = _table(raw, ev_name) or {}
            override = _table(section, "grid", f"{ev_name}.") or {}
            grid = {**base, **_parse_grid(override, f"{ev_name}.grid")}
            self.grids[ev_name] = grid
            self.settings[ev_name] = _settings(grid, f"[{ev_name}]")

        self.d: list[int] = []
        self.seeds = 0
        self.seed = 0
        if "simulate" in self.evaluators:
            section = _table(raw, "simulate") or {}
            if "d" not in section:
                raise ConfigError("simulate.d is required: the dimension(s) to simulate")
            ds = section["d"] if isinstance(section["d"], list) else [section["d"]]
            if not ds:
                raise ConfigError("simulate.d is an empty list; give at least one dimension")
            self.d = [_int(v, "simulate.d", 1) for v in ds]
            if len(set(self.d)) != len(self.d):
                raise ConfigError("simulate.d lists a dimension more than once")
            self.seeds = _int(section.get("seeds", 1), "simulate.seeds", 1)
            self.seed = _int(section.get("seed", 0), "simulate.seed", 0)
            for s in self.settings["simulate"]:
                for d in self.d:
                    try:
                        s.sizes(d)
                    except ValueError as exc:
                        raise ConfigError(f"simulate.d = {_show(d)} with psi_n = {s.psi_n:g}, "
                                          f"psi_p = {s.psi_p:g}: {exc}") from None

    def _count_work(self, raw: dict, grid_table: dict, max_rows: int) -> None:
        """Rows and tasks per evaluator, by arithmetic on the list lengths and range sizes, so
        that an oversized grid is refused before anything is expanded."""
        self.n_rows: dict[str, int] = {}
        self.n_tasks: dict[str, int] = {}
        for ev_name in self.evaluators:
            section = raw.get(ev_name) if isinstance(raw.get(ev_name), dict) else {}
            sizes = {**_grid_sizes(grid_table), **_grid_sizes(section.get("grid"))}
            rows = math.prod(sizes.values())
            if ev_name == "simulate":
                tasks = rows = rows * _count(section.get("d")) * _count_seeds(section)
            else:  # one task per curve along the continuation axis
                tasks = rows // sizes.get(self.curve, 1)
            self.n_rows[ev_name], self.n_tasks[ev_name] = rows, tasks
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
                                     for p, vals in sorted(self.grids[ev_name].items())}}
        if "simulate" in self.evaluators:
            out["simulate"].update(d=self.d, seeds=self.seeds, seed=self.seed)
        # the functions, not only their names: a name registered again with other content
        # is another sweep (a resume would otherwise mix the two functions)
        default = _params.param("activation").default
        out["activations"] = {name: get_activation(name).fingerprint for ev in self.evaluators
                              for name in self.grids[ev].get("activation", [default])}
        return out

    @property
    def hash(self) -> str:
        return _digest(json.dumps(self.normalised(), sort_keys=True), 64)

    def curves(self) -> list[list[Setting]]:
        """Theory settings grouped by all parameters except ``curve``, sorted along it."""
        groups: dict[tuple, list[Setting]] = {}
        for s in self.settings.get("theory", []):
            rest = tuple(_canonical(getattr(s, p)) for p in PARAMS if p != self.curve)
            groups.setdefault(rest, []).append(s)
        return [sorted(g, key=lambda s: getattr(s, self.curve)) for g in groups.values()]

    def tasks(self) -> list[dict]:
        """Picklable task descriptions, each with a unique ``key`` and its row count."""
        tasks = []
        for curve in self.curves():
            keys = [setting_key(s) for s in curve]
            tasks.append({"key": "theory:" + _digest("\n".join(keys)), "kind": "theory",
                          "settings": list(curve), "rows": len(curve)})
        sim = []
        for s in self.settings.get("simulate", []):
            sk = setting_key(s)
            for d in self.d:
                for seed in range(self.seed, self.seed + self.seeds):
                    sim.append({"key": f"simulate:{_digest(f'{sk}|{d}|{seed}')}",
                                "kind": "simulate", "setting": s, "d": d,
                                "seed": seed, "rows": 1})
        # Largest dimensions first: the long tasks start early and the pool drains evenly.
        sim.sort(key=lambda t: -t["d"])
        tasks.extend(sim)
        if len({t["key"] for t in tasks}) != len(tasks):  # pragma: no cover - digest clash
            raise ConfigError("internal error: two tasks share a key")
        return tasks


def _count_seeds(section: dict) -> int:
    seeds = section.get("seeds", 1)
    return seeds if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1 else 1


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
