"""``rfdsm sample``: generate points with the fitted RF score (or a reference score) and print
whether they generalise: ``f_mem`` with its interval, the Frechet distance with the estimate of
its discretisation error, the score-error integral of the KL."""

from __future__ import annotations

import json

from ..sample.options import DEFAULTS, KINDS
from ..sample.sampler import METHODS, SCHEDULES


def _float(text):
    import argparse

    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def configure_parser(p) -> None:
    from . import add_setting_arguments, int_at_least

    p.description = ("Generate points by the reverse-time OU process with one fitted RF score "
                     "per time of a grid (docs/sampling.md); the setting's --t is not used.")
    add_setting_arguments(p)
    g = p.add_argument_group("sampling (docs/sampling.md)")
    g.add_argument("--d", type=int_at_least(1), required=True, help="dimension")
    g.add_argument("--n-samples", type=int_at_least(2), default=DEFAULTS["n_samples"],
                   help=f"generated points (default {DEFAULTS['n_samples']})")
    g.add_argument("--seed", type=int_at_least(0), default=0,
                   help="seed of W, the training set, the noise and the sampler")
    g.add_argument("--score", choices=KINDS, default=DEFAULTS["score"],
                   help="rf (fitted, default), true or empirical")
    g.add_argument("--method", choices=METHODS, default=DEFAULTS["method"],
                   help="reverse SDE (default) or probability-flow ODE")
    g.add_argument("--t-min", type=_float, default=DEFAULTS["t_min"],
                   help=f"end time of the reverse process (default {DEFAULTS['t_min']})")
    g.add_argument("--T", type=_float, default=DEFAULTS["T"],
                   help=f"start time, from N(0, I) (default {DEFAULTS['T']})")
    g.add_argument("--steps", type=int_at_least(1), default=DEFAULTS["steps"],
                   help=f"integrator steps (default {DEFAULTS['steps']})")
    g.add_argument("--times", type=int_at_least(1), default=DEFAULTS["times"],
                   help=f"score grid: K log-spaced times (default {DEFAULTS['times']})")
    g.add_argument("--schedule", choices=SCHEDULES, default=DEFAULTS["schedule"],
                   help="step times: log (geometric, default) or linear")
    g.add_argument("--threshold", type=_float, default=DEFAULTS["threshold"],
                   help="memorised when the nearest/second-nearest distance ratio is below "
                        "this (default 1/3)")
    g.add_argument("--bootstrap", type=int_at_least(1), default=DEFAULTS["n_bootstrap"],
                   help=f"resamplings of the f_mem interval (default {DEFAULTS['n_bootstrap']})")
    g.add_argument("--no-theory", action="store_true",
                   help="do not integrate the theory's score error (KL bound, theory)")
    g.add_argument("--figures", metavar="DIR", default=None,
                   help="also draw the ratio histogram and a 2-D projection into DIR")
    g.add_argument("--json", action="store_true", help="print a JSON object")
    p.epilog = ("exit status: 0 done; 1 not converged, the numbers printed but not "
                "trustworthy: the step-doubling estimate of the discretisation error is not "
                "small (use more --steps), or the theory's score error did not converge at "
                "some grid time; 2 bad argument")


def run_cli(args) -> int:
    from . import UsageError, setting_from_args, writable_dir
    from ..sample import sample

    setting = setting_from_args(args)
    if args.figures:
        writable_dir(args.figures, "--figures")
    try:
        res = sample(setting, d=args.d, n_samples=args.n_samples, seed=args.seed,
                     score=args.score, method=args.method, t_min=args.t_min, T=args.T,
                     steps=args.steps, times=args.times, schedule=args.schedule,
                     threshold=args.threshold, n_bootstrap=args.bootstrap,
                     theory=not args.no_theory)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(res.to_dict(), allow_nan=False))
    else:
        _print(res)
    if args.figures:
        _figures(res, args.figures)
    if not res.converged:
        import sys

        print(f"rfdsm: warning: not converged: {res.message}", file=sys.stderr)
    return 0 if res.converged else 1


def _fmt(x):
    return "-" if x is None else f"{x:.6g}"


def _print(res) -> None:
    pr = res.parameters()
    print(f"sample ({res.score}, {res.method}): psi_n={pr['psi_n']:g} psi_p={pr['psi_p']:g} "
          f"m={pr['m']} lam={pr['lam']:g} d={res.d} n={res.n} p={res.p} seed={res.seed}")
    print(f"  {res.n_samples} samples, t from {res.T:g} to {res.t_min:g} in {res.steps} "
          f"{res.schedule} steps, {len(res.times)} score times")
    lo, hi = res.f_mem_ci
    print(f"  f_mem     {res.f_mem:.4g}   95% bootstrap [{lo:.4g}, {hi:.4g}]  "
          f"(ratio < {res.threshold:.4g})")
    print(f"  frechet   {res.frechet:.6g}   (exact samples of this size: "
          f"{res.frechet_floor:.4g} +- {res.frechet_floor_sd:.2g})")
    err = res.discretisation_error or {}
    print(f"  discretisation error (step doubling): frechet {_fmt(err.get('frechet'))}   "
          f"f_mem {_fmt(err.get('f_mem'))}")
    se = "" if res.kl_bound_se is None else f" +- {res.kl_bound_se:.2g}"
    print(f"  kl_bound  {_fmt(res.kl_bound)}{se}   (per dimension, upper bound on the KL of the "
          "generated law)")
    print(f"  kl_score_integral  {_fmt(res.kl_score_integral)}   theory "
          f"{_fmt(res.kl_score_integral_theory)}   (per dimension; score errors only, not a "
          "bound)")
    if not res.converged:
        print(f"  NOT CONVERGED: {res.message}")
    print(f"  wall time {res.wall_time:.3g} s")


def _figures(res, out) -> None:
    from pathlib import Path

    from ..plots.sampling import ratio_histograms, projection
    from ..plots.style import save_figure

    for stem, fig in (("nn_ratios", ratio_histograms([res])), ("projection", projection(res))):
        for path in save_figure(fig, Path(out) / stem, ("png",)):
            print(path)
