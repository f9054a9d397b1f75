"""Diagnostics figures: ``test_emp`` beside train and test, the bias-variance split, the
over-parameterised plateau against ``t``, the scaling collapse and the optimal-ridge envelope
(``docs/gallery.md``, "Diagnostics"; definitions ``docs/model.md``).

:func:`figures` draws the two figures a result table with the diagnostic columns supports
(``rfdsm plot --kind diagnostics``); :func:`plateau_vs_t`, :func:`scaling_collapse` and
:func:`optimal_envelope` compute their curves from the theory (fast) and draw them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..core import diffusion
from . import _layout as lay
from ._table import SETTING_COLUMNS, bayes_level, check_table, normalise, with_defaults
from .style import AXIS_LABEL, BAYES_STYLE, DIAG_STYLE, TEX, fmt_value, m_colours, m_label

__all__ = ["KINDS", "has_diagnostics", "aggregate_diagnostics", "figures", "losses",
           "bias_variance", "plateau_vs_t", "scaling_collapse", "optimal_envelope"]

KINDS = ("diagnostics",)
COLUMNS = ("test_emp", "beta", "bias2", "variance")
_COLOUR = {"train": "C1", "test": "C0", "test_emp": "C3", "bias2": "C4", "variance": "C2",
           "score": "0.35"}
_LABEL = {"train": "train", "test": "test", "test_emp": r"$\mathcal{L}_\mathrm{test}^\mathrm{emp}$",
          "bias2": r"bias$^2$", "variance": "variance", "score": "score error"}
_THRESH = dict(color="0.55", ls="-.", lw=1.0)  # psi_p = m psi_n: not dotted, as the Bayes line
# Curves that coincide must stay visible: at m = inf the training loss *is* test_emp, and train,
# test_emp and the score error meet at small psi_p.  Each quantity has its own line style,
# width and marker, the broad ones drawn below the narrow ones.
_LINE = {"train": dict(ls=(0, (4, 2)), lw=1.7, zorder=4), "test": dict(ls="-", lw=1.6, zorder=3),
         "test_emp": dict(ls="-", lw=3.2, alpha=0.55, zorder=2),
         "score": dict(ls="-", lw=1.6, zorder=3), "bias2": dict(ls=(0, (4, 2)), lw=1.7, zorder=4),
         "variance": dict(ls=(0, (1, 1.5)), lw=2.0, zorder=4)}
_MARKER = {"train": "s", "test": "o", "test_emp": "D", "score": "o", "bias2": "v",
           "variance": "^"}
BAYES_LABEL = r"Bayes level $a^2 = e^{-2t}$"

def has_diagnostics(df: pd.DataFrame, simulated: bool = False) -> bool:
    """Whether a table holds the diagnostics (the theory's rows always do; ``simulated``: a
    simulation's rows, which have them only when asked for)."""
    cols = ["test_emp", "bias2", "variance"]
    if not all(c in df.columns for c in cols):
        return False
    rows = df[df["d"].notna()] if simulated and "d" in df.columns else df
    return bool(len(rows)) and bool(rows[cols].notna().any().all())


def aggregate_diagnostics(df: pd.DataFrame) -> pd.DataFrame:
    """One row per evaluator x setting x d: the errors and diagnostics averaged over seeds with
    :func:`rfdsm.sweep.store.seed_summary` (columns ``v`` and ``v_se``)."""
    from ..sweep.store import seed_summary

    df = normalise(check_table(with_defaults(df), ("evaluator", "psi_n", "psi_p", "m", "t",
                                                    "lam", "train", "test"), "diagnostics"))
    values = [c for c in ("train", "test", "score", *COLUMNS) if c in df.columns]
    keys = ["evaluator", *SETTING_COLUMNS, "d"]
    work = df[keys + values].copy()
    for c in values:
        work[c] = pd.to_numeric(work[c], errors="coerce")
    out = seed_summary(work, keys, values).reset_index()
    finite = out["d"].isna()
    for c in values:
        out.loc[finite, f"{c}_se"] = np.nan
    return out


def _panels(agg, what):
    facet = [c for c in SETTING_COLUMNS if c not in ("psi_p", "m")]
    return lay.panels(agg, facet, what), facet


def _draw(ax, rows, q, colour):
    theory = rows[rows["d"].isna()].sort_values("psi_p")
    sim = rows[rows["d"].notna()]
    if len(theory):
        ax.plot(theory["psi_p"], theory[q], color=colour, gid=f"theory:{q}", **_LINE[q])
    if len(sim):
        sim = sim[sim["d"] == sim["d"].max()].sort_values("psi_p")
        lay.errorbar(ax, sim["psi_p"], sim[q], yerr=sim[f"{q}_se"].fillna(0.0).to_numpy(),
                     color=colour, ls="none", marker=_MARKER[q], ms=4, mfc="white", capsize=2,
                     zorder=5, gid=f"simulate:{q}")


def _legend(fig, quantities, sim_d=None, bayes=True, interpolation=True, threshold=False):
    """One entry per quantity (its line and marker), what lines and markers are (theory,
    simulation), and every reference line drawn: the Bayes level, ``psi_p = psi_n``, ``psi_p =
    m psi_n``."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_COLOUR[q], marker=_MARKER[q], mfc="white", ms=4,
                      label=_LABEL[q], **{k: v for k, v in _LINE[q].items() if k != "zorder"})
               for q in quantities]
    handles.append(Line2D([], [], color="0.2", lw=1.6, label="lines: theory"))
    if sim_d is not None:
        handles.append(Line2D([], [], color="0.2", ls="none", marker="o", mfc="white", ms=4,
                              label=f"markers: simulation, $d = {sim_d}$ (mean $\\pm$ s.e.)"))
    if bayes:
        handles.append(Line2D([], [], label=BAYES_LABEL, **BAYES_STYLE))
    if interpolation:
        handles.append(Line2D([], [], label=f"${TEX['psi_p']} = {TEX['psi_n']}$", **DIAG_STYLE))
    if threshold:
        handles.append(Line2D([], [], label=f"${TEX['psi_p']} = m {TEX['psi_n']}$", **_THRESH))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
               fontsize=8.5, frameon=False)


def _curves(df, quantities, title, what, logy):
    agg = aggregate_diagnostics(df)
    quantities = [q for q in quantities if q in agg.columns]
    panels, facet = _panels(agg, what)
    ms = sorted(agg["m"].unique())
    fig, axes = lay.new_figure(len(panels) * len(ms), ncols=min(3, len(panels) * len(ms)))
    i = 0
    for ptitle, sub in panels:
        for m in ms:
            ax, rows = axes[i], sub[sub["m"] == m]
            i += 1
            for q in quantities:
                _draw(ax, rows, q, _COLOUR[q])
            pn = rows["psi_n"].iloc[0] if len(rows) else math.nan
            ax.axvline(pn, **DIAG_STYLE)
            if m != math.inf:
                ax.axvline(m * pn, **_THRESH)
            if "test" in quantities:
                ax.axhline(bayes_level(rows["t"].iloc[0]) if len(rows) else 0, **BAYES_STYLE)
            ax.set_xscale("log")
            if logy:
                ax.set_yscale("log")
            ax.set_xlabel(AXIS_LABEL["psi_p"])
            ax.set_title(", ".join(filter(None, [ptitle, m_label(m)])), fontsize=9)
            ax.grid(True, alpha=0.25)
    sims = sorted({int(v) for v in agg["d"].dropna()})
    fig.suptitle(f"{title}   ({lay.constant_text(agg, facet)})", fontsize=9)
    _legend(fig, quantities, max(sims) if sims else None, bayes="test" in quantities,
            threshold=any(m != math.inf for m in ms))
    return fig


def losses(df: pd.DataFrame):
    """train, test and ``test_emp`` against ``psi_p`` (one panel per ``m``)."""
    return _curves(df, ("train", "test", "test_emp"), "Losses", "diagnostics losses",
                   logy=False)


def bias_variance(df: pd.DataFrame):
    """``bias2``, ``variance`` (and their sum, the score error) against ``psi_p``."""
    return _curves(df, ("score", "bias2", "variance"), "Bias-variance split of the score error",
                   "diagnostics bias-variance", logy=True)


def figures(kind: str, df: pd.DataFrame):
    """``[(file stem, figure)]`` of a kind of :data:`KINDS` for a result table."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return [("diagnostics_losses", losses(df)), ("diagnostics_bias_variance", bias_variance(df))]


def plateau_vs_t(psi_n: float, ms, ts, activation: str = "tanh"):
    """The plateau (``psi_p -> inf``, :func:`rfdsm.theory.plateau`) against ``t``: test,
    ``test_emp``, ``bias2`` and ``variance``, one colour per ``m``."""
    from ..core.setting import Setting
    from ..theory import plateau

    ts = np.asarray(ts, dtype=float)
    colours = m_colours(ms)
    fig, axes = lay.new_figure(4, ncols=4, panel=(3.0, 2.7))
    for m in ms:
        vals = [plateau(Setting(psi_n, 1.0, m=m, t=t, activation=activation)) for t in ts]
        series = {"test": [r.test for r in vals], "test_emp": [r.metrics["test_emp"] for r in vals],
                  "bias2": [r.metrics["bias2"] for r in vals],
                  "variance": [r.metrics["variance"] for r in vals]}
        for ax, (q, v) in zip(axes, series.items()):
            ax.plot(ts, v, color=colours[m], lw=1.6, label=m_label(m) if q == "test" else None,
                    gid=f"plateau:{q}:m={fmt_value('m', m)}")
    axes[0].plot(ts, diffusion.a2_h(ts)[0], label=BAYES_LABEL, **BAYES_STYLE)
    for ax, q in zip(axes, ("test", "test_emp", "bias2", "variance")):
        ax.set_xscale("log")
        ax.set_yscale("log" if q in ("bias2", "variance") else "linear")
        ax.set_xlabel(AXIS_LABEL["t"])
        ax.set_title(_LABEL[q] if q != "test" else "test error", fontsize=9)
        ax.grid(True, alpha=0.25)
    fig.suptitle(f"Over-parameterised plateau ($\\psi_p \\to \\infty$, any $\\lambda$), "
                 f"${TEX['psi_n']} = {psi_n:g}$, {activation}", fontsize=10)
    fig.legend(loc="outside lower center", ncol=len(ms) + 1, fontsize=8.5, frameon=False)
    return fig


def scaling_collapse(pairs, t: float = 0.1, lam: float = 1e-3, psi_p=None,
                     activation: str = "tanh"):
    """Test error against ``psi_p/psi_n`` (left) and ``psi_p/(m psi_n)`` (right), one line per
    ``(psi_n, m)`` of ``pairs``, from the theory; returns ``(fig, table)`` with the curves."""
    from ..core.setting import Setting
    from ..theory import theory_curve

    rows = []
    for psi_n, m in pairs:
        grid = np.geomspace(psi_n / 16, psi_n * m * 16, 161) if psi_p is None else psi_p
        res = theory_curve([Setting(psi_n, float(p), m=m, t=t, lam=lam, activation=activation)
                            for p in grid])
        rows += [{"psi_n": psi_n, "m": m, "psi_p": r.setting.psi_p, "test": r.test,
                  "converged": r.converged} for r in res]
    table = pd.DataFrame(rows)
    fig, axes = lay.new_figure(2, ncols=2, panel=(4.2, 3.0))
    colours = dict(zip(pairs, [f"C{i}" for i in range(len(pairs))]))
    for (psi_n, m), sub in table[table["converged"]].groupby(["psi_n", "m"], sort=False):
        lab = f"${TEX['psi_n']} = {psi_n:g}$, {m_label(m)}"
        axes[0].plot(sub["psi_p"] / psi_n, sub["test"], color=colours[(psi_n, m)], label=lab)
        axes[1].plot(sub["psi_p"] / (psi_n * m), sub["test"], color=colours[(psi_n, m)])
    for ax, xl in zip(axes, (r"$p/n = \psi_p/\psi_n$", r"$p/(nm) = \psi_p/(m\psi_n)$")):
        ax.axvline(1.0, **DIAG_STYLE)
        ax.axhline(diffusion.a2_h(t)[0], label=BAYES_LABEL if ax is axes[0] else None,
                   **BAYES_STYLE)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel("test error")
        ax.grid(True, alpha=0.25)
    fig.suptitle(f"Scaling collapse of the test error (theory; $t = {t:g}$, "
                 f"$\\lambda = {lam:g}$, {activation})", fontsize=10)
    fig.legend(loc="outside lower center", ncol=min(len(pairs) + 1, 4), fontsize=8.5,
               frameon=False)
    return fig, table


def optimal_envelope(psi_n: float, m, psi_ps, t: float = 0.1, lams=(0.0, 1e-3),
                     activation: str = "tanh"):
    """Test error at the optimal ridge ``lam*(psi_p)`` (:func:`rfdsm.optimal.optimal_lambda`)
    against ``psi_p``, beside fixed ridges ``lams``; returns ``(fig, table)``."""
    from ..analysis.optimal import optimal_lambda
    from ..core.setting import Setting
    from ..theory import theory_curve

    psi_ps = np.asarray(psi_ps, dtype=float)
    opt = [optimal_lambda(Setting(psi_n, float(p), m=m, t=t, activation=activation))
           for p in psi_ps]
    table = pd.DataFrame({"psi_p": psi_ps, "lam_star": [o.lam for o in opt],
                          "test_star": [o.value for o in opt], "status": [o.status for o in opt]})
    fig, axes = lay.new_figure(2, ncols=2, panel=(4.2, 3.0))
    axes[0].plot(psi_ps, table["test_star"], color="k", lw=2.0, label=r"optimal $\lambda^*$")
    for i, lam in enumerate(lams):
        res = theory_curve([Setting(psi_n, float(p), m=m, t=t, lam=lam, activation=activation)
                            for p in psi_ps])
        test = [r.test if r.converged else np.nan for r in res]
        table[f"test_lam{lam:g}"] = test
        axes[0].plot(psi_ps, test, color=f"C{i}", lw=1.3, label=f"$\\lambda = {lam:g}$")
    axes[1].plot(psi_ps, table["lam_star"], color="k", lw=1.6)
    for ax in axes:
        first = ax is axes[0]
        ax.set_xscale("log")
        ax.axvline(psi_n, label=f"${TEX['psi_p']} = {TEX['psi_n']}$" if first else None,
                   **DIAG_STYLE)
        if m != math.inf:
            ax.axvline(m * psi_n, label=f"${TEX['psi_p']} = m {TEX['psi_n']}$" if first else None,
                       **_THRESH)
        ax.set_xlabel(AXIS_LABEL["psi_p"])
        ax.grid(True, alpha=0.25)
    axes[0].set_yscale("log")
    axes[0].axhline(diffusion.a2_h(t)[0], label=BAYES_LABEL, **BAYES_STYLE)
    axes[0].set_ylabel("test error")
    axes[1].set_yscale("log")
    axes[1].set_ylabel(r"$\lambda^*$")
    fig.suptitle(f"Optimal regularisation (theory; ${TEX['psi_n']} = {psi_n:g}$, {m_label(m)}, "
                 f"$t = {t:g}$, {activation})", fontsize=10)
    fig.legend(loc="outside lower center", ncol=len(lams) + 4, fontsize=8.5, frameon=False)
    return fig, table
