"""Sampling benchmark: one ``rfdsm.sample`` run, its time, its memory and where the time goes.

    python benchmarks/sampling.py [--quick] [--psi-n 1] [--out FILE]

The case: ``d = 100``, ``psi_p = 64`` (``p = 6400``), ``psi_n = 1`` (``n = 100``), ``m = inf``,
``lam = 1e-4``, 40 score times log-spaced in ``[0.01, 5]``, 1000 generated points, 200 reverse
SDE steps, the theory's score error on the grid.  Goal: under 2 minutes on the 2-core machine.

Reported: the wall time of the run split as ``rfdsm.sample`` records it (draw of ``W`` and the
data with the feature correlations, once; per grid time the training moments, the ridge solve
and the population errors; the sampler; the measures; the theory), the peak resident memory
(``VmHWM``), the per-time cost of the fits (each a ``p x p`` Cholesky solve after the
moments: nothing of it is shared between times), and one sampler step's products measured
alone (200 of them are the floor of the sampler).
``--quick``: ``d = 40``, ``psi_p = 16``, 10 times, 50 steps (a smoke test of the script).
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

import rfdsm


def _vm_hwm_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return math.nan


def _step_seconds(N: int, d: int, p: int) -> float:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    y, Wt, R = rng.standard_normal((N, d)), rng.standard_normal((d, p)) / math.sqrt(d), \
        rng.standard_normal((p, d))
    act = rfdsm.get_activation("tanh")
    best = math.inf
    with threadpool_limits(1, user_api="blas"):
        for _ in range(5):
            t0 = time.perf_counter()
            F = np.ascontiguousarray(y @ Wt)
            act.apply_(F)
            F @ R
            best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    ap.add_argument("--psi-n", type=float, default=1.0, help="n/d (default 1)")
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args(argv)
    d, psi_p, K, steps = (40, 16, 10, 50) if args.quick else (100, 64, 40, 200)
    N = 1000
    s = rfdsm.Setting(psi_n=args.psi_n, psi_p=psi_p, m=math.inf, lam=1e-4)
    rfdsm.sample(s.replace(psi_p=1), d=20, n_samples=10, times=2, steps=2)  # compile kernels
    t0 = time.perf_counter()
    res = rfdsm.sample(s, d=d, n_samples=N, seed=0, times=K, steps=steps)
    wall = time.perf_counter() - t0
    hwm = _vm_hwm_mib()
    load = os.getloadavg()[1]  # the 5-minute load average: the machine is shared
    dg = res.diagnostics
    step = _step_seconds(N, d, res.p)
    rows = [("draw W, data, feature correlations (once)", dg["time_draw"]),
            (f"training moments ({K} times)", dg["time_moments"]),
            (f"ridge solves ({K} times)", dg["time_solve"]),
            (f"population errors ({K} times)", dg["time_population"]),
            (f"sampler ({steps} steps, {N} points)", dg["time_sampling"]),
            ("measures (f_mem, bootstrap, Frechet + floor, KL)", dg["time_measures"]),
            (f"theory ({K} times)", dg["time_theory"])]
    lines = [f"# rfdsm.sample: d = {d}, psi_n = {args.psi_n:g} (n = {res.n}), psi_p = {psi_p} "
             f"(p = {res.p}), m = inf, {K} times, {N} samples, {steps} steps", "",
             "| part | s | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {t:.1f} | {100 * t / wall:.0f} % |" for name, t in rows]
    lines += [f"| **total** | **{wall:.1f}** | |", "",
              f"peak resident memory (VmHWM): {hwm:.0f} MiB; load average at the end "
              f"(5 min): {load:.1f} on {os.cpu_count()} cores", "",
              f"per grid time: moments {dg['time_moments'] / K:.2f} s, solve "
              f"{dg['time_solve'] / K:.2f} s (a p x p Cholesky, {res.p ** 3 / 3e9:.3g} GFLOP); "
              f"one sampler step's products alone, best of 5: {step * 1e3:.0f} ms "
              f"(x {steps} = {steps * step:.1f} s)", "",
              f"result: f_mem = {res.f_mem:.3f} {list(res.f_mem_ci)}, frechet = "
              f"{res.frechet:.4g} (floor {res.frechet_floor:.4g}), kl_bound = "
              f"{res.kl_bound:.4g}, score-error integral {res.kl_score_integral:.4g}, "
              f"theory {res.kl_score_integral_theory:.4g}"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
