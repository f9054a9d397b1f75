"""Scores over diffusion time: the fitted RF score at every time of a grid, and two references.

A *grid score* holds a grid ``t_1 < ... < t_K`` and evaluates ``s(y, t_k)`` on the rows of
``y`` for a grid index ``k`` (``docs/sampling.md``, Sec. 1):

* :func:`fit_rf_scores`: one RF score per grid time, all with the ``W``, the training points
  and (finite ``m``) the noise samples of one seed, so that the fit at ``t_k`` is the fit of
  :func:`rfdsm.simulate.fit_score` for ``setting.replace(t=t_k)``; only what depends on ``t``
  (the training moments, the solve) is redone per time;
* :class:`TrueScores`: ``s*(y, t) = -(a^2 Sigma + h I)^{-1} (y - a mu)`` (``-y`` for isotropic
  data);
* :class:`EmpiricalScores`: the exact score of the noised empirical law
  ``(1/n) sum_nu N(a x_nu, h I)``, ``s(y) = (sum_nu w_nu a x_nu - y) / h`` with softmax weights
  computed with the maximum subtracted (logsumexp), so that no weight under- or overflows.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..core import diffusion

__all__ = ["GridScore", "RFScores", "TrueScores", "EmpiricalScores", "fit_rf_scores",
           "target_covariance", "target_law", "ROW_BLOCK"]

#: Rows of ``y`` per block when evaluating a score (bounds the ``rows x p`` feature block).
ROW_BLOCK = 4096


def _a_h(t: float) -> tuple[float, float]:
    return diffusion.a(t), diffusion.h(t)


def target_law(data_model, d: int):
    """``(mu, Sigma)`` of the data model at dimension ``d``: ``mu`` a vector or None for a
    centred law, ``Sigma`` (d x d) or None for the identity.

    A Gaussian law descriptor (``data_model.law()``, ``rfdsm.data.GaussianLaw``) gives both:
    ``mean(d)`` and ``Sigma = O diag(v) O^T`` from ``eigenvalues(d)`` and ``orientation(d)``.
    Otherwise the covariance comes from :func:`target_covariance` and the law is taken as
    centred."""
    from ..data.base import GaussianLaw

    try:
        law = data_model.law()
    except (AttributeError, NotImplementedError):
        law = None
    if not isinstance(law, GaussianLaw):
        return None, target_covariance(data_model, d)
    mu = None if law.is_centred else np.asarray(law.mean(d), dtype=float)
    if law.values == (1.0,):
        return mu, None
    lam = np.asarray(law.eigenvalues(d), dtype=float)
    O = law.orientation(d)
    return mu, (np.diag(lam) if O is None else (O * lam) @ O.T)


def target_covariance(data_model, d: int):
    """``Sigma`` (d x d) of the data model, or None for the identity.

    A data model offers its covariance by a method ``covariance(d) -> (d x d) array``, or, for
    one whose ``Sigma`` is diagonal (``rfdsm.data.Spectrum``), ``eigenvalues(d)``; one that
    offers neither is read through its law (:func:`target_law`), else taken as
    ``Sigma = I``."""
    cov = getattr(data_model, "covariance", None)
    if cov is None:
        eig = getattr(data_model, "eigenvalues", None)
        if eig is None:
            from ..data.base import GaussianLaw

            try:
                law = data_model.law()
            except (AttributeError, NotImplementedError):
                return None
            return target_law(data_model, d)[1] if isinstance(law, GaussianLaw) else None
        return np.diag(np.asarray(eig(d), dtype=float))
    S = np.asarray(cov(d), dtype=float)
    if S.shape != (d, d):
        raise ValueError(f"data model {data_model.name!r}: covariance({d}) has shape {S.shape}, "
                         f"expected ({d}, {d})")
    return S


class GridScore:
    """Base class: ``times`` (increasing), ``kind``, ``errors`` (per-time score error
    ``1/d E|s - s*|^2`` under the noised data law, or None where not computed), ``info``."""

    kind = ""

    def __init__(self, times, errors=None, info=None):
        self.times = np.asarray(times, dtype=float)
        self.errors = None if errors is None else np.asarray(errors, dtype=float)
        self.info = dict(info or {})

    def __call__(self, k: int, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class RFScores(GridScore):
    """The fitted RF scores: ``s_k(y) = B_k phi(y) / sqrt(h_k) = -phi(y)^T K_k / sqrt(h_k)``,
    ``phi(y) = sigma(W y / sqrt d)`` (``docs/model.md``)."""

    kind = "rf"

    def __init__(self, times, act, W, Ks, hs, errors, tests, info, training):
        super().__init__(times, errors, info)
        self.act = act
        self.Wt = np.ascontiguousarray(W.T) / math.sqrt(W.shape[1])  # d x p, 1/sqrt(d) folded in
        # -K_k / sqrt(h_k): one product per evaluation
        self.readouts = [np.ascontiguousarray(-K / math.sqrt(h)) for K, h in zip(Ks, hs)]
        self.tests = np.asarray(tests, dtype=float)
        self.training = training  # n x d: the training points x_nu of this seed

    def __call__(self, k, y):
        out = np.empty_like(y)
        R = self.readouts[k]
        for lo in range(0, y.shape[0], ROW_BLOCK):
            F = np.ascontiguousarray(y[lo:lo + ROW_BLOCK] @ self.Wt)
            self.act.apply_(F)
            out[lo:lo + ROW_BLOCK] = F @ R
        return out


class TrueScores(GridScore):
    """``s*(y, t_k) = -(a_k^2 Sigma + h_k I)^{-1} (y - a_k mu)``; ``cov`` None means
    ``Sigma = I``, where ``a^2 + h = 1`` makes it ``-(y - a mu)`` at every time; ``mean``
    None means ``mu = 0``."""

    kind = "true"

    def __init__(self, times, cov=None, mean=None):
        super().__init__(times, np.zeros(len(times)), {})
        self.mats = None
        self.mean = None if mean is None else np.asarray(mean, dtype=float)
        if cov is not None:
            lam, Q = np.linalg.eigh(cov)
            self.mats = []
            for t in self.times:
                a, h = _a_h(t)
                self.mats.append((Q / (a * a * lam + h)) @ Q.T)

    def __call__(self, k, y):
        if self.mean is not None:
            y = y - _a_h(self.times[k])[0] * self.mean[None, :]
        return -y if self.mats is None else -(y @ self.mats[k])


class EmpiricalScores(GridScore):
    """The exact score of ``(1/n) sum_nu N(a x_nu, h I)`` at each grid time.

    ``s(y) = (a sum_nu w_nu(y) x_nu - y) / h``, ``w = softmax(l)`` with
    ``l_nu = (a y.x_nu - a^2 |x_nu|^2 / 2) / h`` (``-|y - a x_nu|^2/(2h)`` up to a term common
    to all ``nu``); the largest ``l_nu`` is subtracted before exponentiating."""

    kind = "empirical"

    def __init__(self, times, X, errors=None):
        super().__init__(times, errors, {})
        self.X = np.asarray(X, dtype=float)
        self.sq = np.einsum("ij,ij->i", self.X, self.X)

    def __call__(self, k, y):
        a, h = _a_h(self.times[k])
        out = np.empty_like(y)
        for lo in range(0, y.shape[0], ROW_BLOCK):
            yb = y[lo:lo + ROW_BLOCK]
            logits = (a * (yb @ self.X.T) - 0.5 * a * a * self.sq[None, :]) / h
            logits -= logits.max(axis=1, keepdims=True)
            w = np.exp(logits)
            w /= w.sum(axis=1, keepdims=True)
            out[lo:lo + ROW_BLOCK] = (a * (w @ self.X) - yb) / h
        return out


def fit_rf_scores(setting, d: int, seed: int, times, *, block_bytes=None, chunk=None) -> RFScores:
    """One RF score per time of ``times`` (increasing), for ``setting`` with its ``t``
    replaced by each time (its ``m``, ``lam``, ``tau``, activation, estimator, data model
    kept), from one draw of ``W`` and the training set (``rfdsm.simulate.fit.draw`` of
    ``seed``) and one set of feature correlations.

    Per time: the training moments, the estimator's solve, and the exact population score
    and test errors (the registered metrics ``score`` and ``test`` on the fit)."""
    from ..metrics import get_metric
    from ..simulate import fit as _fit
    from ..simulate.threads import THREADS

    n, p = setting.sizes(d)
    bb = block_bytes or _fit.DEFAULT_BLOCK_BYTES
    score_m, test_m = get_metric("score"), get_metric("test")
    t0 = time.perf_counter()
    timing = {"time_moments": 0.0, "time_solve": 0.0, "time_population": 0.0}
    Ks, errs, tests, shared = [], [], [], _fit.Shared()
    with THREADS.blas("fit", p):
        for t in times:
            fitted = _fit.fit(setting.replace(t=float(t)), d, seed, bb, chunk, shared=shared)
            errs.append(float(score_m.simulate(fitted)))
            tests.append(float(test_m.simulate(fitted)))
            Ks.append(fitted.K)
            for key in timing:
                timing[key] += fitted.info[key]
    dr = shared.draw
    info = {**timing, "time_fits": time.perf_counter() - t0, "n": n, "p": p}
    hs = [_a_h(float(t))[1] for t in times]
    return RFScores(times, setting.sigma, dr.W, Ks, hs, errs, tests, info, dr.X)
