"""``rfdsm validate``: the asymptotic theory against the finite-size simulator.

A built-in set of settings (``m = 1`` and ``m = inf``, plus finite ``m`` when the theory
supports it; under- and over-parameterised; two diffusion times; two activations) is evaluated
by :func:`rfdsm.theory.theory` and by :func:`rfdsm.simulate` at two or more dimensions ``d``.

Tolerance (checked at the largest ``d`` only, for ``train`` and ``test``)::

    |sim - theory| <= rtol |theory| + atol + z se

with ``rtol = 0.03``, ``atol = 0.003``, ``z = 3``.  The relative deviations are of order
``1/d`` to ``1/sqrt(d)``: at ``d = 100 -> 200`` the observed ones shrink from about 1-2 % to
below 1 % (see ``docs/theory.md``, Sec. 7), so 3 % at ``d >= 200`` leaves room for the
finite-size term without hiding an O(1) error; ``atol`` covers train errors near 0 and the
``z se`` term the seed-to-seed scatter.  ``trend`` = deviation at the smallest ``d`` divided
by that at the largest: above 1 when the simulation approaches the theory as ``d`` grows.
"""

from __future__ import annotations

import math
import sys
import time

from .setting import Setting

__all__ = ["default_settings", "validation_table", "summarize", "configure_parser", "run_cli",
           "RTOL", "ATOL", "Z"]

RTOL, ATOL, Z = 0.03, 0.003, 3.0
QUANTITIES = ("train", "test")
DEFAULT_DS = (100, 200, 400)
QUICK_DS = (50, 100)


def default_settings(finite_m: bool | None = None) -> list[Setting]:
    """The built-in validation set: 16 settings for ``m in {1, inf}``, plus 6 with ``m in {4, 16}``
    when finite ``m`` is supported (``finite_m=None``: whenever available)."""
    from .theory import supports

    out = []
    for m in (1, math.inf):
        for act in ("tanh", "relu"):
            for t in (0.1, 1.0):
                for psi_n, psi_p in ((2.0, 0.5), (2.0, 4.0)):
                    out.append(Setting(psi_n, psi_p, m=m, t=t, lam=0.01, activation=act))
    if finite_m is None:
        finite_m = supports(4)
    if finite_m:
        for m, act, t in ((4, "tanh", 0.1), (4, "relu", 1.0), (16, "tanh", 0.1)):
            for psi_n, psi_p in ((2.0, 0.5), (2.0, 4.0)):
                out.append(Setting(psi_n, psi_p, m=m, t=t, lam=0.01, activation=act))
    return out


def _passes(th, sim, se, rtol, atol, z):
    if not (math.isfinite(th) and math.isfinite(sim)):
        return False
    return abs(sim - th) <= rtol * abs(th) + atol + z * (se or 0.0)


def validation_table(settings=None, ds=DEFAULT_DS, n_seeds: int = 3, seed: int = 0, *,
                     rtol: float = RTOL, atol: float = ATOL, z: float = Z, progress=None):
    """Theory vs simulation as a tidy :class:`pandas.DataFrame`.

    One row per (setting, quantity, d): ``psi_n, psi_p, m, t, lam, activation, quantity, d,
    theory, converged, sim, sim_se, rel_dev`` (``(sim - theory)/|theory|``), ``largest_d``
    (this row is at the largest d) and ``ok`` (the tolerance of the module docstring; only
    meaningful on ``largest_d`` rows, ``None`` elsewhere).  ``progress(text)``, when given, is
    called after each simulation.
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
                last = d == ds[-1]
                rows.append({
                    "psi_n": st.psi_n, "psi_p": st.psi_p, "m": st.m, "t": st.t, "lam": st.lam,
                    "activation": st.activation, "quantity": q, "d": d, "theory": tv,
                    "converged": th.converged, "sim": sv, "sim_se": se,
                    "rel_dev": (sv - tv) / abs(tv) if tv != 0 else math.inf,
                    "largest_d": last,
                    "ok": (th.converged and _passes(tv, sv, se, rtol, atol, z)) if last else None,
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


def summarize(df):
    """Wide table (one row per setting and quantity) and the overall verdict."""
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
        small, large = abs(g.loc[ds[0], "rel_dev"]), abs(g.loc[ds[-1], "rel_dev"])
        row["trend"] = small / large if len(ds) > 1 and large > 0 else math.nan
        row["ok"] = bool(g.loc[ds[-1], "ok"])
        out.append(row)
    wide = pd.DataFrame(out)
    return wide, bool(wide["ok"].all())


def _print_table(wide, ds, file=sys.stdout):
    head = f"{'m':>4} {'psi_n':>5} {'psi_p':>5} {'t':>4} {'act':>5} {'q':>5} {'theory':>9}"
    for d in ds:
        head += f" {'sim d=' + str(d):>19} {'dev':>7}"
    head += f" {'trend':>6}  ok"
    print(head, file=file)
    for _, r in wide.iterrows():
        m = _m_text(r["m"])
        line = (f"{m:>4} {r['psi_n']:>5g} {r['psi_p']:>5g} {r['t']:>4g} {r['activation']:>5} "
                f"{r['quantity']:>5} {r['theory']:>9.5f}")
        for d in ds:
            se = r[f"se d={d}"]
            se_txt = f"{se:.4f}" if se is not None and math.isfinite(se) else "-"
            line += f" {r[f'sim d={d}']:>9.5f}+-{se_txt:<7} {100 * r[f'dev d={d}']:>+6.2f}%"
        line += f" {r['trend']:>6.2f}  {'yes' if r['ok'] else 'NO'}"
        print(line, file=file)


def configure_parser(parser) -> None:
    parser.add_argument("--d", type=int, nargs="+", default=None,
                        help=f"dimensions (default {' '.join(map(str, DEFAULT_DS))}; "
                             f"--quick: {' '.join(map(str, QUICK_DS))})")
    parser.add_argument("--quick", action="store_true", help="smaller dimensions (faster, looser)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per simulation (>= 2)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (>= 0)")
    parser.add_argument("--rtol", type=float, default=RTOL, help=f"relative tolerance ({RTOL})")
    parser.add_argument("--atol", type=float, default=ATOL, help=f"absolute tolerance ({ATOL})")
    parser.add_argument("--no-finite-m", action="store_true",
                        help="only m = 1 and m = inf, even if finite m is supported")
    parser.add_argument("--csv", default=None, help="also write the tidy table to this CSV file")


def run_cli(args) -> int:
    from .cli import UsageError

    ds = args.d if args.d else (QUICK_DS if args.quick else DEFAULT_DS)
    if any(d < 2 for d in ds):
        raise UsageError(f"--d must be integers >= 2, got {ds}")
    if args.seeds < 2:
        raise UsageError(f"--seeds must be an integer >= 2 (standard errors), got {args.seeds}")
    if args.seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {args.seed}")
    for name in ("rtol", "atol"):
        v = getattr(args, name)
        if not (math.isfinite(v) and v >= 0):
            raise UsageError(f"--{name} must be a finite number >= 0, got {v}")
    settings = default_settings(finite_m=False if args.no_finite_m else None)
    t0 = time.perf_counter()
    df = validation_table(settings, ds, n_seeds=args.seeds, seed=args.seed, rtol=args.rtol,
                          atol=args.atol,
                          progress=lambda s: print(f"  {s}", file=sys.stderr, flush=True))
    wide, ok = summarize(df)
    ds = sorted(df["d"].unique())
    print(f"theory vs simulation: {len(settings)} settings, d = {', '.join(map(str, ds))}, "
          f"{args.seeds} seeds; dev = (sim - theory)/|theory|")
    _print_table(wide, ds)
    big = df[df["largest_d"]]
    worst = big.loc[big["rel_dev"].abs().idxmax()]
    print(f"largest |dev| at d={ds[-1]}: {100 * abs(worst['rel_dev']):.2f}% "
          f"({worst['quantity']}, m={_m_text(worst['m'])}, psi_p={worst['psi_p']:g}, {worst['activation']}, "
          f"t={worst['t']:g})")
    print(f"tolerance at d={ds[-1]}: |sim - theory| <= {args.rtol:g}|theory| + {args.atol:g} + "
          f"{Z:g} se;  {'ALL PASS' if ok else 'FAILED: ' + str(int((~wide['ok']).sum())) + ' rows'}"
          f"  ({time.perf_counter() - t0:.0f} s)")
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0 if ok else 1
