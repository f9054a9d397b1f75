"""The tables the figures are drawn from: reading, checking, and averaging over seeds.

Reading goes through :func:`rfdsm.sweep.load_results` and averaging through
:func:`rfdsm.sweep.store.seed_summary`, so that a figure shows the numbers every other reader
of the same table gets.  Rows are told apart by their evaluator's attributes
(:mod:`rfdsm.evaluators`: ``finite_size``, ``style``), never by its name; rows of an
evaluator that is not registered are not drawn.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core import params
from ..evaluators import evaluator_names, get_evaluator, registered_evaluators
from ..sweep.store import load_results, seed_summary

SETTING_COLUMNS = params.names()  # the parameter table (rfdsm/params.py)
# a parameter younger than a table may be missing from it: aggregate fills its default
RESULT_COLUMNS = ("evaluator",) + params.names(fill=False) + ("d", "train", "test")
VALIDATION_COLUMNS = ("error", "d", "theory", "sim_mean", "sim_se")
ERROR_NAMES = ("train", "test", "score")

_NUMERIC = ("psi_n", "psi_p", "m", "t", "lam", "psi_d", "d", "train", "test", "score", "theory",
            "sim_mean")
_INF_WORDS = ("inf", "infinity", "+inf")


def bayes_level(t, data=None, psi_d=1.0):
    """The Bayes level: the smallest possible test error at time ``t`` (``t`` a number or a
    column), from the data model ``data`` (a name, a :class:`rfdsm.data.DataModel` or None
    for the default; isotropic: ``a^2 = exp(-2t)``) on a subspace of ``psi_d d`` dimensions,
    as ``Setting.bayes`` has it."""
    from ..data import DataModel, get_data

    if data is None:
        data = params.param("data").default
    model = data if isinstance(data, DataModel) else get_data(str(data))
    if psi_d is not None and float(psi_d) != 1.0:
        model = model.restricted(float(psi_d))
    return model.bayes(t)


def table_bayes(df):
    """The Bayes level of every row of ``df`` (columns ``t`` and, where present, ``data`` and
    ``psi_d``), as a NumPy array."""
    out = np.empty(len(df))
    keys = [c for c in ("data", "psi_d") if c in df.columns]
    groups = (df.groupby(keys, sort=False, dropna=False).indices.items() if keys
              else [((), np.arange(len(df)))])
    for key, idx in groups:
        # a missing value (a table older than the column) is the default
        key = {k: v for k, v in zip(keys, key if isinstance(key, tuple) else (key,))
               if not pd.isna(v)}
        out[idx] = bayes_level(df["t"].to_numpy(dtype=float)[idx], key.get("data"),
                               key.get("psi_d", 1.0))
    return out


def check_table(df, required, what: str) -> pd.DataFrame:
    """``df`` itself, once it is a DataFrame with the ``required`` columns and some rows."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks the column(s) {missing}; "
                         f"required columns are {list(required)}")
    if len(df) == 0:
        raise ValueError(f"{what}: the table has no rows (required columns: {list(required)})")
    return df


def with_defaults(df):
    """A table without the column of a parameter younger than it (``Param.fill``: written by
    an older rfdsm, or by hand) holds that parameter's default there."""
    if not isinstance(df, pd.DataFrame):
        return df
    missing = [p for p in params.PARAMS if p.fill and p.name not in df.columns]
    return df.assign(**{p.name: p.default for p in missing}) if missing else df


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric setting columns (``m = "inf"`` -> ``inf``), evaluator/activation as str."""
    out = df.copy()
    if "m" in out:
        out["m"] = out["m"].map(lambda v: math.inf if isinstance(v, str) and
                                v.strip().lower() in _INF_WORDS else v)
    for c in _NUMERIC:
        if c in out:
            try:
                out[c] = pd.to_numeric(out[c], errors="raise").astype(float)
            except (TypeError, ValueError):
                raise ValueError(f"column {c!r} must hold numbers") from None
    for c in ("evaluator", "activation", "error"):
        if c in out:
            out[c] = out[c].astype(str)
    return out


def load_table(path) -> pd.DataFrame:
    """Read a result table from a sweep directory, or from one ``.parquet``/``.csv`` file.

    Read with :func:`rfdsm.load_results`; its errors name the argument ``DIR`` of
    ``rfdsm plot``.  A file with a header but no rows is refused here, where the file is
    still known (later checks see only a table).
    """
    path = Path(path)
    df = load_results(path, name="DIR")
    if len(df) == 0 and path.is_file():
        raise ValueError(f"DIR: {str(path)!r} has a header but no rows "
                         f"(columns: {list(df.columns)})")
    return df


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluator x setting x d: errors averaged over seeds, with standard errors.

    Returns the setting columns, ``evaluator``, ``d`` (NaN for theory), ``n_seeds``,
    ``converged`` (all rows converged) and for each available error ``E`` in train/test/score
    the columns ``E`` (mean) and ``E_se`` (standard error of the mean, ``std/sqrt(k)`` with
    ``k`` seeds; NaN with a single seed and for theory).
    """
    df = normalise(check_table(with_defaults(df), RESULT_COLUMNS, "aggregate"))
    errors = [e for e in ERROR_NAMES if e in df.columns]
    keys = ["evaluator", *SETTING_COLUMNS, "d"]
    work = df[keys + errors].copy()
    work["converged"] = df["converged"].astype(bool) if "converged" in df else True
    out = seed_summary(work, keys, errors)
    out["converged"] = work.groupby(keys, dropna=False, sort=True)["converged"].all()
    out = out.reset_index()
    # limit rows repeated in a table (e.g. two concatenated sweeps) are one value, not seeds
    limit = is_limit(out)
    for e in errors:
        out.loc[limit, f"{e}_se"] = np.nan
    return out


def is_limit(agg: pd.DataFrame) -> pd.Series:
    """Rows of the ``d -> inf`` evaluators (``finite_size = False``: the theory)."""
    return agg["evaluator"].isin(evaluator_names(finite_size=False))


def series(sub: pd.DataFrame, d=None) -> list:
    """``[(evaluator, rows)]`` for every registered evaluator with rows in ``sub``, in
    registry order (the drawing order); a finite-size evaluator's rows at dimension ``d``
    (:func:`pick_d`)."""
    out = []
    for name in registered_evaluators():
        ev = get_evaluator(name)
        rows = sub[sub["evaluator"] == name]
        if ev.finite_size:
            rows = pick_d(rows, d)
        if len(rows):
            out.append((ev, rows))
    return out


def first_present(agg: pd.DataFrame, finite_size: bool):
    """The first registered evaluator with ``finite_size`` that has rows in ``agg``, or None."""
    present = set(agg["evaluator"])
    for name in evaluator_names(finite_size=finite_size):
        if name in present:
            return get_evaluator(name)
    return None


def check_errors(errors, df):
    """``errors`` as a tuple of names of :data:`ERROR_NAMES`, with the columns ``df`` needs."""
    if isinstance(errors, str):
        errors = (errors,)
    errors = tuple(errors)
    bad = [e for e in errors if e not in ERROR_NAMES]
    if bad or not errors:
        raise ValueError(f"errors must be a non-empty subset of {list(ERROR_NAMES)}, "
                         f"got {errors!r}")
    if isinstance(df, pd.DataFrame):
        check_table(df, RESULT_COLUMNS + tuple(e for e in errors if e == "score"), "plot")
    return errors


def drop_unconverged(agg: pd.DataFrame, what: str) -> pd.DataFrame:
    """The aggregated rows without the unconverged points of the ``d -> inf`` evaluators (a
    simulation's convergence flag is a bound on a series, its points stay), with a warning
    naming ``what``."""
    bad = is_limit(agg) & ~agg["converged"].astype(bool)
    names = "/".join(n for n in registered_evaluators() if n in set(agg.loc[bad, "evaluator"]))
    if bad.any():
        warnings.warn(f"{what}: {int(bad.sum())} {names} point(s) did not converge and are "
                      "left out of the figure", RuntimeWarning, stacklevel=3)
    out = agg[~bad]
    out.attrs["dropped_unconverged"] = int(bad.sum())
    out.attrs["dropped_evaluators"] = names
    return out


def require_finite(agg: pd.DataFrame, errors, what: str) -> None:
    """Refuse to draw a figure (or a row of panels) that would hold no point at all.

    The message says what the values are: NaN/inf/missing in the rows that were kept, and
    how many unconverged limit points were left out before (those are not the NaN ones)."""
    empty = [e for e in errors if not np.isfinite(agg[e].to_numpy(dtype=float)).any()]
    if empty:
        dropped = agg.attrs.get("dropped_unconverged", 0)
        kept = (f"all {len(agg)} remaining row(s) hold NaN, inf or nothing in that column"
                if len(agg) else "no row is left")
        names = agg.attrs.get("dropped_evaluators", "")
        note = f" after leaving out {dropped} unconverged {names} point(s)" if dropped else ""
        raise ValueError(f"{what}: no finite value of {', '.join(empty)}: {kept}{note}; "
                         "nothing to draw")


def pick_d(sim: pd.DataFrame, d) -> pd.DataFrame:
    """Simulation rows at dimension ``d`` (default: the largest d present)."""
    if len(sim) == 0:
        return sim
    if d is None:
        d = sim["d"].max()
    elif not (sim["d"] == float(d)).any():
        raise ValueError(f"d: no simulation at d = {d}; available d are "
                         f"{sorted(int(v) for v in sim['d'].unique())}")
    return sim[sim["d"] == float(d)]
