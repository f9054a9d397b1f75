"""Threads per operation of a CPU fit (docs/simulator.md, "Threads").

Light on purpose (no Numba, no SciPy): ``rfdsm.simulate`` imports it at ``import rfdsm``.
"""

from __future__ import annotations

import contextlib
import math

__all__ = ["ThreadRule", "THREADS", "SMALL_P"]

#: Below this many features a fit's BLAS products run on one thread.
SMALL_P = 512


class ThreadRule:
    """BLAS threads per operation of a CPU fit; the rule and its measurement are in
    docs/simulator.md, "Threads" (``benchmarks/threads.py``, d = 100 ... 400, 2 cores).

    An operation with fewer features than its entry of :attr:`one_thread_below` runs on one
    BLAS thread, else on all:

    * ``"solve"``, the ridge solve of finite m (Cholesky; ``eigh`` when ridgeless): always
      one.  It follows the streamed products, which run in NumPy's OpenBLAS, and SciPy's
      LAPACK (a second OpenBLAS) on two threads then competes with the first library's
      spinning threads: one thread was faster in 13 of 15 measured cases, by up to 100x;
    * ``"solve after series"``, the same for m = inf, whose series ran in SciPy's own BLAS:
      one below 1200 (at p = 1600 two threads were 1.4-1.6x faster in all 5 runs; at p = 800
      one thread in 3 of 5, by up to 20x);
    * ``"population"``, the population moments and the test/score quadratic forms: one below
      2048 (one thread as fast or faster in all 30 measured cases, up to p = 1600);
    * ``"series"``, the Mehler series of m = inf (Horner steps: an elementwise product and a
      ``syrk``): one below 1200 (one thread 1.3-14x faster at p <= 800, two 1.2-1.6x at p = 1600);
    * ``"fit"``, everything else (the streamed products): one below :data:`SMALL_P`, where the
      blocks are too small for a second thread to pay for its synchronisation.

    Numba kernels keep all their threads: one Numba thread was never consistently faster,
    and up to twice as slow for the Gauss-Hermite quadrature at d = 200-400.

    Threads change no number beyond rounding (BLAS may reorder a reduction): the same seed
    gives the same results.  ``fixed = True`` leaves the caller's limits alone (to measure).
    """

    fixed = False
    one_thread_below = {"solve": math.inf, "solve after series": 1200, "population": 2048,
                        "series": 1200, "fit": SMALL_P}
    _controller = None

    def blas(self, op: str, p: int):
        """A context limiting BLAS for operation ``op`` of a fit with ``p`` features."""
        if self.fixed or p >= self.one_thread_below[op]:
            return contextlib.nullcontext()
        if ThreadRule._controller is None:
            from threadpoolctl import ThreadpoolController

            # first called inside a fit, after scipy.linalg has loaded its own OpenBLAS
            ThreadRule._controller = ThreadpoolController()
        return ThreadRule._controller.limit(limits=1, user_api="blas")


THREADS = ThreadRule()
