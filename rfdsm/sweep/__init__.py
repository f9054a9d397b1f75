"""Grids of settings through the simulator and the asymptotic solver, kept as one tidy table.

``rfdsm sweep CONFIG.toml --out DIR`` (or :func:`run_sweep`) expands the grid of a TOML
configuration (format: :mod:`rfdsm.sweep.config`, examples in ``scripts/``), runs every task
once, records each as it finishes, and writes ``DIR/results.parquet``: one row per setting x
evaluator x d x seed, read back with :func:`load_results` (``rfdsm.load_results(DIR)``).

Rerunning the same command resumes an interrupted sweep (Ctrl-C or ``kill -9``): finished
tasks are skipped and no row is lost or written twice.  A directory that holds a different
configuration is refused unless ``--force`` discards it.
"""

from __future__ import annotations

import sys
import threading
import time

from .config import DEFAULT_MAX_ROWS, ConfigError, SweepConfig, load_config
from .store import COLUMNS, StoreError, SweepDir, load_results, to_frame

__all__ = ["run_sweep", "load_results", "SweepConfig",
           "ConfigError", "SweepError", "COLUMNS"]


class SweepError(RuntimeError):
    """Some tasks failed; the finished ones are kept and a rerun retries the rest."""


def _progress(total, initial, enabled, desc="rfdsm sweep"):
    """A tqdm bar over the estimated work (flops, :func:`rfdsm.sweep.runner.task_work`) on
    stderr, or None.  Tasks finish minutes apart on a large preset: on a terminal a ticker
    redraws the bar every second so that the elapsed and remaining times keep moving."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # smoothing=0: the rate is the average since the start, so the remaining time counts down
    # between finished tasks instead of freezing at the last task's rate
    bar = tqdm(total=total, initial=initial, unit="flop", unit_scale=True, desc=desc,
               file=sys.stderr, dynamic_ncols=True, smoothing=0,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} flop (estimated "
                          "work) [{elapsed}<{remaining}]{postfix}")
    stop = threading.Event()
    bar.stop_ticker = stop.set
    if getattr(sys.stderr, "isatty", lambda: False)():  # a log file gets no redraws

        def tick():
            while not stop.wait(1.0):
                bar.refresh()

        threading.Thread(target=tick, daemon=True, name="rfdsm-progress").start()
    return bar


def run_sweep(config, out, *, workers: int | None = None, scheduler: str | None = None,
              csv: bool = False, force: bool = False, progress: bool = True,
              log=None, max_rows: int = DEFAULT_MAX_ROWS):
    """Run (or resume) the sweep ``config`` into directory ``out``; return the tidy table.

    Parameters
    ----------
    config : path of a TOML file, a dict with the same structure, or a :class:`SweepConfig`.
    out : output directory (created if needed).
    workers : local worker processes (default: the CPUs available; 1 runs in this process).
    scheduler : address of a Dask distributed scheduler (``[PROTOCOL://]HOST:PORT``, protocol
        tcp, tls, ws, wss or ucx); overrides ``workers``.  Its form is checked before
        anything else, the connection (short timeout) before any task is sent.
    csv : also write ``results.csv``.
    force : discard results in ``out`` that came from a different configuration.
    progress : show a tqdm progress bar on stderr: the estimated work done (flops of the
        finished tasks, :func:`rfdsm.sweep.runner.task_work`) and the time left.
    log : callable taking one line of text (default: print to stderr).
    max_rows : refuse a sweep with more rows than this (counted before the grid is expanded;
        default :data:`~rfdsm.sweep.config.DEFAULT_MAX_ROWS`).

    Raises :class:`ConfigError` (a ``ValueError``) for a bad configuration or a sweep larger
    than ``max_rows``, and ``ValueError`` for a malformed ``scheduler``, before any work;
    :class:`SweepError` if some tasks failed (the others are recorded).
    """
    if log is None:
        log = _log_to_stderr
    cfg, scheduler = _checked_inputs(config, scheduler, workers, max_rows)
    tasks = cfg.tasks()
    n_rows = sum(t["rows"] for t in tasks)

    store = SweepDir(out)
    store.lock()
    try:
        done, todo = _resume(store, cfg, tasks, n_rows, force, log)
        t0 = time.perf_counter()
        failures = []
        if todo:
            failures = _run_todo(store, tasks, todo, done, scheduler, workers, progress)
        elapsed = time.perf_counter() - t0
        if failures:
            first = failures[0]["error"]
            raise SweepError(f"{len(failures)} of {len(todo)} task(s) failed (first: {first}); "
                             f"details in {store.path}/errors.log; rerun to retry them")
        return _write_results(store, tasks, done, todo, elapsed, csv, log)
    finally:
        store.unlock()


def _log_to_stderr(msg):
    print(msg, file=sys.stderr)


def _checked_inputs(config, scheduler, workers, max_rows):
    """The loaded config and the checked scheduler address; raises before any work."""
    from . import runner

    cfg = load_config(config, max_rows=max_rows)
    if scheduler is not None:
        scheduler = runner.check_scheduler_address(scheduler)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return cfg, scheduler


def _resume(store, cfg, tasks, n_rows, force, log):
    """Open the (locked) ``store`` for ``cfg`` and return ``(done, todo)``: the rows of the
    finished tasks by key, read back from the journal, and the tasks still to run.  A journal
    that does not match ``tasks`` is refused rather than silently rerun or mixed in."""
    from .._version import __version__

    store.start(cfg, len(tasks), n_rows, force, __version__)
    store.clear_errors()  # errors.log describes the latest run only
    done = store.journal.read(repair=True)
    unknown = set(done) - {t["key"] for t in tasks}
    if unknown:
        raise StoreError(f"{store.path}/journal.jsonl holds {len(unknown)} task(s) this "
                         "config does not define; use another --out directory or --force")
    for t in tasks:
        got = len(done.get(t["key"], ()))
        if got and got != t["rows"]:
            raise StoreError(f"{store.journal.path}: line {store.journal.lines[t['key']]} "
                             f"holds {got} row(s) for a task of {t['rows']}; delete that "
                             "line (its task runs again) or rerun with --force")
    todo = [t for t in tasks if t["key"] not in done]
    if done:
        log(f"resuming: {len(done)} of {len(tasks)} tasks already done")
        versions = {row.get("version") for rows in done.values() for row in rows}
        if versions - {__version__}:
            seen = ", ".join(sorted(map(str, versions)))
            log(f"note: finished tasks were computed with rfdsm {seen}, this is "
                f"{__version__}; the version column tells the rows apart")
    return done, todo


def _run_todo(store, tasks, todo, done, scheduler, workers, progress):
    """Run the (non-empty) ``todo`` and journal each finished task as it arrives, adding its
    rows to ``done``, so that an interrupted run loses nothing; return the failed outcomes."""
    from . import runner

    if scheduler:
        outcomes = runner.run_dask(todo, scheduler)
    else:
        n = min(workers or runner.available_cpus(), len(todo))
        outcomes = runner.run_serial(todo) if n <= 1 else runner.run_processes(todo, n)
    size = {t["key"]: runner.task_work(t) for t in todo}
    total = sum(runner.task_work(t) for t in tasks)
    bar = _progress(total, total - sum(size.values()), progress)
    failures = []
    store.journal.open()
    try:
        for res in outcomes:
            key = res["key"]
            if "error" in res:
                failures.append(res)
                store.log_error(key, res["traceback"])
            elif key not in done:
                store.journal.append(key, res["rows"])
                done[key] = res["rows"]
            if bar is not None:
                bar.update(size[key])
    finally:
        store.journal.close()
        if bar is not None:
            bar.stop_ticker()
            bar.close()
    return failures


def _write_results(store, tasks, done, todo, elapsed, csv, log):
    """Write the tidy table of every task (in config order) and return it."""
    df = to_frame(row for t in tasks for row in done[t["key"]])
    unconverged = int((~df["converged"]).sum())
    if unconverged:
        log(f"note: {unconverged} point(s) did not converge (converged = False, see the "
            "residual column)")
    written = store.write_results(df, csv)
    if todo:
        log(f"ran {len(todo)} task(s) in {elapsed:.3g} s")
    log(f"wrote {len(df)} rows to {', '.join(str(p) for p in written)}")
    return df
