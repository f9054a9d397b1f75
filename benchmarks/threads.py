"""Threads per operation of one CPU fit: BLAS 1 or 2 threads x Numba 1 or 2 threads.

    python benchmarks/threads.py [--repeats 5] [--d 100 200 400] [--out FILE]

Runs ``fit.evaluate_seed`` (``psi_n = 2``, ``psi_p = 4``, ``t = 0.1``, ``lam = 0.01``, tanh, seed 0)
at each ``d`` and ``m in {16, inf}`` under the four thread combinations and the library's rule, interleaved (one
repeat of every combination before the next repeat), so that a neighbour's load hits all of
them alike; reports the median time of each phase recorded in ``diagnostics`` and its ratio to
the (BLAS 2, Numba 2) default.  The library's own thread rule is switched off while measuring
(``fit.THREADS.fixed``) for the four combinations, so each holds for every operation of the fit.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from rfdsm import Setting
from rfdsm.simulate import fit, simulate_seed

PHASES = {16: ("time_features", "time_gram", "time_solve", "time_population", "time_total"),
          math.inf: ("time_quadrature", "time_series", "time_solve", "time_population", "time_total")}
COMBOS = ((2, 2), (1, 2), (2, 1), (1, 1), "rule")  # (BLAS threads, Numba threads)


def one(setting, d, *combo):
    if combo == ("rule",):  # the library's own rule (rfdsm/simulate/threads.py)
        fit.THREADS.fixed = False
        try:
            row = simulate_seed(setting, d, 0)
        finally:
            fit.THREADS.fixed = True
        return row["diagnostics"], row["test"]
    blas, nb = combo
    with threadpool_limits(limits=blas, user_api="blas"):
        numba.set_num_threads(nb)
        try:
            row = fit.evaluate_seed(setting, d, 0, fit.DEFAULT_BLOCK_BYTES, None, 0, np.float64)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return row["diagnostics"], row["test"]


def measure(d, m, repeats):
    s = Setting(psi_n=2, psi_p=4, m=m, t=0.1, lam=0.01, activation="tanh")
    one(s, d, 2, 2)  # compile and warm the caches
    times = {c: {k: [] for k in PHASES[m]} for c in COMBOS}
    tests = set()
    for _ in range(repeats):
        for c in COMBOS:
            diag, test = one(s, d, *(c if isinstance(c, tuple) else (c,)))
            tests.add(test)
            for k in PHASES[m]:
                times[c][k].append(diag[k])
    assert len(tests) == 1 or max(tests) - min(tests) < 1e-12 * max(tests), tests
    return {c: {k: statistics.median(v) for k, v in ph.items()} for c, ph in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--d", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    fit.THREADS.fixed = True
    lines = [f"load average before: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; "
             f"numba layer {numba.config.THREADING_LAYER}; median of {args.repeats}", "",
             "| d | m | BLAS, Numba threads | features (m=16) or quadrature (inf) | Gram or series "
             "| solve | population | total |",
             "|---|---|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    for d in args.d:
        for m in (16, math.inf):
            res = measure(d, m, args.repeats)
            base = res[(2, 2)]
            hdr = " / ".join(p[5:] for p in PHASES[m])
            for c in COMBOS:
                cells = [f"{res[c][k]:.3g} ({res[c][k] / base[k]:.2f})" for k in PHASES[m]]
                label = f"{c[0]}, {c[1]}" if isinstance(c, tuple) else "**rule**"
                lines.append(f"| {d} | {m} | {label} | " + " | ".join(cells) + " |")
            print(f"d={d} m={m} done ({hdr})", file=sys.stderr, flush=True)
    lines.append("")
    lines.append(f"load average after: {os.getloadavg()[0]:.2f}; {time.perf_counter() - t0:.0f} s")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
