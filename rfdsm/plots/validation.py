"""Theory against simulation: the validation table and its scatter plot.

Moved unchanged from the former ``plots.py``; the table of ``rfdsm validate`` is accepted
through :data:`_VALIDATION_ALIASES` until the two schemas are one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _layout as lay
from ._table import (ERROR_NAMES, SETTING_COLUMNS, VALIDATION_COLUMNS, aggregate, check_table,
                     first_present, normalise)
from .style import palette

__all__ = ["validation_table", "validation_scatter"]

_VALIDATION_ALIASES = {"quantity": "error", "sim": "sim_mean"}


def validation_table(df: pd.DataFrame, errors=ERROR_NAMES) -> pd.DataFrame:
    """Pair every simulated (setting, d) with the theory of the same setting.

    The theory is the first registered ``d -> inf`` evaluator with rows in the table, the
    simulation the first finite-size one (:mod:`rfdsm.evaluators`).  Returns the validation schema of this module (one row per setting x d x error) plus
    ``n_seeds`` and ``rel_dev = (sim_mean - theory) / theory``.  Settings without a theory row
    (or without simulation) are dropped; an empty result is an error.
    """
    agg = aggregate(df)
    errors = [e for e in ((errors,) if isinstance(errors, str) else errors) if e in agg.columns]
    limit, finite = first_present(agg, False), first_present(agg, True)
    th = agg[(agg["evaluator"] == getattr(limit, "name", None)) & agg["converged"].astype(bool)]
    sim = agg[agg["evaluator"] == getattr(finite, "name", None)]
    keys = list(SETTING_COLUMNS)
    merged = sim.merge(th[keys + errors], on=keys, suffixes=("", "_theory"))
    if len(merged) == 0:
        raise ValueError("validation_table: no setting has both a (converged) theory row and "
                         "simulation rows")
    parts = []
    for e in errors:
        part = merged[keys + ["d", "n_seeds"]].copy()
        part["error"] = e
        part["theory"] = merged[f"{e}_theory"]
        part["sim_mean"] = merged[e]
        part["sim_se"] = merged[f"{e}_se"]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["d"] = out["d"].astype(int)
    out["rel_dev"] = (out["sim_mean"] - out["theory"]) / out["theory"]
    return out


def validation_scatter(vdf: pd.DataFrame, *, log=None):
    """Theory (x) against simulation (y, mean +- standard error) with the identity line.

    ``vdf`` follows the validation schema (columns ``error, d, theory, sim_mean, sim_se``;
    the names ``quantity`` and ``sim`` of :func:`rfdsm.validate.validation_table` are
    accepted for ``error`` and ``sim_mean``); one panel per error name, one colour per ``d``.
    The legend gives, per d, the largest relative deviation ``|sim_mean - theory| / theory`` in
    that panel.  Log axes by default when the values span a factor >= 20.
    """
    if isinstance(vdf, pd.DataFrame):
        # the table of rfdsm.validate.validation_table names two columns differently
        vdf = vdf.rename(columns={k: v for k, v in _VALIDATION_ALIASES.items()
                                  if k in vdf.columns and v not in vdf.columns})
    vdf = normalise(check_table(vdf, VALIDATION_COLUMNS, "validation_scatter"))
    vdf["sim_se"] = pd.to_numeric(vdf["sim_se"], errors="coerce")
    names = [e for e in ERROR_NAMES if e in set(vdf["error"])] + \
        sorted(set(vdf["error"]) - set(ERROR_NAMES))
    if len(names) > lay.MAX_PANELS:
        raise ValueError(f"validation_scatter: {len(names)} error names; "
                         f"at most {lay.MAX_PANELS}")
    ds = sorted(int(v) for v in vdf["d"].unique())
    dcol = palette(ds, "viridis")
    fig, axes = lay.new_figure(len(names), panel=(3.6, 3.4))
    for ax, e in zip(axes, names):
        _scatter_panel(ax, vdf[vdf["error"] == e], e, ds, dcol, log)
    fig.suptitle("Theory against simulation (dashed: identity)", fontsize=11)
    return fig


def _scatter_panel(ax, sub, e, ds, dcol, log):
    vals = np.concatenate([sub["theory"].to_numpy(), sub["sim_mean"].to_numpy()])
    use_log = lay.spans_decades(vals) if log is None else log
    for dd in ds:
        s = sub[sub["d"] == dd]
        if not len(s):
            continue
        rel = np.max(np.abs((s["sim_mean"] - s["theory"]) / s["theory"]))
        lay.errorbar(ax, s["theory"], s["sim_mean"], yerr=s["sim_se"].fillna(0.0),
                     color=dcol[dd], ls="none", marker="o", ms=4, capsize=2, alpha=0.9,
                     label=f"$d = {dd}$ (max rel. dev. {100 * rel:.1f}%)",
                     gid=f"simulate:{e}:d={dd}")
    finite = vals[np.isfinite(vals)]
    lo, hi = finite.min(), finite.max()
    pad = (hi / lo) ** 0.05 if use_log and lo > 0 else None
    lo, hi = (lo / pad, hi * pad) if pad else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", gid="identity", zorder=0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    if use_log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(r"theory ($d \to \infty$)")
    ax.set_ylabel("simulation (mean over seeds)")
    ax.set_title(e + " error", fontsize=10)
    ax.legend(fontsize=7.5, loc="upper left", frameon=False)
    ax.grid(True, alpha=0.25)
