"""The settings of ``rfdsm validate`` (:mod:`rfdsm.validate`): the built-in sets ``quick``,
``default`` and ``full`` and the non-centred activation they use (``docs/validation.md``)."""

from __future__ import annotations

import math

import numpy as np

from ..activations import register_activation
from ..core.setting import Setting

__all__ = ["SETS", "default_settings", "softplus", "SOFTPLUS", "INF"]


def softplus(x):
    """``log(1 + e^x)``: smooth and not centred (``E softplus(g) = 0.806``), so the validation
    covers the ``sigma - mu0`` reduction of ``docs/theory.md``, Sec. 0."""
    return np.logaddexp(0.0, np.asarray(x, dtype=float))


#: Registry name of :func:`softplus`: namespaced, so that a user's own "softplus" neither
#: collides with it nor replaces it in the validation.  Registered at import of a module (not
#: under ``__main__``), so that spawned workers importing rfdsm.validate see it too.
SOFTPLUS = "validate_softplus"
register_activation(SOFTPLUS, softplus, description="log(1 + e^x), not centred",
                    overwrite=True)

INF = math.inf
_CORE = [  # (psi_n, psi_p, m, t, activation), lam = 0.01
    (2, 0.5, 1, 0.1, "tanh"), (2, 4, 1, 0.1, "tanh"), (2, 0.5, INF, 0.1, "tanh"),
    (2, 4, INF, 0.1, "tanh"), (2, 0.5, 4, 0.1, "tanh"), (2, 4, 4, 0.1, "tanh"),
    (2, 4, 16, 1, "tanh"),
    (2, 4, 1, 0.1, "erf"), (2, 4, INF, 1, "relu"), (2, 0.5, 4, 1, "relu"),
    (2, 4, 1, 0.1, "linear"), (2, 4, INF, 0.1, SOFTPLUS), (2, 0.5, 1, 1, SOFTPLUS),
    (2, 4, 1, 0.001, "tanh"), (2, 4, INF, 0.001, "tanh"), (2, 4, 1, 3, "tanh"),
    (2, 0.5, INF, 3, "tanh"),
    (0.125, 8, INF, 0.1, "tanh"), (0.125, 8, 1, 0.1, "tanh"),  # psi_p/psi_n = 64
    (8, 0.125, INF, 0.1, "tanh"), (8, 0.125, 1, 0.1, "tanh"),  # psi_p/psi_n = 1/64
    (1, 3, 4, 0.001, "relu"), (1, 3, INF, 0.001, "relu"),  # kinked activation at small t
    # data on a subspace of dimension psi_d d (docs/theory.md, Sec. 12): (..., lam, psi_d)
    (2, 0.5, 1, 0.1, "tanh", 0.01, 0.25), (2, 4, INF, 0.1, "tanh", 0.01, 0.25),
    (1, 3, 4, 0.1, "tanh", 0.01, 0.5),
    # finite training time (docs/theory.md, Sec. 10): (..., lam, psi_d, tau); the tau of one
    # setting share their fits
    (2, 0.5, INF, 0.1, "tanh", 0.01, 1.0, 10.0), (2, 0.5, INF, 0.1, "tanh", 0.01, 1.0, 1e3),
    (2, 0.5, 1, 0.1, "tanh", 0.01, 1.0, 10.0), (2, 0.5, 1, 0.1, "tanh", 0.01, 1.0, 1e3),
    (1, 3, 1, 0.1, "tanh", 0.0, 1.0, 10.0), (1, 3, 4, 0.1, "tanh", 0.0, 1.0, 100.0),
    (1, 3, INF, 0.1, "tanh", 0.0, 1.0, 100.0),
]
_FULL_EXTRA = [
    (2, 0.5, 16, 0.1, "tanh"), (2, 4, 16, 0.1, "tanh"), (2, 0.5, 1, 0.1, "relu"),
    (2, 4, 1, 0.1, "relu"), (2, 4, INF, 0.1, "relu"), (2, 4, 4, 1, "relu"),
    (2, 0.5, INF, 0.1, "erf"), (2, 4, 4, 0.1, "erf"), (2, 4, INF, 0.1, "linear"),
    (2, 0.5, 4, 0.1, "linear"), (2, 4, 4, 1, SOFTPLUS), (2, 0.5, 4, 0.001, "tanh"),
    (2, 4, 4, 3, "tanh"), (0.25, 16, INF, 0.1, "tanh"), (0.125, 8, 4, 0.1, "tanh"),
    (8, 0.125, 4, 0.1, "tanh"), (2, 4, 1, 0.001, "relu"), (1, 3, 1, 0.001, "relu"),
]
_QUICK = [(2, 0.5, 1, 0.5, "tanh", 0.05), (2, 2, INF, 0.5, "tanh", 0.05)]
#: name -> (settings, sizes d, seeds).  Every d is a multiple of 8, so that n = psi_n d and
#: p = psi_p d are integers for every ratio of the sets (a rounded n/d would add an irregular
#: O(1/d) term to the smooth 1/d law).
SETS = {
    "quick": (_QUICK, (16, 24, 32, 48), 3),
    "default": (_CORE, (80, 120, 160, 240), 4),
    "full": (_CORE + _FULL_EXTRA, (120, 200, 280, 400), 6),
}


def default_settings(which: str = "default", finite_m: bool = True) -> list[Setting]:
    """The settings of a built-in set (``quick``, ``default`` or ``full``; ``SETS``)."""
    if which not in SETS:
        raise ValueError(f"which must be one of {sorted(SETS)}, got {which!r}")
    out = []
    for row in SETS[which][0]:
        psi_n, psi_p, m, t, act = row[:5]
        if finite_m or m in (1, INF):
            out.append(Setting(psi_n, psi_p, m=m, t=t, lam=row[5] if len(row) > 5 else 0.01,
                               activation=act, psi_d=row[6] if len(row) > 6 else 1.0,
                               tau=row[7] if len(row) > 7 else INF))
    return out
