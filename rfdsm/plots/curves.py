"""Learning curves: the errors against ``psi_p`` (or ``psi_n``), one colour per ``m``."""

from __future__ import annotations

import pandas as pd

from . import _layout as lay
from ._table import (SETTING_COLUMNS, aggregate, check_errors, drop_unconverged, table_bayes,
                     require_finite, series)
from .style import (AXIS_LABEL, BAYES_STYLE, DIAG_STYLE, ERROR_LABEL, TEX, fmt_value, m_colours,
                    m_label, plain_log_ticks)

__all__ = ["learning_curves"]


def learning_curves(df: pd.DataFrame, x: str = "psi_p", errors=("test", "train"), *, d=None,
                    logx=None, logy=None, ncols=None, title=None):
    """Errors against ``psi_p`` (or ``psi_n``): theory as lines, simulation as points.

    One row of panels per error (test on top, then train), one column per combination of the
    other setting parameters that vary in the table (wrapped after ``ncols``, default 4).  In
    every panel: one colour per ``m``, each evaluator drawn by its ``style`` -- the theory as a
    line, the simulation as seed means at dimension ``d`` (default: the largest present; any
    finite-size evaluator) with standard-error bars -- the Bayes level
    ``a^2 = exp(-2t)`` dotted and the interpolation line ``psi_p = psi_n`` dashed grey.
    ``logx``/``logy`` default to a log axis when the values span a factor >= 20 (``logy`` is
    decided per error row, or forced for all rows by passing a bool).

    Each series carries ``gid = "<evaluator>:<error>:m=<m>"`` (``theory:test:m=1``,
    ``simulate:test:m=1``; handy for tests and post-processing).
    """
    if x not in ("psi_p", "psi_n"):
        raise ValueError(f"x must be 'psi_p' or 'psi_n', got {x!r}")
    errors = check_errors(errors, df)
    agg = drop_unconverged(aggregate(df), "learning_curves")
    require_finite(agg, errors, "learning_curves")
    facet_cols = [c for c in SETTING_COLUMNS if c not in (x, "m")]
    panels = lay.panels(agg, facet_cols, "learning_curves")
    colours = m_colours(agg["m"])
    ncols = min(len(panels), ncols or 4)
    fig, grid = lay.error_grid(len(panels), len(errors), ncols)
    if logx is None:
        logx = lay.spans_decades(agg[x])
    ds = {}  # evaluator name -> the dimensions drawn
    for i, (ptitle, sub) in enumerate(panels):
        drawn = series(sub, d)
        for ev, rows in drawn:
            if ev.finite_size:
                ds.setdefault(ev.name, set()).update(int(v) for v in rows["d"].unique())
        for j, e in enumerate(errors):
            ax = grid[i][j]
            _draw_panel(ax, sub, drawn, x, e, colours)
            ly = lay.spans_decades(agg[e], 30.0) if logy is None else logy
            ax.set_xscale("log" if logx else "linear")
            ax.set_yscale("log" if ly else "linear")
            if ly:
                plain_log_ticks(ax.yaxis)
            ax.set_xlabel(AXIS_LABEL[x])
            ax.set_ylabel(ERROR_LABEL[e])
            if j == 0:
                ax.set_title(ptitle, fontsize=10)
            ax.grid(True, which="major", alpha=0.25)
    fixed = lay.constant_text(agg, facet_cols)
    fig.suptitle(title or ("Learning curves" + (f"   ({fixed})" if fixed else "")), fontsize=11)
    shown = [(ev, ds.get(ev.name)) for ev, _ in series(agg)
             if not ev.finite_size or ds.get(ev.name)]
    _legend(fig, colours, shown, diag=f"${TEX['psi_p']} = {TEX['psi_n']}$", width=ncols,
            bayes=errors != ("score",))
    return fig


def _line(ax, rows, x, e, c, gid):
    ax.plot(rows[x], rows[e], color=c, ls="-", lw=1.6, gid=gid)


def _points(ax, rows, x, e, c, gid):
    lay.errorbar(ax, rows[x], rows[e], yerr=rows[f"{e}_se"].fillna(0.0).to_numpy(),
                 color=c, ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                 capsize=2.0, elinewidth=1.0, gid=gid)


_DRAW = {"line": _line, "points": _points}


def _draw_panel(ax, sub, drawn, x, e, colours):
    """Error ``e`` of one panel: each evaluator's series per m, then the reference lines."""
    for m in sorted(sub["m"].unique()):
        for ev, rows in drawn:
            r = rows[rows["m"] == m].sort_values(x)
            if len(r):
                _DRAW[ev.style](ax, r, x, e, colours[m], f"{ev.name}:{e}:m={fmt_value('m', m)}")
    if e != "score":  # a^2 bounds train and test; the score error's floor is 0
        ax.axhline(table_bayes(sub.iloc[:1])[0], **BAYES_STYLE)
    other = "psi_n" if x == "psi_p" else "psi_p"
    if sub[other].nunique() == 1:
        ax.axvline(sub[other].iloc[0], **DIAG_STYLE)


def series_label(ev, ds) -> str:
    """Legend text of an evaluator: its label, then ``d -> inf`` or the dimensions drawn."""
    if not ev.finite_size:
        return ev.label + r" ($d \to \infty$)"
    text = f"{ev.label}, $d = {', '.join(str(v) for v in sorted(ds))}$"
    return text + (" (mean $\\pm$ s.e.)" if ev.style == "points" else "")


def _legend(fig, colours, shown, diag=None, width=3, bayes=True):
    """``shown``: ``[(evaluator, dimensions drawn)]`` in drawing order."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=6, label=m_label(m)) for m, c in colours.items()]
    for ev, ds in shown:
        if ev.style == "line":
            handles.append(Line2D([], [], color="0.2", lw=1.6, label=series_label(ev, ds)))
        else:
            handles.append(Line2D([], [], color="0.2", ls="none", marker="o", mfc="white",
                                  label=series_label(ev, ds)))
    if bayes:
        handles.append(Line2D([], [], label=r"Bayes level $a^2 = e^{-2t}$", **BAYES_STYLE))
    if diag:
        handles.append(Line2D([], [], label=diag, **DIAG_STYLE))
    lay.place_legend(fig, handles, width)
