"""``rfdsm validate``: the theory as the ``d -> inf`` limit of the simulation
(:mod:`rfdsm.analysis.validate`) on the built-in sets of settings."""

from __future__ import annotations

import math
import os
import sys
import time

from ..analysis import validate as V
from ..analysis.validate import ALPHA, FLOOR, _m_text
from ..analysis.validate_sets import INF
from ..analysis.validate_sets import SETS

__all__ = ["configure_parser", "run_cli"]


def _print_table(wide, file=None):
    file = sys.stdout if file is None else file  # resolved late: sys.stdout may be swapped
    print(f"{'m':>4} {'psi_n':>5} {'psi_p':>5} {'t':>5} {'act':>17} {'q':>5} {'theory':>10} "
          f"{'intercept +- se':>22} {'dev':>8} {'z':>6} {'crit':>5}  ok", file=file)
    for _, r in wide.iterrows():
        th = r["theory"]
        dev = 100 * (r["intercept"] - th) / abs(th) if th else math.nan
        line = (f"{_m_text(r['m']):>4} {r['psi_n']:>5g} {r['psi_p']:>5g} {r['t']:>5g} "
                f"{_act_text(r):>17} {r['quantity']:>5} {th:>10.5g} "
                f"{r['intercept']:>11.5g} +- {r['se']:<8.2g} {dev:>+7.2f}% {r['z']:>+6.1f} "
                f"{r['crit']:>5.2f}  {'yes' if r['ok'] else 'NO: ' + r['reason']}")
        print(line, file=file)


def _act_text(r) -> str:
    # the activation, and psi_d / the data model where they are not the defaults
    extra = (f" psi_d={r['psi_d']:g}" if r.get("psi_d", 1.0) != 1.0 else "") + \
        (f" {r['data']}" if r.get("data", "isotropic") != "isotropic" else "") + \
        (f" tau={r['tau']:g}" if r.get("tau", INF) != INF else "")
    return f"{r['activation']}{extra}"


def configure_parser(parser) -> None:
    from . import int_at_least, nonneg_int

    parser.add_argument("--d", type=int_at_least(2), nargs="+", default=None,
                        help="three or more dimensions >= 2 (default: those of the set)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"{len(SETS['quick'][0])} tiny settings "
                      f"at d = {', '.join(map(str, SETS['quick'][1]))} (seconds; for tests)")
    size.add_argument("--full", action="store_true", help=f"{len(SETS['full'][0])} settings "
                      f"at d = {', '.join(map(str, SETS['full'][1]))}, 6 seeds")
    parser.add_argument("--seeds", type=int_at_least(2), default=None,
                        help="seeds per simulation (>= 2; default: 3 quick, 4 default, 6 full)")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="first seed (>= 0)")
    parser.add_argument("--order", type=int, choices=(1, 2), default=1,
                        help="terms in 1/d of the fit (2 adds c2/d^2; needs 4 or more sizes)")
    parser.add_argument("--no-finite-m", action="store_true",
                        help="only the settings with m = 1 and m = inf")
    parser.add_argument("--csv", default=None, help="also write the tidy table to this CSV file")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no line per simulation on stderr")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also check test_emp, beta, bias2 and variance (docs/model.md; "
                             "they cost up to a few fits per simulation)")


def _check_writable(path: str, option: str) -> None:
    """Fail before any work if ``path`` cannot be written (a missing or read-only directory,
    a directory in its place).  Probes by opening for append, because permission bits say
    nothing for root or on special file systems."""
    from . import UsageError

    if os.path.isdir(path):
        raise UsageError(f"{option} {path!r} is a directory, expected a file name")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"{option} {path!r}: directory {parent!r} does not exist")
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path!r} is not writable: {exc.strerror or exc}") from None
    if not existed:
        os.remove(path)


def _work(settings, ds, seeds, metrics):
    """Estimated work of each simulation (flops, :func:`rfdsm.sweep.runner.task_work`) by
    ``(setting, d)``.  Settings that differ only in a finite ``tau`` share one fit per size
    (without diagnostics): the first of them carries the work of the whole group."""
    from ..sweep.runner import task_work

    groups = {}
    for st in settings:
        if st.tau != INF and not metrics:
            groups.setdefault(st.replace(tau=INF), []).append(st)
    work = {}
    for st in settings:
        group = groups.get(st.replace(tau=INF), [st]) if st.tau != INF else [st]
        for d in ds:
            first = group[0] == st
            task = {"kind": "simulate", "d": d, "settings": group, "metrics": list(metrics)}
            work[st, d] = seeds * task_work(task) if first else 0.0
    return work


def _progress_bar(settings, ds, seeds, metrics, enabled):
    """A bar over the simulations (weighted by their estimated work) that names the running
    one, and the hooks of :func:`rfdsm.analysis.validate.validation_table` that drive it;
    with ``enabled`` false, neither bar nor lines."""
    from ..sweep import _progress

    if not enabled:
        return None, {}
    work = _work(settings, ds, seeds, metrics)
    bar = _progress(sum(work.values()), 0, True, desc="rfdsm validate")
    running = []

    def on_start(st, d):
        running.append((st, d))
        bar.set_postfix_str(f"simulation {len(running)}/{len(work)}: {V._label(st)} d={d}")

    def progress(text):
        bar.write(f"  {text}", file=sys.stderr)
        bar.update(work[running[-1]])

    return bar, {"on_start": on_start, "progress": progress}


def run_cli(args) -> int:
    from . import UsageError

    which = "quick" if args.quick else "full" if args.full else "default"
    _, set_ds, set_seeds = SETS[which]
    ds = sorted(set(args.d)) if args.d else list(set_ds)
    if len(ds) < args.order + 2:
        raise UsageError(f"--d: a fit of order {args.order} in 1/d needs at least "
                         f"{args.order + 2} distinct sizes (one more than its coefficients), "
                         f"got {len(ds)}")
    seeds = args.seeds or set_seeds
    if args.csv:
        _check_writable(args.csv, "--csv")
    settings = V.default_settings(which, finite_m=not args.no_finite_m)
    rounded = sorted({d for st in settings for d in ds if not (
        float(st.psi_n * d).is_integer() and float(st.psi_p * d).is_integer())})
    if rounded:  # a rounded n/d or p/d adds an irregular O(1/d) term to the fitted law
        print(f"rfdsm: note: n = psi_n d or p = psi_p d is rounded at d = "
              f"{', '.join(map(str, rounded))}; multiples of 8 avoid it", file=sys.stderr)
    t0 = time.perf_counter()
    from ..metrics.diagnostics import DIAGNOSTICS

    metrics = DIAGNOSTICS if args.diagnostics else ()
    bar, hooks = _progress_bar(settings, ds, seeds, metrics, enabled=not args.quiet)
    try:
        df = V.validation_table(settings, ds, n_seeds=seeds, seed=args.seed, metrics=metrics,
                                **hooks)
    finally:
        if bar is not None:
            bar.stop_ticker()
            bar.close()
    wide, ok = V.summarize(df, order=args.order)
    law = "c0 + c1/d" + (" + c2/d^2" if args.order == 2 else "")
    print(f"theory vs the d -> inf limit of the simulation: {len(settings)} settings ({which} "
          f"set), d = {', '.join(map(str, ds))}, {seeds} seeds; fit {law} (weights 1/se^2)")
    _print_table(wide)
    n_bad = int((~wide["ok"]).sum())
    print(f"pass: |c0 - theory| <= crit se(c0) + {FLOOR:g} |theory|, crit = Student-t quantile "
          f"at {ALPHA:g}/(2 x {len(wide)} checks);  {'ALL PASS' if ok else f'FAILED: {n_bad} rows'}"
          f"  ({time.perf_counter() - t0:.0f} s)")
    if args.csv:
        try:
            df.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"--csv {args.csv!r}: cannot write: {exc.strerror or exc}") from None
    return 0 if ok else 1
