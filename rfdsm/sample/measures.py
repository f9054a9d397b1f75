"""What says whether generated points generalise (``docs/sampling.md``, Sec. 3).

* :func:`nn_ratios`: ``|x - x^(1)| / |x - x^(2)|`` per generated point, ``x^(1)``, ``x^(2)`` its
  nearest and second-nearest training points; :func:`memorised_fraction` the fraction below a
  threshold (1/3: Bonnaire, Urfin, Biroli & Mezard 2025, eq. 6), :func:`bootstrap_interval`
  its percentile interval over resamplings of the generated points;
* :func:`frechet` the squared 2-Wasserstein distance per dimension between the Gaussian fit of
  the generated points and the target Gaussian, :func:`frechet_floor` its value for exact
  samples of the same size (the sampling bias);
* :func:`prior_kl` and :func:`kl_score_integral`: the prior term and the score errors summed
  over the sampler's time steps, the score-error part of the Girsanov KL of the continuous
  reverse process (not a bound on the sampler's KL: ``docs/sampling.md``, Sec. 3);
* :func:`kl_bound_mc`: an upper bound on the KL of the generated law (reverse SDE, Gaussian
  data), discretisation and grid times included: the chain rule over the sampler's steps.
"""

from __future__ import annotations

import math

import numpy as np

from ..core import diffusion

__all__ = ["nn_ratios", "memorised_fraction", "bootstrap_interval", "frechet",
           "frechet_floor", "prior_kl", "kl_score_integral", "kl_bound", "kl_bound_mc",
           "score_error_mc"]

_BLOCK = 2048


def nn_ratios(samples: np.ndarray, train: np.ndarray) -> np.ndarray:
    """``|x - x^(1)| / |x - x^(2)|`` for each row ``x`` of ``samples`` (needs >= 2 training
    points).  Squared distances come from ``|x|^2 + |x_nu|^2 - 2 x.x_nu``, clipped at 0; the
    two smallest are then recomputed directly, so that a near-copy of a training point does
    not lose its distance to the cancellation."""
    n = train.shape[0]
    if n < 2:
        raise ValueError(f"the nearest-neighbour ratio needs at least 2 training points, got "
                         f"n = {n}")
    sq = np.einsum("ij,ij->i", train, train)
    out = np.empty(samples.shape[0])
    for lo in range(0, samples.shape[0], _BLOCK):
        xb = samples[lo:lo + _BLOCK]
        D = sq[None, :] - 2.0 * (xb @ train.T)
        two = np.argpartition(D, 1, axis=1)[:, :2]
        d1 = np.linalg.norm(xb - train[two[:, 0]], axis=1)
        d2 = np.linalg.norm(xb - train[two[:, 1]], axis=1)
        near, far = np.minimum(d1, d2), np.maximum(d1, d2)
        out[lo:lo + _BLOCK] = np.divide(near, far, out=np.zeros_like(near), where=far > 0)
    return out


def memorised_fraction(ratios: np.ndarray, threshold: float) -> float:
    """The fraction of generated points whose ratio is below ``threshold``."""
    return float(np.mean(ratios < threshold))


def bootstrap_interval(ratios: np.ndarray, threshold: float, n_boot: int,
                       rng: np.random.Generator, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of ``f_mem`` over ``n_boot`` resamplings (with replacement) of the
    generated points.  Resampling ``N`` points with ``k`` memorised ones gives a
    ``Binomial(N, k/N)`` count, which is drawn directly: the same bootstrap distribution
    without forming the resamples.  It measures the spread from the finite number of
    generated points only (not from the training set or ``W``: those are seeds); with
    ``f_mem = 0`` or ``1`` it has zero width."""
    N = ratios.size
    f = memorised_fraction(ratios, threshold)
    boot = rng.binomial(N, f, size=n_boot) / N
    lo, hi = np.percentile(boot, [50.0 * (1.0 - level), 50.0 * (1.0 + level)])
    return float(lo), float(hi)


def _sym_sqrt(S: np.ndarray) -> np.ndarray:
    lam, Q = np.linalg.eigh(S)
    return (Q * np.sqrt(np.maximum(lam, 0.0))) @ Q.T


def frechet(samples: np.ndarray, cov=None, mean=None) -> float:
    """``W_2^2(N(m, C), N(mu, Sigma)) / d`` with ``m``, ``C`` the mean and covariance
    (``ddof = 1``) of the rows of ``samples``:

        (1/d) [ |m - mu|^2 + tr C + tr Sigma - 2 tr (Sigma^{1/2} C Sigma^{1/2})^{1/2} ],

    the square roots through symmetric eigendecompositions (``cov`` None: ``Sigma = I``,
    where the trace term is ``sum_i sqrt(lambda_i(C))``; ``mean`` None: ``mu = 0``)."""
    N, d = samples.shape
    if not np.all(np.isfinite(samples)):
        return math.inf  # a sampler that diverged: no Gaussian fit to compare
    m = samples.mean(axis=0)
    Xc = samples - m
    C = (Xc.T @ Xc) / (N - 1)
    if mean is not None:
        m = m - np.asarray(mean, dtype=float)
    if cov is None:
        root = np.sqrt(np.maximum(np.linalg.eigvalsh(C), 0.0)).sum()
        tr_sigma = float(d)
    else:
        R = _sym_sqrt(cov)
        root = np.sqrt(np.maximum(np.linalg.eigvalsh(R @ C @ R), 0.0)).sum()
        tr_sigma = float(np.trace(cov))
    return float((m @ m + np.trace(C) + tr_sigma - 2.0 * root) / d)


def frechet_floor(N: int, d: int, cov, rng: np.random.Generator,
                  reps: int = 20, mean=None) -> tuple[float, float]:
    """Mean and standard deviation of :func:`frechet` over ``reps`` sets of ``N`` exact draws
    of ``N(mu, Sigma)``: the value a perfect sampler shows (it does not depend on ``mu``).
    For ``Sigma = I`` and ``d << N`` it is about ``1/N + d/(4N)`` (the mean's ``|m|^2/d`` and
    the Marchenko-Pastur spread of the sample covariance's eigenvalues,
    ``E sqrt(lambda) ~ 1 - d/(8N)``)."""
    R = None if cov is None else _sym_sqrt(cov)
    vals = []
    for _ in range(reps):
        z = rng.standard_normal((N, d))
        z = z if R is None else z @ R
        vals.append(frechet(z if mean is None else z + mean, cov, mean))
    vals = np.array(vals)
    return float(vals.mean()), float(vals.std(ddof=1)) if reps > 1 else 0.0


def prior_kl(T: float, d: int, cov=None, mean=None) -> float:
    """``KL(p_T || N(0, I)) / d`` for Gaussian data: ``p_T = N(a_T mu, a_T^2 Sigma + h_T I)``,
    so ``(1/2d) [sum_i (l_i - 1 - log l_i) + a_T^2 |mu|^2]`` over its eigenvalues ``l_i`` (0 for
    ``Sigma = I``, ``mu = 0``)."""
    a2 = math.exp(-2.0 * T)
    shift = 0.0 if mean is None else 0.5 * a2 * float(np.dot(mean, mean)) / d
    if cov is None:
        return shift
    lam = a2 * np.linalg.eigvalsh(cov) - math.expm1(-2.0 * T)
    return float(0.5 * np.sum(lam - 1.0 - np.log(lam)) / d) + shift


def kl_score_integral(errors, taus: np.ndarray, idx: np.ndarray,
                      prior: float = 0.0) -> float | None:
    """``KL(p_T || N(0, I))/d + sum_j (t_j - t_{j+1}) e_{k(j)}``, ``e_k = (1/d) E|s_k - s*|^2``
    at grid time ``t_k`` (``docs/sampling.md``, eq. (S6)): the Girsanov KL of the continuous
    reverse SDE whose drift uses ``s_{k(j)}`` on ``[t_{j+1}, t_j]``, with the error of step
    ``j`` read at its grid time instead of along the step.  It leaves out the sampler's
    discretisation and, off isotropic data, the change of ``s*`` and ``p_t`` between a step's
    times and its grid time, so it is not a bound on the KL of the generated law.  None when
    the errors are not available (or not finite)."""
    if errors is None:
        return None
    e = np.asarray(errors, dtype=float)[idx]
    if not np.all(np.isfinite(e)):
        return None
    return float(prior + np.sum((taus[:-1] - taus[1:]) * e))


def kl_bound(errors, taus, idx, prior=0.0):
    """Deprecated name of :func:`kl_score_integral` (it is not a bound; the bound is
    :func:`kl_bound_mc`)."""
    import warnings

    warnings.warn("rfdsm.sample.measures.kl_bound is kl_score_integral: the score-error "
                  "integral, not a bound on the sampler's KL (that is kl_bound_mc)",
                  DeprecationWarning, stacklevel=2)
    return kl_score_integral(errors, taus, idx, prior)


def kl_bound_mc(score, taus: np.ndarray, idx: np.ndarray, law, d: int, n_mc: int,
                rng: np.random.Generator, prior: float = 0.0) -> tuple[float, float]:
    """``(B, se)``: an upper bound ``B`` on ``KL(p_{t_min} || q_{t_min}) / d`` for the reverse
    SDE sampler, ``q`` the law of its points, Gaussian data ``law`` (``rfdsm.data.GaussianLaw``),
    and the standard error ``se`` of its one Monte Carlo term.

    The sampler is a Markov chain on the step times; so is the true reverse process read at
    the same times.  By the chain rule and data processing,

        KL(p_{t_min} || q_{t_min}) <= KL(p_{T_0} || N(0, I))
            + sum_j E_{x ~ p_{t_j}} KL( p(x_{t_{j+1}} | x_{t_j} = x) || q_j(. | x) ),

    every source of error included: the score error, the grid time of each step, the score
    frozen over a step.  For Gaussian data the true reverse kernel is Gaussian: in the
    eigenbasis of ``Sigma``, with ``g = a_t^2 v + h_t`` and ``g' = a_{t'}^2 v + h_{t'}``
    (``t' = t_{j+1}``, ``D = t - t'``), mean ``a_{t'} mu + (e^{-D} g'/g)(x - a_t mu)`` and
    variance ``g' (1 - e^{-2D}) / g`` per coordinate; the sampler's is
    ``N(e^D x + 2 (e^D - 1) s_k(x), (e^{2D} - 1) I)`` (eq. (S3)).  The Gaussian KL's variance
    terms are summed exactly, its mean term ``|m_p(x) - m_q(x)|^2 / (2 (e^{2D} - 1))`` is
    averaged over ``n_mc`` fresh ``x ~ p_{t_j}`` per step (the only estimated part)."""
    v = np.asarray(law.eigenvalues(d), dtype=float)
    O = law.orientation(d)
    mu = np.zeros(d) if law.is_centred else np.asarray(law.mean(d), dtype=float)
    m_eig = mu if O is None else mu @ O
    total, var = float(prior), 0.0
    for j in range(len(taus) - 1):
        t, t1 = float(taus[j]), float(taus[j + 1])
        D = t - t1
        a, a1 = math.exp(-t), math.exp(-t1)
        g = a * a * v - math.expm1(-2.0 * t)
        g1 = a1 * a1 * v - math.expm1(-2.0 * t1)
        coef = math.exp(-D) * g1 / g
        sq2 = math.expm1(2.0 * D)
        ratio = g1 * (-math.expm1(-2.0 * D)) / g / sq2
        total += 0.5 * float(np.sum(ratio - 1.0 - np.log(ratio))) / d
        z = a * m_eig + np.sqrt(g) * rng.standard_normal((n_mc, d))
        x = z if O is None else z @ O.T
        mq = math.exp(D) * x + (2.0 * math.expm1(D)) * score(int(idx[j]), x)
        mp = a1 * m_eig + coef * (z - a * m_eig)
        diff = mp - (mq if O is None else mq @ O)
        vals = np.einsum("ij,ij->i", diff, diff) / (2.0 * sq2 * d)
        total += float(vals.mean())
        var += float(vals.var(ddof=1)) / n_mc
    return total, math.sqrt(var)


def score_error_mc(score, k: int, t: float, data_model, d: int, n_mc: int,
                   true_score, rng: np.random.Generator) -> float:
    """Monte Carlo ``(1/d) E|s(y) - s*(y)|^2`` over ``n_mc`` fresh ``y = a x_0 + sqrt(h) eps``
    at grid time ``t`` (for scores without an exact error, the empirical one)."""
    a, h = diffusion.a(t), diffusion.h(t)
    y = a * data_model.sample(n_mc, d, rng) + math.sqrt(h) * rng.standard_normal((n_mc, d))
    diff = score(k, y) - true_score(k, y)
    return float(np.einsum("ij,ij->", diff, diff) / (n_mc * d))
