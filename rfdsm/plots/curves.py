"""Learning curves: the errors against ``psi_p`` (or ``psi_n``), one colour per ``m``."""

from __future__ import annotations

import pandas as pd

from . import _layout as lay
from ._table import (SETTING_COLUMNS, aggregate, bayes_level, check_errors, drop_unconverged,
                     pick_d, require_finite)
from .style import (AXIS_LABEL, BAYES_STYLE, DIAG_STYLE, ERROR_LABEL, TEX, fmt_value, m_colours,
                    m_label, plain_log_ticks)

__all__ = ["learning_curves"]


def learning_curves(df: pd.DataFrame, x: str = "psi_p", errors=("test", "train"), *, d=None,
                    logx=None, logy=None, ncols=None, title=None):
    """Errors against ``psi_p`` (or ``psi_n``): theory as lines, simulation as points.

    One row of panels per error (test on top, then train), one column per combination of the
    other setting parameters that vary in the table (wrapped after ``ncols``, default 4).  In
    every panel: one colour per ``m``, the theory as a line, the simulation as seed means at
    dimension ``d`` (default: the largest present) with standard-error bars, the Bayes level
    ``a^2 = exp(-2t)`` dotted and the interpolation line ``psi_p = psi_n`` dashed grey.
    ``logx``/``logy`` default to a log axis when the values span a factor >= 20 (``logy`` is
    decided per error row, or forced for all rows by passing a bool).

    Each theory line carries ``gid = "theory:<error>:m=<m>"`` and each simulation series
    ``gid = "simulate:<error>:m=<m>"`` (handy for tests and post-processing).
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
    sim_ds = set()
    for i, (ptitle, sub) in enumerate(panels):
        sim = pick_d(sub[sub["evaluator"] == "simulate"], d)
        sim_ds.update(int(v) for v in sim["d"].unique())
        for j, e in enumerate(errors):
            ax = grid[i][j]
            _draw_panel(ax, sub, sim, x, e, colours)
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
    _legend(fig, colours, sim_ds, diag=f"${TEX['psi_p']} = {TEX['psi_n']}$",
            has_theory=(agg["evaluator"] == "theory").any(), width=ncols,
            bayes=errors != ("score",))
    return fig


def _draw_panel(ax, sub, sim, x, e, colours):
    """Error ``e`` of one panel: theory lines and simulation points per m, reference lines."""
    th = sub[sub["evaluator"] == "theory"]
    for m in sorted(sub["m"].unique()):
        c = colours[m]
        t_m = th[th["m"] == m].sort_values(x)
        if len(t_m):
            ax.plot(t_m[x], t_m[e], color=c, ls="-", lw=1.6,
                    gid=f"theory:{e}:m={fmt_value('m', m)}")
        s_m = sim[sim["m"] == m].sort_values(x)
        if len(s_m):
            lay.errorbar(ax, s_m[x], s_m[e], yerr=s_m[f"{e}_se"].fillna(0.0).to_numpy(),
                         color=c, ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                         capsize=2.0, elinewidth=1.0, gid=f"simulate:{e}:m={fmt_value('m', m)}")
    if e != "score":  # a^2 bounds train and test; the score error's floor is 0
        ax.axhline(bayes_level(sub["t"].iloc[0]), **BAYES_STYLE)
    other = "psi_n" if x == "psi_p" else "psi_p"
    if sub[other].nunique() == 1:
        ax.axvline(sub[other].iloc[0], **DIAG_STYLE)


def _legend(fig, colours, sim_ds, diag=None, has_theory=True, width=3, bayes=True):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=6, label=m_label(m)) for m, c in colours.items()]
    if has_theory:
        handles.append(Line2D([], [], color="0.2", lw=1.6, label=r"theory ($d \to \infty$)"))
    if sim_ds:
        ds = ", ".join(str(v) for v in sorted(sim_ds))
        handles.append(Line2D([], [], color="0.2", ls="none", marker="o", mfc="white",
                              label=f"simulation, $d = {ds}$ (mean $\\pm$ s.e.)"))
    if bayes:
        handles.append(Line2D([], [], label=r"Bayes level $a^2 = e^{-2t}$", **BAYES_STYLE))
    if diag:
        handles.append(Line2D([], [], label=diag, **DIAG_STYLE))
    lay.place_legend(fig, handles, width)
