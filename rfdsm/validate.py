"""``rfdsm validate``: the asymptotic theory against the finite-size simulator.

A built-in set of 22 settings (``m = 1, 4, 16, inf``; under- and over-parameterised; two
diffusion times; two activations) is evaluated by :func:`rfdsm.theory.theory` and by
:func:`rfdsm.simulate` at two or more dimensions ``d``.

A setting passes when, for ``train`` and ``test``,

* at the largest ``d``: the theory converged and ``|sim - theory| <= tolerance(q, theory, d,
  se)`` (see :func:`tolerance`: a relative ``R0 + C_q/d`` plus ``Z = 3`` standard errors), and
* the simulation does not move away from the theory as ``d`` grows: the deviation at the
  largest ``d`` exceeds that at the smallest ``d`` by at most ``Z`` combined standard errors,
  ``|dev_large| - |dev_small| <= Z sqrt(se_small^2 + se_large^2)``.

``trend`` = deviation at the smallest ``d`` divided by that at the largest: about
``d_large/d_small`` for a ``1/d`` finite-size correction, above 1 whenever the simulation
approaches the theory.
"""

from __future__ import annotations

import math
import os
import sys
import time

from .setting import Setting

__all__ = ["tolerance", "default_settings", "validation_table", "summarize", "configure_parser",
           "run_cli", "R0", "C", "Z"]

#: Tolerance constants (see :func:`tolerance`): size-independent relative part, coefficient of
#: the ``1/d`` finite-size part per quantity, and the number of standard errors allowed.
R0 = 0.005
C = {"train": 20.0, "test": 4.0, "score": 8.0}
Z = 3.0
QUANTITIES = ("train", "test")
DEFAULT_DS = (100, 200, 400)
QUICK_DS = (50, 100)


def tolerance(quantity: str, theory: float, d: int, se: float | None) -> float:
    """Allowed ``|sim - theory|`` for one quantity at dimension ``d``.

    ``(R0 + C[quantity]/d) |theory| + Z se`` with ``R0 = 0.005``, ``C = {train: 20, test: 4,
    score: 8}``, ``Z = 3`` (``se`` = standard error of the simulated mean; ``None`` counts as 0).

    Why these numbers: over the 22 built-in settings (:func:`default_settings`) at
    ``d = 100, 200, 400`` the products ``d |sim - theory|/|theory|`` are at most about 2.2 for
    the test error and 14 for the train error, and they do not grow with ``d``: the
    finite-size corrections are of order ``1/d``.  ``C`` is about 1.5 times those products
    (the score sits between the two); ``R0`` covers the quadrature error of the theory and
    seed-level offsets that do not shrink with ``d``; ``Z se`` the Monte Carlo noise of the
    seed average.  A theory off by an O(1) relative amount fails once ``d`` is large.
    """
    if quantity not in C:
        raise ValueError(f"quantity must be one of {sorted(C)}, got {quantity!r}")
    if not float(d).is_integer() or d < 1:
        raise ValueError(f"d must be an integer >= 1, got {d!r}")
    if se is not None and not (se >= 0):
        raise ValueError(f"se must be >= 0 or None, got {se!r}")
    return (R0 + C[quantity] / d) * abs(theory) + Z * (se or 0.0)


def default_settings(finite_m: bool = True) -> list[Setting]:
    """The built-in validation set: 16 settings with ``m in {1, inf}``, plus (``finite_m=True``)
    6 with ``m in {4, 16}``."""
    out = []
    for m in (1, math.inf):
        for act in ("tanh", "relu"):
            for t in (0.1, 1.0):
                for psi_n, psi_p in ((2.0, 0.5), (2.0, 4.0)):
                    out.append(Setting(psi_n, psi_p, m=m, t=t, lam=0.01, activation=act))
    if finite_m:
        for m, act, t in ((4, "tanh", 0.1), (4, "relu", 1.0), (16, "tanh", 0.1)):
            for psi_n, psi_p in ((2.0, 0.5), (2.0, 4.0)):
                out.append(Setting(psi_n, psi_p, m=m, t=t, lam=0.01, activation=act))
    return out


def validation_table(settings=None, ds=DEFAULT_DS, n_seeds: int = 3, seed: int = 0, *,
                     progress=None):
    """Theory vs simulation as a tidy :class:`pandas.DataFrame`.

    One row per (setting, quantity, d): ``psi_n, psi_p, m, t, lam, activation, quantity, d,
    theory, converged, sim, sim_se, rel_dev`` (``(sim - theory)/|theory|``), ``tol``
    (:func:`tolerance` at this ``d``), ``largest_d`` (this row is at the largest d) and ``ok``
    (converged and ``|sim - theory| <= tol``; only on ``largest_d`` rows, ``None`` elsewhere).
    ``progress(text)``, when given, is called after each simulation.
    """
    import pandas as pd

    from .simulate import simulate
    from .theory import theory

    settings = default_settings() if settings is None else list(settings)
    ds = sorted(int(d) for d in ds)
    if len(ds) < 1 or ds[0] < 1:
        raise ValueError(f"ds must be one or more integers >= 1, got {ds!r}")
    rows = []
    for st in settings:
        th = theory(st)
        for d in ds:
            t0 = time.perf_counter()
            sim = simulate(st, d, seed=seed, n_seeds=n_seeds)
            for q in QUANTITIES:
                tv, sv, se = getattr(th, q), getattr(sim, q), getattr(sim, q + "_se")
                tol = tolerance(q, tv, d, se) if math.isfinite(tv) else math.nan
                last = d == ds[-1]
                within = math.isfinite(sv) and abs(sv - tv) <= tol  # False for NaN
                rows.append({
                    "psi_n": st.psi_n, "psi_p": st.psi_p, "m": st.m, "t": st.t, "lam": st.lam,
                    "activation": st.activation, "quantity": q, "d": d, "theory": tv,
                    "converged": th.converged, "sim": sv, "sim_se": se,
                    "rel_dev": (sv - tv) / abs(tv) if tv != 0 else math.inf, "tol": tol,
                    "largest_d": last, "ok": bool(th.converged and within) if last else None,
                })
            if progress is not None:
                progress(f"{_label(st)} d={d}: {time.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows)


def _m_text(m) -> str:
    return "inf" if m == math.inf else str(int(m))


def _label(st: Setting) -> str:
    m = _m_text(st.m)
    return (f"m={m} psi_n={st.psi_n:g} psi_p={st.psi_p:g} t={st.t:g} lam={st.lam:g} "
            f"{st.activation}")


def _trend(small, large):
    """(ratio |dev_small|/|dev_large|, whether the deviation did not grow beyond Z combined
    standard errors) from the ``(sim, sim_se, theory)`` of the smallest and largest ``d``."""
    (s_sim, s_se, th), (l_sim, l_se, _) = small, large
    dev_s, dev_l = abs(s_sim - th), abs(l_sim - th)
    ratio = dev_s / dev_l if dev_l > 0 else math.inf
    noise = Z * math.hypot(s_se or 0.0, l_se or 0.0)
    return ratio, bool(dev_l - dev_s <= noise)


def summarize(df):
    """Wide table (one row per setting and quantity) and the overall verdict.

    ``ok`` = the tolerance holds at the largest ``d`` (column ``ok`` of
    :func:`validation_table`) and ``trend_ok`` (the deviation does not grow with ``d`` by more
    than ``Z`` combined standard errors; ``True`` with a single ``d``).  ``trend`` is NaN with
    a single ``d``.
    """
    import pandas as pd

    keys = ["m", "psi_n", "psi_p", "t", "lam", "activation", "quantity"]
    ds = sorted(df["d"].unique())
    out = []
    for key, g in df.groupby(keys, sort=False):
        g = g.set_index("d")
        row = dict(zip(keys, key))
        row["theory"] = g["theory"].iloc[0]
        for d in ds:
            row[f"sim d={d}"] = g.loc[d, "sim"]
            row[f"se d={d}"] = g.loc[d, "sim_se"]
            row[f"dev d={d}"] = g.loc[d, "rel_dev"]
            row[f"tol d={d}"] = g.loc[d, "tol"]
        if len(ds) > 1:
            row["trend"], row["trend_ok"] = _trend(
                *((g.loc[d, "sim"], g.loc[d, "sim_se"], row["theory"]) for d in (ds[0], ds[-1])))
        else:
            row["trend"], row["trend_ok"] = math.nan, True
        row["ok"] = bool(g.loc[ds[-1], "ok"]) and row["trend_ok"]
        out.append(row)
    wide = pd.DataFrame(out)
    return wide, bool(wide["ok"].all())


def _se_text(se) -> str:
    return f"{se:.4f}" if se is not None and math.isfinite(se) else "-"


def _print_table(wide, ds, file=None):
    file = sys.stdout if file is None else file  # resolved late: sys.stdout may be swapped
    head = f"{'m':>4} {'psi_n':>5} {'psi_p':>5} {'t':>4} {'act':>5} {'q':>5} {'theory':>9}"
    for d in ds:
        head += f" {'sim d=' + str(d):>19} {'dev':>7}"
    head += f" {'tol':>6} {'trend':>6}  ok"
    print(head, file=file)
    for _, r in wide.iterrows():
        m = _m_text(r["m"])
        line = (f"{m:>4} {r['psi_n']:>5g} {r['psi_p']:>5g} {r['t']:>4g} {r['activation']:>5} "
                f"{r['quantity']:>5} {r['theory']:>9.5f}")
        for d in ds:
            line += (f" {r[f'sim d={d}']:>9.5f}+-{_se_text(r[f'se d={d}']):<7} "
                     f"{100 * r[f'dev d={d}']:>+6.2f}%")
        # the tolerance at the largest d, relative to |theory| like the deviations
        th = abs(r["theory"])
        tol = 100 * r[f"tol d={ds[-1]}"] / th if th > 0 else math.nan
        trend = f"{r['trend']:.2f}" if math.isfinite(r["trend"]) else "-"
        if math.isfinite(r["trend"]) and not r["trend_ok"]:
            trend += "!"
        line += f" {tol:>5.2f}% {trend:>6}  {'yes' if r['ok'] else 'NO'}"
        print(line, file=file)


def configure_parser(parser) -> None:
    from .cli import int_at_least, nonneg_int

    at_least_2 = int_at_least(2)
    parser.add_argument("--d", type=at_least_2, nargs="+", default=None,
                        help=f"dimensions >= 2 (default {' '.join(map(str, DEFAULT_DS))}; "
                             f"--quick: {' '.join(map(str, QUICK_DS))})")
    parser.add_argument("--quick", action="store_true",
                        help="smaller dimensions (faster; the tolerance grows like 1/d)")
    parser.add_argument("--seeds", type=at_least_2, default=3,
                        help="seeds per simulation (>= 2, for standard errors)")
    parser.add_argument("--seed", type=nonneg_int, default=0, help="first seed (>= 0)")
    parser.add_argument("--no-finite-m", action="store_true",
                        help="only m = 1 and m = inf (16 settings instead of 22)")
    parser.add_argument("--csv", default=None, help="also write the tidy table to this CSV file")


def _check_writable(path: str, option: str) -> None:
    """Fail before any work if ``path`` cannot be written (a missing or read-only directory,
    a directory in its place).  Probes by opening for append, because permission bits say
    nothing for root or on special file systems."""
    from .cli import UsageError

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


def run_cli(args) -> int:
    from .cli import UsageError

    ds = args.d if args.d else (QUICK_DS if args.quick else DEFAULT_DS)
    if args.csv:
        _check_writable(args.csv, "--csv")
    settings = default_settings(finite_m=not args.no_finite_m)
    t0 = time.perf_counter()
    df = validation_table(settings, ds, n_seeds=args.seeds, seed=args.seed,
                          progress=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    wide, ok = summarize(df)
    ds = sorted(df["d"].unique())
    print(f"theory vs simulation: {len(settings)} settings, d = {', '.join(map(str, ds))}, "
          f"{args.seeds} seeds; dev = (sim - theory)/|theory|; tol = tolerance at d={ds[-1]}")
    _print_table(wide, ds)
    big = df[df["largest_d"]]
    worst = big.loc[big["rel_dev"].abs().idxmax()]
    print(f"largest |dev| at d={ds[-1]}: {100 * abs(worst['rel_dev']):.2f}% "
          f"({worst['quantity']}, m={_m_text(worst['m'])}, psi_p={worst['psi_p']:g}, "
          f"{worst['activation']}, t={worst['t']:g})")
    for q in QUANTITIES:
        # d |dev| is the size-free finite-size coefficient that C_q bounds (see tolerance())
        sub = df[df["quantity"] == q]
        coef = (sub["d"] * sub["rel_dev"].abs()).max()
        print(f"max d |dev| ({q}): {coef:.2f}  (tolerance: ({R0:g} + {C[q]:g}/d)|theory| + "
              f"{Z:g} se)")
    n_bad = int((~wide["ok"]).sum())
    print(f"tolerance: |sim - theory| <= (R0 + C_q/d)|theory| + {Z:g} se at d={ds[-1]}, and no "
          f"growth with d beyond {Z:g} se;  {'ALL PASS' if ok else f'FAILED: {n_bad} rows'}"
          f"  ({time.perf_counter() - t0:.0f} s)")
    if args.csv:
        try:
            df.to_csv(args.csv, index=False)
        except OSError as exc:
            raise UsageError(f"--csv {args.csv!r}: cannot write: {exc.strerror or exc}") from None
    return 0 if ok else 1
