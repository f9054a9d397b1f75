"""Benchmarks of rfdsm against this machine's limits.  Run: ``python benchmarks/bench.py [--quick]``.

Every case runs in its own subprocess so that its peak resident memory (``ru_maxrss``) is its
own.  GEMM throughput is measured in the same run with a plain ``numpy.matmul`` of the size
of the case's dense products.  Prints a markdown table and writes it to ``--out``.

Flop counts (one multiply-add = 2 flops; a symmetric rank-k update of a ``p x p`` matrix with
inner size ``k`` counts ``p^2 k``, the work BLAS syrk does):

* finite ``m``: ``N (p^2 + 4 d p)`` with ``N = n m`` -- features ``E W^T``, Gram ``F F^T``,
  cross-moment ``Z F^T``;
* ``m = inf``: ``sum over blocks (K_c + 1) p^2 c`` -- the Mehler series products.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _gemm_gflops(m, k, n, dtype=np.float64, repeats=5):
    """Best-of-``repeats`` GFLOP/s of ``(m x k) @ (k x n)`` with plain numpy."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    # Let the thread pools of the case just run (SciPy's OpenBLAS, Numba) go idle first: their
    # spinning threads would otherwise slow this reference and flatter the ratio.
    time.sleep(1.0)
    A @ B
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ B
        best = min(best, time.perf_counter() - t0)
    return 2.0 * m * k * n / best / 1e9


def _peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _setting(spec):
    import rfdsm

    m = math.inf if spec["m"] == "inf" else int(spec["m"])
    return rfdsm.Setting(spec["psi_n"], spec["psi_p"], m=m, t=spec.get("t", 0.1), lam=spec.get("lam", 0.01))


def run_case(spec):
    """Executed in the child process; returns a JSON-ready dict."""
    import rfdsm

    kind = spec["kind"]
    out = {"name": spec["name"]}
    if kind in ("simulate", "baseline"):
        s = _setting(spec)
        d = spec["d"]
        n, p = s.sizes(d)
        dtype = np.float32 if spec.get("dtype") == "float32" else np.float64
        rfdsm.simulate(s, 24, dtype=dtype)  # loads the compiled Numba kernels
        if kind == "baseline":
            sys.path.insert(0, HERE)
            import baseline

            fn = baseline.simulate_inf if s.m == math.inf else baseline.simulate_finite
            t0 = time.perf_counter()
            res = fn(s, d, spec.get("seed", 0))
            out["seconds"] = time.perf_counter() - t0
            out.update(res)
        else:
            t0 = time.perf_counter()
            r = rfdsm.simulate(s, d, seed=spec.get("seed", 0), dtype=dtype, backend=spec.get("backend", "cpu"))
            out["seconds"] = time.perf_counter() - t0
            out.update(train=r.train, test=r.test, score=r.score, diagnostics=r.diagnostics)
            dg = r.diagnostics
            if s.m == math.inf:
                c = dg["chunk_size"]  # every block counted at the largest order used (exact for one block)
                flops = sum((dg["hermite_order"] + 1) * p * p * min(c, n - b) for b in range(0, n, c))
                out["dense_seconds"] = dg["time_series"]
                out["gemm_gflops"] = _gemm_gflops(p, min(n, c), p, dtype)
            else:
                N = n * int(s.m)
                flops = N * (p * p + 4 * d * p)
                out["dense_seconds"] = dg["time_features"] + dg["time_gram"]
                rows = min(dg["chunk_size"], n) * int(s.m)
                out["gemm_gflops"] = _gemm_gflops(p, rows, p, dtype)
            out["gflop"] = flops / 1e9
    elif kind == "theory":
        import rfdsm.theory as th

        s = _setting(spec)
        along = getattr(th, "theory_curve", None)

        def curve(setting, name, values):
            pts = [setting.replace(**{name: float(v)}) for v in values]
            return along(pts) if along is not None else [th.theory(q) for q in pts]

        grid = np.linspace(0.1, 8.0, 200)
        try:
            th.theory(s)  # warm-up
            t0 = time.perf_counter()
            curve(s, "psi_p", grid)
            out["seconds"] = time.perf_counter() - t0
            out["per_point"] = out["seconds"] / grid.size
            g40 = np.linspace(0.1, 8.0, 40)
            t0 = time.perf_counter()
            for pn in g40:
                curve(s.replace(psi_n=float(pn)), "psi_p", g40)
            out["phase_40x40"] = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - reported in the table
            out["skipped"] = f"theory not available: {type(exc).__name__}: {exc}"
    out["peak_rss_gib"] = _peak_rss_gib()
    return out


def _child(spec, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--case", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": spec["name"], "error": f"timed out after {timeout} s"}
    if proc.returncode != 0:
        return {"name": spec["name"], "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cases(quick):
    d = 200 if quick else 400
    fin = dict(psi_n=2, psi_p=4, m=16, d=d)
    inf = dict(psi_n=2, psi_p=4, m="inf", d=d)
    out = [
        dict(name=f"finite m=16, d={d}", kind="simulate", **fin),
        dict(name=f"finite m=16, d={d}, float32", kind="simulate", dtype="float32", **fin),
        dict(name=f"BASELINE finite m=16, d={d}", kind="baseline", **fin),
        dict(name=f"m=inf, d={d}", kind="simulate", **inf),
        dict(name=f"m=inf, d={d}, float32", kind="simulate", dtype="float32", **inf),
        dict(name=f"BASELINE m=inf, d={d}", kind="baseline", **inf),
        dict(name="theory 200-point curve", kind="theory", psi_n=2, psi_p=1, m="inf"),
    ]
    if not quick:
        out.append(dict(name="finite m=64, d=1000", kind="simulate", psi_n=2, psi_p=4, m=64, d=1000))
    return out


def _fmt(x, nd=3):
    return "" if x is None else (f"{x:.{nd}g}" if isinstance(x, float) else str(x))


def table(results):
    lines = ["| case | seconds | dense GFLOP | dense s | GFLOP/s (dense) | GFLOP/s (total) | "
             "GEMM GFLOP/s | dense/GEMM | total/GEMM | peak RSS GiB | test error | notes |",
             "|" + "---|" * 12]
    base = {r["name"].split("BASELINE ")[1]: r for r in results if r["name"].startswith("BASELINE")}
    for r in results:
        if "error" in r or "skipped" in r:
            lines.append(f"| {r['name']} | | | | | | | | | | | {r.get('error') or r.get('skipped')} |")
            continue
        notes = []
        gf = r.get("gflop")
        dense_rate = gf / r["dense_seconds"] if gf else None
        total_rate = gf / r["seconds"] if gf else None
        g = r.get("gemm_gflops")
        dg = r.get("diagnostics", {})
        if "time_quadrature" in dg:
            notes.append("split: quadrature %.2fs, series %.2fs, solve %.2fs, population/test %.2fs; K=%d (cap %d)"
                         % (dg["time_quadrature"], dg["time_series"], dg["time_solve"],
                            dg["time_population"], dg["hermite_order"], dg["hermite_order_cap"]))
        elif "time_gram" in dg:
            notes.append("split: features %.2fs, Gram %.2fs, solve %.2fs, population/test %.2fs"
                         % (dg["time_features"], dg["time_gram"], dg["time_solve"], dg["time_population"]))
        b = base.get(r["name"])
        if b and "seconds" in b:
            notes.append("speed-up vs baseline %.1fx (baseline test error rel. diff %.1e)"
                         % (b["seconds"] / r["seconds"], abs(b["test"] / r["test"] - 1)))
        if "phase_40x40" in r:
            notes.append("per point %.2g s; 40x40 phase diagram %.3g s" % (r["per_point"], r["phase_40x40"]))
        lines.append("| " + " | ".join([
            r["name"], _fmt(r.get("seconds")), _fmt(gf), _fmt(r.get("dense_seconds")), _fmt(dense_rate),
            _fmt(total_rate), _fmt(g), _fmt(dense_rate / g if g and dense_rate else None, 2),
            _fmt(total_rate / g if g and total_rate else None, 2), _fmt(r["peak_rss_gib"]),
            _fmt(r.get("test"), 6), "; ".join(notes)]) + " |")
    return "\n".join(lines)


def machine():
    import numba
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    blas = ", ".join(f"{i['internal_api']} {i.get('version', '')} ({i['num_threads']} threads)"
                     for i in threadpool_info() if i["user_api"] == "blas")
    return (f"{cpu}, {os.cpu_count()} logical CPUs; numpy {np.__version__}, BLAS {blas}; "
            f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads); "
            f"python {platform.python_version()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke test, about a minute)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"), help="markdown file to write")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(json.loads(args.case)), default=str))
        return 0
    results = []
    for spec in cases(args.quick):
        print(f"running: {spec['name']}", file=sys.stderr, flush=True)
        results.append(_child(spec, args.timeout))
    text = (f"Machine: {machine()}\n\nDate: {time.strftime('%Y-%m-%d %H:%M')}"
            f"{' (--quick)' if args.quick else ''}\n\n{table(results)}\n")
    print(text)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
