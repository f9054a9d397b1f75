"""Dependence on the number ``m`` of noise samples per data point, at fixed ratios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import _layout as lay
from ._table import (SETTING_COLUMNS, aggregate, check_errors, drop_unconverged, table_bayes,
                     require_finite, series)
from .style import AXIS_LABEL, BAYES_STYLE, ERROR_COLOURS, ERROR_LABEL, fmt_value, plain_log_ticks

__all__ = ["m_dependence"]


def m_dependence(df: pd.DataFrame, errors=("test", "train"), *, ratios=(0.5, 2.0), d=None,
                 logy=None, ncols=None):
    """Errors against the number ``m`` of noise samples (1, 2, 4, ..., inf) at fixed ratios.

    The m axis is logarithmic in m with ``m = inf`` drawn one step past the largest finite m
    (joined by a dotted segment).  One column of panels per ``(psi_n, psi_p)`` (and any other
    varying parameter), one row per error (log y in a panel whose values span a factor >= 30).
    When a panel group holds more than four ``psi_p`` values (a learning-curve table), only the
    ``psi_p`` closest to ``ratio * psi_n`` for each ``ratio`` in ``ratios`` are shown -- by
    default one under-parameterised (``p < n``) and one over-parameterised (``p > n``) point.
    Each evaluator drawn by its ``style``: the theory as lines, the simulation as points with
    standard-error bars.
    """
    errors = check_errors(errors, df)
    agg = drop_unconverged(aggregate(df), "m_dependence")
    require_finite(agg, errors, "m_dependence")
    if agg["m"].nunique() < 2:
        raise ValueError("m_dependence: needs at least 2 distinct values of m, the table has "
                         f"{agg['m'].nunique()}")
    agg = _select_ratios(agg, ratios)
    facet_cols = [c for c in SETTING_COLUMNS if c != "m"]
    panels = lay.panels(agg, facet_cols, "m_dependence")
    ms = sorted(agg["m"].unique())
    pos = _m_positions(ms)
    ncols = min(len(panels), ncols or 4)
    fig, grid = lay.error_grid(len(panels), len(errors), ncols, panel=(3.4, 2.5))
    ds = {}  # evaluator name -> the dimensions drawn
    for i, (ptitle, sub) in enumerate(panels):
        drawn = [(ev, rows.sort_values("m")) for ev, rows in series(sub, d)]
        for ev, rows in drawn:
            if ev.finite_size:
                ds.setdefault(ev.name, set()).update(int(v) for v in rows["d"].unique())
        if sub["psi_n"].nunique() == 1 and sub["psi_p"].nunique() == 1:
            ptitle = (ptitle + "\n" if ptitle else "") + _regime(sub)
        for j, e in enumerate(errors):
            ax = grid[i][j]
            for ev, rows in drawn:
                _DRAW[ev.style](ax, rows, e, pos, f"{ev.name}:{e}")
            if e != "score":  # a^2 bounds train and test; the score error's floor is 0
                ax.axhline(table_bayes(sub.iloc[:1])[0], **BAYES_STYLE)
            ax.set_xticks([pos[m] for m in ms], [f"${fmt_value('m', m)}$" for m in ms])
            ax.set_xlabel(AXIS_LABEL["m"])
            ax.set_ylabel(ERROR_LABEL[e])
            # per panel: the regimes differ by orders of magnitude in the train error
            ly = lay.spans_decades(sub[e], 30.0) if logy is None else logy
            ax.set_yscale("log" if ly else "linear")
            if ly:
                plain_log_ticks(ax.yaxis)
            if j == 0:
                ax.set_title(ptitle, fontsize=9.5)
            ax.grid(True, alpha=0.25)
    fixed = lay.constant_text(agg, facet_cols)
    fig.suptitle("Dependence on the number of noise samples $m$" +
                 (f"   ({fixed})" if fixed else ""), fontsize=11)
    shown = [(ev, ds.get(ev.name)) for ev, _ in series(agg)
             if not ev.finite_size or ds.get(ev.name)]
    _legend_m(fig, errors, shown, ncols)
    return fig


def _m_positions(ms) -> dict:
    """x position of each m: ``log2 m``, and ``m = inf`` 1.5 steps past the largest finite m."""
    finite = [m for m in ms if math.isfinite(m)]
    pos = {m: math.log2(m) for m in finite}
    if len(finite) < len(ms):
        pos[math.inf] = (max(pos.values()) + 1.5) if pos else 0.0
    return pos


def _regime(sub) -> str:
    r = sub["psi_p"].iloc[0] / sub["psi_n"].iloc[0]
    return "under-parameterised, $p < n$" if r < 1 else (
        "over-parameterised, $p > n$" if r > 1 else "$p = n$")


def _line(ax, rows, e, pos, gid):
    """Error ``e`` against m as a line, dotted into ``m = inf``."""
    c = ERROR_COLOURS[e]
    xs = rows["m"].map(pos).to_numpy()
    ys = rows[e].to_numpy()
    fin = np.isfinite(rows["m"].to_numpy())
    ax.plot(xs[fin], ys[fin], color=c, ls="-", lw=1.6, gid=gid)
    if (~fin).any() and fin.any():
        k = np.flatnonzero(fin)[-1]
        ax.plot([xs[k], xs[~fin][0]], [ys[k], ys[~fin][0]], color=c, ls=":", lw=1.2)
    ax.plot(xs, ys, color=c, ls="none", marker="o", ms=2.5)


def _points(ax, rows, e, pos, gid):
    """Error ``e`` against m as points with standard-error bars."""
    lay.errorbar(ax, rows["m"].map(pos), rows[e], yerr=rows[f"{e}_se"].fillna(0.0),
                 color=ERROR_COLOURS[e], ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                 capsize=2.0, gid=gid)


_DRAW = {"line": _line, "points": _points}


def _legend_m(fig, errors, shown, width):
    """``shown``: ``[(evaluator, dimensions drawn)]`` in drawing order."""
    from matplotlib.lines import Line2D

    handles = []
    for e in errors:
        c = ERROR_COLOURS[e]
        for ev, ds in shown:
            label = f"{e}: {ev.label}"
            if ev.finite_size:
                label += f", $d = {', '.join(str(v) for v in sorted(ds))}$"
            if ev.style == "line":
                handles.append(Line2D([], [], color=c, ls="-", label=label))
            else:
                handles.append(Line2D([], [], color=c, ls="none", marker="o", mfc="white",
                                      label=label + " (mean $\\pm$ s.e.)"))
    if errors != ("score",):
        handles.append(Line2D([], [], label=r"Bayes level $a^2 = e^{-2t}$", **BAYES_STYLE))
    lay.place_legend(fig, handles, width)


def _select_ratios(agg: pd.DataFrame, ratios) -> pd.DataFrame:
    """Per group of the other parameters, the ``psi_p`` nearest ``ratio * psi_n`` for each
    ratio (in log distance); groups with at most four ``psi_p`` are kept whole."""
    keys = [c for c in SETTING_COLUMNS if c not in ("psi_p", "m")]
    keep = []
    for _, sub in agg.groupby(keys, sort=True):
        ps = np.array(sorted(sub["psi_p"].unique()))
        if len(ps) <= 4:
            keep.append(sub)
            continue
        psi_n = sub["psi_n"].iloc[0]
        chosen = {ps[np.argmin(np.abs(np.log(ps / (r * psi_n))))] for r in ratios}
        keep.append(sub[sub["psi_p"].isin(chosen)])
    return pd.concat(keep, ignore_index=True)
