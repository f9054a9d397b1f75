"""Redraw the gallery figures (docs/figures/*.png) from the sweep results kept in data/.

    python scripts/make_figures.py [--data data] [--out docs/figures] [--format png]

Each figure reads one or more sweeps by name: ``data/<name>/`` (a sweep directory), or
``data/<name>.parquet`` / ``data/<name>.csv``.  The sweeps are those of ``scripts/*.toml``
(``learning_curves``, ``learning_curves_finite_m``, ``m_dependence``, ``phase_diagram``,
``bonnaire2025``, ``bonnaire2025_grid``, ``urfin2026``), ``data/validation.csv`` written by ``rfdsm validate
--csv`` for the validation scatter, and ``data/bonnaire2025_gram.csv`` (the eigenvalues of one
simulated Gram, :data:`GRAM`; see ``data/README.md``) for the spectrum.  A
figure whose data is missing is skipped with a note; the exit status is 1 if any was skipped.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from rfdsm import load_results, plots


def find(data: Path, name: str) -> pd.DataFrame | None:
    for path in (data / name, data / f"{name}.parquet", data / f"{name}.csv"):
        if path.exists():
            return load_results(path)
    return None


def split_by(df: pd.DataFrame, col: str):
    for value, sub in df.groupby(col, sort=True):
        yield f"{col}{value:g}", sub


#: The setting of the spectrum figure: Bonnaire et al. (2025), Fig. 4, at d = 100, seed 0.
GRAM = dict(psi_n=8, psi_p=64, m=float("inf"), t=0.01)


def dynamics_figures(tables, gram=None):
    """The training-time figures (``rfdsm.plots.dynamics``) of the Bonnaire et al. presets."""
    bt, bg = tables.get("bonnaire2025"), tables.get("bonnaire2025_grid")
    if bt is not None:
        yield "training_time", plots.tau_curves(bt)
        yield "training_time_collapse", plots.tau_curves(bt, rescale="tau_mem")
    if bg is not None:
        yield "generalisation_gap", plots.gap_heatmap(bg, (1e3, 1e4))
        yield "early_stopping", plots.early_stopping_plot(bg[bg["psi_n"] == 4])
    if gram is not None:
        from rfdsm import Setting

        yield "gram_spectrum", plots.gram_spectrum(Setting(**GRAM), gram["eigenvalue"].to_numpy())


def diagnostics_figures(tables):
    """The diagnostics figures (``rfdsm.plots.diagnostics``): the ``urfin2026`` preset's table,
    and the plateau, scaling collapse and optimal ridge computed from the theory."""
    from rfdsm.plots import diagnostics as diag

    ut = tables.get("urfin2026")
    if ut is None:
        return
    for stem, fig in diag.figures("diagnostics", ut):
        yield stem, fig
    yield "plateau_vs_t", diag.plateau_vs_t(16, [1, 4, 16, 64, float("inf")],
                                            np.geomspace(1e-3, 3.0, 61))
    yield "scaling_collapse", diag.scaling_collapse([(1, 4), (2, 4), (4, 4), (2, 16), (16, 16)])[0]
    yield "optimal_envelope", diag.optimal_envelope(16, 16, np.geomspace(0.5, 4096, 49))[0]


def figures(tables, val=None):
    """(file stem, figure) pairs for every gallery figure whose tables are all present;
    ``val`` is the table written by ``rfdsm validate --csv`` (preferred for the validation plot)."""
    lc = tables.get("learning_curves")
    fm = tables.get("learning_curves_finite_m")
    md = tables.get("m_dependence")
    ph = tables.get("phase_diagram")
    if lc is not None:
        yield "learning_curves", plots.learning_curves(lc)
    if fm is not None:
        yield "learning_curves_finite_m", plots.learning_curves(fm)
    if md is not None:
        yield "m_dependence", plots.m_dependence(md)
    if ph is not None:
        for suffix, sub in split_by(ph, "t"):
            yield f"phase_diagram_{suffix}", plots.phase_diagram(sub)
    if val is not None:
        # the table of `rfdsm validate --csv data/validation.csv`: several d, coloured by d
        yield "validation", plots.validation_scatter(val)
    else:
        sims = [t for t in (lc, md) if t is not None]
        if sims:
            yield "validation", plots.validation_scatter(plots.validation_table(pd.concat(sims)))


NEEDS = {"learning_curves": ["learning_curves"],
         "learning_curves_finite_m": ["learning_curves_finite_m"],
         "m_dependence": ["m_dependence"], "phase_diagram_*": ["phase_diagram"],
         "validation": ["learning_curves", "m_dependence"],
         "training_time*": ["bonnaire2025"],
         "generalisation_gap, early_stopping": ["bonnaire2025_grid"],
         "diagnostics_*, plateau_vs_t, scaling_collapse, optimal_envelope": ["urfin2026"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data", help="folder holding the sweeps (default: data)")
    ap.add_argument("--out", default="docs/figures", help="output folder (default: docs/figures)")
    ap.add_argument("--format", default="png", help="comma-separated: png, pdf (default: png)")
    ap.add_argument("--dpi", type=int, default=100, help="PNG resolution (default: 100)")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    names = sorted({n for ns in NEEDS.values() for n in ns})
    tables = {n: t for n in names if (t := find(data, n)) is not None}
    missing = [n for n in names if n not in tables]
    for n in missing:
        print(f"note: no sweep '{n}' under {data}/ -- figures that need it are skipped",
              file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        val_path = data / "validation.csv"
        val = pd.read_csv(val_path) if val_path.exists() else None
        gram_path = data / "bonnaire2025_gram.csv"
        gram = pd.read_csv(gram_path) if gram_path.exists() else None
        if gram is None:
            print(f"note: no {gram_path} -- the spectrum figure is skipped", file=sys.stderr)
        for stem, fig in [*figures(tables, val), *dynamics_figures(tables, gram),
                          *diagnostics_figures(tables)]:
            for path in plots.save_figure(fig, out / stem, args.format.split(","), dpi=args.dpi):
                print(path)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
