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
                     chunk: int | None = None) -> np.ndarray:
    """Ascending eigenvalues of the training Gram of ``setting`` at dimension ``d`` for ``seed``
    (the same draw of ``W``, data and noise as :func:`rfdsm.simulate.simulate`)."""
    _, _, _, mom = training_moments(setting, int(d), int(seed), block_bytes, chunk,
                                    np.dtype(np.float64), HOST)
    return linalg.eigvalsh(np.asarray(mom.S), overwrite_a=True, check_finite=False)


def gram_moments(eigenvalues, kmax: int = 3) -> dict:
    """``tr K^k / p`` for ``k = 1..kmax`` from the eigenvalues of ``K``."""
    ev = np.asarray(eigenvalues, dtype=float)
    return {k: float(np.mean(ev ** k)) for k in range(1, kmax + 1)}
