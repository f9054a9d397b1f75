"""Structured data: the errors against the ratios for several intrinsic dimensions ``psi_d``.

Three figures from one kind of table (rows of settings that differ in ``psi_d``; columns of
the par/perp metrics of :mod:`rfdsm.subspace` where present):

* :func:`psi_d_curves`: a quantity against ``psi_p`` or ``psi_n``, or against
  ``psi_n / psi_d`` (data points per *intrinsic* dimension, ``scaled=True``), one colour per
  ``psi_d``, one column of panels per combination of the other parameters that vary (``m``
  first), one row per quantity;
* :func:`boundary_diagram`: the contour ``train = level x bayes`` in the ``(psi_p, psi_n)``
  plane, one line per ``psi_d`` (the theory's grid), one panel per ``m`` -- where the training
  error drops below the Bayes level, i.e. the fit has moved towards the empirical score.

Quantities: the table's columns (``train``, ``test``, ``score``, ``test_par``, ...) and the
derived ``excess = test - bayes`` and ``score_par_per_d = score_par / psi_d`` (the score error
per data dimension).  Theory as lines, simulation as seed means with standard-error bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _layout as lay
from ._table import (SETTING_COLUMNS, check_table, is_limit, normalise, series, table_bayes,
                     with_defaults)
from ..sweep.store import seed_summary
from .style import AXIS_LABEL, BAYES_STYLE, ERROR_LABEL, TEX, fmt_value, palette, plain_log_ticks

__all__ = ["psi_d_curves", "boundary_diagram", "structured_table", "QUANTITY_LABEL"]

QUANTITY_LABEL = {
    **ERROR_LABEL,
    "excess": r"excess test error  test $-$ Bayes",
    "test_par": r"test error in the data subspace $/d$",
    "test_perp": r"test error in its complement $/d$",
    "score_par": r"score error in the subspace $/d$",
    "score_perp": r"score error in the complement $/d$",
    "score_par_per_d": r"score error in the subspace $/D$",
}
_DERIVED = {"excess": lambda df: df["test"] - df["bayes"],
            "score_par_per_d": lambda df: df["score_par"] / df["psi_d"]}
_NEEDS = {"excess": ("test",), "score_par_per_d": ("score_par",)}


def structured_table(df: pd.DataFrame, quantities) -> pd.DataFrame:
    """Seed means and standard errors of ``quantities`` per evaluator x setting x d, with the
    Bayes level (``bayes``) and the derived quantities."""
    df = normalise(check_table(with_defaults(df), ("evaluator", "psi_n", "psi_p", "m", "t"),
                               "structured figure"))
    if "psi_d" not in df:
        df = df.assign(psi_d=1.0)
    df = df.assign(psi_d=df["psi_d"].astype(float))
    raw = sorted({c for q in quantities for c in _NEEDS.get(q, (q,))})
    df = _isotropic_split(df, raw)
    missing = [c for c in raw if c not in df.columns]
    if missing:
        raise ValueError(f"structured figure: the table lacks the column(s) {missing} (the "
                         "par/perp metrics need `import rfdsm.subspace` before the sweep)")
    keys = ["evaluator", *[c for c in SETTING_COLUMNS if c in df.columns], "d"]
    work = df[keys + raw].copy()
    work["converged"] = df["converged"].astype(bool) if "converged" in df else True
    out = seed_summary(work, keys, raw)
    out["converged"] = work.groupby(keys, dropna=False, sort=True)["converged"].all()
    out = out.reset_index()
    out["bayes"] = table_bayes(out)
    for q in quantities:
        if q in _DERIVED:
            out[q] = _DERIVED[q](out)
            base = _NEEDS[q][0]
            scale = out[q] / out[base].where(out[base] != 0)
            out[f"{q}_se"] = (out[f"{base}_se"] * scale.abs()) if q != "excess" \
                else out[f"{base}_se"]
    for q in quantities:
        out.loc[is_limit(out), f"{q}_se"] = np.nan
    return out[~(is_limit(out) & ~out["converged"].astype(bool))]


def _isotropic_split(df, raw):
    """Isotropic rows (``psi_d = 1``, ``data = isotropic``) whose split is not in the table:
    the subspace is the whole space, so ``par`` is the error itself and ``perp`` is 0."""
    iso = (df["psi_d"] == 1.0) & (df["data"].astype(str) == "isotropic" if "data" in df
                                  else True)
    for col in raw:
        part, _, side = col.partition("_")
        if side not in ("par", "perp") or part not in df:
            continue
        fill = df[part] if side == "par" else 0.0 * df[part]
        df = df.assign(**{col: df[col].where(~(iso & df[col].isna()), fill)
                          if col in df else fill.where(iso)})
    return df


def _colours(values):
    return palette(values, "viridis")


def psi_d_curves(df: pd.DataFrame, x: str = "psi_p", quantities=("test", "train"), *,
                 scaled: bool = False, d=None, logx=None, logy=None, title=None):
    """``quantities`` against ``x`` (``psi_p``, ``psi_n``; with ``scaled`` the axis is
    ``psi_n / psi_d``), one colour per ``psi_d`` (module docstring)."""
    if x not in ("psi_p", "psi_n") or (scaled and x != "psi_n"):
        raise ValueError(f"x must be 'psi_p' or 'psi_n' ('psi_n' when scaled), got {x!r}")
    quantities = (quantities,) if isinstance(quantities, str) else tuple(quantities)
    bad = [q for q in quantities if q not in QUANTITY_LABEL]
    if bad:
        raise ValueError(f"quantities must be among {sorted(QUANTITY_LABEL)}, got {bad}")
    agg = structured_table(df, quantities)
    xcol = x
    if scaled:
        agg = agg.assign(psi_n_per_d=agg["psi_n"] / agg["psi_d"])
        xcol = "psi_n_per_d"
    facets = [c for c in ("m", *SETTING_COLUMNS) if c not in (x, "psi_d") and c in agg]
    panels = lay.panels(agg, list(dict.fromkeys(facets)), "psi_d_curves")
    colours = _colours(agg["psi_d"])
    fig, grid = lay.error_grid(len(panels), len(quantities), min(len(panels), 4))
    logx = lay.spans_decades(agg[xcol]) if logx is None else logx
    for i, (ptitle, sub) in enumerate(panels):
        drawn = series(sub, d)
        for j, q in enumerate(quantities):
            ax = grid[i][j]
            _panel(ax, drawn, xcol, q, colours)
            ly = lay.spans_decades(agg[q], 30.0) if logy is None else logy
            ax.set_xscale("log" if logx else "linear")
            ax.set_yscale("log" if ly else "linear")
            if ly:
                plain_log_ticks(ax.yaxis)
            ax.set_xlabel(r"$\psi_n/\psi_d = n/D$" if scaled else AXIS_LABEL[x])
            ax.set_ylabel(QUANTITY_LABEL[q], fontsize=8.5)
            if j == 0:
                ax.set_title(ptitle, fontsize=10)
            ax.grid(True, which="major", alpha=0.25)
    fixed = lay.constant_text(agg, [c for c in facets if c in agg])
    fig.suptitle(title or ("Structured data, one colour per $\\psi_d = D/d$"
                           + (f"   ({fixed})" if fixed else "")), fontsize=11)
    _legend(fig, colours, [ev for ev, _ in series(agg, d)], quantities)
    return fig


def _panel(ax, drawn, xcol, q, colours):
    for ev, rows in drawn:
        for pd_, r in rows.groupby("psi_d", sort=True):
            r = r.sort_values(xcol)
            c = colours[pd_]
            gid = f"{ev.name}:{q}:psi_d={fmt_value('psi_d', pd_)}"
            if ev.style == "line":
                ax.plot(r[xcol], r[q], color=c, lw=1.6, gid=gid)
            else:
                lay.errorbar(ax, r[xcol], r[q], yerr=r[f"{q}_se"].fillna(0.0).to_numpy(),
                             color=c, ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                             capsize=2.0, elinewidth=1.0, gid=gid)
            if q in ("test", "train") and ev.style == "line":  # each psi_d's own Bayes level
                ax.axhline(float(r["bayes"].iloc[0]), color=c, ls=":", lw=1.0)


def _legend(fig, colours, evaluators, quantities):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=6, label=f"${TEX['psi_d']} = {fmt_value('psi_d', v)}$")
               for v, c in colours.items()]
    for ev in evaluators:
        handles.append(Line2D([], [], color="0.2", lw=1.6, label=ev.label) if ev.style == "line"
                       else Line2D([], [], color="0.2", ls="none", marker="o", mfc="white",
                                   label=ev.label + " (mean $\\pm$ s.e.)"))
    if {"test", "train"} & set(quantities):
        handles.append(Line2D([], [], label=r"Bayes level $\psi_d a^2$ (its colour)",
                              **BAYES_STYLE))
    lay.place_legend(fig, handles, 3)


_LEVEL_STYLES = ("-", "--", ":", "-.")


def boundary_diagram(df: pd.DataFrame, levels=(1.0, 0.1), *, title=None):
    """The contours ``train / bayes = level`` over ``(psi_p, psi_n)`` (one line style per
    level), one colour per ``psi_d``, one panel per combination of ``m`` (and the other
    varying parameters): the theory's rows on a grid of at least 3 x 3 ratios.  The diagonal
    ``psi_p = psi_n`` is dashed grey."""
    levels = (levels,) if isinstance(levels, (int, float)) else tuple(levels)
    if not levels or len(levels) > len(_LEVEL_STYLES) or not all(
            isinstance(v, (int, float)) and v > 0 for v in levels):
        raise ValueError(f"levels must be 1 to {len(_LEVEL_STYLES)} numbers > 0, got {levels!r}")
    agg = structured_table(df, ("train",))
    agg = agg[is_limit(agg)]
    if agg["psi_n"].nunique() < 3 or agg["psi_p"].nunique() < 3:
        raise ValueError("boundary_diagram: the theory's rows need a grid of at least 3 x 3 "
                         "(psi_n, psi_p) values")
    agg = agg.assign(ratio=agg["train"] / agg["bayes"])
    facets = [c for c in SETTING_COLUMNS if c not in ("psi_n", "psi_p", "psi_d") and c in agg]
    panels = lay.panels(agg, facets, "boundary_diagram")
    colours = _colours(agg["psi_d"])
    fig, axes = lay.new_figure(len(panels), panel=(3.9, 3.4))
    for ax, (ptitle, sub) in zip(axes, panels):
        for pd_, r in sub.groupby("psi_d", sort=True):
            z = r.pivot_table(index="psi_n", columns="psi_p", values="ratio", aggfunc="mean")
            for level, ls in zip(levels, _LEVEL_STYLES):
                if np.nanmin(z.to_numpy()) < level < np.nanmax(z.to_numpy()):
                    ax.contour(z.columns, z.index, z.to_numpy(), levels=[level],
                               colors=[colours[pd_]], linewidths=1.8, linestyles=ls)
        lo = max(agg["psi_n"].min(), agg["psi_p"].min())
        hi = min(agg["psi_n"].max(), agg["psi_p"].max())
        ax.plot([lo, hi], [lo, hi], color="0.55", ls=(0, (5, 3)), lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(AXIS_LABEL["psi_p"])
        ax.set_ylabel(AXIS_LABEL["psi_n"])
        ax.set_title(ptitle, fontsize=10)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=2, label=f"${TEX['psi_d']} = {fmt_value('psi_d', v)}$")
               for v, c in colours.items()]
    handles += [Line2D([], [], color="0.3", lw=1.8, ls=ls, label=f"train $=$ {v:g} Bayes")
                for v, ls in zip(levels, _LEVEL_STYLES)]
    lay.place_legend(fig, handles, 3)
    fig.suptitle(title or ("Train error against the Bayes level: to the right of a line the "
                           "fit is below it (memorisation side)"), fontsize=10.5)
    return fig
