"""Figures of generation: memorised fraction, nearest-neighbour ratios, generated points.

From a result table (rows with an ``f_mem`` column, written by the ``sample`` evaluator):

* :func:`memorisation_curves`: ``f_mem`` against ``psi_n``, one colour per ``psi_p``, one
  marker per ``m``, with its interval (one seed: the bootstrap interval of the row; several
  seeds: mean +- 1.96 standard errors over seeds, which includes the training-set spread);
* :func:`memorisation_and_gap`: the same above the test-train gap of the learning curves for
  the same settings (the theory as lines where the table has it, the sampler rows' own fits,
  at the setting's ``t``, as points).

From :class:`rfdsm.sample.record.SampleResult` records:

* :func:`ratio_histograms`: the distribution of ``|x - x^(1)| / |x - x^(2)|``, the
  memorisation threshold marked;
* :func:`projection`: generated and training points on the two leading principal directions
  of the training points, memorised points marked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import _layout as lay
from ._table import check_table, is_limit, normalise, with_defaults
from .style import AXIS_LABEL, TEX, fmt_value, m_label, palette, plain_log_ticks

__all__ = ["memorisation_curves", "memorisation_and_gap", "ratio_histograms", "projection",
           "has_sampling", "SAMPLING_COLUMNS"]

SAMPLING_COLUMNS = ("evaluator", "psi_n", "psi_p", "m", "d", "f_mem", "f_mem_lo", "f_mem_hi")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_JOIN = (0, (1, 1.5))
_FACETS = ("m", "t", "lam", "tau", "activation", "estimator", "data")


def has_sampling(df) -> bool:
    """Whether a result table holds sampling rows (a finite ``f_mem`` somewhere)."""
    return isinstance(df, pd.DataFrame) and "f_mem" in df.columns and \
        bool(pd.to_numeric(df["f_mem"], errors="coerce").notna().any())


def _summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per setting x d of the sampling rows: ``f_mem`` mean and its interval."""
    df = normalise(check_table(with_defaults(df), SAMPLING_COLUMNS, "memorisation"))
    rows = df[pd.to_numeric(df["f_mem"], errors="coerce").notna()]
    if len(rows) == 0:
        raise ValueError("memorisation: the table has no row with a finite f_mem (rows of "
                         "the sample evaluator)")
    keys = [c for c in ("psi_n", "psi_p", *_FACETS, "d") if c in rows.columns]
    work = rows[keys + ["f_mem", "f_mem_lo", "f_mem_hi"]].astype({"f_mem": float})
    g = work.groupby(keys, dropna=False, sort=True)
    out = g.agg(f_mem=("f_mem", "mean"), lo=("f_mem_lo", "mean"), hi=("f_mem_hi", "mean"),
                k=("f_mem", "size"), sd=("f_mem", "std")).reset_index()
    many = out["k"] > 1
    half = 1.96 * out["sd"] / np.sqrt(out["k"])
    out.loc[many, "lo"] = (out["f_mem"] - half).clip(lower=0.0)[many]
    out.loc[many, "hi"] = (out["f_mem"] + half).clip(upper=1.0)[many]
    return out


def _draw_fmem(ax, sub, colours, markers):
    for (pp, m), r in sub.groupby(["psi_p", "m"], sort=True):
        r = r.sort_values("psi_n")
        yerr = np.vstack([r["f_mem"] - r["lo"], r["hi"] - r["f_mem"]]).clip(min=0.0)
        # thin dotted joins: solid lines are the theory's in the figures that have one
        ax.errorbar(r["psi_n"], r["f_mem"], yerr=yerr, color=colours[pp], marker=markers[m],
                    ms=4.5, mfc="white", mew=1.2, lw=1.0, ls=_JOIN, capsize=2.0,
                    gid=f"f_mem:psi_p={fmt_value('psi_p', pp)}:m={fmt_value('m', m)}")
    ax.set_xscale("log")
    plain_log_ticks(ax.xaxis)
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel(r"memorised fraction $f_\mathrm{mem}$")
    ax.grid(True, alpha=0.25)


def _keys(summ):
    colours = palette(summ["psi_p"], "viridis")
    markers = {m: _MARKERS[i % len(_MARKERS)] for i, m in enumerate(sorted(summ["m"].unique()))}
    return colours, markers


def _legend(fig, colours, markers, width, theory=False, d=None):
    """Colours (``psi_p``), markers (``m``), and what markers and lines are: the sampler's
    results (its generated points, and the errors of its own fits) and, where drawn, the
    theory."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=5, label=f"${TEX['psi_p']} = {fmt_value('psi_p', v)}$")
               for v, c in colours.items()]
    handles += [Line2D([], [], color="0.2", ls="none", marker=mk, mfc="white", label=m_label(m))
                for m, mk in markers.items()]
    at = f", $d = {d}$" if d else ""
    handles.append(Line2D([], [], color="0.2", ls=_JOIN, lw=1.0, marker="o", mfc="white",
                          label=f"markers: simulation (sampler{at})"))
    if theory:
        handles.append(Line2D([], [], color="0.2", lw=1.4, label="solid lines: theory"))
    # a one-panel figure is narrow: two columns keep the legend inside its width
    ncol = 2 if width <= 1 else min(len(handles), 2 * width + 2)
    fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize=8,
               frameon=False)


def memorisation_curves(df: pd.DataFrame, *, title=None):
    """``f_mem`` against ``psi_n`` (see the module docstring); one panel per value of the
    other varying parameters.  Series carry ``gid = "f_mem:psi_p=<v>:m=<v>"``."""
    summ = _summary(df)
    panels = lay.panels(summ, [c for c in _FACETS if c != "m" and c in summ], "memorisation")
    colours, markers = _keys(summ)
    fig, axes = lay.new_figure(len(panels))
    for ax, (ptitle, sub) in zip(axes, panels):
        _draw_fmem(ax, sub, colours, markers)
        ax.set_xlabel(AXIS_LABEL["psi_n"])
        ax.set_title(ptitle, fontsize=10)
    d = ", ".join(str(int(v)) for v in sorted(summ["d"].dropna().unique()))
    fig.suptitle(title or f"Memorised fraction of generated points ($d = {d}$)", fontsize=11)
    _legend(fig, colours, markers, len(panels), d=d)
    return fig


def memorisation_and_gap(df: pd.DataFrame, *, title=None):
    """``f_mem`` (top) above the test-train gap (bottom) against ``psi_n`` for the same
    settings: the gap of the theory rows as lines (settings matching the sampler's in every
    parameter but ``psi_n``), of the sampler rows' own fits (seed means) as points."""
    summ = _summary(df)
    colours, markers = _keys(summ)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 6.0), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    _draw_fmem(top, summ, colours, markers)
    tab = normalise(with_defaults(df))
    tab = tab.assign(gap=tab["test"] - tab["train"])
    th = tab[is_limit(tab)]
    samp = tab[pd.to_numeric(tab.get("f_mem"), errors="coerce").notna()]
    drawn = False
    for (pp, m), r in samp.groupby(["psi_p", "m"], sort=True):
        g = r.groupby("psi_n")["gap"].mean()
        bottom.plot(g.index, g.to_numpy(), ls="none", marker=markers[m], mfc="white",
                    color=colours[pp], gid=f"gap:sample:psi_p={fmt_value('psi_p', pp)}")
        line = th[(th["psi_p"] == pp) & (th["m"] == m)].sort_values("psi_n")
        if len(line):
            drawn = True
            bottom.plot(line["psi_n"], line["gap"], color=colours[pp], lw=1.4,
                        gid=f"gap:theory:psi_p={fmt_value('psi_p', pp)}")
    bottom.set_xscale("log")
    plain_log_ticks(bottom.xaxis)
    bottom.set_xlabel(AXIS_LABEL["psi_n"])
    bottom.set_ylabel(r"gap $\mathcal{L}_\mathrm{test} - \mathcal{L}_\mathrm{train}$")
    bottom.grid(True, alpha=0.25)
    ts = ", ".join(f"{v:g}" for v in sorted(samp["t"].unique()))
    fig.suptitle(title or f"Memorisation and the generalisation gap (gap at $t = {ts}$)",
                 fontsize=10)
    d = ", ".join(str(int(v)) for v in sorted(summ["d"].dropna().unique()))
    _legend(fig, colours, markers, 1, theory=drawn, d=d)
    return fig


def _record_label(res) -> str:
    pr = res.parameters()
    return (f"${TEX['psi_n']} = {fmt_value('psi_n', pr['psi_n'])}$, "
            f"${TEX['psi_p']} = {fmt_value('psi_p', pr['psi_p'])}$, {res.score}: "
            f"$f_\\mathrm{{mem}} = {res.f_mem:.2f}$")


def ratio_histograms(records, *, bins=40, title=None):
    """Histograms of the nearest-neighbour ratio of each record's generated points (one
    colour per record), the threshold of each as a dashed line."""
    from matplotlib.figure import Figure

    records = list(records)
    if not records:
        raise ValueError("ratio_histograms: give at least one SampleResult")
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    edges = np.linspace(0.0, 1.0, bins + 1)
    colours = [f"C{i % 10}" for i in range(len(records))]
    for res, c in zip(records, colours):
        ax.hist(res.ratios, bins=edges, histtype="step", lw=1.5, color=c, density=True,
                label=_record_label(res))
    for thr in sorted({r.threshold for r in records}):
        ax.axvline(thr, color="0.3", ls="--", lw=1.0)
    ax.set_xlabel(r"$|x - x^{(1)}| \,/\, |x - x^{(2)}|$  (nearest / second-nearest training point)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title or f"Nearest-neighbour ratios ($d = {records[0].d}$)", fontsize=10)
    return fig


def projection(res, *, title=None, max_points=2000):
    """Generated (small dots; memorised in red) and training points (black crosses) on the
    two leading principal directions of the training points."""
    from matplotlib.figure import Figure

    X, x = res.training, res.samples[:max_points]
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    P = vt[:2].T if vt.shape[0] >= 2 else np.eye(X.shape[1])[:, :2]
    mem = res.ratios[:max_points] < res.threshold
    fig = Figure(figsize=(4.6, 4.4), layout="constrained")
    ax = fig.subplots()
    px, pX = x @ P, X @ P
    ax.scatter(px[~mem, 0], px[~mem, 1], s=4, color="C0", alpha=0.5, lw=0, label="generated")
    ax.scatter(px[mem, 0], px[mem, 1], s=4, color="C3", alpha=0.6, lw=0,
               label="generated, memorised")
    ax.scatter(pX[:, 0], pX[:, 1], s=30, color="k", marker="x", lw=1.2, label="training")
    ax.set_xlabel("principal direction 1 of the training set")
    ax.set_ylabel("principal direction 2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    fig.suptitle(title or _record_label(res), fontsize=9)
    return fig

