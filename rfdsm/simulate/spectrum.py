"""Eigenvalues of the simulator's own training Gram (docs/theory.md, Sec. 9).

The matrix is ``S`` of :func:`rfdsm.simulate.fit.training_moments`, the one every fit of
``seed`` uses: ``F F^T / N`` for finite ``m``, the exact noise average ``U`` for ``m = inf``.
Nothing is recomputed here; the comparison with :func:`rfdsm.theory.spectrum` is in
``tests/test_spectrum.py``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from .fit import DEFAULT_BLOCK_BYTES, HOST, training_moments

__all__ = ["gram_eigenvalues", "gram_moments"]


def gram_eigenvalues(setting, d: int, seed: int, *, block_bytes: int = DEFAULT_BLOCK_BYTES,
                     chunk: int | None = None, stage=None) -> np.ndarray:
    """Ascending eigenvalues of the training Gram of ``setting`` at dimension ``d`` for ``seed``
    (the same draw of ``W``, data and noise as :func:`rfdsm.simulate.simulate`).  A size this
    machine cannot hold is a ValueError before anything is allocated.  ``stage(text)``, when
    given, is called as each of the two long steps (the Gram, its eigenvalues) begins."""
    from . import _checked_args

    _checked_args(setting, d, seed, 1, False, block_bytes=block_bytes, chunk=chunk, mc_test=0,
                  backend="cpu", dtype=np.float64)
    if stage is not None:
        stage(f"simulating K at d = {int(d)}")
    _, _, _, mom = training_moments(setting, int(d), int(seed), block_bytes, chunk,
                                    np.dtype(np.float64), HOST)
    if stage is not None:
        stage("eigenvalues of K")
    return linalg.eigvalsh(np.asarray(mom.S), overwrite_a=True, check_finite=False)


def gram_moments(eigenvalues, kmax: int = 3) -> dict:
    """``tr K^k / p`` for ``k = 1..kmax`` from the eigenvalues of ``K``."""
    ev = np.asarray(eigenvalues, dtype=float)
    return {k: float(np.mean(ev ** k)) for k in range(1, kmax + 1)}
