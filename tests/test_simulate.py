"""The finite-size simulator against docs/model.md's identities and independent computations."""

import math

import numpy as np
import pytest
from scipy import optimize

import rfdsm
from rfdsm import Setting
from rfdsm.simulate import fit, mehler

INF = math.inf


def z_ok(value, reference, se, z=4.5):
    """``value`` within ``z`` standard errors of ``reference`` (4.5 sigma: < 1e-5 false alarms)."""
    return abs(value - reference) <= z * se


# --- docs/model.md identities ---------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 3, INF])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_test_equals_h_score_plus_a2_and_matches_monte_carlo(m, activation):
    s = Setting(psi_n=1.5, psi_p=2.0, m=m, t=0.3, lam=0.05, activation=activation)
    res = rfdsm.simulate(s, d=40, seed=3, mc_test=40000)
    # The exact test and score errors share their traces, so the identity holds for them by
    # construction; what can fail is whether they are what Monte Carlo estimates on fresh
    # (x, eps) converge to, and whether those estimates obey the identity.
    dg = res.diagnostics
    assert z_ok(dg["test_mc"], res.test, dg["test_mc_se"])
    assert z_ok(dg["score_mc"], res.score, dg["score_mc_se"])
    # the Monte Carlo estimates satisfy the identity within their own error
    assert z_ok(dg["test_mc"], s.h * dg["score_mc"] + s.bayes, dg["test_mc_se"] + s.h * dg["score_mc_se"])


@pytest.mark.parametrize("m", [1, 4, INF])
def test_infinite_ridge_gives_train_test_one(m):
    s = Setting(psi_n=1.0, psi_p=2.0, m=m, t=0.1, lam=1e12)
    d = 30
    res = rfdsm.simulate(s, d=d, seed=0)
    assert res.test == pytest.approx(1.0, abs=1e-9)
    if m == INF:
        assert res.train == pytest.approx(1.0, abs=1e-9)
    else:
        # A = 0 leaves |eps|^2/(N d): mean 1, variance 2/(N d) (chi-square), so 5 sigma
        N = s.sizes(d)[0] * m
        assert abs(res.train - 1.0) < 5 * math.sqrt(2.0 / (N * d))
        assert res.train != pytest.approx(1.0, abs=1e-12)  # the empirical noise norm, as defined


def test_true_score_attains_bayes_error():
    # With linear features and p >= d, B = -sqrt(h d) W^+ gives B phi(y) = -sqrt(h) y exactly,
    # i.e. s_A = s*: the population test error must be a^2 and the score error 0.
    s = Setting(psi_n=1.0, psi_p=2.0, t=0.4, activation="linear")
    d = 25
    n, p = s.sizes(d)
    dr = fit.draw(n, p, d, seed=7)
    B = -math.sqrt(s.h * d) * np.linalg.pinv(dr.W)
    pop = fit.population_moments(s.sigma, dr.W, s.h)
    q = fit.quadratic(-B.T, pop)
    assert 1 + q / d == pytest.approx(s.bayes, abs=1e-10)
    assert 1 + q / (d * s.h) == pytest.approx(0.0, abs=1e-9)


# --- the closed form is the minimiser ---------------------------------------------------

def test_closed_form_equals_direct_minimisation_of_model_loss():
    s = Setting(psi_n=1.0, psi_p=1.5, m=3, t=0.2, lam=0.05)
    d, seed = 6, 11
    n, p = s.sizes(d)
    res = rfdsm.simulate(s, d=d, seed=seed)
    # Rebuild the training set from the documented streams, then minimise docs/model.md's loss over A.
    dr = fit.draw(n, p, d, seed)
    m = s.m
    eps = np.random.default_rng(dr.noise_seed).standard_normal((n * m, d))
    y = s.a * np.repeat(dr.X, m, axis=0) + math.sqrt(s.h) * eps
    phi = np.tanh(y @ dr.W.T / math.sqrt(d))  # N x p
    N = n * m

    def loss(a_flat, ridge=True):
        A = a_flat.reshape(d, p)
        r = math.sqrt(s.h) * phi @ A.T / math.sqrt(p) + eps
        val = (r ** 2).sum() / (N * d)
        grad = 2 * math.sqrt(s.h) / math.sqrt(p) * (r.T @ phi) / (N * d)
        if ridge:
            val += s.h * s.lam / (d * p) * (A ** 2).sum()
            grad += 2 * s.h * s.lam / (d * p) * A
        return val, grad.ravel()

    opt = optimize.minimize(loss, np.zeros(d * p), jac=True, method="L-BFGS-B",
                            options={"maxiter": 500, "gtol": 1e-13, "ftol": 1e-15})
    assert opt.success or opt.nit >= 100
    A = opt.x.reshape(d, p)
    assert loss(opt.x, ridge=False)[0] == pytest.approx(res.train, rel=1e-7)
    B = math.sqrt(s.h) * A / math.sqrt(p)
    pop = fit.population_moments(s.sigma, dr.W, s.h)
    assert 1 + fit.quadratic(-B.T, pop) / d == pytest.approx(res.test, rel=1e-7)


# --- m = inf is the exact noise expectation ----------------------------------------------

def test_noise_averaged_moments_are_unbiased_limit_of_finite_m():
    # E_eps[F F^T/N] = U and E_eps[Z F^T/N] = V exactly for fixed W, X; average R independent
    # noise draws of a finite-m fit and compare entrywise with z-scores from the replicates.
    s = Setting(psi_n=2.0, psi_p=2.0, t=0.2, activation="tanh")
    d, m, R = 12, 200, 60
    n, p = s.sizes(d)
    dr = fit.draw(n, p, d, seed=5)
    exact = fit.noise_averaged_moments(s.sigma, dr, s.a, s.h, fit.DEFAULT_BLOCK_BYTES)
    reps_S, reps_C = [], []
    for r in range(R):
        dr_r = fit.Draw(dr.W, dr.X, np.random.SeedSequence([5, r, 99]), dr.mc_seed)
        mom = fit.finite_m_moments(s.sigma, dr_r, m, s.a, s.h, fit.DEFAULT_BLOCK_BYTES)
        reps_S.append(mom.S)
        reps_C.append(mom.C)
    S, C = np.array(reps_S), np.array(reps_C)
    off = ~np.eye(p, dtype=bool)
    blocks = {"U off-diagonal": (S[:, off], exact.S[off]), "U diagonal": (S[:, ~off], exact.S[~off]),
              "V": (C.reshape(R, -1), exact.C.ravel())}
    for name, (reps, target) in blocks.items():
        mean = reps.mean(axis=0)
        se = reps.std(axis=0, ddof=1) / math.sqrt(R)
        # entrywise: the largest of ~100-300 roughly normal |z| stays below 4.5
        assert (np.abs(mean - target) / se).max() < 4.5, name
        # a systematic error would show along the target itself: relative bias per replicate
        rel = (reps - target) @ target / (target @ target)
        bias, bias_se = rel.mean(), rel.std(ddof=1) / math.sqrt(R)
        assert abs(bias) < 4.5 * bias_se, (name, bias, bias_se)
        assert bias_se < 1.5e-3, (name, bias_se)  # power to see a 1% error


def test_infinite_m_is_the_large_m_limit_of_the_errors():
    # Same W and X; the errors at finite m approach the m = inf ones like 1/m.  Extrapolate
    # the mean over noise replicates linearly in 1/m and compare within 4.5 standard errors.
    s = Setting(psi_n=2.0, psi_p=3.0, t=0.2, lam=0.02)
    d, seed, R = 20, 2, 12
    n, p = s.sizes(d)
    dr = fit.draw(n, p, d, seed)
    pop = fit.population_moments(s.sigma, dr.W, s.h)

    def errors(mom):
        K = fit.ridge_solve(mom.S, mom.C, s.lam)
        return mom.noise_sq + fit.quadratic(K, mom) / d, 1 + fit.quadratic(K, pop) / d

    inf_train, inf_test = errors(fit.noise_averaged_moments(s.sigma, dr, s.a, s.h, fit.DEFAULT_BLOCK_BYTES))
    ms = np.array([8, 16, 32, 64])
    means, ses = [], []
    for m in ms:
        vals = np.array([errors(fit.finite_m_moments(
            s.sigma, fit.Draw(dr.W, dr.X, np.random.SeedSequence([seed, int(m), r]), dr.mc_seed),
            int(m), s.a, s.h, fit.DEFAULT_BLOCK_BYTES)) for r in range(R)])
        means.append(vals.mean(axis=0))
        ses.append(vals.std(axis=0, ddof=1) / math.sqrt(R))
    means, ses = np.array(means), np.array(ses)
    X = np.column_stack([np.ones_like(ms, dtype=float), 1.0 / ms])
    for j, target in enumerate((inf_train, inf_test)):
        w = 1.0 / ses[:, j] ** 2
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        coef = cov @ (X.T @ (w * means[:, j]))
        assert z_ok(coef[0], target, math.sqrt(cov[0, 0])), (j, coef, target)
    # the 1/m trend is real: m = 8 is measurably away from the limit for the train error
    assert abs(means[0, 0] - inf_train) > 3 * ses[0, 0]


def test_convergence_flag_reports_the_series_bound():
    ok = rfdsm.simulate(Setting(2.0, 4.0, m=INF), d=40, seed=0)
    assert ok.converged and ok.residual <= 1e-8
    # at d = 4 feature correlations reach ~1 and the capped series cannot certify the Gram
    small = rfdsm.simulate(Setting(2.0, 4.0, m=INF, activation="relu"), d=4, seed=0)
    assert not small.converged and small.residual > 1e-8


def test_series_truncation_bound_holds():
    s = Setting(psi_n=1.0, psi_p=2.0, activation="tanh")
    d = 15  # small d: large correlations, a hard case for the series
    n, p = s.sizes(d)
    dr = fit.draw(n, p, d, seed=1)
    r, rho, rho_max = mehler.correlations(dr.W)
    K = mehler.series_order(rho_max)
    act = s.sigma
    beta, m2 = act.moments(np.zeros(p), np.sqrt(r), K + 30)
    U_ref = np.zeros((p, p))
    mehler.accumulate(U_ref, rho, beta[:, :, None], 1.0)
    U_k = np.zeros((p, p))
    mehler.accumulate(U_k, rho, beta[: K + 1, :, None], 1.0)
    bound = mehler.tail_bound(rho_max, K, m2 - (beta[: K + 1] ** 2).sum(axis=0))
    assert np.abs(U_k - U_ref).max() <= bound + 1e-15


# --- streaming, ridgeless, seeds ------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 5])
def test_chunked_streaming_equals_unchunked(m):
    s = Setting(psi_n=2.0, psi_p=3.0, m=m, t=0.1, lam=0.01)
    whole = rfdsm.simulate(s, d=30, seed=4)
    assert whole.diagnostics["n_chunks"] == 1
    for chunk in (1, 7):
        part = rfdsm.simulate(s, d=30, seed=4, chunk=chunk)
        assert part.diagnostics["n_chunks"] == -(-60 // chunk)
        for k in ("train", "test", "score"):
            assert getattr(part, k) == pytest.approx(getattr(whole, k), rel=1e-11, abs=1e-13)


def test_memory_budget_bounds_the_block():
    s = Setting(psi_n=2.0, psi_p=3.0, m=16, t=0.1, lam=0.01)
    res = rfdsm.simulate(s, d=30, seed=0, block_bytes=200_000)
    assert res.diagnostics["n_chunks"] > 1
    assert res.diagnostics["chunk_size"] * 16 * (2 * 90 + 30) * 8 <= 200_000


def test_ridgeless_is_the_small_ridge_limit():
    base = Setting(psi_n=1.0, psi_p=3.0, m=2, t=0.2, lam=0.0)
    r0 = rfdsm.simulate(base, d=20, seed=0)
    r1 = rfdsm.simulate(base.replace(lam=1e-9), d=20, seed=0)
    assert r0.test == pytest.approx(r1.test, rel=1e-5)
    assert r0.train == pytest.approx(r1.train, abs=1e-6)
    # over-parameterised (p > N) and ridgeless: the noise samples are interpolated
    assert r0.train < 1e-8


def test_same_seed_same_numbers_different_seed_different():
    s = Setting(psi_n=1.0, psi_p=2.0, m=INF, t=0.1)
    a = rfdsm.simulate(s, d=20, seed=9, n_seeds=2)
    b = rfdsm.simulate(s, d=20, seed=9, n_seeds=2)
    c = rfdsm.simulate(s, d=20, seed=10, n_seeds=1)
    assert (a.train, a.test, a.score) == (b.train, b.test, b.score)
    assert a.per_seed[1]["test"] == c.per_seed[0]["test"]  # seeds are seed, seed+1, ...
    assert a.per_seed[0]["test"] != a.per_seed[1]["test"]
    assert a.test_se is not None and a.test_se > 0
    assert rfdsm.simulate(s, d=20, seed=9).test_se is None


def test_simulate_rejects_bad_arguments():
    s = Setting(1, 1)
    for bad_d in (0, -3, 10.0, float("nan"), float("inf"), True, "10"):
        with pytest.raises(ValueError, match="^d must be"):
            rfdsm.simulate(s, d=bad_d)
    assert rfdsm.simulate(s, d=np.int64(8)).d == 8
    with pytest.raises(ValueError, match="GiB"):
        rfdsm.simulate(Setting(1e12, 1), d=10)
    with pytest.raises(ValueError, match="GiB"):
        rfdsm.simulate(Setting(1, 1, m=10**12), d=10)  # m above 2**53 is refused by Setting
    with pytest.raises(ValueError, match="^n_seeds must be"):
        rfdsm.simulate(s, d=10, n_seeds=0)
    with pytest.raises(ValueError, match="^seed must be"):
        rfdsm.simulate(s, d=10, seed=-1)
    with pytest.raises(ValueError, match="^setting must be"):
        rfdsm.simulate({"psi_n": 1}, d=10)
