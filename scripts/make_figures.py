"""Redraw the gallery figures (docs/figures/*.png) from the sweep results kept in data/.

    python scripts/make_figures.py [--data data] [--out docs/figures] [--format png]

Each figure reads one or more sweeps by name: ``data/<name>/`` (a sweep directory), or
``data/<name>.parquet`` / ``data/<name>.csv``.  The sweeps are those of ``scripts/*.toml``
(``learning_curves``, ``learning_curves_finite_m``, ``m_dependence``, ``phase_diagram``), and
``data/validation.csv`` written by ``rfdsm validate --csv`` for the validation scatter.  A
figure whose data is missing is skipped with a note; the exit status is 1 if any was skipped.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

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
         "validation": ["learning_curves", "m_dependence"]}


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
        for stem, fig in figures(tables, val):
            for path in plots.save_figure(fig, out / stem, args.format.split(","), dpi=args.dpi):
                print(path)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
