"""One finite-size realisation: draw ``W`` and the data, fit ``B``, evaluate the errors.

Notation of ``docs/model.md``: ``B = sqrt(h) A / sqrt(p)`` (d x p), features ``phi(y) =
sigma(W y / sqrt d)``, so ``sqrt(h) s_A(y) = B phi(y)``.  For a Gram ``U = E phi phi^T`` and a
cross-moment ``V = E eps phi^T`` every error is a quadratic form in ``B``:

    1/d E|B phi + eps|^2 = 1 + [tr(B U B^T) + 2 tr(B V^T)] / d.

:func:`fit` returns a :class:`FittedScore`: ``B = -C g(S)`` with ``S`` the (empirical or
noise-averaged) Gram, ``C`` the matching cross-moment and ``g`` the setting's estimator
(ridge: ``g(s) = 1/(s + lam)``, :mod:`rfdsm.estimators`), and the exact population moments of
the setting's data model (isotropic: ``V_pop = sqrt(h) E[phi y^T]^T`` by Stein's lemma and
``U_pop`` by the Mehler series).  The errors are metrics applied to it (:mod:`rfdsm.metrics`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..data import get_data
from ..estimators import ridge_solve  # noqa: F401  (re-exported: its old home)
from ..estimators.ridge import cholesky_solve
from ..metrics import TRAIN_ROUNDOFF  # noqa: F401  (re-exported: its old home)
from . import mehler
from .montecarlo import mc_errors
from .threads import THREADS

#: Memory for the streamed blocks of noisy features (finite m) or Hermite moments (m = inf).
DEFAULT_BLOCK_BYTES = 256 * 2**20


@dataclass
class Draw:
    """Random quantities of one seed; noise is streamed from ``noise_rng`` in data-point order."""

    W: np.ndarray  # p x d
    X: np.ndarray  # n x d (rows: data points)
    noise_seed: np.random.SeedSequence
    mc_seed: np.random.SeedSequence


def draw(n: int, p: int, d: int, seed: int, data=None) -> Draw:
    """``W`` and the ``n`` training points of ``seed`` (``data``: data model; None: isotropic)."""
    # Independent streams, so that W and X are the same for every m and chunking.
    ss_w, ss_x, ss_eps, ss_mc = np.random.SeedSequence(seed).spawn(4)
    W = np.random.default_rng(ss_w).standard_normal((p, d))
    X = (data or get_data("isotropic")).sample(n, d, np.random.default_rng(ss_x))
    return Draw(W, X, ss_eps, ss_mc)


@dataclass
class Moments:
    """``S`` (p x p Gram), ``C`` (d x p cross-moment) and ``mean |eps|^2 / d`` of a fit."""

    S: np.ndarray
    C: np.ndarray
    noise_sq: float
    info: dict = field(default_factory=dict)


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return dt


class HostOps:
    """The CPU backend: NumPy arrays, SciPy's BLAS/LAPACK, the Numba kernels.

    Every step of a fit (:func:`evaluate_seed` and the moment functions it calls) runs on an
    ``ops`` object with these members; :class:`rfdsm.simulate.gpu.Ops` is the GPU counterpart,
    whose ``moments``, ``accumulate`` and ``apply_shifted`` are written with array operations
    where these call Numba kernels and BLAS ``syrk``.
    """

    xp = np
    name = "cpu"
    device = "host"

    @staticmethod
    def to_device(x, dtype=None):
        return np.asarray(x, dtype=dtype)

    @staticmethod
    def to_host(x):
        return np.asarray(x)

    @staticmethod
    def sync():
        pass

    @staticmethod
    def apply_shifted(act, G, shift, m):
        """``sigma(G[r] + shift[r // m])``, in place."""
        return act.apply_shifted_(G, shift, m)

    @staticmethod
    def moments(act, mu, s, K: int, block_bytes: int):
        """Hermite moments ``beta`` (K+1, p, c) and ``E sigma^2`` (p, c) for means ``mu`` (p, c)
        and scales ``s`` (p,); ``block_bytes`` bounds only the GPU's temporaries."""
        return act.moments(mu, s[:, None], K)

    @staticmethod
    def residual_profile(beta, m2):
        return mehler.residual_profile(beta, m2)

    @staticmethod
    def accumulate(U, rho, beta, weight):
        mehler.accumulate(U, rho, beta, weight)

    cholesky_solve = staticmethod(cholesky_solve)

    @staticmethod
    def correlations(W):
        return mehler.correlations(W)


HOST = HostOps()


def _blas(ops, op, p):
    # BLAS thread limits (docs/simulator.md, "Threads") apply to the host's BLAS only
    return THREADS.blas(op, p) if ops is HOST else contextlib.nullcontext()


def finite_m_moments(act, dr: Draw, m: int, a: float, h: float, block_bytes: int,
                     chunk: int | None = None, dtype=np.float64, ops=HOST, W=None) -> Moments:
    """Stream the ``n m`` noisy inputs in chunks of data points; accumulate ``F F^T / N``,
    ``Z F^T / N`` and ``|Z|^2 / N`` without ever holding the whole ``p x nm`` feature matrix.

    ``dtype`` is the precision of the per-chunk products (the noise is drawn in float64 on the
    host, so every precision and backend sees the same realisation); the sums over chunks are
    kept in float64.  ``ops``: the backend (:class:`HostOps` or the GPU's).
    """
    dt = _float_dtype(dtype)
    xp = ops.xp
    X = ops.to_device(dr.X)
    W = ops.to_device(dr.W) if W is None else W  # W: dr.W already on the device
    p, d = W.shape
    n = X.shape[0]
    N = n * m
    if chunk is None:
        chunk = max(1, int(block_bytes // (dt.itemsize * m * (2 * p + d))))
        chunk = -(-n // -(-n // chunk))  # equal blocks: no short, inefficient last one
    chunk = min(chunk, n)
    rng = np.random.default_rng(dr.noise_seed)
    Gx = ((a / math.sqrt(d)) * (X @ W.T)).astype(dt, copy=False)  # n x p: shared by the m copies
    Wt = (W.T * math.sqrt(h / d)).astype(dt, copy=False)  # d x p
    S = xp.zeros((p, p))
    C = xp.zeros((d, p))
    zz = 0.0
    t_feat = t_gram = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t0 = time.perf_counter()
        E = rng.standard_normal(((stop - start) * m, d))
        zz += float(np.einsum("ij,ij->", E, E))
        E = ops.to_device(E, dtype=dt)
        G = ops.apply_shifted(act, E @ Wt, Gx[start:stop], m)
        ops.sync()
        t1 = time.perf_counter()
        # On the CPU all products of the loop go through NumPy's BLAS (G^T @ G is a syrk
        # there): SciPy ships a second OpenBLAS whose idle threads spin after each call and
        # measurably slow the next NumPy product (about 25 % of this loop at d = 400, 2 cores).
        S += G.T @ G
        C += E.T @ G
        ops.sync()
        t_gram += time.perf_counter() - t1
        t_feat += t1 - t0
    S /= N
    C /= N
    return Moments(S, C, zz / (N * d), {"chunk_size": chunk, "n_chunks": -(-n // chunk),
                                       "time_features": t_feat, "time_gram": t_gram})


def noise_averaged_moments(act, dr: Draw, a: float, h: float, block_bytes: int,
                           corr=None, dtype=np.float64, ops=HOST, W=None) -> Moments:
    """Exact ``U = 1/n sum_nu E_eps phi phi^T`` and ``V = 1/n sum_nu E_eps eps phi^T`` (m = inf).

    Given ``x_nu``, the preactivation of feature i is Gaussian with mean
    ``mu_{i nu} = a w_i.x_nu / sqrt d`` and variance ``h r_i``, and two features have noise
    correlation ``rho_ij`` (the same as for ``y ~ N(0, I)``).  Off-diagonal entries of ``U``
    come from the Mehler series, the diagonal from the exact second moment, and ``V`` from
    Stein's lemma: ``E_eps[eps sigma(g_i)] = sqrt(h/d) w_i E sigma'(g_i)``.

    The series order of each block of data points is the smallest whose Cauchy-Schwarz tail
    bound is below ``SERIES_TOL * max E sigma^2`` (:func:`mehler.adaptive_order`); ``dtype``
    is the precision of the series products (the Hermite moments and all sums over blocks
    are float64).  ``corr``: :func:`mehler.correlations` of ``W``, if already computed.
    """
    dt = _float_dtype(dtype)
    xp = ops.xp
    W = ops.to_device(dr.W) if W is None else W  # W: dr.W already on the device
    p, d = W.shape
    n = dr.X.shape[0]
    r, rho, rho_max = corr if corr is not None else ops.correlations(W)
    K = mehler.series_order(rho_max)
    s = xp.sqrt(h * r)
    chunk = max(1, min(n, int(block_bytes // (8 * (K + 2) * p))))
    Gx = (a / math.sqrt(d)) * (W @ ops.to_device(dr.X).T)  # p x n
    rho_s = rho.astype(dt, copy=False)
    U = xp.zeros((p, p))
    diag = xp.zeros(p)
    dbar = xp.zeros(p)
    orders, bounds = [], []
    t_quad = t_series = 0.0
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        t0 = time.perf_counter()
        beta, m2 = ops.moments(act, xp.ascontiguousarray(Gx[:, start:stop]), s, K, block_bytes)
        R = ops.residual_profile(beta, m2)
        Kc = mehler.adaptive_order(rho_max, K, R, float(m2.max()))
        ops.sync()
        t1 = time.perf_counter()
        with _blas(ops, "series", p):
            ops.accumulate(U, rho_s, beta[: Kc + 1].astype(dt, copy=False), 1.0 / n)
        ops.sync()
        t_series += time.perf_counter() - t1
        t_quad += t1 - t0
        orders.append(Kc)
        bounds.append(rho_max ** (Kc + 1) * max(float(R[Kc]), 0.0))
        diag += m2.sum(axis=1) / n
        dbar += beta[1].sum(axis=1) / n
    U[xp.arange(p), xp.arange(p)] = diag
    D = dbar / s  # mean over nu of E sigma'(g_i), by Stein: beta_1 = s E sigma'
    C = math.sqrt(h / d) * (W.T * D[None, :])  # d x p
    info = {"hermite_order": max(orders), "hermite_order_cap": K, "series_bound": max(bounds),
            "rho_max": rho_max, "chunk_size": chunk, "n_chunks": -(-n // chunk),
            "time_quadrature": t_quad, "time_series": t_series}
    return Moments(U, C, 1.0, info)


def population_moments(act, W, h: float, corr=None, ops=HOST, means=None) -> Moments:
    """Exact ``U_pop = E phi phi^T`` and ``V_pop = E eps phi^T`` for fresh ``y = a x + sqrt(h) eps``.

    The preactivations have the correlations ``corr`` (default: those of ``W``, i.e.
    ``y ~ N(0, I)``), scales ``sqrt(r_i)`` and means ``means`` (default 0); ``V_pop =
    sqrt(h/d) W^T diag(E sigma'(u_i))`` (Stein), and ``U_pop`` is the Mehler series with the
    Hermite coefficients of each feature at its mean and scale.  The law of the data enters
    through ``corr`` and ``means`` only (:mod:`rfdsm.simulate.population`).
    """
    p, d = W.shape
    r, rho, rho_max = corr if corr is not None else ops.correlations(W)
    K = mehler.series_order(rho_max)
    s = np.sqrt(ops.to_host(r))
    # p values: cheap on the host for any backend
    beta, m2 = act.moments(np.zeros(p) if means is None else np.asarray(means, float), s, K)
    U = ops.xp.zeros((p, p))
    ops.accumulate(U, rho, ops.to_device(beta[:, :, None]), 1.0)
    U[ops.xp.arange(p), ops.xp.arange(p)] = ops.to_device(m2)
    C = math.sqrt(h / d) * (W.T * ops.to_device(beta[1] / s)[None, :])
    resid = m2 - np.einsum("ki,ki->i", beta, beta)
    return Moments(U, C, 1.0, {"population_hermite_order": K,
                                "population_series_bound": mehler.tail_bound(rho_max, K, resid)})


def quadratic(K, mom: Moments, ops=HOST) -> float:
    """``tr(B U B^T) + 2 tr(B V^T)`` for ``B = -K^T``."""
    xp = ops.xp
    return float(xp.sum(K * (mom.S @ K)) - 2.0 * xp.sum(K * mom.C.T))


@dataclass
class FittedScore:
    """The score of one seed's fit, with what its metrics need (``rfdsm.metrics``).

    ``s_A(y) = A sigma(W y / sqrt d) / sqrt p = B phi(y) / sqrt(h)`` (``docs/model.md``),
    ``B = -K^T`` with ``K = g(S) C^T`` of the setting's estimator.  ``train_moments``: the
    training ``(S, C, |Z|^2/(N d))``; ``population``: the exact ``(U_pop, V_pop)`` of a fresh
    point (``docs/simulator.md``, Secs. 1 and 4).  Arrays live on the backend of ``ops``.
    """

    setting: object
    d: int
    seed: int
    W: object  # p x d
    K: object  # p x d
    train_moments: Moments
    population: Moments
    draw: Draw
    ops: object = HOST
    population_quadratic: float = math.nan  # tr(B U_pop B^T) + 2 tr(B V_pop^T)
    info: dict = field(default_factory=dict)

    @property
    def B(self):
        """``B = sqrt(h) A / sqrt(p)`` (d x p)."""
        return -self.K.T

    @property
    def activation(self):
        return self.setting.sigma

    @property
    def t(self) -> float:
        return self.setting.t

    @property
    def h(self) -> float:
        return self.setting.h

    def quadratic(self, mom: Moments) -> float:
        """``tr(B U B^T) + 2 tr(B V^T)`` for the moments ``mom`` (``S = U``, ``C = V``)."""
        return quadratic(self.K, mom, self.ops)

    def __call__(self, y) -> np.ndarray:
        """``s_A(y)`` for the rows of ``y`` (n_points x d), on the host."""
        y = np.asarray(y, dtype=float)
        W, K = self.ops.to_host(self.W), self.ops.to_host(self.K)
        F = np.ascontiguousarray(y @ W.T) / math.sqrt(self.d)
        self.activation.apply_(F)
        return -(F @ K) / math.sqrt(self.h)


@dataclass
class Shared:
    """What the fits of one seed at several settings of the same sizes share (the sampler's
    fits at the times of its grid): the draw of ``W`` and the data, the correlations of ``W``,
    and the population moments' cache of :func:`rfdsm.simulate.population.population_moments`."""

    draw: Draw | None = None
    corr: tuple | None = None
    population: dict = field(default_factory=dict)


def training_moments(setting, d: int, seed: int, block_bytes: int, chunk, dt, ops=HOST,
                     shared: Shared | None = None):
    """``(draw, W on the device, correlations of W, training Moments)`` of ``seed`` (the draw
    and correlations of ``shared`` when it holds them, else made and kept there)."""
    n, p = setting.sizes(d)
    act, a, h = setting.sigma, setting.a, setting.h
    if shared is not None and shared.draw is not None:
        dr, W, corr = shared.draw, ops.to_device(shared.draw.W), shared.corr
    else:
        dr = draw(n, p, d, seed, setting.data_model)
        W = ops.to_device(dr.W)
        corr = ops.correlations(W)
        if shared is not None:
            shared.draw, shared.corr = dr, corr
    if setting.m == math.inf:
        mom = noise_averaged_moments(act, dr, a, h, block_bytes, corr, dt, ops, W)
    else:
        mom = finite_m_moments(act, dr, int(setting.m), a, h, block_bytes, chunk, dt, ops, W)
    return dr, W, corr, mom


def fit(setting, d: int, seed: int, block_bytes: int = DEFAULT_BLOCK_BYTES,
        chunk: int | None = None, dtype=np.float64, ops=HOST,
        shared: Shared | None = None) -> FittedScore:
    """Draw ``W`` and the data of ``seed``, form the training moments, fit ``B`` with the
    setting's estimator and the population moments of its data model: the one fit pipeline
    (the sampler's fits at several times pass one :class:`Shared`).  The draws are the host's
    NumPy streams whatever the backend."""
    p = setting.sizes(d)[1]
    act, h = setting.sigma, setting.h
    dt = _float_dtype(dtype)
    from . import population  # imports this module

    setting.estimator_object.spectral_form(setting)  # refuses bad parameters before any work
    t0 = time.perf_counter()
    dr, W, corr, mom = training_moments(setting, d, seed, block_bytes, chunk, dt, ops, shared)
    ops.sync()
    t1 = time.perf_counter()
    with _blas(ops, "solve" if setting.m != math.inf else "solve after series", p):
        K = setting.estimator_object.solve(mom.S, mom.C, setting, ops)
    ops.sync()
    t2 = time.perf_counter()
    with _blas(ops, "population", p):
        pop = population.population_moments(setting.data_model, act, W, h, corr, ops,
                                            None if shared is None else shared.population)
        q_pop = quadratic(K, pop, ops)
    t3 = time.perf_counter()
    info = {**mom.info, **pop.info, "time_moments": t1 - t0, "time_solve": t2 - t1,
            "time_population": t3 - t2, "backend": ops.name, "dtype": dt.name}
    return FittedScore(setting, int(d), int(seed), W, K, mom, pop, dr, ops, q_pop, info)


def evaluate_seed(setting, d: int, seed: int, block_bytes: int, chunk: int | None,
                  mc_test: int, dtype, ops=HOST, metrics=None) -> dict:
    """One realisation on backend ``ops``: ``{"seed", "train", "test", "score", <metrics>,
    "wall_time", "diagnostics"}``; ``metrics``: :func:`rfdsm.metrics.simulation_metrics`."""
    from ..metrics import simulation_metrics
    from . import diagnostics as _  # noqa: F401  (hands the simulator's metric functions over)

    t0 = time.perf_counter()
    fitted = fit(setting, d, seed, block_bytes, chunk, dtype, ops)
    row = {"seed": int(seed)}
    for metric in simulation_metrics(metrics):
        row[metric.name] = float(metric.function("simulate")(fitted))
    diag = dict(fitted.info)
    if ops.name != "cpu":
        diag["device"] = ops.device
    if mc_test:
        diag.update(mc_errors(setting.sigma, fitted.draw, ops.to_host(fitted.K), setting.a,
                              setting.h, mc_test, data=setting.data_model))
    diag["time_total"] = time.perf_counter() - t0
    row["wall_time"] = diag["time_total"]
    row["diagnostics"] = diag
    return row
