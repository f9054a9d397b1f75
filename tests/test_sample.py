"""Generation with the fitted RF score (rfdsm.sample, docs/sampling.md).

Reference scores first (the true score must reproduce the target, the empirical score must
copy the training set), then the RF scores on the grid against the simulator's own fits, the
integrator and the KL constant against closed forms, memorisation by the RF score, and the
boundaries (same seed, bad input, command line, sweep table, figures).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import rfdsm
from rfdsm.sample import measures, sampler, scores
from rfdsm.simulate import fit_score
from tests._cli import run as run_cli

INF = math.inf
S_SMALL = rfdsm.Setting(psi_n=0.5, psi_p=1, m=INF, lam=1e-4)


def _excess(res):
    return (res.frechet - res.frechet_floor) / res.frechet_floor_sd


def test_true_score_generates_the_target_and_converges_with_the_steps():
    runs = {k: rfdsm.sample(S_SMALL, d=20, n_samples=2000, seed=0, score="true", steps=k)
            for k in (10, 40, 160, 400)}
    for res in runs.values():
        assert res.f_mem == 0.0 and res.f_mem_ci == (0.0, 0.0)
        # isotropic: p_T = N(0, I), and no score error; the bound sees the discretisation
        assert res.kl_score_integral == 0.0 and res.kl_bound > 0.0
    # the Frechet excess over exact samples of the same size shrinks with the step ...
    ex = [_excess(runs[k]) for k in (10, 40, 160)]
    assert ex[0] > ex[1] > ex[2]
    # ... to within the sampling error of exact samples
    assert abs(_excess(runs[400])) < 3.0
    # the floor is the d/N bias of the Gaussian fit: 1/N + d/(4N) for d << N
    assert runs[400].frechet_floor == pytest.approx(1 / 2000 + 20 / 8000, rel=0.1)


def test_true_score_variance_follows_the_exponential_integrator_exactly():
    # with s = -x a step maps the variance v to (2 - e^D)^2 v + e^{2D} - 1: the generated
    # variance must be that recursion's, within its sampling error
    res = rfdsm.sample(S_SMALL, d=20, n_samples=4000, seed=1, score="true", steps=30,
                       schedule="linear")
    taus = sampler.step_times(res.t_min, res.T, res.steps, "linear")
    v = 1.0
    for D in taus[:-1] - taus[1:]:
        v = (2.0 - math.exp(D)) ** 2 * v + math.expm1(2.0 * D)
    se = v * math.sqrt(2.0 / res.samples.size)
    assert abs(res.samples.var() - v) < 4.0 * se
    assert v > 1.0 + 10 * se  # the discretisation bias is resolved, not hidden in the noise


def test_ode_with_the_true_score_keeps_the_initial_points():
    # isotropic: x' = e^D x + (e^D - 1)(-x) = x, so the flow leaves N(0, I) samples alone
    res = rfdsm.sample(S_SMALL, d=20, n_samples=500, seed=3, score="true", method="ode",
                       steps=50)
    x0 = rfdsm.sample._stream(3, "sampler").standard_normal((500, 20))
    np.testing.assert_allclose(res.samples, x0, rtol=0, atol=1e-12)


def test_empirical_score_copies_the_training_set():
    res = rfdsm.sample(S_SMALL, d=20, n_samples=500, seed=0, score="empirical", t_min=0.01)
    assert res.f_mem == 1.0
    assert res.ratios.max() < 1 / 3
    # its score error near t = 0 is that of a sum of n spikes: a large KL bound
    assert res.kl_bound > 10.0


def test_empirical_score_is_stable_far_from_the_points():
    X = np.random.default_rng(0).standard_normal((6, 30))
    sc = scores.EmpiricalScores([1e-4, 1.0], X)
    y = 50.0 * np.random.default_rng(1).standard_normal((4, 30))  # logits of order 1e7
    s = sc(0, y)
    assert np.all(np.isfinite(s))
    a, h = math.exp(-1e-4), -math.expm1(-2e-4)
    nearest = np.argmin(((y[:, None, :] - a * X[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(s, (a * X[nearest] - y) / h, rtol=1e-10)


@pytest.mark.parametrize("m, tau", [(INF, INF), (3, INF), (INF, 50.0)])
def test_rf_scores_on_the_grid_are_the_simulator_fits(m, tau):
    setting = rfdsm.Setting(psi_n=0.5, psi_p=2, m=m, lam=1e-3, tau=tau)
    grid = [0.02, 0.3, 1.0]
    sc = scores.fit_rf_scores(setting, 30, 4, grid)
    y = np.random.default_rng(0).standard_normal((7, 30))
    for k, t in enumerate(grid):
        st = setting.replace(t=t)
        fitted = fit_score(st, 30, 4)
        np.testing.assert_allclose(sc(k, y), fitted(y), rtol=1e-10, atol=1e-12)
        res = rfdsm.simulate(st, 30, seed=4)
        assert sc.errors[k] == pytest.approx(res.score, rel=1e-10)
        assert sc.tests[k] == pytest.approx(res.test, rel=1e-10)


def test_kl_bound_constant_against_a_closed_form():
    # score -y + c: the reverse SDE is an OU with mean 2c(1 - e^{-u}) and unit variance, so
    # KL(N(0, I) || law at t_min) / d = 2 c^2 (1 - e^{-U})^2 with U = T - t_min, and the
    # Girsanov bound is c^2 U (per dimension).  At U = 1.99 a bound half as large fails.
    c, d, N = 0.3, 10, 20000

    class Shifted(scores.GridScore):
        def __call__(self, k, y):
            return -y + c

    grid = np.array([0.01, 2.0])
    sc = Shifted(grid, errors=[c * c, c * c])
    taus = sampler.step_times(0.01, 2.0, 400, "linear")
    idx = sampler.grid_indices(taus[:-1], grid)
    x = sampler.reverse(sc, np.random.default_rng(0).standard_normal((N, d)), taus, idx,
                        "sde", np.random.default_rng(1))
    U = 2.0 - 0.01
    np.testing.assert_allclose(x.mean(axis=0), 2 * c * (1 - math.exp(-U)), atol=5 / math.sqrt(N))
    exact = 2 * c * c * (1 - math.exp(-U)) ** 2
    bound = measures.kl_score_integral(sc.errors, taus, idx)
    assert bound == pytest.approx(c * c * U, rel=1e-12)
    assert exact <= bound and not exact <= bound / 2


def test_bootstrap_interval_of_f_mem():
    ratios = np.r_[np.full(300, 0.1), np.full(700, 0.9)]  # f_mem = 0.3 of N = 1000
    lo, hi = measures.bootstrap_interval(ratios, 1 / 3, 4000, np.random.default_rng(0))
    half = 1.96 * math.sqrt(0.3 * 0.7 / 1000)
    assert lo == pytest.approx(0.3 - half, abs=0.004) and hi == pytest.approx(0.3 + half,
                                                                                abs=0.004)


def test_frechet_against_scipy_sqrtm():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 6))
    cov = A @ A.T / 6 + 0.2 * np.eye(6)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 6)) * 0.7 + 0.1
    m, C = x.mean(0), np.cov(x.T)
    R = sqrtm(cov)
    ref = (m @ m + np.trace(C + cov - 2 * np.real(sqrtm(R @ C @ R)))) / 6
    assert measures.frechet(x, cov) == pytest.approx(ref, rel=1e-9)
    ref_id = (m @ m + np.trace(C + np.eye(6) - 2 * np.real(sqrtm(C)))) / 6
    assert measures.frechet(x) == pytest.approx(ref_id, rel=1e-9)


def test_rf_score_of_a_tiny_training_set_memorises_a_large_one_does_not():
    tiny = rfdsm.Setting(psi_n=0.25, psi_p=16, m=INF, lam=1e-4)  # n = 5, p = 320 at d = 20
    res = rfdsm.sample(tiny, d=20, n_samples=500, seed=0, times=10, steps=100)
    assert res.n == 5 and res.f_mem_ci[0] > 0.25
    large = rfdsm.Setting(psi_n=8, psi_p=0.5, m=INF, lam=1e-4)  # n = 160, p = 10
    res = rfdsm.sample(large, d=20, n_samples=500, seed=0, times=10, steps=100)
    assert res.f_mem == 0.0
    # p < d: the score has no component in d - p directions, where the reverse drift +x
    # grows e^{T - t_min}-fold: no copies, but no valid samples either
    assert res.frechet > 100.0


def test_odd_activation_gives_mirror_copies():
    # s_A(-y) = -s_A(y) for tanh: the generated law is symmetric, so as many points sit at
    # -x_nu as at x_nu (the mirror copies are not counted by f_mem)
    tiny = rfdsm.Setting(psi_n=0.25, psi_p=16, m=INF, lam=1e-4)
    res = rfdsm.sample(tiny, d=20, n_samples=500, seed=0, times=10, steps=100, theory=False)
    mirror = measures.memorised_fraction(measures.nn_ratios(res.samples, -res.training), 1 / 3)
    assert mirror == pytest.approx(res.f_mem, abs=0.08)


def test_same_seed_same_samples():
    s = rfdsm.Setting(psi_n=0.5, psi_p=2, m=INF, lam=1e-3)
    a = rfdsm.sample(s, d=12, n_samples=50, seed=2, times=4, steps=20)
    b = rfdsm.sample(s, d=12, n_samples=50, seed=2, times=4, steps=20)
    c = rfdsm.sample(s, d=12, n_samples=50, seed=3, times=4, steps=20)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert (a.f_mem, a.f_mem_ci, a.frechet, a.kl_bound) == (b.f_mem, b.f_mem_ci, b.frechet,
                                                            b.kl_bound)
    assert not np.array_equal(a.samples, c.samples)


@pytest.mark.parametrize("kwargs, name", [
    ({"t_min": 1.0, "T": 1.0}, "t_min"), ({"t_min": 0.0}, "t_min"), ({"T": math.inf}, "T"),
    ({"steps": 0}, "steps"), ({"steps": 2.5}, "steps"), ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 1}, "n_samples"), ({"times": 0}, "times"), ({"times": [0.5, 0.2]}, "times"),
    ({"times": [0.001, 1.0]}, "times"), ({"score": "exact"}, "score"),
    ({"method": "euler"}, "method"), ({"schedule": "cosine"}, "schedule"),
    ({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"),
    ({"seed": -1}, "seed"), ({"n_bootstrap": 0}, "n_bootstrap"), ({"theory": "yes"}, "theory"),
])
def test_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        rfdsm.sample(S_SMALL, d=20, **kwargs)


def test_bad_setting_and_size():
    with pytest.raises(ValueError, match="setting"):
        rfdsm.sample({"psi_n": 1, "psi_p": 1}, d=20)
    with pytest.raises(ValueError, match="n >= 2"):
        rfdsm.sample(rfdsm.Setting(psi_n=0.05, psi_p=1), d=20)  # n = 1


def test_cli_json_and_errors(capsys):
    code, out, err = run_cli(["sample", "--psi-n", "0.5", "--psi-p", "2", "--m", "inf",
                              "--lam", "1e-3", "--d", "12", "--n-samples", "100", "--times",
                              "4", "--steps", "20", "--json"], capsys)
    # 20 steps leave a discretisation error far above F: printed, then flagged (exit 1)
    assert code == 1 and err.startswith("rfdsm: warning: not converged") and \
        len(err.splitlines()) == 1, err
    rec = json.loads(out)
    assert set(rec) >= {"f_mem", "f_mem_ci", "frechet", "kl_bound", "kl_bound_theory",
                        "parameters"}
    assert len(rec["f_mem_ci"]) == 2 and rec["parameters"]["d"] == 12
    assert rec["parameters"]["n_samples"] == 100 and rec["parameters"]["m"] == "inf"
    for bad in (["--t-min", "6"], ["--steps", "0"], ["--n-samples", "0"], ["--T", "x"],
                ["--score", "exact"], ["--threshold", "2"]):
        code, out, err = run_cli(["sample", "--psi-n", "0.5", "--psi-p", "2", "--d", "12",
                                  *bad], capsys)
        assert code == 2 and err.startswith("rfdsm: error:") and len(err.splitlines()) == 1


def test_sweep_rows_carry_f_mem_beside_the_simulation(tmp_path):
    cfg = {"sweep": {"evaluators": ["sample"], "curve": "psi_n"},
           "grid": {"psi_n": [0.5, 2], "psi_p": 2, "m": "inf", "lam": 1e-3, "t": 0.1},
           "sample": {"d": 12, "n_samples": 100, "times": 4, "steps": 20}}
    from rfdsm.sweep import run_sweep

    df = run_sweep(cfg, tmp_path / "o", workers=1, progress=False,
                               log=lambda _: None)
    assert len(df) == 2 and set(df["evaluator"]) == {"sample"}
    for _, row in df.iterrows():
        sim = rfdsm.simulate(rfdsm.Setting(psi_n=row.psi_n, psi_p=2, m=INF, lam=1e-3, t=0.1),
                             12, seed=0)
        assert row.test == pytest.approx(sim.test, rel=1e-12)
        direct = rfdsm.sample(sim.setting, d=12, n_samples=100, times=4, steps=20)
        assert (row.f_mem, row.f_mem_lo, row.f_mem_hi) == (direct.f_mem, *direct.f_mem_ci)
    from rfdsm.plots.sampling import memorisation_and_gap, memorisation_curves

    fig = memorisation_curves(df)
    assert any(getattr(a, "get_gid", lambda: None)() for a in fig.axes[0].get_children())
    memorisation_and_gap(df)


def test_record_figures():
    from rfdsm.plots.sampling import projection, ratio_histograms

    res = rfdsm.sample(S_SMALL, d=12, n_samples=100, score="empirical", steps=20, times=4)
    assert len(ratio_histograms([res]).axes) == 1
    assert len(projection(res).axes) == 1
    assert res.to_dict()["f_mem"] == 1.0 and "samples" not in res.to_dict()
