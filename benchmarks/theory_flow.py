"""The asymptotic theory at finite training time: a whole curve over ``tau`` (docs/theory.md,
Sec. 10) against one ridge solve at ``tau = inf`` of the same setting.

    python benchmarks/theory_flow.py [--quick]

For ``m = 1, 4, inf`` (``psi_n = 2, psi_p = 0.5`` and ``psi_n = 1, psi_p = 3``, ``t = 0.1``,
``lam = 1e-3``) and Bonnaire et al.'s ``psi_n = 1, psi_p = 64, t = 0.01``, ``m = inf``:

(a) ``theory_curve`` over 200 log-spaced ``tau`` in ``[1e-1, 1e5]`` (one continuation path),
    wall and CPU seconds; goal: under 2 s of CPU per curve;
(b) the same curve point by point (``theory`` at each ``tau``: a path from ``z = inf`` each);
(c) one ``theory`` call at ``tau = inf`` (the ridge solvers).

Reported: the times, the ratios (a)/(c) and (b)/(a) (each taken within one run: the machine
is shared and noisy), and whether every point converged.  Median of three after a warm-up.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from rfdsm import Setting
from rfdsm.theory import theory, theory_curve

CASES = [(2, 0.5, 1, 0.1), (2, 0.5, 4, 0.1), (2, 0.5, math.inf, 0.1), (1, 3, 1, 0.1),
         (1, 3, 4, 0.1), (1, 3, math.inf, 0.1), (1, 64, math.inf, 0.01)]


def _timed(f):
    w0, c0 = time.perf_counter(), time.process_time()
    out = f()
    return time.perf_counter() - w0, time.process_time() - c0, out


def run(quick: bool) -> None:
    taus = np.geomspace(0.1, 1e5, 50 if quick else 200)
    reps = 1 if quick else 3
    print(f"{len(taus)}-point tau curves, median of {reps}; times in s (wall / cpu)")
    print(f"{'case':>26} {'curve':>13} {'pointwise':>13} {'tau=inf':>9} "
          f"{'curve/inf':>9} {'pts/curve':>9}  converged")
    for psi_n, psi_p, m, t in CASES[:3] if quick else CASES:
        s = Setting(psi_n, psi_p, m=m, t=t, lam=1e-3)
        settings = [s.replace(tau=float(x)) for x in taus]
        theory_curve(settings[:5])  # warm-up (imports, GE constants)
        curve, point, ridge = [], [], []
        for _ in range(reps):
            curve.append(_timed(lambda: theory_curve(settings)))
            point.append(_timed(lambda: [theory(x) for x in settings]))
            ridge.append(_timed(lambda: theory(s)))
        med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
        ok = all(r.converged for r in curve[-1][2]) and all(r.converged for r in point[-1][2])
        same = max(abs(a.test - b.test) for a, b in zip(curve[-1][2], point[-1][2]))
        label = f"m={'inf' if m == math.inf else m} psi_n={psi_n} psi_p={psi_p} t={t}"
        print(f"{label:>26} {med(curve, 0):6.2f}/{med(curve, 1):5.2f} "
              f"{med(point, 0):6.2f}/{med(point, 1):5.2f} {med(ridge, 0):9.3f} "
              f"{med(curve, 1) / med(ridge, 1):9.0f} {med(point, 1) / med(curve, 1):9.1f}  "
              f"{ok} (curve vs points: {same:.1e})")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 points, 3 cases, one repetition")
    run(ap.parse_args().quick)
