"""Figure layout shared by the figure families: panels, grids of axes, legends, log axes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core import params
from .style import param_text

#: Most panels one figure may hold; a larger table should be filtered or split first.
MAX_PANELS = 16


def varying(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in cols if df[c].nunique(dropna=False) > 1]


def _default_only(col, value) -> bool:
    # a parameter younger than the figures (Param.fill) at its default says nothing in a title
    return col in params.names(fill=True) and value == params.param(col).default


def constant_text(df: pd.DataFrame, cols) -> str:
    """The parameters among ``cols`` that take one value throughout, for a figure title."""
    parts = [param_text(c, df[c].iloc[0]) for c in cols if df[c].nunique(dropna=False) == 1
             and not _default_only(c, df[c].iloc[0])]
    return ",  ".join(parts)


def panels(df: pd.DataFrame, facet_cols, what: str):
    """Sorted list of (title, sub-table) for each combination of the varying facet columns."""
    vary = varying(df, facet_cols)
    if not vary:
        return [("", df)]
    groups = list(df.groupby(vary, sort=True))
    if len(groups) > MAX_PANELS:
        raise ValueError(
            f"{what}: the table gives {len(groups)} panels (one per combination of "
            f"{vary}); at most {MAX_PANELS} fit in one figure -- filter the table first")
    out = []
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        out.append((",  ".join(param_text(c, v) for c, v in zip(vary, key)), sub))
    return out


def new_figure(npanels: int, ncols=None, panel=(3.7, 2.9)):
    """``(fig, axes)``: ``npanels`` axes in rows of ``ncols`` (default 3, or 2 for four)."""
    from matplotlib.figure import Figure

    ncols = ncols or min(npanels, 3 if npanels != 4 else 2)
    nrows = math.ceil(npanels / ncols)
    fig = Figure(figsize=(panel[0] * ncols + 0.4, panel[1] * nrows + 0.8),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[npanels:]:
        fig.delaxes(ax)
    return fig, list(axes[:npanels])


def error_grid(npanels: int, nerrors: int, ncols=None, panel=(3.5, 2.6)):
    """A figure with one row of axes per error under each block of ``ncols`` panels.

    Returns ``(fig, axes)`` with ``axes[i][j]`` the axes of panel ``i`` and error ``j``; the
    unused cells of the last block are removed.
    """
    from matplotlib.figure import Figure

    ncols = min(npanels, ncols or 4)
    blocks = math.ceil(npanels / ncols)
    # a single column is widened so that the title and the legend below still fit
    fig = Figure(figsize=(max(panel[0] * ncols + 0.5, 6.8), panel[1] * blocks * nerrors + 1.0),
                 layout="constrained")
    grid = fig.subplots(blocks * nerrors, ncols, squeeze=False)
    axes = [[grid[(i // ncols) * nerrors + j, i % ncols] for j in range(nerrors)]
            for i in range(npanels)]
    used = {id(ax) for row in axes for ax in row}
    for ax in grid.ravel():
        if id(ax) not in used:
            fig.delaxes(ax)
    return fig, axes


def place_legend(fig, handles, width):
    # legends fill column by column: two rows keep related entries (m values, theory and
    # simulation) stacked in narrow figures; wide figures take everything in one row
    ncol = len(handles) if width >= 3 else math.ceil(len(handles) / 2)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8.5,
               frameon=False)


def errorbar(ax, x, y, *, gid, **kw):
    # the gid goes on the marker line only (errorbar would copy it onto caps and bars too)
    container = ax.errorbar(x, y, **kw)
    container.lines[0].set_gid(gid)
    return container


def spans_decades(values, factor=20.0) -> bool:
    """Whether the finite values span a factor ``>= factor`` (then a log axis reads better)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() >= factor


def cell_edges(centres, log: bool):
    """Edges of heatmap cells around sorted ``centres``: midpoints between neighbours (in
    ``log`` space when ``log``), the outer cells as wide as their inner halves."""
    c = np.asarray(sorted(centres), dtype=float)
    if len(c) == 1:
        return np.array([c[0] / 1.1, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    x = np.log(c) if log else c
    mid = (x[1:] + x[:-1]) / 2
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.exp(edges) if log else edges
