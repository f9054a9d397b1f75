"""Phase diagrams: heatmaps over ``(psi_p, psi_n)`` of the gap and of ``train / a^2``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _layout as lay
from ..evaluators import evaluator_names, get_evaluator, registered_evaluators
from ._table import aggregate, first_present, pick_d, table_bayes
from .style import AXIS_LABEL

__all__ = ["PHASE_QUANTITIES", "phase_diagram"]

PHASE_QUANTITIES = ("gap", "train_ratio", "test", "train")
_PHASE_LABEL = {"gap": r"generalisation gap  test $-$ train",
                "train_ratio": r"train $/\,a^2$  (solid contour: 1)",
                "test": "test error", "train": "train error"}
_FACETS = ["m", "t", "lam", "activation"]


def phase_diagram(df: pd.DataFrame, quantities=("gap", "train_ratio"), *, evaluator=None,
                  d=None, logx=None, logy=None):
    """Heatmaps over ``(psi_p, psi_n)`` of the gap ``test - train`` and of ``train / a^2``.

    One row of panels per combination of ``m, t, lam, activation`` that varies, one column
    per quantity (``gap``, ``train_ratio``, ``test``, ``train``).  Uses the rows of
    ``evaluator``; by default (``None``) those of the first registered ``d -> inf`` evaluator
    in the table (the theory), else of the first finite-size one (the simulation), whose seed
    means at dimension ``d`` (default: largest) are drawn.  ``train / a^2`` is drawn on a diverging scale centred at 1: blue below 1 (train
    error under the Bayes level, the fit follows the training points), red above.  The line
    ``psi_p = psi_n`` is dashed; cells that are missing or did not converge are grey.
    """
    quantities = tuple([quantities] if isinstance(quantities, str) else quantities)
    bad = [q for q in quantities if q not in PHASE_QUANTITIES]
    if bad or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {list(PHASE_QUANTITIES)}, "
                         f"got {quantities!r}")
    agg, ev, n_bad = _phase_table(df, evaluator, d)
    rows = lay.panels(agg, _FACETS, "phase_diagram")
    if len(rows) * len(quantities) > lay.MAX_PANELS:
        raise ValueError(f"phase_diagram: {len(rows)} x {len(quantities)} panels exceed "
                         f"{lay.MAX_PANELS}; filter the table first")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.3 * len(quantities) + 0.3, 3.5 * len(rows) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(quantities), squeeze=False)
    logx = lay.spans_decades(agg["psi_p"], 10.0) if logx is None else logx
    logy = lay.spans_decades(agg["psi_n"], 10.0) if logy is None else logy
    for (rtitle, sub), row in zip(rows, axes):
        for q, ax in zip(quantities, row):
            z = sub.pivot_table(index="psi_n", columns="psi_p", values=q, aggfunc="mean",
                                dropna=False)
            _heatmap(fig, ax, q, z, logx, logy)
            ax.set_title(rtitle, fontsize=10)
    fixed = lay.constant_text(agg, _FACETS)
    what = f"{ev.label}, $d = {int(agg['d'].iloc[0])}$" if ev.finite_size else \
        f"{ev.label}, $d \\to \\infty$"
    note = f";  {n_bad} unconverged point(s) in grey" if n_bad else ""
    fig.suptitle(f"Phase diagram ({what}{', ' + fixed if fixed else ''}){note}"
                 "   dashed: $\\psi_p = \\psi_n$", fontsize=10.5)
    return fig


def _phase_table(df, evaluator, d):
    """``(agg, evaluator object, n_unconverged)``: the rows of one evaluator with every
    quantity of :data:`PHASE_QUANTITIES`, NaN where the point did not converge."""
    agg = aggregate(df)
    if evaluator is None:
        ev = first_present(agg, False) or first_present(agg, True)
        evaluator = ev.name if ev is not None else evaluator_names(finite_size=True)[0]
    known = registered_evaluators()
    if evaluator not in known:
        raise ValueError(f"evaluator must be {', '.join(map(repr, known))} or None, "
                         f"got {evaluator!r}")
    ev = get_evaluator(evaluator)
    agg = agg[agg["evaluator"] == evaluator]
    if ev.finite_size:
        agg = pick_d(agg, d)
    if len(agg) == 0:
        raise ValueError(f"phase_diagram: no {evaluator} rows in the table")
    for c in ("psi_n", "psi_p"):
        if agg[c].nunique() < 2:
            raise ValueError(f"phase_diagram: needs at least 2 distinct values of {c}, "
                             f"the table has {agg[c].nunique()}")
    n_bad = int((~agg["converged"].astype(bool)).sum())
    agg = agg.assign(bayes=table_bayes(agg))
    agg = agg.assign(gap=agg["test"] - agg["train"], train_ratio=agg["train"] / agg["bayes"])
    agg.loc[~agg["converged"].astype(bool), list(PHASE_QUANTITIES)] = np.nan
    return agg, ev, n_bad


def _heatmap(fig, ax, q, z: pd.DataFrame, logx, logy):
    """Quantity ``q`` on the grid ``z`` (rows psi_n, columns psi_p), with its colour bar."""
    xe, ye = lay.cell_edges(z.columns, logx), lay.cell_edges(z.index, logy)
    zz = z.to_numpy()
    norm, cmap = _phase_norm(q, zz)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(zz), norm=norm, cmap=cmap,
                         shading="flat", rasterized=True)
    if q == "train_ratio" and np.nanmin(zz) < 1.0 < np.nanmax(zz) and min(zz.shape) > 1:
        # the memorisation boundary train = a^2
        ax.contour(np.asarray(z.columns), np.asarray(z.index), zz, levels=[1.0],
                   colors="k", linewidths=1.0)
    lo, hi = max(xe[0], ye[0]), min(xe[-1], ye[-1])
    if lo < hi:
        ax.plot([lo, hi], [lo, hi], color="k", ls="--", lw=1.1, gid="diagonal")
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(AXIS_LABEL["psi_p"])
    ax.set_ylabel(AXIS_LABEL["psi_n"])
    cb = fig.colorbar(mesh, ax=ax, shrink=0.95)
    if q == "train_ratio":
        cb.set_ticks(_two_sided_ticks(norm.vmin, norm.vmax))
    cb.set_label(_PHASE_LABEL[q], fontsize=9)


def _two_sided_ticks(vmin, vmax):
    """Ticks for a colour bar centred at 1: a few on each side, always including 1."""
    from matplotlib.ticker import MaxNLocator

    # each side of 1 gets half the bar, so keep ticks well away from 1 to avoid overlaps
    below = [v for v in MaxNLocator(4).tick_values(vmin, 1.0)
             if vmin <= v and (1.0 - v) >= 0.2 * (1.0 - vmin)]
    above = [v for v in MaxNLocator(3).tick_values(1.0, vmax)
             if v <= vmax and (v - 1.0) >= 0.3 * (vmax - 1.0)]
    return below + [1.0] + above


def _phase_norm(q, values):
    """Colour scale of quantity ``q``: diverging at 1 for ``train_ratio``, else viridis
    (logarithmic when the values span a factor >= 30); missing cells grey."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

    v = values[np.isfinite(values)]
    if len(v) == 0:
        v = np.array([0.0, 1.0])
    if q == "train_ratio":
        cmap = colormaps["RdBu_r"]
        vmin = min(float(v.min()), 0.99)
        # the upper half of the bar spans at least half the lower range, so that values just
        # above 1 stay pale instead of being stretched to full red
        vmax = max(float(v.max()), 1.0 + 0.5 * (1.0 - vmin))
        norm = TwoSlopeNorm(vcenter=1.0, vmin=vmin, vmax=vmax)
    else:
        cmap = colormaps["viridis"]
        if v.min() > 0 and v.max() / v.min() >= 30:
            norm = LogNorm(vmin=float(v.min()), vmax=float(v.max()))
        else:
            norm = Normalize(vmin=float(v.min()), vmax=float(v.max()))
    return norm, cmap.with_extremes(bad="0.82")
