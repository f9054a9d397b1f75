"""Running sweep tasks: in this process, in local worker processes, or on a Dask cluster.

Every backend runs the same pure function :func:`execute` on the same task descriptions and
yields the outcomes as they finish; the caller records them.  A task is run by its evaluator
(:mod:`rfdsm.evaluators`); results do not depend on the backend: a simulation task carries
its seed, and a theory task is a whole curve, solved in order so that each point can start
from its neighbour's solution.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..evaluators import get_evaluator

__all__ = ["execute", "run_serial", "run_processes", "run_dask", "available_cpus",
           "BackendError", "check_scheduler_address", "task_work", "gemm_rate",
           "estimate_seconds"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class BackendError(RuntimeError):
    """The requested backend cannot be used (missing package, unreachable scheduler)."""


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def execute(task: dict) -> dict:
    """Run one task; ``{"key", "rows"}`` on success, ``{"key", "error", "traceback"}`` otherwise.

    Errors are returned rather than raised so that one failing point does not stop the others;
    the sweep reports them and a rerun retries exactly those tasks.
    """
    try:
        # the task's own evaluator object first: in a worker process the registry holds
        # only what the imported modules registered
        ev = task.get("evaluator") or get_evaluator(task["kind"])
        rows = ev.run(task)
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


_PR_SET_PDEATHSIG = 1


def _orphan_watch(parent: int, period: float = 1.0) -> None:
    while os.getppid() == parent:
        time.sleep(period)
    os._exit(1)


def _die_with_parent() -> bool:
    """Linux: have the kernel SIGKILL this process when its parent dies (prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # pragma: no cover - no usable libc
        return False


def _worker_init(parent: int) -> None:
    """First code of a pool worker: end with the sweep process, in every phase.

    A worker waits for work forever (the task queue's write end is held by its siblings too,
    so it never sees EOF), and it keeps the resource tracker alive: if the sweep process is
    killed (kill -9), the worker must end rather than linger as an orphan.  ``parent`` is the
    pid taken in the parent: the parent may already be dead when this runs (spawning and
    importing take seconds), and ``os.getppid()`` would then name the reaper instead.  After
    the death signal is armed, the ``getppid`` check closes the window in which the parent
    died before it was.  The pool spawns its workers from the thread that iterates
    :func:`run_processes`, which lives until the pool is shut down, so the signal (sent when
    the spawning *thread* ends) cannot fire early.  Elsewhere a polling thread does the job.
    """
    armed = _die_with_parent()
    if os.getppid() != parent:
        os._exit(1)
    if not armed:
        threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()


def run_processes(tasks, workers: int):
    """Run on ``workers`` fresh (spawned) processes, yielding outcomes as they complete."""
    threads = max(1, available_cpus() // workers)
    ctx = multiprocessing.get_context("spawn")
    with _thread_limit(threads):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init,
                                   initargs=(os.getpid(),))
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


# --- work estimates ------------------------------------------------------------------------
# A task's work is a count of floating-point operations of its dominant dense products, in
# GEMM-equivalents (an eigendecomposition or a Hermite-moment quadrature counted at the flops
# that run as fast as a GEMM).  The progress bar of a sweep advances by each finished task's
# work, so that a cheap theory curve and a long simulation move it by what they cost rather
# than by their rows; --dry-run divides the total by a measured GEMM rate.  The constants are
# rough (a factor of 2 either way): they rank tasks, they do not time them.

#: Target of the Mehler series' tail (``rfdsm.simulate.mehler.SERIES_TOL``) and its order cap.
_SERIES_TOL, _SERIES_CAP = 1e-13, 60


def _series_passes(p: int, d: int) -> float:
    """GEMM passes of the noise average (m = inf): one p x c x p product per Hermite order.
    The order cap follows the largest feature correlation, about ``sqrt(4 ln p / d)`` for
    ``p`` Gaussian rows; the adaptive order actually summed is about half of it (measured
    for tanh at d = 60-200)."""
    rho = min(0.95, math.sqrt(4.0 * math.log(max(p, 2)) / d))
    order = min(_SERIES_CAP, math.log(_SERIES_TOL) / math.log(rho))
    return max(1.0, order / 2.0)


#: ``eigh`` of a p x p matrix (vectors) as GEMM-equivalent flops per p^3.
EIGH_FLOPS = 12.0
#: Cholesky factor and solve of a p x p system, per p^3.
CHOLESKY_FLOPS = 1.0
#: One theory point (fixed-point equations and quadratures, independent of d), as the flops
#: a GEMM runs in the 0.02-0.05 s such a point takes on 2 cores.
THEORY_POINT_FLOPS = 1e9
#: Activation evaluations count as this many flops each (tanh, erf: a transcendental call).
ACTIVATION_FLOPS = 20.0
#: The diagnostics: the first needs the noise-averaged moments of the training points (a
#: Mehler series beside the fit's own moments), measured at about two noise averages at
#: d = 32; the others reuse them.
METRIC_FLOPS = (2.0, 0.1)
#: Per task: drawing W and the data, Python and process overheads (~0.02 s).
TASK_FLOPS = 3e8


def _fit_flops(setting, d: int, n_tau: int = 1, n_metrics: int = 0) -> float:
    """Estimated flops of one fit of ``setting`` at dimension ``d`` (one seed): the training
    moments, the solve (one ``eigh`` for a finite ``tau`` or ``lam = 0``, else a Cholesky
    solve), the population moments and the errors at ``n_tau`` training times."""
    n, p = setting.sizes(d)
    passes = _series_passes(p, d)
    if setting.m == math.inf:
        moments = 2.0 * passes * n * p * p
    else:
        big_n = n * float(setting.m)
        moments = big_n * p * p + 4.0 * big_n * d * p + ACTIVATION_FLOPS * big_n * p
    spectral = n_tau > 1 or setting.tau != math.inf or setting.lam == 0
    solve = (EIGH_FLOPS if spectral else CHOLESKY_FLOPS) * p ** 3
    population = 2.0 * passes * p * p + 2.0 * p * p * d
    per_tau = 4.0 * p * p * d
    first, more = METRIC_FLOPS
    extra = (first + more * (n_metrics - 1)) * 2.0 * passes * n * p * p if n_metrics else 0.0
    return TASK_FLOPS + moments + solve + population + n_tau * per_tau + extra


def task_work(task: dict) -> float:
    """Estimated work of a sweep task (flops, GEMM-equivalent; > 0): what its progress bar
    advances by when it finishes (see the comment above :func:`_series_passes`).  A task this
    model does not know (another evaluator's format) counts as a theory point per row: a
    progress bar must never stop a sweep."""
    try:
        return _task_work(task)
    except Exception:  # noqa: BLE001 - an estimate only; the task itself reports its errors
        return THEORY_POINT_FLOPS * max(1, int(task.get("rows", 1) or 1))


def _task_work(task: dict) -> float:
    from ..evaluators.base import as_setting

    kind = task.get("kind")
    settings = [as_setting(s) for s in (task.get("settings") or [task["setting"]])]
    if kind == "theory" or "d" not in task:
        return THEORY_POINT_FLOPS * len(settings)
    d = int(task["d"])
    # the errors every fit gives are in the fit's cost; metrics asked for on top add theirs
    n_metrics = sum(not getattr(m, "default", False) for m in task.get("metrics") or ())
    fit = _fit_flops(settings[0], d, len(settings), n_metrics)
    sampling = task.get("sampling")
    if sampling is None:
        return fit
    n, p = settings[0].sizes(d)
    times = sampling.get("times", 1)
    n_times = times if isinstance(times, int) else len(times)
    walkers = float(sampling.get("n_samples", 1000))
    # one fit per sampling time (the same draws), the reverse process (two products with W
    # per step and point) and the nearest training points of every generated point
    return (fit + n_times * _fit_flops(settings[0], d)
            + 4.0 * sampling.get("steps", 200) * walkers * p * d + 2.0 * walkers * n * d)


def gemm_rate(size: int = 1024, repeats: int = 5) -> float:
    """Flops per second of a ``size x size`` float64 matrix product on this machine (the best
    of ``repeats``, after one warm-up): the unit a work estimate is converted to time with."""
    import numpy as np

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / max(best, 1e-9)


def estimate_seconds(tasks, workers: int, rate: float) -> float:
    """Estimated wall time of ``tasks`` on ``workers`` processes that share the cores of one
    machine whose all-core GEMM rate is ``rate``: the total work at that rate, but no less
    than the longest task on its share of the cores."""
    works = [task_work(t) for t in tasks]
    if not works:
        return 0.0
    workers = max(1, min(workers, len(works)))
    return max(sum(works) / rate, max(works) * workers / rate)


#: Seconds to wait for a scheduler to answer; a scheduler that is up answers in milliseconds.
CONNECT_TIMEOUT = 10.0
_PROTOCOLS = ("tcp", "tls", "ws", "wss", "ucx")
_ADDRESS = re.compile(r"(?:(?P<proto>[a-z]+)://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)"
                      r":(?P<port>[0-9]{1,5})")


def check_scheduler_address(address) -> str:
    """``address`` if it has the form ``[PROTOCOL://]HOST:PORT`` of a Dask scheduler, else a
    ``ValueError`` saying so (checked before connecting: Dask's own errors for a malformed
    address come only after a long wait).  ``inproc://`` addresses of a scheduler in this
    process are passed through."""
    if not isinstance(address, str):
        raise ValueError(f"the scheduler address must be a string like tcp://HOST:PORT, got "
                         f"{type(address).__name__}")
    if address.startswith("inproc://") and len(address) > len("inproc://"):
        return address
    m = _ADDRESS.fullmatch(address.strip())
    if (m is None or (m["proto"] is not None and m["proto"] not in _PROTOCOLS)
            or not 1 <= int(m["port"]) <= 65535):
        raise ValueError(f"the scheduler address must look like tcp://HOST:PORT (protocol "
                         f"{', '.join(_PROTOCOLS)}; port 1-65535), got {address!r}")
    return address.strip()


def _probe_scheduler(address: str, timeout: float) -> None:
    """Ask ``address`` who it is; raise unless a Dask scheduler answers within ``timeout``.

    Done with a bare RPC before a ``Client`` exists: a Client whose start fails lingers, and
    its ``__del__`` then blocks for twice the timeout and prints a traceback.  Runs in its own
    thread and event loop, so that it also works where a loop is running (Jupyter)."""
    import asyncio

    from distributed.core import rpc

    async def identity():
        async with rpc(address, timeout=timeout) as r:
            return await asyncio.wait_for(r.identity(), timeout)

    outcome = {}

    def target():
        try:
            outcome["info"] = asyncio.run(identity())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            outcome["error"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(2 * timeout + 5)
    if th.is_alive():
        raise TimeoutError(f"no answer after {2 * timeout:g} s")
    if "error" in outcome:
        exc = outcome["error"]
        # Something that is not a Dask scheduler can answer with bytes that decode to a
        # frame size of exabytes (seen: MemoryError), or with nothing sensible at all.
        if isinstance(exc, (OSError, TimeoutError)):
            raise OSError(str(exc)) from None
        raise OSError(f"the server there does not answer as a Dask scheduler does "
                      f"({type(exc).__name__}: {str(exc)[:80]})") from None
    info = outcome["info"]
    if not isinstance(info, dict) or info.get("type") != "Scheduler":
        kind = info.get("type") if isinstance(info, dict) else type(info).__name__
        raise OSError(f"the server there is not a Dask scheduler (it says {kind!r})")


def run_dask(tasks, address: str, timeout: float = CONNECT_TIMEOUT):
    """Run on the Dask distributed cluster whose scheduler listens at ``address``.

    Connects at once (so that a wrong address fails before any work, within about
    ``timeout`` seconds) and returns an iterator over the outcomes as they complete.
    """
    address = check_scheduler_address(address)
    try:
        from distributed import Client
    except ImportError:
        raise BackendError("--scheduler needs dask.distributed: "
                           "pip install 'rfdsm[dask]'") from None
    try:
        if not address.startswith("inproc://"):
            _probe_scheduler(address, timeout)
        client = Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the same usage error
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
