"""Structured data (docs/gallery.md, "Structured data"): compute the tables and draw the figures.

    python scripts/structured_figures.py [--data data] [--out docs/figures] [--d 200] [--seeds 3]
                                         [--plot-only]

Theory (``d -> inf``) on fine grids and the simulation at dimension ``d`` on a few points, for
data on a subspace of ``psi_d d`` dimensions, ``psi_d`` in {0.1, 0.25, 0.5, 1}; tanh,
``t = 0.1``, ``lam = 0.001``, ``m = 1`` and ``m = inf``.  Tables go to
``data/structured_{curves,scaling,boundary}.parquet`` (with the par/perp split of
:mod:`rfdsm.metrics.split` as columns), figures to ``docs/figures/structured_*.png``;
``--plot-only`` redraws from the tables.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

import rfdsm
import rfdsm.metrics.split  # the par/perp metrics, for the simulations
from rfdsm import Setting, plots
from rfdsm.sweep.store import to_frame
from rfdsm.theory import theory_curve

PSI_D = (0.1, 0.25, 0.5, 1.0)
MS = (1, math.inf)
BASE = dict(t=0.1, lam=0.001, activation="tanh")


def _theory_rows(settings):
    return [row for r in theory_curve(settings) for row in r.rows()]


def _sim_rows(settings, d, seeds):
    out = []
    for s in settings:
        r = rfdsm.simulate(s, d, seed=0, n_seeds=seeds, metrics=rfdsm.metrics.split.SPLIT_METRICS)
        out += r.rows()
    return out


def curves_table(d, seeds):
    """Errors against psi_p at psi_n = 1."""
    rows = []
    for m in MS:
        for pd_ in PSI_D:
            line = [Setting(psi_n=1, psi_p=float(p), m=m, psi_d=pd_, **BASE)
                    for p in np.geomspace(0.1, 10, 41)]
            rows += _theory_rows(line)
            rows += _sim_rows([Setting(psi_n=1, psi_p=p, m=m, psi_d=pd_, **BASE)
                               for p in (0.25, 0.5, 1, 2, 4)], d, seeds)
    return to_frame(rows)


def scaling_table(d, seeds, psi_p=4.0):
    """Errors against psi_n / psi_d at fixed psi_p."""
    rows = []
    for m in MS:
        for pd_ in PSI_D:
            line = [Setting(psi_n=float(a * pd_), psi_p=psi_p, m=m, psi_d=pd_, **BASE)
                    for a in np.geomspace(0.25, 16, 33)]
            rows += _theory_rows(line)
            rows += _sim_rows([Setting(psi_n=a * pd_, psi_p=psi_p, m=m, psi_d=pd_, **BASE)
                               for a in (0.5, 2, 8)], d, seeds)
    return to_frame(rows)


def boundary_table(num=25):
    """The theory on a (psi_n, psi_p) grid."""
    grid = np.geomspace(1 / 8, 16, num)
    rows = []
    for m in MS:
        for pd_ in PSI_D:
            for pn in grid:
                rows += _theory_rows([Setting(psi_n=float(pn), psi_p=float(pp), m=m, psi_d=pd_,
                                              **BASE) for pp in grid])
    return to_frame(rows)


def figures(tables):
    cur, sc, bd = tables["curves"], tables["scaling"], tables["boundary"]
    yield "structured_curves", plots.psi_d_curves(cur, x="psi_p", quantities=("test", "train"))
    yield "structured_split", plots.psi_d_curves(
        cur[cur["psi_d"] < 1], x="psi_p", quantities=("test_par", "test_perp"),
        title="Test error split: the data subspace (top) and its complement (bottom), "
              "$\\psi_n = 1$")
    yield "structured_scaling", plots.psi_d_curves(
        sc, x="psi_n", scaled=True, quantities=("excess", "score_par_per_d"),
        title="Against data points per intrinsic dimension, $\\psi_p = 4$")
    yield "structured_boundary", plots.boundary_diagram(bd)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data")
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--d", type=int, default=200)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--plot-only", action="store_true")
    args = ap.parse_args(argv)
    data, out = Path(args.data), Path(args.out)
    data.mkdir(parents=True, exist_ok=True)
    makers = {"curves": lambda: curves_table(args.d, args.seeds),
              "scaling": lambda: scaling_table(args.d, args.seeds),
              "boundary": boundary_table}
    tables = {}
    for name, make in makers.items():
        path = data / f"structured_{name}.parquet"
        if args.plot_only:
            tables[name] = rfdsm.load_results(path)
            continue
        t0 = time.perf_counter()
        tables[name] = make()
        tables[name].to_parquet(path, index=False)
        print(f"{path}: {len(tables[name])} rows, {time.perf_counter() - t0:.0f} s", flush=True)
    for stem, fig in figures(tables):
        for path in plots.save_figure(fig, out / stem, ("png",), dpi=100):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
