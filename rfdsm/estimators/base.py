"""The estimator seam: how the readout ``B`` is fitted, stated as a spectral form.

With the training Gram ``S`` (p x p, the ``U`` of ``docs/simulator.md``) and cross-moment ``C``
(d x p, the ``V``), every estimator here is a *spectral filter* of ``S``:

    K = g(S) C^T  (p x d),    B = -K^T = -C g(S),

``g`` acting on the eigenvalues of ``S``.  An :class:`Estimator` states which filter in a form
the evaluators can read, :meth:`Estimator.spectral_form` (a :class:`SpectralForm`):

* :class:`Resolvent` ``g(s) = 1/(s + z)``: ridge at ``z`` (``z = 0``: the ridgeless limit);
* :class:`GradientFlow` ``g(s) = (1 - exp(-ct (s + lam)))/(s + lam)``: gradient flow from
  ``B = 0`` on the ridge objective for a time ``ct`` in units of the rate ``c = 2h/psi_p``;
* :class:`StepRule` ``g_k(s) = (1 - (1 - c delta (s + lam))^k)/(s + lam)``: ``k`` steps of
  gradient descent of size ``delta`` in ``tau`` units (``docs/model.md``, "Optimizers"),
  with heavy-ball momentum ``beta`` (0: none).

The simulator evaluates any form (or a bare ``filter`` function); the theory evaluates the
forms it has equations for and refuses the others by name (:mod:`rfdsm.theory.routing`).  An
estimator given only a ``filter`` function has no form: the theory cannot know what it
computes, so it refuses it.  This module imports no evaluator.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core import diffusion
from ..core.registry import ByContent

__all__ = ["Estimator", "SpectralForm", "Resolvent", "GradientFlow", "StepRule",
           "flow_filter", "flow_rate"]

#: Probe spectra for the fingerprint: positive, spread over six decades (a filter is only
#: ever applied to eigenvalues of a positive semi-definite Gram).
_PROBE_EVALS = np.geomspace(1e-4, 1e2, 25) * 1.0123456789
_PROBE_SETTINGS = ({"psi_n": 1.3, "psi_p": 0.7, "t": 0.3, "lam": 0.0137},
                   {"psi_n": 0.6, "psi_p": 2.1, "t": 1.1, "lam": 0.5})


def _namespace(x):
    # filters are written once for NumPy and CuPy arrays
    mod = type(x).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    return np


def flow_rate(setting) -> float:
    """``c = 2 h / psi_p``: gradient descent on ``A`` with step ``eta`` moves
    ``B = sqrt(h) A / sqrt(p)`` by ``-eta (2h/(p d)) (B (S + lam) + C)``, i.e. at rate
    ``2h d/p = 2h/psi_p`` in ``tau = k eta / d^2`` (``docs/model.md``, "Training time").
    The setting's ``psi_p`` is used, so at a ``d`` where ``psi_p d`` is not an integer the
    clock is that of ``p = psi_p d``."""
    return 2.0 * setting.h / setting.psi_p


def flow_filter(evals, lam: float, ctau: float):
    """Gradient flow from ``B = 0`` for a time ``tau`` at rate ``c`` (``ctau = c tau``):

        g(s) = (1 - exp(-c tau (s + lam))) / (s + lam) = c tau phi1(c tau (s + lam)),

    ``phi1(y) = -expm1(-y)/y`` (``phi1(0) = 1``), so that ``c tau (s + lam)`` far below 1
    loses no digits and ``lam = 0``, ``s = 0`` gives the limit ``c tau``.  Eigenvalues below 0
    are round-off of a positive semi-definite Gram and are read as 0.
    """
    xp = _namespace(evals)
    y = ctau * (xp.maximum(evals, 0.0) + lam)
    safe = xp.where(y > 0.0, y, 1.0)
    return ctau * xp.where(y > 0.0, -xp.expm1(-safe) / safe, 1.0)


class _Probe:
    """The parameters of a setting that a filter may read, at a probe point (the seam sits below
    :class:`rfdsm.Setting`, which holds estimators): defaults of the parameter table,
    ``a = exp(-t)``, ``h = 1 - exp(-2t)``."""

    def __init__(self, psi_n, psi_p, t, lam, m=1, tau=math.inf):
        self.psi_n, self.psi_p, self.t, self.lam, self.m, self.tau = psi_n, psi_p, t, lam, m, tau
        self.a, self.h = diffusion.a(t), diffusion.h(t)
        self.psi_d = 1.0


class SpectralForm:
    """What an estimator computes, in a form the evaluators can read; ``filter(evals)`` is
    ``g`` on the eigenvalues of the training Gram."""

    def filter(self, evals):
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class Resolvent(SpectralForm):
    """``g(s) = 1/(s + z)``: ridge at ``z >= 0``; ``z = 0`` is the ridgeless limit ``z -> 0+``
    (the pseudo-inverse: eigenvalues below ``p eps max_eig`` read as 0)."""

    z: float

    def filter(self, evals):
        xp = _namespace(evals)
        cut = evals.shape[0] * np.finfo(float).eps * max(float(evals[-1]), 0.0)
        return xp.where(evals + self.z > cut, 1.0 / xp.maximum(evals + self.z, cut), 0.0)

    def describe(self) -> str:
        return f"the resolvent 1/(s + {self.z:g})"


@dataclass(frozen=True)
class GradientFlow(SpectralForm):
    """``g(s) = (1 - exp(-ct (s + lam)))/(s + lam)``; ``ct = c tau``, ``c = 2h/psi_p``."""

    lam: float
    ct: float

    def filter(self, evals):
        return flow_filter(evals, self.lam, self.ct)

    def describe(self) -> str:
        return f"gradient flow for c tau = {self.ct:g} at lam = {self.lam:g}"


@dataclass(frozen=True)
class StepRule(SpectralForm):
    """``k`` steps of gradient descent from ``B = 0``, step ``c delta`` on the eigenvalue
    ``s + lam``, with heavy-ball momentum ``beta``: per mode ``b_{j+1} = b_j - c delta
    ((s + lam) b_j - 1) + beta (b_j - b_{j-1})`` (``b`` the filter value), so ``g = b_k``;
    ``beta = 0`` gives ``(1 - (1 - c delta (s + lam))^k)/(s + lam)``."""

    lam: float
    c_delta: float
    steps: int
    beta: float = 0.0

    def filter(self, evals):
        xp = _namespace(evals)
        x = xp.maximum(evals, 0.0) + self.lam
        cd = self.c_delta
        if self.beta == 0.0:
            q = 1.0 - cd * x
            small = xp.abs(cd * x) < 1e-8
            safe = xp.where(small, 1.0, x)
            # -expm1(k log1p(-c delta x)) / x keeps the digits of a small step
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                exact = -xp.expm1(self.steps * xp.log1p(-cd * safe)) / safe
                power = (1.0 - q ** self.steps) / safe
            exact = xp.where(q > 0, exact, power)
            return xp.where(small, cd * self.steps, exact)
        # heavy ball: (b_{j+1}, b_j, 1) = M (b_j, b_{j-1}, 1), M = [[1 + beta - c delta x,
        # -beta, c delta], [1, 0, 0], [0, 0, 1]], from b_0 = b_{-1} = 0: g = (M^k)[0, 2], M^k by
        # repeated squaring (O(log k) 3 x 3 products per mode, no division at x = 0)
        one, zero = xp.ones_like(x), xp.zeros_like(x)
        M = xp.stack([xp.stack([1.0 + self.beta - cd * x, -self.beta * one, cd * one], -1),
                      xp.stack([one, zero, zero], -1),
                      xp.stack([zero, zero, one], -1)], -2)
        P = xp.broadcast_to(xp.eye(3), M.shape).copy()
        k = int(self.steps)
        with np.errstate(invalid="ignore", over="ignore"):
            while k:
                if k & 1:
                    P = P @ M
                M = M @ M
                k >>= 1
        return P[..., 0, 2]

    def stable(self, s_max: float) -> bool:
        """Whether every mode up to ``s_max`` stays bounded: ``c delta (s + lam) < 2(1 + beta)``."""
        return self.c_delta * (s_max + self.lam) < 2.0 * (1.0 + self.beta)

    def describe(self) -> str:
        mom = f", momentum {self.beta:g}" if self.beta else ""
        return f"{self.steps} gradient steps of c delta = {self.c_delta:g}{mom}"


class Estimator(ByContent):
    """An estimator: a ``name`` (the value of the ``estimator`` parameter of
    :class:`rfdsm.Setting`) and what it computes.

    Pass ``form(setting) -> SpectralForm`` (then the filter follows from it, and the theory can
    evaluate the forms it knows), or only ``filter(evals, setting) -> g(evals)`` (elementwise,
    NumPy or CuPy arrays: the simulator evaluates it, the theory refuses it); or subclass and
    override :meth:`spectral_form`, :meth:`filter` or :meth:`solve` (a faster exact path).
    With both, the filter must equal the form's at probe spectra (a ValueError otherwise).
    """

    _registry_kind = "estimator"

    def __init__(self, name: str, filter: Callable | None = None, *,
                 form: Callable | None = None, has_theory: bool | None = None,
                 description: str = ""):
        if not isinstance(name, str) or not name:
            raise ValueError("estimator name must be a non-empty string")
        if has_theory is not None:
            warnings.warn("Estimator(has_theory=...) is ignored: the theory reads the "
                          "estimator's spectral form (form=...), and refuses an estimator "
                          "given by a filter function only", DeprecationWarning, stacklevel=2)
        for what, fn in (("filter", filter), ("form", form)):
            if fn is not None and not callable(fn):
                raise ValueError(f"estimator {name!r}: {what} must be callable")
        self.name = name
        self.description = description
        self._filter = filter
        self._form = form
        self._fingerprint = None

    def spectral_form(self, setting) -> SpectralForm | None:
        """The form of this estimator at ``setting`` (``None``: a filter function only)."""
        return None if self._form is None else self._form(setting)

    @property
    def has_theory(self) -> bool:
        """Kept for old callers: whether the estimator states a spectral form."""
        return self._form is not None or type(self).spectral_form is not Estimator.spectral_form

    def filter(self, evals, setting):
        """``g(evals)`` for the eigenvalues ``evals`` of the training Gram."""
        if self._filter is not None:
            return self._filter(evals, setting)
        form = self.spectral_form(setting)
        if form is None:
            raise NotImplementedError(f"estimator {self.name!r} defines no filter")
        return form.filter(evals)

    def check(self, evals, setting) -> None:
        """Refuse (ValueError) a spectrum on which this estimator has no finite answer, e.g. a
        gradient step that diverges; called with the Gram's eigenvalues before the filter."""

    def solve(self, S, C, setting, ops):
        """``K = g(S) C^T`` (p x d) through the eigendecomposition ``S = Q diag(s) Q^T``."""
        evals, evecs = ops.xp.linalg.eigh(S)
        self.check(evals, setting)
        g = self.filter(evals, setting)
        return evecs @ (g[:, None] * (evecs.T @ C.T))

    # identity by content ----------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Name, class and the filter at fixed probe spectra and settings (12 digits, so
        that last-ulp differences of libm between machines do not matter).  A filter given beside
        a form must agree with it at those probes."""
        if self._fingerprint is None:
            parts = [self.name, type(self).__qualname__]
            for values in _PROBE_SETTINGS:
                st = _Probe(**values)
                try:
                    g = np.asarray(self.filter(_PROBE_EVALS.copy(), st), dtype=float)
                    parts.append([f"{v:.12g}" for v in g])
                except NotImplementedError:
                    parts.append("solve-only")
                    continue
                form = self.spectral_form(st)
                if form is not None:
                    if self._filter is not None:
                        ref = np.asarray(form.filter(_PROBE_EVALS.copy()), dtype=float)
                        if not np.allclose(g, ref, rtol=1e-9, atol=0.0):
                            raise ValueError(f"estimator {self.name!r}: its filter is not "
                                             f"its form ({form.describe()}) at probe spectra")
            self._fingerprint = hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]
        return self._fingerprint
