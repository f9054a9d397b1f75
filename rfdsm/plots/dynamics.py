"""Figures of the training dynamics (gradient-flow time ``tau``): errors against ``tau`` and
against ``tau/tau_mem`` (collapse), the spectrum of the training Gram, the generalisation gap
over ``(psi_n, psi_p)`` at fixed ``tau``, and early stopping against the ridge.

Time-scales and early stopping come from :mod:`rfdsm.timescales` and
:mod:`rfdsm.early_stopping`; the rows are drawn by evaluator style (theory lines, simulation
seed means with standard errors), so a theory at finite ``tau`` appears as soon as a table
holds its rows.  ``tau = inf`` rows are not drawn on a ``tau`` axis.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core import diffusion
from . import _layout as lay
from ._table import aggregate, drop_unconverged, first_present, pick_d, series
from .style import AXIS_LABEL, BAYES_STYLE, ERROR_LABEL, TEX, fmt_value, palette, plain_log_ticks

__all__ = ["KINDS", "auto_kinds", "figures", "tau_curves", "gram_spectrum", "gap_heatmap",
           "early_stopping_plot"]

#: The figure kinds of this module (``rfdsm plot --kind``).
KINDS = ("tau", "gap", "stopping")
_TAU_LABEL = r"training time $\tau$"


def _has_tau_axis(agg) -> bool:
    return "tau" in agg and agg.loc[np.isfinite(agg["tau"]), "tau"].nunique() >= 3


def auto_kinds(agg: pd.DataFrame) -> list[str]:
    """The kinds an aggregated table with a ``tau`` axis supports: errors against ``tau``; the
    gap over ``(psi_n, psi_p)`` for a grid of at least 3 x 3 ratios; early stopping for 3 or
    more ``psi_p`` at one ``psi_n``.  None without a ``tau`` axis."""
    if not _has_tau_axis(agg):
        return []
    n_n, n_p = agg["psi_n"].nunique(), agg["psi_p"].nunique()
    if n_n >= 3 and n_p >= 3:
        return ["gap"]
    return ["tau"] + (["stopping"] if n_p >= 3 and n_n == 1 else [])


def figures(kind: str, df: pd.DataFrame):
    """``[(file stem, figure)]`` of ``kind`` for the whole table (see :func:`auto_kinds`)."""
    if kind == "tau":
        out = [("training_time", tau_curves(df))]
        agg = aggregate(df)
        if (agg["m"] == math.inf).all() and (agg["psi_n"] < agg["psi_p"]).all():
            out.append(("training_time_collapse", tau_curves(df, rescale="tau_mem")))
        return out
    if kind == "gap":
        taus = sorted(set(aggregate(df)["tau"]) - {math.inf})
        return [("generalisation_gap", gap_heatmap(df, (taus[len(taus) // 2], taus[-1])))]
    if kind == "stopping":
        return [("early_stopping", early_stopping_plot(df))]
    raise ValueError(f"kind must be among {list(KINDS)}, got {kind!r}")


def _colour_key(agg):
    for c in ("psi_n", "psi_p", "t", "lam"):
        if agg[c].nunique() > 1:
            return c
    return "psi_n"


def tau_curves(df: pd.DataFrame, errors=("test", "train", "score"), *, rescale=None, d=None,
               ncols=None, title=None):
    """Errors against the training time ``tau`` (log axis): one colour per value of the first
    varying of ``psi_n, psi_p, t, lam``, theory as lines, simulation as seed means at dimension
    ``d`` (default: the largest) with standard errors; panels for the other varying
    parameters, one row per error.  ``rescale="tau_mem"`` puts ``tau/tau_mem`` on the x axis,
    ``tau_mem = psi_p/(2 h lambda_min)`` of Thm. 3.2 of Bonnaire et al.
    (:func:`rfdsm.timescales.spectral_timescales`; ``m = inf``): their Fig. 5 inset; the rows
    without one (no memorisation bulk) are left out and named in the title.  Without
    rescaling that ``tau_mem`` is marked by a dotted vertical line of each colour.  Series
    carry ``gid = "<evaluator>:<error>:<key>=<value>"``."""
    from ..analysis.timescales import spectral_timescales

    if rescale not in (None, "tau_mem"):
        raise ValueError(f"rescale must be None or 'tau_mem', got {rescale!r}")
    errors = tuple([errors] if isinstance(errors, str) else errors)
    agg = drop_unconverged(aggregate(df), "tau_curves")
    agg = agg[np.isfinite(agg["tau"])]
    if agg["tau"].nunique() < 2:
        raise ValueError("tau_curves: needs at least 2 finite values of tau in the table")
    key = _colour_key(agg)
    colours = palette(agg[key], "viridis")
    agg = agg.assign(tau_mem=[_spectral_mem(r, spectral_timescales) for r in
                              agg.itertuples(index=False)])
    left_out = ""
    if rescale:
        has = np.isfinite(agg["tau_mem"])
        if not has.any():
            raise ValueError("tau_curves: rescale='tau_mem' needs m = inf, isotropic data and "
                             "1 < psi_n <= psi_p - 1 (the memorisation bulk of Thm. 3.2 of "
                             "Bonnaire et al.) in some row")
        if not has.all():
            gone = sorted(agg.loc[~has, key].unique())
            left_out = (f"; no $\\tau_\\mathrm{{mem}}$ at ${TEX.get(key, key)} = "
                        f"{', '.join(fmt_value(key, v) for v in gone)}$")
        agg = agg[has]
    x = "tau_scaled" if rescale else "tau"
    agg = agg.assign(tau_scaled=agg["tau"] / agg["tau_mem"])
    facets = [c for c in ("psi_n", "psi_p", "m", "t", "lam", "activation") if c != key]
    panels = lay.panels(agg, facets, "tau_curves")
    ncols = min(len(panels), ncols or 3)
    fig, grid = _error_axes(len(panels), len(errors), ncols)
    for i, (ptitle, sub) in enumerate(panels):
        drawn = series(sub, d)
        for j, e in enumerate(errors):
            ax = grid[i][j]
            _tau_panel(ax, sub, drawn, x, e, key, colours, marks=not rescale)
            ax.set_xscale("log")
            if lay.spans_decades(sub[e], 30.0):
                ax.set_yscale("log")
                plain_log_ticks(ax.yaxis)
            ax.set_xlabel(r"$\tau / \tau_\mathrm{mem}$" if rescale else _TAU_LABEL)
            ax.set_ylabel(ERROR_LABEL[e])
            if j == 0 and ptitle:
                ax.set_title(ptitle, fontsize=10)
            ax.grid(True, which="major", alpha=0.25)
    fixed = lay.constant_text(agg, facets)
    head = "Training dynamics" + (r" against $\tau/\tau_\mathrm{mem}$" if rescale else "")
    fig.suptitle(title or (head + (f"   ({fixed}{left_out})" if fixed or left_out else "")),
                 fontsize=11)
    # the colours of the figure without rescaling, for the values still drawn
    shown = {v: c for v, c in colours.items() if v in set(agg[key])}
    _tau_legend(fig, key, shown, series(agg, d), rescale, ncols)
    return fig


def _error_axes(npanels, nerrors, ncols):
    """One row of ``nerrors`` axes for a single panel (curves over many decades read better
    wide), else the error grid of the learning curves."""
    if npanels > 1:
        return lay.error_grid(npanels, nerrors, ncols)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.9 * nerrors + 0.4, 3.6), layout="constrained")
    return fig, [list(fig.subplots(1, nerrors, squeeze=False)[0])]


def _spectral_mem(row, spectral_timescales):
    from ..core.setting import Setting

    try:
        s = Setting(psi_n=row.psi_n, psi_p=row.psi_p, m=row.m, t=row.t, lam=row.lam,
                    activation=row.activation)
        return spectral_timescales(s)["tau_mem"].value
    except ValueError:
        return math.nan


def _tau_panel(ax, sub, drawn, x, e, key, colours, marks):
    for v in sorted(sub[key].unique()):
        c = colours[v]
        for ev, rows in drawn:
            r = rows[rows[key] == v].sort_values(x)
            if not len(r):
                continue
            gid = f"{ev.name}:{e}:{key}={fmt_value(key, v)}"
            if ev.style == "line":
                ax.plot(r[x], r[e], color=c, lw=1.6, gid=gid)
            else:
                # open markers: on a curve over many decades the points are dense, and filled
                # ones would hide the theory line beneath
                lay.errorbar(ax, r[x], r[e], yerr=r[f"{e}_se"].fillna(0.0).to_numpy(), color=c,
                             ls="none", marker="o", ms=3.5, mfc="none", mew=0.9, capsize=1.5,
                             elinewidth=0.8, gid=gid)
        mem = sub.loc[sub[key] == v, "tau_mem"]
        if marks and len(mem) and np.isfinite(mem.iloc[0]):
            ax.axvline(mem.iloc[0], color=c, ls=":", lw=1.0, gid=f"tau_mem:{key}={v:g}")
    if not marks:
        ax.axvline(1.0, color="0.4", ls=":", lw=1.0)
    if e != "score":
        ax.axhline(diffusion.a2_h(float(sub["t"].iloc[0]))[0], **BAYES_STYLE)


def _tau_legend(fig, key, colours, shown, rescale, width):
    from matplotlib.lines import Line2D

    from .curves import series_label

    sym = TEX.get(key, key)
    handles = [Line2D([], [], color=c, lw=5, label=f"${sym} = {fmt_value(key, v)}$")
               for v, c in colours.items()]
    for ev, rows in shown:
        ds = {int(v) for v in rows["d"].unique()} if ev.finite_size else None
        style = dict(lw=1.6) if ev.style == "line" else dict(ls="none", marker="o", mfc="none")
        handles.append(Line2D([], [], color="0.2", label=series_label(ev, ds), **style))
    handles.append(Line2D([], [], label=r"Bayes level $a^2$", **BAYES_STYLE))
    mark = (r"$\tau = \tau_\mathrm{mem}$" if rescale else
            r"$\tau_\mathrm{mem} = \psi_p/(2 \Delta_t \lambda_\mathrm{min})$ (Thm. 3.2)")
    handles.append(Line2D([], [], color="0.4", ls=":", lw=1.0, label=mark))
    lay.place_legend(fig, handles, width)


def gram_spectrum(setting, eigenvalues=None, *, d=None, seed: int = 0, bins: int = 90):
    """The spectrum of the training Gram of ``setting``: the theory's density
    (:func:`rfdsm.theory.spectrum`) and atom against the histogram of a simulated Gram's
    ``eigenvalues`` (or those of dimension ``d`` and ``seed``,
    :func:`rfdsm.simulate.spectrum.gram_eigenvalues`), on a log axis as densities in
    ``log E`` (``E rho(E)``).  For ``m = inf`` the bulks ``rho_1``, ``rho_2`` of Thm. 3.2 of
    Bonnaire et al. are shaded."""
    from matplotlib.figure import Figure

    from ..simulate.spectrum import gram_eigenvalues
    from ..theory.spectrum import spectrum

    if eigenvalues is None:
        if d is None:
            raise ValueError("gram_spectrum: give the eigenvalues or the dimension d to draw")
        eigenvalues = gram_eigenvalues(setting, d, seed)
    ev = np.sort(np.asarray(eigenvalues, dtype=float))
    # a log axis: eigenvalues at round-off level (the atom at 0 of a finite m) are counted, not
    # drawn
    lo = max(ev.min(), 1e-6 * ev.max())
    below = int((ev < lo).sum())
    E = np.geomspace(lo / 1.5, ev.max() * 1.5, 600)
    th = spectrum(setting, E)
    rho = th.density
    fig = Figure(figsize=(7.4, 4.2), layout="constrained")
    ax = fig.subplots()
    edges = np.geomspace(lo, ev.max() * 1.0001, bins + 1)
    counts, _ = np.histogram(ev[ev >= lo], edges)
    width = np.diff(np.log(edges))
    ax.stairs(counts / (ev.size * width), edges, fill=True, color="C0", alpha=0.35,
              label=f"simulated $K$ ($p = {ev.size}$), eigenvalues per unit $\\log E$"
              + (f" ({below} below $E = {lo:.2g}$ not shown)" if below else ""),
              gid="simulate:histogram")
    ax.plot(E, E * rho, color="k", lw=1.3, label=r"theory $E \rho(E)$ ($d \to \infty$)",
            gid="theory:density")
    for loc, wt in th.atoms:
        text = f"theory atom: weight {wt:.4f} at $E = {loc:.3g}$"
        if loc > 0:
            ax.axvline(loc, color="C3", lw=1.6, gid="theory:atom", label=text)
        else:
            ax.plot([], [], color="C3", lw=1.6, gid="theory:atom", label=text + " (off the axis)")
    _shade_bulks(ax, setting)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, None)
    ax.set_xlabel(r"eigenvalue $E$ of the training Gram")
    ax.set_ylabel(r"density in $\log E$")
    fig.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(f"Spectrum of the training Gram   ({_setting_text(setting)})", fontsize=10.5)
    return fig


def _shade_bulks(ax, setting):
    if setting.m != math.inf:
        return
    from ..theory.common import ge_constants

    k = ge_constants(setting)
    r = math.sqrt(setting.psi_p / setting.psi_n)
    rho1 = (k.kappa_i2 + k.kappa_s2 * (1 - r) ** 2, k.kappa_i2 + k.kappa_s2 * (1 + r) ** 2)
    base = k.kappa_i2 + k.kappa_s2
    rho2 = (base + k.mu1 ** 2 * (math.sqrt(setting.psi_p) - 1) ** 2,
            base + k.mu1 ** 2 * (math.sqrt(setting.psi_p) + 1) ** 2)
    for (a, b), name, c in ((rho1, r"$\rho_1$", "C2"), (rho2, r"$\rho_2$", "C1")):
        ax.axvspan(a, b, color=c, alpha=0.12, lw=0, gid=f"bulk:{name}")
        ax.text(math.sqrt(a * b), 0.06, name + " (Thm. 3.2)", color=c, ha="center", va="bottom",
                fontsize=8.5, transform=ax.get_xaxis_transform())


def _setting_text(s):
    return ",  ".join(f"${TEX[k]} = {fmt_value(k, getattr(s, k))}$"
                      for k in ("psi_n", "psi_p", "m", "t") if k in TEX)


def _pick_rows(agg, evaluator, d, what):
    """The rows of ``evaluator`` (default: the theory if present, else the simulation, at the
    largest ``d`` or at ``d``) and its name."""
    if evaluator is None:
        ev = first_present(agg, False) or first_present(agg, True)
        if ev is None:
            raise ValueError(f"{what}: the table holds no rows of a registered evaluator")
        evaluator = ev.name
    rows = agg[agg["evaluator"] == evaluator]
    if not len(rows):
        raise ValueError(f"{what}: no rows of evaluator {evaluator!r} in the table")
    if rows["d"].notna().any():
        rows = pick_d(rows, d)
    return rows, evaluator


def gap_heatmap(df: pd.DataFrame, taus=(1e3, 1e4), *, evaluator=None, d=None):
    """The generalisation loss ``L_gen = test - train`` over ``(psi_p, psi_n)`` at the training
    times ``taus`` (each must be in the table), in units of ``h`` (log colour scale, values
    below ``1e-3 h`` at its bottom), one panel per ``tau`` (Bonnaire et al., Fig. 5C).  The
    solid contour is ``L_gen = h``, the level at which :mod:`rfdsm.timescales` puts
    ``tau_mem``; dashed: ``psi_p = psi_n``.  Rows: theory if present, else simulation."""
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    agg, name = _pick_rows(drop_unconverged(aggregate(df), "gap_heatmap"), evaluator, d,
                           "gap_heatmap")
    fig = Figure(figsize=(4.4 * len(taus) + 0.8, 3.8), layout="constrained")
    axes = fig.subplots(1, len(taus), squeeze=False)[0]
    norm = LogNorm(1e-3, None)
    for tau, ax in zip(taus, axes):
        sub = agg[np.isclose(agg["tau"], float(tau), rtol=1e-9)]
        if not len(sub) or sub["t"].nunique() != 1:
            raise ValueError(f"gap_heatmap: the table needs rows at tau = {tau:g} for one t")
        h = diffusion.h(float(sub["t"].iloc[0]))
        z = sub.assign(g=(sub["test"] - sub["train"]) / h).pivot_table(
            index="psi_n", columns="psi_p", values="g", aggfunc="mean")
        zz = np.clip(z.to_numpy(), 1e-3, None)
        xe, ye = lay.cell_edges(z.columns, True), lay.cell_edges(z.index, True)
        mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(zz), norm=norm, shading="flat",
                             cmap=colormaps["magma"].with_extremes(bad="0.82"), rasterized=True)
        if np.nanmin(zz) < 1.0 < np.nanmax(zz) and min(zz.shape) > 1:
            ax.contour(z.columns, z.index, zz, levels=[1.0], colors="w", linewidths=1.2)
        lo, hi = max(xe[0], ye[0]), min(xe[-1], ye[-1])
        ax.plot([lo, hi], [lo, hi], color="w", ls="--", lw=1.0, gid="diagonal")
        ax.set(xscale="log", yscale="log", xlim=(xe[0], xe[-1]), ylim=(ye[0], ye[-1]),
               xlabel=AXIS_LABEL["psi_p"], ylabel=AXIS_LABEL["psi_n"])
        for axis in (ax.xaxis, ax.yaxis):
            plain_log_ticks(axis)
        ax.set_title(f"$\\tau = {tau:g}$", fontsize=10)
        ax.set_gid(f"gap:tau={tau:g}")
    fig.colorbar(mesh, ax=list(axes), shrink=0.95).set_label(
        r"$L_\mathrm{gen}/\Delta_t = (\mathrm{test} - \mathrm{train})/h$", fontsize=9)
    where = (r"$d \to \infty$" if agg["d"].isna().all() else f"$d = {int(agg['d'].max())}$")
    fixed = lay.constant_text(agg, ["m", "t", "lam", "activation"])
    fig.suptitle(f"Generalisation loss at fixed training time ({name}, {where}, {fixed});  "
                 r"contour $L_\mathrm{gen} = h$", fontsize=10)
    return fig


def early_stopping_plot(df: pd.DataFrame, x: str = "psi_p", *, ridge: bool = True):
    """Excess test error ``test - a^2`` against ``x`` (``psi_p`` or ``psi_n``): at the
    optimal stopping time ``tau*`` and at ``tau = inf`` (the table's ``lam``), per evaluator
    (theory lines, simulation points), and the theory's best ridge ``lam*`` at ``tau = inf``
    (:mod:`rfdsm.early_stopping`)."""
    from matplotlib.figure import Figure

    from ..analysis.early_stopping import early_stopping_table

    if x not in ("psi_p", "psi_n"):
        raise ValueError(f"x must be 'psi_p' or 'psi_n', got {x!r}")
    tab = early_stopping_table(df, ridge=ridge)
    if tab[x].nunique() < 2:
        raise ValueError(f"early_stopping_plot: needs at least 2 values of {x}")
    vary = [c for c in ("psi_n", "psi_p", "m", "t", "lam", "activation")
            if c != x and tab[c].nunique() > 1]
    if vary:
        raise ValueError(f"early_stopping_plot: {', '.join(vary)} vary in the table; keep one "
                         "value of each (filter the table first)")
    fig = Figure(figsize=(6.6, 4.2), layout="constrained")
    ax = fig.subplots()
    a2 = diffusion.a2_h(tab["t"].to_numpy(dtype=float))[0]
    tab = tab.assign(a2=a2)
    cols = (("test_star", r"early stopping $\tau^*$", "C0"),
            ("test_inf", r"$\tau = \infty$, same $\lambda$", "C3"))
    for evname, sub in tab.groupby("evaluator"):
        sub = sub.sort_values(x)
        line = sub["d"].isna().all()
        for col, label, c in cols:
            y = sub[col] - sub["a2"]
            kw = dict(color=c, lw=1.6) if line else dict(color=c, ls="none", marker="o", mfc="white")
            err = sub.get(f"{col}_se")
            lab = f"{label} ({evname}{'' if line else ', d = %d' % int(sub['d'].max())})"
            if line or err is None:
                ax.plot(sub[x], y, label=lab, gid=f"{evname}:{col}", **kw)
            else:
                lay.errorbar(ax, sub[x], y, yerr=err.fillna(0.0).to_numpy(), label=lab,
                             gid=f"{evname}:{col}", capsize=2, **kw)
    if ridge:
        r = tab.drop_duplicates(x).sort_values(x)
        ax.plot(r[x], r["test_ridge"] - r["a2"], color="C2", lw=1.6, ls="--",
                label=r"best ridge $\lambda^*$ at $\tau = \infty$ (theory)", gid="theory:ridge")
    ax.set(xscale="log", yscale="log", xlabel=AXIS_LABEL[x],
           ylabel=r"excess test error  test $- a^2$")
    plain_log_ticks(ax.yaxis)
    ax.grid(True, which="major", alpha=0.25)
    ax.legend(fontsize=8, frameon=False)
    fixed = lay.constant_text(tab, ["psi_n", "psi_p", "m", "t", "lam"])
    fig.suptitle(f"Early stopping against the ridge   ({fixed})", fontsize=10.5)
    return fig
