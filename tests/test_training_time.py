"""Training time ``tau``: gradient flow on A from A = 0 (docs/model.md, "Training time").

The reference is explicit full-batch gradient descent on ``A`` in the model's own units
(``L_train(A) + (h lam/(d p)) |A|_F^2``, step ``eta``, ``tau = k eta / d^2``), written here
from the definitions and not from the simulator's ``B``, ``S``, ``C``: its features are
rebuilt from the draws, and the ``m = inf`` moments come from a 2-d Gauss-Hermite rule
instead of the Mehler series.
"""

import json
import math

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.data import subspace
from rfdsm.estimators import flow_filter, flow_rate, get_estimator, ridge_solve
from rfdsm.simulate import fit_score, simulate_tau_curve
from rfdsm.simulate.fit import draw, quadratic
from _cli import run

D, SEED = 12, 3
TAUS = (0.5, 2.0, 10.0)


def _features(s, d, seed):
    # the simulator's noise stream: one standard normal per (noise sample, coordinate), data
    # points in order, each repeated m times
    n, p = s.sizes(d)
    dr = draw(n, p, d, seed)
    m = int(s.m)
    E = np.random.default_rng(dr.noise_seed).standard_normal((n * m, d))
    Y = s.a * np.repeat(dr.X, m, axis=0) + math.sqrt(s.h) * E
    return np.tanh(Y @ dr.W.T / math.sqrt(d)), E


def _noise_averaged(s, d, seed, order=60):
    """``U = 1/n sum E phi phi^T``, ``V = 1/n sum E eps phi^T`` by 2-d Gauss-Hermite."""
    n, p = s.sizes(d)
    dr = draw(n, p, d, seed)
    W, h = dr.W, s.h
    z, wz = np.polynomial.hermite_e.hermegauss(order)
    wz = wz / wz.sum()
    r = (W * W).sum(1) / d
    sc = np.sqrt(h * r)
    rho = np.clip((W @ W.T / d) / np.sqrt(np.outer(r, r)), -1, 1)
    c = np.sqrt(1 - rho**2)
    U, V = np.zeros((p, p)), np.zeros((d, p))
    for x in dr.X:
        mu = s.a * W @ x / math.sqrt(d)
        gi = mu[:, None, None, None] + sc[:, None, None, None] * z[None, None, :, None]
        gj = mu[None, :, None, None] + sc[None, :, None, None] * (
            rho[:, :, None, None] * z[None, None, :, None] + c[:, :, None, None] * z[None, None, None, :])
        U += np.einsum("ijab,a,b->ij", np.tanh(gi) * np.tanh(gj), wz, wz) / n
        # E[eps sigma(g_i)] = Cov(eps, g_i) E[(g_i - mu_i) sigma(g_i)] / Var(g_i)
        ez = (np.tanh(mu[:, None] + sc[:, None] * z) * (sc[:, None] * z)) @ wz
        V += math.sqrt(h / d) * W.T * (ez / (h * r))[None, :] / n
    return U, V


def _gradient_descent(s, d, seed, taus, eta):
    """``{tau: (A, L_train(A))}`` along full-batch gradient descent from ``A = 0``."""
    n, p = s.sizes(d)
    h, lam, q = s.h, s.lam, math.sqrt(s.h / p)
    if s.m == math.inf:
        U, V = _noise_averaged(s, d, seed)
        grad = lambda A: (2 / d) * (q * q * A @ U + q * V) + (2 * h * lam / (d * p)) * A  # noqa: E731
        loss = lambda A: 1 + (q * q * np.sum(A * (A @ U)) + 2 * q * np.sum(A * V)) / d  # noqa: E731
    else:
        Phi, E = _features(s, d, seed)
        N = Phi.shape[0]
        grad = lambda A: ((2 / (N * d)) * q * (q * Phi @ A.T + E).T @ Phi  # noqa: E731
                          + (2 * h * lam / (d * p)) * A)
        loss = lambda A: float(((q * Phi @ A.T + E) ** 2).sum() / (N * d))  # noqa: E731
    A, done, out = np.zeros((d, p)), 0, {}
    for tau in taus:
        steps = round(tau * d * d / eta)
        assert steps * eta / d**2 == pytest.approx(tau, rel=1e-14)
        for _ in range(steps - done):
            A -= eta * grad(A)
        done = steps
        out[tau] = (A.copy(), loss(A))
    return out


def _gd_errors(s, eta):
    """Worst relative errors of B, train and test of the simulator against descent."""
    worst = {"B": 0.0, "train": 0.0, "test": 0.0}
    for tau, (A, train) in _gradient_descent(s, D, SEED, TAUS, eta).items():
        f = fit_score(s.replace(tau=tau), D, SEED)
        B = math.sqrt(s.h) * A / math.sqrt(A.shape[1])
        sim = rfdsm.simulate(s.replace(tau=tau), D, SEED)
        test = 1 + quadratic(-B.T, f.population) / D
        worst["B"] = max(worst["B"], np.linalg.norm(B - f.B) / np.linalg.norm(f.B))
        worst["train"] = max(worst["train"], abs(train / sim.train - 1))
        worst["test"] = max(worst["test"], abs(test / sim.test - 1))
    return worst


@pytest.mark.parametrize("m", [2, math.inf])
def test_gradient_descent_matches_the_flow_and_converges_with_the_step(m):
    s = Setting(psi_n=1, psi_p=2, m=m)  # d = 12: n = 12, p = 24
    coarse, fine = _gd_errors(s, 1.0), _gd_errors(s, 0.25)
    assert coarse["B"] < 2e-3 and fine["B"] < 5e-4
    assert 3.0 < coarse["B"] / fine["B"] < 5.0  # first order in eta: the factor 2h/psi_p is right
    for e in ("train", "test"):
        assert coarse[e] < 1e-3 and fine[e] < coarse[e] / 2


def test_noise_averaged_reference_moments_are_the_simulators():
    # the m = inf descent above runs on its own quadrature moments: they must be the same U, V
    s = Setting(psi_n=1, psi_p=2, m=math.inf)
    U, V = _noise_averaged(s, D, SEED)
    f = fit_score(s, D, SEED)
    assert np.abs(U - f.train_moments.S).max() < 1e-10
    assert np.abs(V - f.train_moments.C).max() < 1e-10


def test_tau_inf_is_the_ridge_solve_bit_for_bit():
    s = Setting(psi_n=1.5, psi_p=2, m=3)
    assert s.tau == math.inf and Setting(psi_n=1.5, psi_p=2, m=3, tau="inf") == s
    f = fit_score(s, 20, 1)
    mom = f.train_moments
    assert np.array_equal(f.K, ridge_solve(mom.S, mom.C, s.lam))
    # the ridge's content fingerprint (part of sweep hashes) is that of the plain ridge
    assert get_estimator("ridge").fingerprint == "cf369edd41efcce1"
    a, b = rfdsm.simulate(s, 20, 1, n_seeds=2), rfdsm.simulate(s.replace(tau="inf"), 20, 1, n_seeds=2)
    for e in ("train", "test", "score", "train_se", "test_se", "score_se"):
        assert getattr(a, e) == getattr(b, e)


@pytest.mark.parametrize("m", [1, math.inf])
def test_large_tau_converges_to_the_ridge_minimiser(m):
    s = Setting(psi_n=1.5, psi_p=2, m=m, lam=0.1)
    ref = rfdsm.simulate(s, 20, 0)
    gaps = [abs(rfdsm.simulate(s.replace(tau=tau), 20, 0).test - ref.test)
            for tau in (10.0, 100.0, 1000.0, 1e4)]
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 1e-10


def test_flow_filter_is_stable_for_tiny_arguments():
    ctau = 3.0
    g = flow_filter(np.array([-1e-17, 0.0, 1e-300, 1e-12, 1e-6, 1.0, 1e8]), 0.0, ctau)
    assert g[0] == g[1] == g[2] == ctau  # s = 0 (and round-off below it): the limit c tau
    y = ctau * np.array([1e-12, 1e-6])
    assert g[3:5] == pytest.approx(ctau * (1 - y / 2 + y * y / 6), rel=1e-15)
    assert g[5] == pytest.approx(-math.expm1(-ctau), rel=1e-15)
    assert g[6] == pytest.approx(1e-8, rel=1e-15)
    assert flow_rate(Setting(psi_n=1, psi_p=4, t=0.3)) == 2 * (-math.expm1(-0.6)) / 4


@pytest.mark.parametrize("m", [1, 4, math.inf])
def test_lam_zero_at_finite_tau_is_finite_and_tends_to_the_ridgeless_fit(m):
    s = Setting(psi_n=1, psi_p=3, m=m, lam=0.0)  # p > N for m = 1: S is singular
    for tau in (0.01, 1.0, 100.0):
        r = rfdsm.simulate(s.replace(tau=tau), 20, 0)
        assert all(math.isfinite(v) for v in (r.train, r.test, r.score))
    ridgeless = rfdsm.simulate(s, 20, 0)
    late = rfdsm.simulate(s.replace(tau=1e8), 20, 0)
    assert late.test == pytest.approx(ridgeless.test, rel=1e-6)


@pytest.mark.parametrize("m,lam", [(1, 0.01), (3, 0.0), (math.inf, 0.05)])
def test_train_and_regularised_loss_decrease_along_the_flow(m, lam):
    # g_i(tau) grows with tau and g_i s_i < 1, so the train error decreases as well as the
    # objective (train + lam |B|^2/d) that the flow descends; the test error does not
    s = Setting(psi_n=1.5, psi_p=2, m=m, lam=lam)
    taus = np.geomspace(0.01, 1e4, 25)
    res = simulate_tau_curve(s, taus, 20, 0)
    train = np.array([r.train for r in res])
    reg = [r.train + lam * np.sum(fit_score(r.setting, 20, 0).B ** 2) / 20 for r in res[::4]]
    assert np.all(np.diff(train) <= 1e-14) and np.all(np.diff(reg) <= 1e-14)  # flat once converged
    assert np.all(np.diff(train[:12]) < 0) and train[0] - train[-1] > 0.1


@pytest.mark.parametrize("m,lam", [(1, 0.01), (1, 0.0), (3, 0.1), (math.inf, 0.0)])
def test_tau_curve_equals_one_simulation_per_tau(m, lam):
    s = Setting(psi_n=1.5, psi_p=2, m=m, lam=lam)
    taus = [100.0, 0.1, 1.0, math.inf]
    curve = simulate_tau_curve(s, taus, 16, seed=1, n_seeds=2)
    assert [r.setting.tau for r in curve] == taus and rfdsm.simulate.simulate_tau_curve
    for r in curve:
        one = rfdsm.simulate(r.setting, 16, seed=1, n_seeds=2)
        for e in ("train", "test", "score", "train_se", "test_se"):
            assert getattr(r, e) == pytest.approx(getattr(one, e), rel=1e-9, abs=1e-12)
        assert r.per_seed[1]["seed"] == 2


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, True, "x", "-inf", "1e400", None])
def test_tau_is_validated_by_name(bad):
    with pytest.raises(ValueError, match="tau"):
        Setting(psi_n=1, psi_p=1, tau=bad)
    with pytest.raises(ValueError, match="tau"):
        simulate_tau_curve(Setting(psi_n=1, psi_p=1), [1.0, bad], 10)


def test_cli_tau(capsys):
    code, out, _ = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--tau", "10", "--d", "12",
                        "--json"], capsys)
    assert code == 0
    assert json.loads(out)["test"] == pytest.approx(
        rfdsm.simulate(Setting(psi_n=1, psi_p=2, tau=10), 12).test, rel=1e-12)
    code, out, _ = run(["theory", "--psi-n", "1", "--psi-p", "2", "--tau", "10", "--json"],
                       capsys)
    assert code == 0  # docs/theory.md Sec. 10
    assert json.loads(out)["test"] == pytest.approx(
        rfdsm.theory(Setting(psi_n=1, psi_p=2, tau=10)).test, rel=1e-12)
    code, _, err = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--tau", "0", "--d", "12"],
                       capsys)
    assert code == 2 and "tau" in err
    with pytest.raises(ValueError, match="finite tau"):  # not derived for structured data
        rfdsm.theory(Setting(psi_n=1, psi_p=2, tau=5.0, data=subspace(0.5)))


def test_sweep_over_a_log_range_of_tau(tmp_path):
    from rfdsm.sweep import run_sweep

    cfg = tmp_path / "tau.toml"
    cfg.write_text('[sweep]\nevaluators = ["simulate"]\n\n[grid]\npsi_n = 1\npsi_p = 2\n'
                   'tau = {start = 1, stop = 100, num = 3, spacing = "log"}\n\n'
                   '[simulate]\nd = 12\nseeds = 1\n')
    df = run_sweep(cfg, tmp_path / "out", workers=1, progress=False)
    assert sorted(df.tau) == pytest.approx([1.0, 10.0, 100.0])
    for _, row in df.iterrows():
        ref = rfdsm.simulate(Setting(psi_n=1, psi_p=2, tau=row.tau), 12)
        assert row.test == pytest.approx(ref.test, rel=1e-12)


def test_a_theory_sweep_with_finite_tau_loads():
    from rfdsm.sweep.config import load_config

    cfg = load_config({"sweep": {"evaluators": ["theory"]},
                       "grid": {"psi_n": 1, "psi_p": [1, 2], "tau": [10.0, math.inf]}})
    assert cfg.n_rows["theory"] == 4
    # the simulator takes it
    load_config({"sweep": {"evaluators": ["simulate"]}, "simulate": {"d": 20},
                 "grid": {"psi_n": 1, "psi_p": [1, 2], "tau": [10.0, math.inf]}})


def _tau_sweep(tmp_path):
    cfg = tmp_path / "taus.toml"
    cfg.write_text('[sweep]\nevaluators = ["simulate"]\n\n[grid]\npsi_n = 1.5\npsi_p = [1, 2]\n'
                   'm = [1, "inf"]\ntau = [1, 10, 100, inf]\n\n'
                   '[simulate]\nd = [12, 16]\nseeds = 2\nseed = 1\n')
    return cfg


def _count_fits(monkeypatch):
    """Calls of the per-tau curve (one fit for all taus) and of the single-setting fit."""
    from rfdsm.simulate import fit, flow

    calls = {"curve": 0, "fit": 0}

    def counted(name, f):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return f(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(flow, "curve_seed", counted("curve", flow.curve_seed))
    monkeypatch.setattr(fit, "fit", counted("fit", fit.fit))
    return calls


def test_a_sweep_over_tau_fits_each_setting_d_and_seed_once(tmp_path, monkeypatch):
    from rfdsm.sweep import run_sweep
    from rfdsm.sweep.config import load_config

    cfg = _tau_sweep(tmp_path)
    loaded = load_config(cfg)
    tasks = loaded.tasks()
    # 2 psi_p x 2 m x 2 d x 2 seeds tasks of 4 rows each, counted before and after expanding
    assert len(tasks) == loaded.n_tasks["simulate"] == 16
    assert sum(t["rows"] for t in tasks) == loaded.n_rows["simulate"] == 64
    calls = _count_fits(monkeypatch)
    df = run_sweep(cfg, tmp_path / "out", workers=1, progress=False)
    assert calls == {"curve": 16, "fit": 0} and len(df) == 64
    for (psi_p, m, tau, d), rows in df.groupby(["psi_p", "m", "tau", "d"]):
        ref = rfdsm.simulate(Setting(psi_n=1.5, psi_p=psi_p, m=m, tau=tau), int(d), seed=1,
                             n_seeds=2)
        assert list(rows.seed) == [1, 2]
        for e in ("train", "test", "score"):
            got = rows[e].to_numpy()
            want = [ps[e] for ps in ref.per_seed]
            assert got == pytest.approx(want, rel=1e-10, abs=1e-13)
    # the journal holds each task's rows under its key: a rerun resumes without fitting
    calls.update(curve=0, fit=0)
    again = run_sweep(cfg, tmp_path / "out", workers=1, progress=False)
    assert calls == {"curve": 0, "fit": 0} and len(again) == 64


def test_a_single_tau_keeps_the_task_keys_of_a_sweep_without_a_tau_axis():
    from rfdsm.evaluators import digest, setting_key
    from rfdsm.sweep.config import load_config

    base = {"sweep": {"evaluators": ["simulate"]}, "simulate": {"d": [12, 16], "seeds": 2},
            "grid": {"psi_n": 1, "psi_p": [1, 2]}}
    plain = load_config(base).tasks()
    old = ["simulate:" + digest("|".join([setting_key(t["setting"]), str(t["d"]), str(t["seed"])]))
           for t in plain]
    assert [t["key"] for t in plain] == old
    at_inf = load_config({**base, "grid": {**base["grid"], "tau": math.inf}}).tasks()
    assert [t["key"] for t in at_inf] == old
    one = load_config({**base, "grid": {**base["grid"], "tau": 10}}).tasks()
    assert [t["rows"] for t in one] == [1] * 8 and all("setting" in t for t in one)
    two = load_config({**base, "grid": {**base["grid"], "tau": [10, math.inf]}}).tasks()
    assert len(two) == 8 and [t["rows"] for t in two] == [2] * 8
    assert not {t["key"] for t in two} & {t["key"] for t in plain + one}
