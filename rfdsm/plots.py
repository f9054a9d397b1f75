"""Figures from tidy result tables: learning curves, phase diagrams, m dependence, validation.

Every function takes a pandas DataFrame and returns a :class:`matplotlib.figure.Figure` built
without ``pyplot``, so nothing here needs (or changes) a display backend; save it with
:func:`save_figure` (PNG and/or PDF).

Input tables
------------
*Result table* (what ``rfdsm sweep`` writes and :func:`rfdsm.load_results` reads; also the
concatenation of :meth:`rfdsm.Result.rows`): one row per setting x evaluator x d x seed, with
at least the columns ``evaluator`` (``"theory"`` or ``"simulate"``), ``psi_n``, ``psi_p``, ``m``
(integer or ``inf``; the string ``"inf"`` is accepted), ``t``, ``lam``, ``activation``, ``d``
(null for theory), ``train`` and ``test``; ``score``, ``seed`` and ``converged`` are used when
present.  Simulation rows are averaged over seeds here (mean and standard error of the mean);
theory rows with ``converged == False`` are left out of the lines (with a warning).

*Validation table* (:func:`validation_scatter`; built from a result table by
:func:`validation_table`): one row per setting x d x error, with the columns

    ``error``     which error: ``"train"``, ``"test"`` or ``"score"``
    ``d``         the simulation dimension
    ``theory``    the d -> infinity value
    ``sim_mean``  the mean of the simulation over seeds
    ``sim_se``    its standard error (NaN or 0 with a single seed)

and optionally the setting columns ``psi_n, psi_p, m, t, lam, activation``.  The table of
:func:`rfdsm.validate.validation_table`, which names two of these ``quantity`` and ``sim``, is
accepted as it is.

Symbols follow ``docs/model.md``: ``psi_n = n/d``, ``psi_p = p/d``, ``m`` noise samples per data
point, diffusion time ``t`` with ``a = exp(-t)``; the Bayes level ``a^2 = exp(-2t)`` is the
smallest possible test error.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "SETTING_COLUMNS", "RESULT_COLUMNS", "VALIDATION_COLUMNS", "load_table", "aggregate",
    "learning_curves", "phase_diagram", "m_dependence", "validation_table",
    "validation_scatter", "save_figure", "configure_parser", "run_cli",
]

SETTING_COLUMNS = ("psi_n", "psi_p", "m", "t", "lam", "activation")
RESULT_COLUMNS = ("evaluator",) + SETTING_COLUMNS + ("d", "train", "test")
VALIDATION_COLUMNS = ("error", "d", "theory", "sim_mean", "sim_se")
ERROR_NAMES = ("train", "test", "score")

#: Most panels one figure may hold; a larger table should be filtered or split first.
MAX_PANELS = 16

_TEX = {"psi_n": r"\psi_n", "psi_p": r"\psi_p", "m": "m", "t": "t", "lam": r"\lambda",
        "activation": r"\sigma"}
_AXIS = {"psi_n": r"$\psi_n = n/d$", "psi_p": r"$\psi_p = p/d$"}
_ERROR_LABEL = {"train": r"train error $\mathcal{L}_\mathrm{train}(\hat A)$",
                "test": r"test error $\mathcal{L}_\mathrm{test}(\hat A)$",
                "score": r"score error $\frac{1}{d}\mathbb{E}\|s_{\hat A}-s^*\|^2$"}
_BAYES_STYLE = dict(color="0.35", ls=":", lw=1.3)
_DIAG_STYLE = dict(color="0.55", ls=(0, (5, 3)), lw=1.0)


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _check_table(df, required, what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks the column(s) {missing}; "
                         f"required columns are {list(required)}")
    if len(df) == 0:
        raise ValueError(f"{what}: the table has no rows (required columns: {list(required)})")
    return df


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric setting columns (``m = "inf"`` -> ``inf``), evaluator/activation as str."""
    out = df.copy()
    if "m" in out:
        out["m"] = out["m"].map(lambda v: math.inf if isinstance(v, str) and
                                v.strip().lower() in ("inf", "infinity", "+inf") else v)
    for c in ("psi_n", "psi_p", "m", "t", "lam", "d", "train", "test", "score", "theory",
              "sim_mean"):
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

    A directory must be the output of ``rfdsm sweep`` (read with :func:`rfdsm.load_results`).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"DIR: {str(path)!r} does not exist")
    if path.is_file():
        if path.suffix not in (".parquet", ".csv"):
            raise ValueError(f"DIR: {str(path)!r} is neither a directory nor a .parquet/.csv file")
        kind = path.suffix[1:].upper()
        try:
            df = pd.read_parquet(path) if kind == "PARQUET" else pd.read_csv(path)
        except pd.errors.EmptyDataError:
            raise ValueError(f"DIR: {str(path)!r} is an empty file (not even a header line); "
                             "expected a result table written by rfdsm sweep") from None
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            # pandas/pyarrow parse errors (ArrowInvalid is a ValueError) say nothing of the file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"DIR: {str(path)!r} is not a readable {kind} table: {first}") from None
        if len(df) == 0:
            raise ValueError(f"DIR: {str(path)!r} has a header but no rows "
                             f"(columns: {list(df.columns)})")
        return df
    from .sweep import load_results

    return load_results(path)


def aggregate(df: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluator x setting x d: errors averaged over seeds, with standard errors.

    Returns the setting columns, ``evaluator``, ``d`` (NaN for theory), ``n_seeds``,
    ``converged`` (all rows converged) and for each available error ``E`` in train/test/score
    the columns ``E`` (mean) and ``E_se`` (standard error of the mean, ``std/sqrt(k)`` with
    ``k`` seeds; NaN with a single seed and for theory).
    """
    df = _normalise(_check_table(df, RESULT_COLUMNS, "aggregate"))
    errors = [e for e in ERROR_NAMES if e in df.columns]
    keys = ["evaluator", *SETTING_COLUMNS, "d"]
    work = df[keys + errors].copy()
    work["converged"] = df["converged"].astype(bool) if "converged" in df else True
    grouped = work.groupby(keys, dropna=False, sort=True)
    out = grouped[errors].mean()
    k = grouped.size()
    for e in errors:
        sd = grouped[e].std(ddof=1)
        se = sd / np.sqrt(k)
        out[f"{e}_se"] = se.where(k > 1)
    out["n_seeds"] = k
    out["converged"] = grouped["converged"].all()
    out = out.reset_index()
    theory = out["evaluator"] == "theory"
    for e in errors:
        out.loc[theory, f"{e}_se"] = np.nan
    return out


def _drop_unconverged(agg: pd.DataFrame, what: str) -> pd.DataFrame:
    bad = (agg["evaluator"] == "theory") & ~agg["converged"].astype(bool)
    if bad.any():
        warnings.warn(f"{what}: {int(bad.sum())} theory point(s) did not converge and are "
                      "left out of the figure", RuntimeWarning, stacklevel=3)
    out = agg[~bad]
    out.attrs["dropped_unconverged"] = int(bad.sum())
    return out


def _require_finite(agg: pd.DataFrame, errors, what: str) -> None:
    """Refuse to draw a figure (or a row of panels) that would hold no point at all.

    The message says what the values are: NaN/inf/missing in the rows that were kept, and
    how many unconverged theory points were left out before (those are not the NaN ones)."""
    empty = [e for e in errors if not np.isfinite(agg[e].to_numpy(dtype=float)).any()]
    if empty:
        dropped = agg.attrs.get("dropped_unconverged", 0)
        kept = (f"all {len(agg)} remaining row(s) hold NaN, inf or nothing in that column"
                if len(agg) else "no row is left")
        note = f" after leaving out {dropped} unconverged theory point(s)" if dropped else ""
        raise ValueError(f"{what}: no finite value of {', '.join(empty)}: {kept}{note}; "
                         "nothing to draw")


def _pick_d(sim: pd.DataFrame, d) -> pd.DataFrame:
    """Simulation rows at dimension ``d`` (default: the largest d present)."""
    if len(sim) == 0:
        return sim
    if d is None:
        d = sim["d"].max()
    elif not (sim["d"] == float(d)).any():
        raise ValueError(f"d: no simulation at d = {d}; available d are "
                         f"{sorted(int(v) for v in sim['d'].unique())}")
    return sim[sim["d"] == float(d)]


# --------------------------------------------------------------------------------------------
# Labels, colours, layout
# --------------------------------------------------------------------------------------------
def _fmt_value(name, v) -> str:
    if name == "activation":
        return str(v)
    v = float(v)
    if math.isinf(v):
        return r"\infty"
    return str(int(v)) if v == int(v) and abs(v) < 1e6 else f"{v:g}"


def _param_text(name, v) -> str:
    if name == "activation":
        return rf"$\sigma$ = {v}"
    return f"${_TEX[name]} = {_fmt_value(name, v)}$"


def _m_label(m) -> str:
    return f"$m = {_fmt_value('m', m)}$"


def _palette(values, name):
    """One colour per sorted distinct value, evenly spaced along colormap ``name`` (seaborn
    leaves out both ends, whose near-white or near-black colours read badly on white)."""
    import seaborn as sns

    values = sorted(set(values))
    return dict(zip(values, sns.color_palette(name, n_colors=len(values))))


def _m_colours(ms):
    return _palette((float(m) for m in ms), "plasma")


def _varying(df: pd.DataFrame, cols) -> list[str]:
    return [c for c in cols if df[c].nunique(dropna=False) > 1]


def _constant_text(df: pd.DataFrame, cols) -> str:
    parts = [_param_text(c, df[c].iloc[0]) for c in cols if df[c].nunique(dropna=False) == 1]
    return ",  ".join(parts)


def _panels(df: pd.DataFrame, facet_cols, what: str):
    """Sorted list of (title, sub-table) for each combination of the varying facet columns."""
    varying = _varying(df, facet_cols)
    if not varying:
        return [("", df)]
    groups = list(df.groupby(varying, sort=True))
    if len(groups) > MAX_PANELS:
        raise ValueError(
            f"{what}: the table gives {len(groups)} panels (one per combination of "
            f"{varying}); at most {MAX_PANELS} fit in one figure -- filter the table first")
    out = []
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        out.append((",  ".join(_param_text(c, v) for c, v in zip(varying, key)), sub))
    return out


def _new_figure(npanels: int, ncols=None, panel=(3.7, 2.9)):
    from matplotlib.figure import Figure

    ncols = ncols or min(npanels, 3 if npanels != 4 else 2)
    nrows = math.ceil(npanels / ncols)
    fig = Figure(figsize=(panel[0] * ncols + 0.4, panel[1] * nrows + 0.8),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[npanels:]:
        fig.delaxes(ax)
    return fig, list(axes[:npanels])


def _plain_log_ticks(axis):
    """Label a log axis with plain numbers (0.5, 2, 30) instead of 5x10^-1 and 3x10^1.

    Minor ticks get labels only when the axis spans less than about one decade, where the
    major ticks alone would leave it (nearly) unlabelled.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    lo, hi = axis.get_view_interval()
    wide = lo > 0 and hi / lo > 2e3  # many decades: powers of ten throughout, for consistency

    def plain(v, _pos=None):
        if v <= 0 or not math.isfinite(v):
            return ""
        k = round(math.log10(v))
        if wide and math.isclose(v, 10.0 ** k):
            return f"$10^{{{k}}}$"
        return f"{v:g}"

    axis.set_major_formatter(FuncFormatter(plain))
    if lo > 0 and hi / lo < 3:
        axis.set_minor_formatter(FuncFormatter(plain))
    elif lo > 0 and hi / lo < 12:
        axis.set_minor_formatter(FuncFormatter(
            lambda v, _p: plain(v) if f"{v:.1e}"[0] in "235" else ""))
    else:
        axis.set_minor_formatter(NullFormatter())


def _errorbar(ax, x, y, *, gid, **kw):
    # the gid goes on the marker line only (errorbar would copy it onto caps and bars too)
    container = ax.errorbar(x, y, **kw)
    container.lines[0].set_gid(gid)
    return container


def _error_grid(npanels: int, nerrors: int, ncols=None, panel=(3.5, 2.6)):
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


def _spans_decades(values, factor=20.0) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return len(v) > 1 and v.min() > 0 and v.max() / v.min() >= factor


def _log_edges(centres, log: bool):
    c = np.asarray(sorted(centres), dtype=float)
    if len(c) == 1:
        return np.array([c[0] / 1.1, c[0] * 1.1]) if log else np.array([c[0] - 0.5, c[0] + 0.5])
    x = np.log(c) if log else c
    mid = (x[1:] + x[:-1]) / 2
    edges = np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])
    return np.exp(edges) if log else edges


# --------------------------------------------------------------------------------------------
# Learning curves
# --------------------------------------------------------------------------------------------
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
    errors = _check_errors(errors, df)
    agg = _drop_unconverged(aggregate(df), "learning_curves")
    _require_finite(agg, errors, "learning_curves")
    other = "psi_n" if x == "psi_p" else "psi_p"
    facet_cols = [c for c in SETTING_COLUMNS if c not in (x, "m")]
    panels = _panels(agg, facet_cols, "learning_curves")
    colours = _m_colours(agg["m"])
    ncols = min(len(panels), ncols or 4)
    fig, grid = _error_grid(len(panels), len(errors), ncols)
    if logx is None:
        logx = _spans_decades(agg[x])
    sim_ds = set()
    for i, (ptitle, sub) in enumerate(panels):
        th = sub[sub["evaluator"] == "theory"]
        sim = _pick_d(sub[sub["evaluator"] == "simulate"], d)
        sim_ds.update(int(v) for v in sim["d"].unique())
        for j, e in enumerate(errors):
            ax = grid[i][j]
            for m in sorted(sub["m"].unique()):
                c = colours[m]
                t_m = th[th["m"] == m].sort_values(x)
                if len(t_m):
                    ax.plot(t_m[x], t_m[e], color=c, ls="-", lw=1.6,
                            gid=f"theory:{e}:m={_fmt_value('m', m)}")
                s_m = sim[sim["m"] == m].sort_values(x)
                if len(s_m):
                    _errorbar(ax, s_m[x], s_m[e], yerr=s_m[f"{e}_se"].fillna(0.0).to_numpy(),
                                color=c, ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                                capsize=2.0, elinewidth=1.0,
                                gid=f"simulate:{e}:m={_fmt_value('m', m)}")
            if e != "score":  # a^2 bounds train and test; the score error's floor is 0
                ax.axhline(math.exp(-2.0 * sub["t"].iloc[0]), **_BAYES_STYLE)
            if sub[other].nunique() == 1:
                ax.axvline(sub[other].iloc[0], **_DIAG_STYLE)
            ly = _spans_decades(agg[e], 30.0) if logy is None else logy
            ax.set_xscale("log" if logx else "linear")
            ax.set_yscale("log" if ly else "linear")
            if ly:
                _plain_log_ticks(ax.yaxis)
            ax.set_xlabel(_AXIS[x])
            ax.set_ylabel(_ERROR_LABEL[e])
            if j == 0:
                ax.set_title(ptitle, fontsize=10)
            ax.grid(True, which="major", alpha=0.25)
    fixed = _constant_text(agg, facet_cols)
    fig.suptitle(title or ("Learning curves" + (f"   ({fixed})" if fixed else "")), fontsize=11)
    _legend(fig, colours, sim_ds, diag=f"${_TEX['psi_p']} = {_TEX['psi_n']}$",
            has_theory=(agg["evaluator"] == "theory").any(), width=ncols,
            bayes=errors != ("score",))
    return fig


def _check_errors(errors, df):
    if isinstance(errors, str):
        errors = (errors,)
    errors = tuple(errors)
    bad = [e for e in errors if e not in ERROR_NAMES]
    if bad or not errors:
        raise ValueError(f"errors must be a non-empty subset of {list(ERROR_NAMES)}, "
                         f"got {errors!r}")
    if isinstance(df, pd.DataFrame):
        _check_table(df, RESULT_COLUMNS + tuple(e for e in errors if e == "score"), "plot")
    return errors


def _legend(fig, colours, sim_ds, diag=None, has_theory=True, width=3, bayes=True):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=6, label=_m_label(m)) for m, c in colours.items()]
    if has_theory:
        handles.append(Line2D([], [], color="0.2", lw=1.6, label=r"theory ($d \to \infty$)"))
    if sim_ds:
        ds = ", ".join(str(v) for v in sorted(sim_ds))
        handles.append(Line2D([], [], color="0.2", ls="none", marker="o", mfc="white",
                              label=f"simulation, $d = {ds}$ (mean $\\pm$ s.e.)"))
    if bayes:
        handles.append(Line2D([], [], label=r"Bayes level $a^2 = e^{-2t}$", **_BAYES_STYLE))
    if diag:
        handles.append(Line2D([], [], label=diag, **_DIAG_STYLE))
    _place_legend(fig, handles, width)


def _place_legend(fig, handles, width):
    # legends fill column by column: two rows keep related entries (m values, theory and
    # simulation) stacked in narrow figures; wide figures take everything in one row
    ncol = len(handles) if width >= 3 else math.ceil(len(handles) / 2)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8.5,
               frameon=False)


# --------------------------------------------------------------------------------------------
# Phase diagram
# --------------------------------------------------------------------------------------------
PHASE_QUANTITIES = ("gap", "train_ratio", "test", "train")
_PHASE_LABEL = {"gap": r"generalisation gap  test $-$ train",
                "train_ratio": r"train $/\,a^2$  (solid contour: 1)",
                "test": "test error", "train": "train error"}


def phase_diagram(df: pd.DataFrame, quantities=("gap", "train_ratio"), *, evaluator=None,
                  d=None, logx=None, logy=None):
    """Heatmaps over ``(psi_p, psi_n)`` of the gap ``test - train`` and of ``train / a^2``.

    One row of panels per combination of ``m, t, lam, activation`` that varies, one column
    per quantity (``gap``, ``train_ratio``, ``test``, ``train``).  Uses the theory rows when the
    table has any (``evaluator=None``), else the simulation means at dimension ``d`` (default:
    largest).  ``train / a^2`` is drawn on a diverging scale centred at 1: blue below 1 (train
    error under the Bayes level, the fit follows the training points), red above.  The line
    ``psi_p = psi_n`` is dashed; cells that are missing or did not converge are grey.
    """
    quantities = tuple([quantities] if isinstance(quantities, str) else quantities)
    bad = [q for q in quantities if q not in PHASE_QUANTITIES]
    if bad or not quantities:
        raise ValueError(f"quantities must be a non-empty subset of {list(PHASE_QUANTITIES)}, "
                         f"got {quantities!r}")
    agg = aggregate(df)
    if evaluator is None:
        evaluator = "theory" if (agg["evaluator"] == "theory").any() else "simulate"
    if evaluator not in ("theory", "simulate"):
        raise ValueError(f"evaluator must be 'theory', 'simulate' or None, got {evaluator!r}")
    agg = agg[agg["evaluator"] == evaluator]
    if evaluator == "simulate":
        agg = _pick_d(agg, d)
    if len(agg) == 0:
        raise ValueError(f"phase_diagram: no {evaluator} rows in the table")
    for c in ("psi_n", "psi_p"):
        if agg[c].nunique() < 2:
            raise ValueError(f"phase_diagram: needs at least 2 distinct values of {c}, "
                             f"the table has {agg[c].nunique()}")
    n_bad = int((~agg["converged"].astype(bool)).sum())
    agg = agg.assign(bayes=np.exp(-2.0 * agg["t"]))
    agg = agg.assign(gap=agg["test"] - agg["train"], train_ratio=agg["train"] / agg["bayes"])
    agg.loc[~agg["converged"].astype(bool), list(PHASE_QUANTITIES)] = np.nan
    facet_cols = ["m", "t", "lam", "activation"]
    rows = _panels(agg, facet_cols, "phase_diagram")
    if len(rows) * len(quantities) > MAX_PANELS:
        raise ValueError(f"phase_diagram: {len(rows)} x {len(quantities)} panels exceed "
                         f"{MAX_PANELS}; filter the table first")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.3 * len(quantities) + 0.3, 3.5 * len(rows) + 0.6),
                 layout="constrained")
    axes = fig.subplots(len(rows), len(quantities), squeeze=False)
    logx = _spans_decades(agg["psi_p"], 10.0) if logx is None else logx
    logy = _spans_decades(agg["psi_n"], 10.0) if logy is None else logy
    for (rtitle, sub), row in zip(rows, axes):
        grid = {q: sub.pivot_table(index="psi_n", columns="psi_p", values=q, aggfunc="mean",
                                   dropna=False) for q in quantities}
        for q, ax in zip(quantities, row):
            z = grid[q]
            xe, ye = _log_edges(z.columns, logx), _log_edges(z.index, logy)
            norm, cmap = _phase_norm(q, z.to_numpy())
            mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(z.to_numpy()), norm=norm,
                                 cmap=cmap, shading="flat", rasterized=True)
            zz = z.to_numpy()
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
            ax.set_xlabel(_AXIS["psi_p"])
            ax.set_ylabel(_AXIS["psi_n"])
            ax.set_title(rtitle, fontsize=10)
            cb = fig.colorbar(mesh, ax=ax, shrink=0.95)
            if q == "train_ratio":
                cb.set_ticks(_two_sided_ticks(norm.vmin, norm.vmax))
            cb.set_label(_PHASE_LABEL[q], fontsize=9)
    fixed = _constant_text(agg, facet_cols)
    what = "theory, $d \\to \\infty$" if evaluator == "theory" else \
        f"simulation, $d = {int(agg['d'].iloc[0])}$"
    note = f";  {n_bad} unconverged point(s) in grey" if n_bad else ""
    fig.suptitle(f"Phase diagram ({what}{', ' + fixed if fixed else ''}){note}"
                 "   dashed: $\\psi_p = \\psi_n$", fontsize=10.5)
    return fig


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


# --------------------------------------------------------------------------------------------
# m dependence
# --------------------------------------------------------------------------------------------
def m_dependence(df: pd.DataFrame, errors=("test", "train"), *, ratios=(0.5, 2.0), d=None,
                 logy=None, ncols=None):
    """Errors against the number ``m`` of noise samples (1, 2, 4, ..., inf) at fixed ratios.

    The m axis is logarithmic in m with ``m = inf`` drawn one step past the largest finite m
    (joined by a dotted segment).  One column of panels per ``(psi_n, psi_p)`` (and any other
    varying parameter), one row per error (log y in a panel whose values span a factor >= 30).
    When a panel group holds more than four ``psi_p`` values (a learning-curve table), only the
    ``psi_p`` closest to ``ratio * psi_n`` for each ``ratio`` in ``ratios`` are shown -- by
    default one under-parameterised (``p < n``) and one over-parameterised (``p > n``) point.
    Theory as lines, simulation as points with standard-error bars.
    """
    errors = _check_errors(errors, df)
    agg = _drop_unconverged(aggregate(df), "m_dependence")
    _require_finite(agg, errors, "m_dependence")
    if agg["m"].nunique() < 2:
        raise ValueError("m_dependence: needs at least 2 distinct values of m, the table has "
                         f"{agg['m'].nunique()}")
    agg = _select_ratios(agg, ratios)
    facet_cols = [c for c in SETTING_COLUMNS if c != "m"]
    panels = _panels(agg, facet_cols, "m_dependence")
    ms = sorted(agg["m"].unique())
    finite = [m for m in ms if math.isfinite(m)]
    pos = {m: math.log2(m) for m in finite}
    if len(finite) < len(ms):
        pos[math.inf] = (max(pos.values()) + 1.5) if pos else 0.0
    ncols = min(len(panels), ncols or 4)
    fig, grid = _error_grid(len(panels), len(errors), ncols, panel=(3.4, 2.5))
    colours = {e: c for e, c in zip(ERROR_NAMES, ("C1", "C0", "C2"))}
    sim_ds = set()
    for i, (ptitle, sub) in enumerate(panels):
        th = sub[sub["evaluator"] == "theory"].sort_values("m")
        sim = _pick_d(sub[sub["evaluator"] == "simulate"], d).sort_values("m")
        sim_ds.update(int(v) for v in sim["d"].unique())
        r = sub["psi_p"].iloc[0] / sub["psi_n"].iloc[0]
        regime = "under-parameterised, $p < n$" if r < 1 else (
            "over-parameterised, $p > n$" if r > 1 else "$p = n$")
        if sub["psi_n"].nunique() == 1 and sub["psi_p"].nunique() == 1:
            ptitle = (ptitle + "\n" if ptitle else "") + regime
        for j, e in enumerate(errors):
            ax = grid[i][j]
            c = colours[e]
            if len(th):
                xs = th["m"].map(pos).to_numpy()
                ys = th[e].to_numpy()
                fin = np.isfinite(th["m"].to_numpy())
                ax.plot(xs[fin], ys[fin], color=c, ls="-", lw=1.6, gid=f"theory:{e}")
                if (~fin).any() and fin.any():
                    k = np.flatnonzero(fin)[-1]
                    ax.plot([xs[k], xs[~fin][0]], [ys[k], ys[~fin][0]], color=c, ls=":", lw=1.2)
                ax.plot(xs, ys, color=c, ls="none", marker="o", ms=2.5)
            if len(sim):
                _errorbar(ax, sim["m"].map(pos), sim[e], yerr=sim[f"{e}_se"].fillna(0.0),
                          color=c, ls="none", marker="o", ms=4.5, mfc="white", mew=1.2,
                          capsize=2.0, gid=f"simulate:{e}")
            if e != "score":  # a^2 bounds train and test; the score error's floor is 0
                ax.axhline(math.exp(-2.0 * sub["t"].iloc[0]), **_BAYES_STYLE)
            ax.set_xticks([pos[m] for m in ms], [f"${_fmt_value('m', m)}$" for m in ms])
            ax.set_xlabel("$m$ (noise samples per data point)")
            ax.set_ylabel(_ERROR_LABEL[e])
            # per panel: the regimes differ by orders of magnitude in the train error
            ly = _spans_decades(sub[e], 30.0) if logy is None else logy
            ax.set_yscale("log" if ly else "linear")
            if ly:
                _plain_log_ticks(ax.yaxis)
            if j == 0:
                ax.set_title(ptitle, fontsize=9.5)
            ax.grid(True, alpha=0.25)
    fixed = _constant_text(agg, facet_cols)
    fig.suptitle("Dependence on the number of noise samples $m$" +
                 (f"   ({fixed})" if fixed else ""), fontsize=11)
    _legend_m(fig, colours, errors, sim_ds, (agg["evaluator"] == "theory").any(), ncols)
    return fig


def _legend_m(fig, colours, errors, sim_ds, has_theory, width):
    from matplotlib.lines import Line2D

    handles = []
    for e in errors:
        c = colours[e]
        if has_theory:
            handles.append(Line2D([], [], color=c, ls="-", label=f"{e}: theory"))
        if sim_ds:
            ds = ", ".join(str(v) for v in sorted(sim_ds))
            handles.append(Line2D([], [], color=c, ls="none", marker="o", mfc="white",
                                  label=f"{e}: simulation, $d = {ds}$ (mean $\\pm$ s.e.)"))
    if errors != ("score",):
        handles.append(Line2D([], [], label=r"Bayes level $a^2 = e^{-2t}$", **_BAYES_STYLE))
    _place_legend(fig, handles, width)


def _select_ratios(agg: pd.DataFrame, ratios) -> pd.DataFrame:
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


# --------------------------------------------------------------------------------------------
# Validation: theory against simulation
# --------------------------------------------------------------------------------------------
def validation_table(df: pd.DataFrame, errors=ERROR_NAMES) -> pd.DataFrame:
    """Pair every simulated (setting, d) with the theory of the same setting.

    Returns the validation schema of this module (one row per setting x d x error) plus
    ``n_seeds`` and ``rel_dev = (sim_mean - theory) / theory``.  Settings without a theory row
    (or without simulation) are dropped; an empty result is an error.
    """
    agg = aggregate(df)
    errors = [e for e in ((errors,) if isinstance(errors, str) else errors) if e in agg.columns]
    th = agg[(agg["evaluator"] == "theory") & agg["converged"].astype(bool)]
    sim = agg[agg["evaluator"] == "simulate"]
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


_VALIDATION_ALIASES = {"quantity": "error", "sim": "sim_mean"}


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
    vdf = _normalise(_check_table(vdf, VALIDATION_COLUMNS, "validation_scatter"))
    vdf["sim_se"] = pd.to_numeric(vdf["sim_se"], errors="coerce")
    names = [e for e in ERROR_NAMES if e in set(vdf["error"])] + \
        sorted(set(vdf["error"]) - set(ERROR_NAMES))
    if len(names) > MAX_PANELS:
        raise ValueError(f"validation_scatter: {len(names)} error names; at most {MAX_PANELS}")
    ds = sorted(int(v) for v in vdf["d"].unique())
    dcol = _palette(ds, "viridis")
    fig, axes = _new_figure(len(names), panel=(3.6, 3.4))
    for ax, e in zip(axes, names):
        sub = vdf[vdf["error"] == e]
        vals = np.concatenate([sub["theory"].to_numpy(), sub["sim_mean"].to_numpy()])
        use_log = _spans_decades(vals) if log is None else log
        for dd in ds:
            s = sub[sub["d"] == dd]
            if not len(s):
                continue
            rel = np.max(np.abs((s["sim_mean"] - s["theory"]) / s["theory"]))
            _errorbar(ax, s["theory"], s["sim_mean"], yerr=s["sim_se"].fillna(0.0),
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
    fig.suptitle("Theory against simulation (dashed: identity)", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------
# Saving and the command line
# --------------------------------------------------------------------------------------------
FORMATS = ("png", "pdf")


def save_figure(fig, stem, formats=("png",), dpi=110) -> list[Path]:
    """Write ``fig`` to ``stem.<fmt>`` for each format in ``formats`` (``png``, ``pdf``)."""
    formats = [f.strip().lower() for f in ((formats,) if isinstance(formats, str) else formats)]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ValueError(f"formats must be a non-empty subset of {list(FORMATS)}, got {formats!r}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in formats:
        path = stem.with_name(f"{stem.name}.{f}")
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths


KINDS = ("curves", "phase", "m", "validation")


def _auto_kinds(agg: pd.DataFrame) -> list[str]:
    n_n, n_p = agg["psi_n"].nunique(), agg["psi_p"].nunique()
    kinds = []
    m_table = agg["m"].nunique() >= 3 and n_n <= 4 and n_p <= 4  # few ratios, many m
    if n_n >= 4 and n_p >= 4:
        kinds.append("phase")
    elif (n_p >= 3 or n_n >= 3) and not m_table:
        kinds.append("curves")
    if agg["m"].nunique() >= 3 and "phase" not in kinds:
        kinds.append("m")
    th = agg[agg["evaluator"] == "theory"]
    sim = agg[agg["evaluator"] == "simulate"]
    if len(th) and len(sim) and len(sim.merge(th[list(SETTING_COLUMNS)],
                                              on=list(SETTING_COLUMNS))):
        kinds.append("validation")
    return kinds


def _split(df: pd.DataFrame, cols):
    """Split a table by the varying columns among ``cols``: [(file suffix, sub-table)]."""
    varying = _varying(df, cols)
    if not varying:
        return [("", df)]
    out = []
    for key, sub in df.groupby(varying, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append(("_" + "_".join(f"{c}{_fmt_value(c, v).replace(chr(92), '')}"
                                   for c, v in zip(varying, key)), sub))
    return out


def make_figures(df: pd.DataFrame, out, formats=("png",), kinds=None, x=None,
                 report=None) -> list[Path]:
    """Draw every figure the table supports (or the ``kinds`` asked for) into directory ``out``.

    File names: ``learning_curves[_<split>]``, ``phase_diagram[_<split>]``, ``m_dependence``,
    ``validation``; a table is split into several files by ``lam``/``activation`` (and, for
    the phase diagram, ``t``) so that each figure stays readable.  ``report(path)``, when
    given, is called for each file as soon as it is written.
    """
    from matplotlib.figure import Figure  # noqa: F401  (fail early if matplotlib is missing)

    agg = aggregate(df)
    kinds = _auto_kinds(agg) if kinds is None else list(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"kind must be among {list(KINDS)}, got {bad}")
    if not kinds:
        raise ValueError("the table has too few distinct psi_n/psi_p/m values for any figure; "
                         "ask for one with --kind")
    out = Path(out)
    written = []

    def save(fig, stem):
        for path in save_figure(fig, out / stem, formats):
            written.append(path)
            if report is not None:
                report(path)

    for kind in kinds:
        if kind == "curves":
            xx = x or ("psi_p" if agg["psi_p"].nunique() >= agg["psi_n"].nunique() else "psi_n")
            for suf, sub in _split(df, ["lam", "activation"]):
                save(learning_curves(sub, x=xx), f"learning_curves{suf}")
        elif kind == "phase":
            for suf, sub in _split(df, ["t", "lam", "activation"]):
                save(phase_diagram(sub), f"phase_diagram{suf}")
        elif kind == "m":
            for suf, sub in _split(df, ["lam", "activation"]):
                save(m_dependence(sub), f"m_dependence{suf}")
        else:
            save(validation_scatter(validation_table(df)), "validation")
    return written


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Draw figures from a sweep directory (or one .parquet/.csv result "
                          "table): learning curves, phase diagram, m dependence, theory vs "
                          "simulation -- whichever the table supports, or those named by --kind.")
    parser.add_argument("dir", metavar="DIR", help="sweep output directory or result file")
    parser.add_argument("--out", metavar="FIGDIR", default=None,
                        help="where to write the figures (default: DIR/figures)")
    parser.add_argument("--format", default="png",
                        help="comma-separated output formats among png, pdf (default: png)")
    parser.add_argument("--kind", default="auto",
                        help="comma-separated among curves, phase, m, validation (default: "
                             "auto, from what the table contains)")
    parser.add_argument("--x", choices=("psi_p", "psi_n"), default=None,
                        help="x axis of the learning curves (default: the more finely "
                             "sampled of the two)")


def run_cli(args) -> int:
    from .cli import UsageError, writable_dir

    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"--format must be a comma-separated subset of {list(FORMATS)}, "
                         f"got {args.format!r}")
    kinds = None
    if args.kind != "auto":
        kinds = [k.strip() for k in args.kind.split(",") if k.strip()]
        bad = [k for k in kinds if k not in KINDS]
        if bad or not kinds:
            raise UsageError(f"--kind must be 'auto' or a comma-separated subset of "
                             f"{list(KINDS)}, got {args.kind!r}")
    src = Path(args.dir)
    out = Path(args.out) if args.out else (src / "figures" if src.is_dir() else
                                           src.parent / "figures")
    try:
        df = load_table(src)
    except ValueError as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    except OSError as exc:
        raise UsageError(f"{str(src)!r}: cannot read the table: {exc.strerror or exc}") from None
    writable_dir(out, "--out")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            make_figures(df, out, formats, kinds, args.x,
                         report=lambda p: print(p, flush=True))
    except ValueError as exc:
        raise UsageError(str(exc).replace("\n", " ")) from None
    except OSError as exc:  # e.g. the disk filled up while writing
        raise UsageError(f"--out {str(out)!r}: cannot write the figures: "
                         f"{exc.strerror or exc}") from None
    # our own notes (e.g. unconverged theory points left out), once each, without tracebacks
    notes = dict.fromkeys(str(w.message) for w in caught
                          if str(w.message).startswith(("learning_curves:", "m_dependence:")))
    for note in notes:
        print(f"rfdsm: note: {note}", file=sys.stderr)
    return 0
