"""Command-line interface: ``rfdsm simulate | theory | validate | sweep | plot | spectrum |
sample``.

Every subcommand validates its arguments at the boundary: a bad value prints one line
``rfdsm: error: ...`` on stderr and exits with status 2, never a traceback.

Exit status: 0 success; 1 the command ran but its result is not trustworthy (``simulate`` or
``theory`` not converged, ``validate`` with a failed setting) or an unexpected error; 2 a bad
argument or input; 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys

from .._version import __version__

#: Subcommands implemented in other modules: (name, module, help).  Each module provides
#: ``configure_parser(parser)`` and ``run_cli(args) -> int``.
EXTERNAL = (
    ("validate", "rfdsm.cli.validate", "theory vs simulation on a built-in set of settings"),
    ("sweep", "rfdsm.cli.sweep", "run a grid of settings from a TOML config, resumably"),
    ("plot", "rfdsm.cli.plot", "draw learning curves and phase diagrams from a sweep directory"),
    ("spectrum", "rfdsm.cli.spectrum",
     "limiting eigenvalue density of the training Gram K of one setting"),
    ("sample", "rfdsm.cli.sample",
     "generate points with the fitted RF score; memorised fraction, Frechet distance, KL bound"),
)


class UsageError(Exception):
    """A bad argument value; reported in one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's own convention)
        self.exit(2, f"rfdsm: error: {message}\n")


def int_at_least(low):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return v
    return parse


def int_between(low, high):
    def parse(text):
        v = int_at_least(low)(text)
        if v > high:
            raise argparse.ArgumentTypeError(f"expected an integer between {low} and {high}, "
                                             f"got {text!r}")
        return v
    return parse


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)

EXIT_STATUS = ("exit status: 0 converged; 1 not converged (the numbers are printed but not "
               "trustworthy) or an unexpected error; 2 bad argument")


def writable_dir(path, option: str) -> None:
    """Create directory ``path`` if needed and make sure a file can be written there, before any
    work starts; else a :class:`UsageError` naming ``option``.  Probes with a real write,
    because permission bits say nothing for root or on special file systems."""
    import tempfile

    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path!r}: cannot create the directory: "
                         f"{exc.strerror or exc}") from None
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path!r}: cannot write in the directory: "
                         f"{exc.strerror or exc}") from None


def add_setting_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per row of the parameter table (rfdsm/params.py); values are validated by
    :class:`rfdsm.Setting`, so the messages name the parameter and its range."""
    from ..core.params import PARAMS

    g = p.add_argument_group("setting (see docs/model.md)")
    for row in PARAMS:
        if row.required:
            g.add_argument(row.flag, dest=row.name, required=True, help=row.help)
        else:
            g.add_argument(row.flag, dest=row.name, default=str(row.default),
                           help=f"{row.help} (default {row.default})")


def setting_from_args(args):
    from ..core.params import PARAMS
    from ..core.setting import Setting

    try:
        return Setting(**{row.name: getattr(args, row.name) for row in PARAMS})
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _fmt(x, se=None):
    if x is None:
        return "-"
    s = f"{x:.6g}"
    return s if se is None else f"{s} +- {se:.2g}"


def print_result(res, as_json: bool) -> None:
    if as_json:
        # strict JSON: Result.to_dict writes NaN as null and inf as "inf"
        print(json.dumps(res.to_dict(), indent=2, allow_nan=False))
        return
    st = res.setting
    m = "inf" if st.m == math.inf else st.m
    print(f"{res.evaluator}: psi_n={st.psi_n:g} psi_p={st.psi_p:g} m={m} t={st.t:g} "
          f"lam={st.lam:g}" + (f" tau={st.tau:g}" if st.tau != math.inf else "")
          + f" activation={st.activation}"
          + (f" data={st.data}" if st.data != "isotropic" else "")
          + (f" psi_d={st.psi_d:g}" if st.psi_d != 1 else "") + (f" d={res.d}" if res.d else ""))
    for k in ("train", "test", "score"):
        print(f"  {k:6s} {_fmt(getattr(res, k), getattr(res, k + '_se'))}")
    for k, v in res.metrics.items():
        if not k.endswith("_se"):
            print(f"  {k:6s} {_fmt(v, _finite_or_none(res.metrics.get(k + '_se')))}")
    for k, why in res.diagnostics.get("metrics_without_limit", {}).items():
        print(f"  {k:6s} -  ({why})")
    print(f"  bayes  {st.bayes:.6g}")
    diag = res.diagnostics
    if "test_mc" in diag:
        print(f"  Monte Carlo on {diag['mc_samples']} samples: test "
              f"{_fmt(diag['test_mc'], _finite_or_none(diag['test_mc_se']))}, score "
              f"{_fmt(diag['score_mc'], _finite_or_none(diag['score_mc_se']))}")
    if diag.get("skipped_seeds"):
        print(f"  skipped seeds {', '.join(map(str, diag['skipped_seeds']))} "
              f"(--skip-failed): {diag['skipped_reason']}")
    # an iterative solve reports its iteration count; the simulator has none
    extra = f" iterations={res.iterations}" if res.iterations is not None else ""
    print(f"  converged={res.converged} residual={_fmt(res.residual)}{extra}")
    if diag.get("divergent"):
        print("  divergent: the ridgeless limit is infinite here (interpolation threshold)")
    if diag.get("warning"):
        print(f"  warning: {diag['warning']}")
    if not res.converged:
        print("  NOT CONVERGED: these numbers are not reliable (exit status 1)")
    print(f"  wall time {res.wall_time:.3g} s")


def metric_names(text):
    """``--metrics``: registered metric names, comma-separated; ``diagnostics`` stands for
    ``test_emp, beta, bias2, variance`` (docs/model.md)."""
    from ..analysis.bias_variance import DIAGNOSTICS
    from ..metrics import registered_metrics

    names = []
    for name in (x.strip() for x in text.split(",")):
        names.extend(DIAGNOSTICS if name == "diagnostics" else [name] if name else [])
    known = registered_metrics()
    for name in names:
        if name not in known:
            raise argparse.ArgumentTypeError(
                f"unknown metric {name!r} (registered: {', '.join(known)}, or diagnostics)")
    if not names:
        raise argparse.ArgumentTypeError("expected at least one metric name")
    return tuple(dict.fromkeys(names))


class _MoreMetrics(argparse.Action):
    """A repeated ``--metrics`` adds its names to those already given (argparse's default
    ``store`` would keep only the last)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest,
                tuple(dict.fromkeys((getattr(namespace, self.dest) or ()) + tuple(values))))


def _add_metrics_argument(p) -> None:
    p.add_argument("--metrics", type=metric_names, default=None, metavar="NAME[,NAME...]",
                   action=_MoreMetrics,
                   help="also compute these registered metrics, e.g. test_emp,bias2,variance "
                        "(or diagnostics: test_emp, beta, bias2, variance); may be repeated")


def _finite_or_none(x):
    return x if x is not None and math.isfinite(x) else None


def _metrics_kwargs(args) -> dict:
    return {} if args.metrics is None else {"metrics": args.metrics}


def _cmd_simulate(args) -> int:
    from ..simulate import simulate

    setting = setting_from_args(args)
    try:
        setting.sizes(args.d)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        res = simulate(setting, d=args.d, seed=args.seed, n_seeds=args.seeds, mc_test=args.mc_test,
                       backend=args.backend, dtype=args.dtype, skip_failed=args.skip_failed,
                       progress=not args.quiet, **_metrics_kwargs(args))
    except ValueError as exc:  # e.g. --backend gpu without CuPy or a CUDA device
        raise UsageError(str(exc).replace("skip_failed=True (CLI: --skip-failed)",
                                          "--skip-failed")) from None
    print_result(res, args.json)
    return 0 if res.converged else 1


def _cmd_theory(args) -> int:
    from ..theory import theory

    try:
        res = theory(setting_from_args(args), **_metrics_kwargs(args))
    except ValueError as exc:  # e.g. an activation outside the theory's assumptions
        raise UsageError(str(exc)) from None
    print_result(res, args.json)
    return 0 if res.converged else 1


def _command_of(argv) -> str | None:
    """The subcommand named in ``argv`` (the top-level parser has options only before it)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``command``, the external subcommands other than ``command`` get
    only their name and help, so that their modules (pandas, matplotlib, ...) are not imported:
    ``rfdsm theory`` must start in about the time of ``import numpy, scipy.special``."""
    from ..simulate import MC_TEST_MAX, SEEDS_MAX

    # the list of subcommands is built from the subcommands themselves, so it cannot drift
    names = ("simulate", "theory", *(name for name, _, _ in EXTERNAL))
    parser = _Parser(prog="rfdsm", description=f"Command-line interface: rfdsm "
                                               f"{' | '.join(names)}.",
                     epilog="exit status: 0 success; 1 not converged / failed validation / "
                            "unexpected error; 2 bad argument; 130 interrupted")
    parser.add_argument("--version", action="version", version=f"rfdsm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("simulate", help="finite-size simulation of one setting",
                       epilog=EXIT_STATUS)
    add_setting_arguments(p)
    p.add_argument("--d", type=positive_int, required=True, help="dimension")
    p.add_argument("--seed", type=nonneg_int, default=0, help="first seed")
    p.add_argument("--seeds", type=int_between(1, SEEDS_MAX), default=1,
                   help=f"number of seeds (at most {SEEDS_MAX})")
    p.add_argument("--mc-test", type=int_between(0, MC_TEST_MAX), default=0,
                   help="also estimate test/score errors by Monte Carlo on this many fresh "
                        f"samples per seed (at most {MC_TEST_MAX})")
    p.add_argument("--skip-failed", action="store_true",
                   help="keep the other seeds when one seed's quadrature fails (tiny d); the "
                        "skipped seeds are listed in the output")
    p.add_argument("--backend", choices=["cpu", "gpu"], default="cpu",
                   help="cpu (default) or gpu (needs CuPy and a CUDA device)")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="precision of the dense products (float32: faster, ~1e-7 relative)")
    _add_metrics_argument(p)
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (on stderr, for several seeds)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("theory", help="asymptotic (d -> inf) errors of one setting",
                       epilog=EXIT_STATUS)
    add_setting_arguments(p)
    _add_metrics_argument(p)
    p.add_argument("--json", action="store_true", help="print a JSON object")
    p.set_defaults(func=_cmd_theory)

    for name, module, help_ in EXTERNAL:
        p = sub.add_parser(name, help=help_)
        if command is None or command == name:
            mod = importlib.import_module(module)
            mod.configure_parser(p)
            p.set_defaults(func=mod.run_cli)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"rfdsm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rfdsm: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # a value rejected below the argument parser (e.g. a size)
        print(f"rfdsm: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 -- a command line reports, it does not crash
        if os.environ.get("RFDSM_DEBUG"):
            raise
        print(f"rfdsm: error: {type(exc).__name__}: {exc} (set RFDSM_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    # ``python -m rfdsm.cli`` runs this file as __main__, a second copy of the module: the
    # subcommands raise rfdsm.cli.UsageError, which __main__'s handler would not catch.
    from rfdsm.cli import main as _main

    sys.exit(_main())
