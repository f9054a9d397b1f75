"""Which figures a table supports, and drawing all of them into a directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import _layout as lay
from . import diagnostics, dynamics
from ..evaluators import evaluator_names
from ._table import SETTING_COLUMNS, aggregate, is_limit
from .curves import learning_curves
from .mdependence import m_dependence
from .phase import phase_diagram
from .sampling import has_sampling, memorisation_and_gap, memorisation_curves
from .structured import boundary_diagram, psi_d_curves
from .style import fmt_value, save_figure
from .validation import validation_scatter, validation_table

__all__ = ["KINDS", "make_figures"]

KINDS = ("curves", "phase", "m", "validation", "psi_d") + dynamics.KINDS + ("sampling",) \
    + diagnostics.KINDS


def auto_kinds(agg: pd.DataFrame) -> list[str]:
    """The figure kinds an aggregated table supports: a phase diagram for a grid of at least
    4 x 4 ratios, else learning curves along the more finely sampled ratio; m dependence for
    three or more m; validation where a ``d -> inf`` evaluator (the theory) and a finite-size
    one (the simulation) share a setting.  A table with a training-time axis gets the
    figures of :mod:`.dynamics` instead."""
    if dynamics.auto_kinds(agg):
        return dynamics.auto_kinds(agg)
    n_n, n_p = agg["psi_n"].nunique(), agg["psi_p"].nunique()
    kinds = []
    m_table = agg["m"].nunique() >= 3 and n_n <= 4 and n_p <= 4  # few ratios, many m
    if n_n >= 4 and n_p >= 4:
        kinds.append("phase")
    elif (n_p >= 3 or n_n >= 3) and not m_table:
        kinds.append("curves")
    if agg["m"].nunique() >= 3 and "phase" not in kinds:
        kinds.append("m")
    if "psi_d" in agg and agg["psi_d"].nunique() >= 2 and (n_p >= 3 or n_n >= 3):
        kinds.append("psi_d")  # structured data: one colour per intrinsic dimension
    th = agg[is_limit(agg)]
    sim = agg[agg["evaluator"].isin(evaluator_names(finite_size=True))]
    if len(th) and len(sim) and len(sim.merge(th[list(SETTING_COLUMNS)],
                                              on=list(SETTING_COLUMNS))):
        kinds.append("validation")
    return kinds


def split(df: pd.DataFrame, cols):
    """Split a table by the varying columns among ``cols``: [(file suffix, sub-table)]."""
    vary = lay.varying(df, cols)
    if not vary:
        return [("", df)]
    out = []
    for key, sub in df.groupby(vary, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        out.append(("_" + "_".join(f"{c}{fmt_value(c, v).replace(chr(92), '')}"
                                   for c, v in zip(vary, key)), sub))
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
    if kinds is None:  # rows of the sampler (an f_mem column) add its figures
        kinds = auto_kinds(agg) + (["sampling"] if has_sampling(df) else [])
        if diagnostics.has_diagnostics(df, simulated=True) and agg["psi_p"].nunique() >= 3:
            kinds.append("diagnostics")  # simulations asked for test_emp, bias2, variance
    kinds = list(kinds)
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
            for suf, sub in split(df, ["lam", "activation"]):
                save(learning_curves(sub, x=xx), f"learning_curves{suf}")
        elif kind == "phase":
            for suf, sub in split(df, ["t", "lam", "activation"]):
                save(phase_diagram(sub), f"phase_diagram{suf}")
        elif kind == "m":
            for suf, sub in split(df, ["lam", "activation"]):
                save(m_dependence(sub), f"m_dependence{suf}")
        elif kind == "psi_d":
            xx = x or ("psi_p" if agg["psi_p"].nunique() >= agg["psi_n"].nunique() else "psi_n")
            for suf, sub in split(df, ["lam", "activation"]):
                if agg["psi_n"].nunique() >= 3 and agg["psi_p"].nunique() >= 3:
                    save(boundary_diagram(sub), f"psi_d_boundary{suf}")
                else:
                    save(psi_d_curves(sub, x=xx), f"psi_d_curves{suf}")
        elif kind in diagnostics.KINDS:
            for suf, sub in split(df, ["lam", "activation"]):
                for stem, fig in diagnostics.figures(kind, sub):
                    save(fig, f"{stem}{suf}")
        elif kind in dynamics.KINDS:
            for stem, fig in dynamics.figures(kind, df):
                save(fig, stem)
        elif kind == "sampling":
            for suf, sub in split(df, ["lam", "activation"]):
                save(memorisation_curves(sub), f"memorisation{suf}")
                save(memorisation_and_gap(sub), f"memorisation_gap{suf}")
        else:
            save(validation_scatter(validation_table(df)), "validation")
    return written
