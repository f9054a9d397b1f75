"""Running sweep tasks: in this process, in local worker processes, or on a Dask cluster.

Every backend runs the same pure function :func:`execute` on the same task descriptions and
yields the outcomes as they finish; the caller records them.  Results do not depend on the
backend: a simulation task carries its seed, and a theory task is a whole curve, solved in
order so that each point can start from its neighbour's solution.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..setting import Setting

__all__ = ["execute", "run_serial", "run_processes", "run_dask", "available_cpus",
           "BackendError"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class BackendError(RuntimeError):
    """The requested backend cannot be used (missing package, unreachable scheduler)."""


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _theory_results(settings: list[Setting]):
    from ..theory import theory_curve

    results = list(theory_curve(settings))
    if len(results) != len(settings) or any(r.setting != s for r, s in zip(results, settings)):
        raise RuntimeError("the theory returned results that do not match the requested settings")
    return results


def execute(task: dict) -> dict:
    """Run one task; ``{"key", "rows"}`` on success, ``{"key", "error", "traceback"}`` otherwise.

    Errors are returned rather than raised so that one failing point does not stop the others;
    the sweep reports them and a rerun retries exactly those tasks.
    """
    try:
        if task["kind"] == "simulate":
            from ..simulate import simulate

            res = simulate(Setting(**task["setting"]), task["d"], seed=task["seed"])
            rows = res.rows()
        else:
            rows = [row for r in _theory_results([Setting(**s) for s in task["settings"]])
                    for row in r.rows()]
    except Exception as exc:  # noqa: BLE001 - reported to the caller with its traceback
        return {"key": task["key"], "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()}
    from .store import plain_rows

    return {"key": task["key"], "rows": plain_rows(rows)}


def run_serial(tasks):
    for task in tasks:
        yield execute(task)


@contextlib.contextmanager
def _thread_limit(n: int):
    """Children inherit the environment at spawn: cap their BLAS/OpenMP threads to ``n`` so
    that ``workers x threads`` does not oversubscribe the machine."""
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(n) for k in _THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _orphan_watch(parent: int, period: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(period)
    os._exit(1)


def _worker_init() -> None:
    # A pool worker waits for work forever: if the sweep process is killed (kill -9), end too
    # rather than linger as an orphan.
    threading.Thread(target=_orphan_watch, args=(os.getppid(),), daemon=True).start()


def run_processes(tasks, workers: int):
    """Run on ``workers`` fresh (spawned) processes, yielding outcomes as they complete."""
    threads = max(1, available_cpus() // workers)
    ctx = multiprocessing.get_context("spawn")
    with _thread_limit(threads):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
        # Keep a bounded number of tasks in flight: a huge sweep does not pickle every task
        # up front, and an interrupted run leaves little queued work behind.
        pending = set()
        it = iter(tasks)
        try:
            for task in it:
                pending.add(pool.submit(execute, task))
                if len(pending) >= 4 * workers:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        res = fut.result()
                    except BrokenProcessPool:
                        raise BackendError("a worker process died (out of memory?); finished "
                                           "tasks are kept, rerun to resume") from None
                    yield res
                    nxt = next(it, None)
                    if nxt is not None:
                        pending.add(pool.submit(execute, nxt))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_dask(tasks, address: str):
    """Run on the Dask distributed cluster whose scheduler listens at ``address``.

    Connects at once (so that a wrong address fails before any work) and returns an iterator
    over the outcomes as they complete.
    """
    try:
        from distributed import Client
    except ImportError:
        raise BackendError("--scheduler needs dask.distributed: "
                           "pip install 'rfdsm[dask]'") from None
    try:
        client = Client(address, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BackendError(f"cannot connect to the Dask scheduler at {address}: {exc}") from None
    return _dask_outcomes(client, tasks)


def _dask_outcomes(client, tasks):
    from distributed import as_completed

    try:
        futures = [client.submit(execute, t, key=f"rfdsm-sweep-{t['key']}", pure=False)
                   for t in tasks]
        try:
            for fut in as_completed(futures, loop=client.loop):
                yield fut.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()
