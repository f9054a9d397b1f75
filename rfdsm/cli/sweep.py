"""``rfdsm sweep``: run a grid of settings from a TOML config, resumably
(:mod:`rfdsm.sweep`)."""

from __future__ import annotations

import sys

from ..sweep import (DEFAULT_MAX_ROWS, ConfigError, StoreError, SweepError,  # noqa: F401
                     load_config, run_sweep)

__all__ = ["configure_parser", "run_cli"]


# command line -----------------------------------------------------------------------------
def configure_parser(p) -> None:
    from . import positive_int

    p.description = ("Run a grid of settings from a TOML config (see scripts/*.toml) through "
                     "the simulator and/or the theory; rerun the same command to resume.")
    p.add_argument("config", help="sweep configuration (TOML)")
    p.add_argument("--out", help="output directory (results.parquet, journal); required unless "
                                 "--dry-run")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default: CPUs available; 1 = in this process)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on an existing Dask distributed cluster (pip install 'rfdsm[dask]')")
    p.add_argument("--csv", action="store_true", help="also write results.csv")
    p.add_argument("--force", action="store_true",
                   help="discard results in --out that came from a different config")
    p.add_argument("--max-rows", type=positive_int, default=DEFAULT_MAX_ROWS, metavar="N",
                   help="refuse a sweep of more than N rows, counted before anything is "
                        f"expanded (default {DEFAULT_MAX_ROWS:,})")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config and print the amount of work and an estimated run "
                        "time (from a cost model and a quick GEMM timing), run nothing")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _estimate_text(cfg, workers, scheduler) -> str:
    """The estimated run time of ``cfg`` here: its work (:func:`~rfdsm.sweep.runner.task_work`)
    at the GEMM rate measured now.  The cost model is rough and the machine's load changes the
    rate, hence a range rather than one number."""
    from ..sweep import runner

    tasks = cfg.tasks()
    work = sum(runner.task_work(t) for t in tasks)
    rate = runner.gemm_rate()
    n = min(workers or runner.available_cpus(), max(len(tasks), 1))
    secs = runner.estimate_seconds(tasks, n, rate)
    where = ("on this machine; a Dask cluster's time depends on its workers"
             if scheduler else f"with {n} worker(s) on this machine")
    return (f"estimated time: about {_duration(secs)} (between {_duration(secs / 2)} and "
            f"{_duration(2 * secs)}) {where}: {work:.3g} flop of estimated work at the "
            f"measured GEMM rate of {rate / 1e9:.3g} GFLOP/s; an estimate from a cost model, "
            "not a measurement")


def run_cli(args) -> int:
    from . import UsageError, writable_dir
    from ..sweep.runner import BackendError, check_scheduler_address

    if args.workers is not None and args.scheduler:
        raise UsageError("give either --workers or --scheduler, not both")
    if args.scheduler is not None:
        try:
            check_scheduler_address(args.scheduler)
        except ValueError as exc:
            raise UsageError(f"--scheduler: {exc}") from None
    try:
        cfg = load_config(args.config, max_rows=args.max_rows)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None  # the message names the file already
    if args.dry_run:
        print(f"{args.config}: config ok (hash {cfg.hash[:12]}); "
              + ", ".join(f"{k}: {v} task(s)" for k, v in cfg.n_tasks.items())
              + f"; {sum(cfg.n_rows.values())} rows")
        print(_estimate_text(cfg, args.workers, args.scheduler))
        return 0
    if args.out is None:
        raise UsageError("the following arguments are required: --out")
    writable_dir(args.out, "--out")
    try:
        run_sweep(cfg, args.out, workers=args.workers, scheduler=args.scheduler, csv=args.csv,
                  force=args.force, progress=not args.quiet)
    except (StoreError, BackendError) as exc:
        raise UsageError(str(exc)) from None  # lock/manifest messages name the directory
    except SweepError as exc:
        print(f"rfdsm: error: {exc}", file=sys.stderr)
        return 1
    return 0
