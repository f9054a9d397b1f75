"""The sampler checks itself (docs/sampling.md): the discretisation error by step doubling, a
KL bound that bounds the exact KL of Gaussian generated laws, the Frechet target of a law
with a mean, and sizes refused before any work."""

from __future__ import annotations

import math
import time
import warnings

import numpy as np
import pytest

import rfdsm
from rfdsm.data.base import DataModel, GaussianLaw
from rfdsm.sample import measures, sampler, scores
from tests._cli import run as run_cli

INF = math.inf
D = 20


# -- discretisation error ------------------------------------------------------------------

def test_too_few_steps_are_flagged_not_converged(capsys):
    # the true score from T = 20 in 20 log steps: Frechet ~1e9 where the target is N(0, I)
    res = rfdsm.sample(rfdsm.Setting(psi_n=0.5, psi_p=2), d=D, n_samples=200, score="true",
                       T=20, steps=20, times=5, theory=False)
    assert res.discretisation_error["frechet"] > res.frechet > 1e3
    assert res.status == "not_converged" and not res.success and not res.converged
    assert "discretisation" in res.message and "20 steps" in res.message
    code, out, err = run_cli(["sample", "--psi-n", "0.5", "--psi-p", "2", "--d", str(D),
                              "--n-samples", "200", "--score", "true", "--T", "20", "--steps",
                              "20", "--times", "5", "--no-theory"], capsys)
    assert code == 1
    assert err.startswith("rfdsm: warning: not converged") and len(err.splitlines()) == 1


def test_enough_steps_pass_and_the_estimate_tracks_the_true_error():
    s = rfdsm.Setting(psi_n=0.5, psi_p=2, m=INF, lam=1e-2, activation="tanh")
    coarse = rfdsm.sample(s, d=D, steps=100, n_samples=500, theory=False)
    fine = rfdsm.sample(s, d=D, steps=1600, n_samples=500, theory=False)
    assert coarse.status == "not_converged" and fine.status == "ok" and fine.message == ""
    # the estimate of the 100-step error against the error seen from 16 times the steps
    seen = coarse.frechet - fine.frechet
    est = coarse.discretisation_error["frechet"]
    assert seen > 0 and seen / 3 < est < 3 * seen
    assert fine.discretisation_error["frechet"] < 0.1 * fine.frechet
    rec = fine.to_dict()
    assert rec["status"] == "ok" and set(rec["discretisation_error"]) >= {"frechet", "f_mem"}
    assert {"frechet_disc_error", "f_mem_disc_error"} <= set(fine.row())


def test_step_doubling_leaves_the_full_steps_alone():
    # the half steps ride on the same Brownian path without touching the reported points
    grid = np.array([0.01, 0.1, 1.0, 5.0])
    sc = scores.TrueScores(grid)
    taus = sampler.step_times(0.01, 5.0, 30, "log")
    idx = sampler.grid_indices(taus[:-1], grid)
    x0 = np.random.default_rng(0).standard_normal((50, 4))
    plain = sampler.reverse(sc, x0.copy(), taus, idx, "sde", np.random.default_rng(1))
    tf = sampler.halved(taus, "log")
    xf = x0.copy()
    both = sampler.reverse(sc, x0.copy(), taus, idx, "sde", np.random.default_rng(1),
                           fine=(xf, tf, sampler.grid_indices(tf[:-1], grid),
                                 np.random.default_rng(2)))
    assert np.array_equal(plain, both)
    assert np.array_equal(tf[0::2], taus)
    # same path: the half steps land near the full steps (not an independent draw)
    assert np.mean((xf - both) ** 2) < 0.1 * np.mean((xf - plain[::-1]) ** 2)


# -- the KL bound against exact Gaussian KLs -----------------------------------------------

def _exact_kl(setting, res):
    """KL(p_{t_min} || q) / d for a linear score: the sampler maps N(0, I) to N(0, C) with C
    propagated through the steps (x' = x M + c xi, M = e^D I + 2 (e^D - 1) A, s(y) = y A)."""
    grid = np.array(res.times)
    if res.score == "rf":
        sc = scores.fit_rf_scores(setting, D, res.seed, grid)
    else:
        sc = scores.TrueScores(grid, scores.target_law(setting.data_model, D)[1])
    taus = sampler.step_times(res.t_min, res.T, res.steps, res.schedule)
    idx = sampler.grid_indices(taus[:-1], grid)
    C = np.eye(D)
    for j in range(len(taus) - 1):
        step = taus[j] - taus[j + 1]
        e = math.expm1(step)
        M = (1 + e) * np.eye(D) + 2 * e * sc(int(idx[j]), np.eye(D))
        C = M.T @ C @ M + math.expm1(2 * step) * np.eye(D)
    cov = scores.target_law(setting.data_model, D)[1]
    a2, h = math.exp(-2 * res.t_min), -math.expm1(-2 * res.t_min)
    G = np.eye(D) if cov is None else a2 * cov + h * np.eye(D)
    return 0.5 * (np.trace(np.linalg.solve(C, G)) - D + np.linalg.slogdet(C)[1]
                  - np.linalg.slogdet(G)[1]) / D


@pytest.mark.parametrize("psi_d, steps, score", [(0.5, 200, "rf"), (0.5, 20, "rf"),
                                                 (1.0, 10, "rf"), (0.5, 200, "true")])
def test_kl_bound_bounds_the_exact_kl_of_a_gaussian_sampler(psi_d, steps, score):
    # linear activation: every score is linear, the generated law Gaussian, its KL exact
    s = rfdsm.Setting(psi_n=4, psi_p=2, m=INF, lam=1e-3, activation="linear", psi_d=psi_d)
    res = rfdsm.sample(s, d=D, n_samples=100, steps=steps, score=score, theory=False)
    exact = _exact_kl(s, res)
    assert exact > 0
    assert res.kl_bound - 4 * res.kl_bound_se >= exact
    # the score-error integral leaves the discretisation out: below the exact KL here
    assert res.kl_score_integral < exact


def test_old_kl_names_are_deprecated_aliases():
    res = rfdsm.sample(rfdsm.Setting(psi_n=0.5, psi_p=2, lam=1e-3), d=12, n_samples=50,
                       times=3, steps=20)
    with pytest.warns(DeprecationWarning, match="kl_score_integral"):
        assert res.kl_bound_theory == res.kl_score_integral_theory
    with pytest.warns(DeprecationWarning, match="kl_score_integral"):
        measures.kl_bound([0.1, 0.1], np.array([2.0, 1.0, 0.5]), np.array([0, 1]))
    rec = res.to_dict()
    assert rec["kl_bound_theory"] == rec["kl_score_integral_theory"]
    assert rec["kl_bound"] == res.kl_bound and rec["kl_bound"] >= rec["kl_score_integral"]


# -- a law with a mean ---------------------------------------------------------------------

class _Shifted(DataModel):
    name = "shifted-rotated-test"

    def law(self):
        Q = np.linalg.qr(np.random.default_rng(3).standard_normal((D, D)))[0]
        return GaussianLaw(weights=(0.5, 0.5), values=(2.0, 0.5), mean_norms=(1.0, 0.5),
                           basis=lambda d: Q)


def test_frechet_and_true_score_use_the_mean_and_orientation_of_the_law():
    model = _Shifted()
    law = model.law()
    s = rfdsm.Setting(psi_n=0.5, psi_p=2, data=model)
    mu, cov = scores.target_law(model, D)
    O = law.orientation(D)
    np.testing.assert_allclose(mu, law.mean(D))
    np.testing.assert_allclose(cov, (O * law.eigenvalues(D)) @ O.T, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # the law is described: no fallback
        res = rfdsm.sample(s, d=D, n_samples=2000, score="true", steps=400, theory=False)
    a = math.exp(-res.t_min)
    h = -math.expm1(-2 * res.t_min)
    gamma = a * a * cov + h * np.eye(D)
    # the true score carries the points to N(a mu, Gamma), and F is measured against it
    assert np.abs(res.samples.mean(axis=0) - a * mu).max() < 5 * math.sqrt(2.5 / 2000)
    assert res.frechet == pytest.approx(measures.frechet(res.samples, gamma, a * mu), rel=1e-12)
    assert abs(res.frechet - res.frechet_floor) < 4 * res.frechet_floor_sd + 1e-3
    assert measures.frechet(res.samples, gamma) > 0.5  # the centred target is far off
    # the prior term counts the mean: (1/2d) a_T^2 |mu|^2 beyond the centred law's
    centred = measures.prior_kl(res.T, D, cov)
    assert res.prior_kl == pytest.approx(centred + 0.5 * math.exp(-2 * res.T) * mu @ mu / D)


# -- sizes before work ---------------------------------------------------------------------

S_SIZE = rfdsm.Setting(psi_n=0.5, psi_p=2, m=INF, lam=1e-3)


@pytest.mark.parametrize("kwargs, name", [
    ({"steps": 10 ** 8}, "steps"), ({"n_bootstrap": 10 ** 9}, "n_bootstrap"),
    ({"times": 100000}, "times"), ({"n_samples": 10 ** 9}, "n_samples")])
def test_sizes_are_refused_before_any_work(monkeypatch, kwargs, name):
    import rfdsm.sample as smp

    monkeypatch.setattr(smp, "available_bytes", lambda: 16.0 * 2 ** 30)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=rf"^{name} = ") as info:
        rfdsm.sample(S_SIZE, d=D, **kwargs)
    assert time.perf_counter() - t0 < 5.0
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize("flag, value", [("--steps", "100000000"), ("--times", "100000"),
                                         ("--n-samples", "1000000000")])
def test_cli_refuses_sizes_with_exit_2(capsys, flag, value):
    code, out, err = run_cli(["sample", "--psi-n", "0.5", "--psi-p", "2", "--d", str(D),
                              flag, value], capsys)
    assert code == 2 and err.startswith("rfdsm: error:") and len(err.splitlines()) == 1
    assert flag in err


@pytest.mark.parametrize("T", [800.0, 1e6])
def test_a_large_T_starts_where_the_law_is_standard_normal(T):
    res = rfdsm.sample(rfdsm.Setting(psi_n=0.5, psi_p=2), d=D, n_samples=100, score="true",
                       T=T, steps=400, times=5, theory=False)
    t_eq = 0.5 * math.log(2.0 ** 53)
    assert res.diagnostics["T_start"] == pytest.approx(t_eq) and res.T == T
    assert math.isfinite(res.frechet) and math.isfinite(res.kl_bound)


def test_dry_run_refuses_a_huge_sample_section(tmp_path, capsys):
    cfg = tmp_path / "big.toml"
    cfg.write_text('[sweep]\nname = "big"\nevaluators = ["sample"]\ncurve = "psi_n"\n'
                   '[grid]\npsi_p = 2\npsi_n = 0.5\nm = inf\nlam = 0.001\n'
                   '[sample]\nd = 20\nn_samples = 1000000000\n')
    code, out, err = run_cli(["sweep", str(cfg), "--dry-run"], capsys)
    assert code == 2 and "n_samples" in err and len(err.splitlines()) == 1
