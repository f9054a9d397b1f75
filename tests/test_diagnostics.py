"""Diagnostics test_emp, beta, bias2, variance (docs/model.md; docs/theory.md Sec. 11), the
plateau psi_p -> inf and the optimal ridge."""

import json
import math

import numpy as np
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.analysis.bias_variance import DIAGNOSTICS, bias_variance
from rfdsm.analysis.optimal import optimal_lambda
from rfdsm.simulate import diagnostics as SD
from rfdsm.simulate import fit_score
from rfdsm.theory import plateau, theory
from rfdsm.theory.diagnostics import limits
from rfdsm.analysis.validate import summarize, validation_table

INF = math.inf


# ------------------------------------------------------------------ theory vs simulation
def test_theory_matches_simulation_in_the_limit():
    """The d -> inf extrapolation (c0 + c1/d, weights 1/se^2, Bonferroni; docs/theory.md
    Sec. 7) of test_emp, beta, bias2 and variance at d = 48, 80, 128 is the theory, for m = 1,
    a finite m above p = n and m = inf (with the kinked ReLU)."""
    settings = [Setting(2, 4, m=1, t=0.1, lam=0.01), Setting(2, 4, m=4, t=0.1, lam=0.01),
                Setting(1, 3, m=INF, t=0.5, lam=0.01, activation="relu")]
    df = validation_table(settings, ds=(48, 80, 128), n_seeds=3, seed=0, metrics=DIAGNOSTICS)
    assert set(df["quantity"]) == {"train", "test", "score", *DIAGNOSTICS}
    wide, ok = summarize(df)
    assert ok, wide.loc[~wide["ok"], ["m", "psi_p", "quantity", "theory", "intercept", "se",
                                      "reason"]].to_string()


def test_test_emp_monte_carlo():
    """The exact test_emp (Mehler series of the noise average) against fresh noise samples at
    the training points: an independent estimate."""
    s = Setting(2, 3, m=4, t=0.3, lam=0.01)
    f = fit_score(s, 24, seed=1)
    exact = SD.test_emp(f)
    rng = np.random.default_rng(5)
    X, d, M = f.draw.X, f.d, 4000
    vals = []
    for x in X:
        eps = rng.standard_normal((M, d))
        y = s.a * x + math.sqrt(s.h) * eps
        pred = math.sqrt(s.h) * f(y)  # B phi(y)
        vals.append(((pred + eps) ** 2).sum(axis=1) / d)
    vals = np.array(vals)
    per_point = vals.mean(axis=1)
    se = math.sqrt(np.sum(vals.var(axis=1, ddof=1) / M)) / len(X)
    assert abs(per_point.mean() - exact) < 5 * se, (per_point.mean(), exact, se)


def test_radial_profile_monte_carlo():
    """g(r) = -E[y.s(y) | |y| = r]/r^2 (eq. (G9)) against random directions at one radius."""
    s = Setting(1, 2, m=2, t=0.2, lam=0.05)
    f = fit_score(s, 20, seed=2)
    c = SD.radial(f)
    j = len(c["x"]) // 2
    r = math.sqrt(c["x"][j])
    rng = np.random.default_rng(0)
    om = rng.standard_normal((200000, f.d))
    om /= np.linalg.norm(om, axis=1, keepdims=True)
    v = -(np.einsum("ij,ij->i", r * om, f(r * om))) / r ** 2
    assert abs(v.mean() - c["g"][j]) < 5 * v.std() / math.sqrt(v.size)


def test_kinked_user_activation_matches_relu_closed_form():
    # the composite quadrature of a declared kink against J(c) = c/(2d) of the centred ReLU
    rfdsm.register_activation("diag_relu_copy",
                              lambda x: np.maximum(x, 0) - 1 / math.sqrt(2 * math.pi),
                              kinks=(0.0,), overwrite=True)
    base = Setting(2, 2, m=INF, t=0.3, lam=0.01, activation="relu")
    f1, f2 = fit_score(base, 24, 3), fit_score(base.replace(activation="diag_relu_copy"), 24, 3)
    g1, g2 = SD.radial(f1)["g"], SD.radial(f2)["g"]
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-11)


# ------------------------------------------------------------------ score = bias2 + variance
def test_score_is_bias2_plus_variance_in_simulation():
    s = Setting(2, 4, m=4, t=0.1, lam=0.01)
    r = rfdsm.simulate(s, 40, seed=0, n_seeds=4, metrics=DIAGNOSTICS)
    for row, diag in zip(r.per_seed, r.diagnostics["per_seed_diagnostics"]):
        # variance is E|s|^2/d (population Gram) - E' g^2 (the profile): an independent path
        assert row["bias2"] + row["variance"] == pytest.approx(row["score"], rel=1e-10)
        assert row["variance"] >= 0 and row["bias2"] >= 0
        assert diag["radial_beta_mismatch"] < 1e-11  # E' g = -(1/(hd)) tr(B V_pop^T)
    bv = bias_variance(r)
    assert bv.method == "pairs" and bv.n_seeds == 4
    assert bv.bias2 + bv.variance == pytest.approx(r.score, rel=1e-12)
    assert bv.bias2_se > 0 and bv.variance_se > 0
    # the seed mean of the own biases exceeds the unbiased pooled bias by Var(g) (> 0 here);
    # the per-seed scalars (without the profiles) give nearly the same correction
    approx = bias_variance([{**row, "d": 40} for row in r.per_seed])
    assert approx.method == "beta"
    assert 0 < bv.correction and abs(approx.bias2 - bv.bias2) < 0.05 * bv.bias2_se
    assert abs(r.metrics["bias2"] - bv.bias2 - bv.correction) < 1e-12


@pytest.mark.parametrize("m", [1, 3, INF])
def test_score_is_bias2_plus_variance_in_theory(m):
    r = theory(Setting(1.5, 2.5, m=m, t=0.2, lam=0.02), metrics=DIAGNOSTICS)
    assert r.converged
    mt = r.metrics
    assert mt["bias2"] + mt["variance"] == pytest.approx(r.score, rel=1e-14)
    assert mt["bias2"] == pytest.approx((1 - mt["beta"]) ** 2, rel=1e-14)
    assert mt["variance"] > 0 and limits(r.setting, r)["quadrature_error"] < 1e-9


# ------------------------------------------------------------------ test_emp and m
def test_test_emp_at_m_inf_is_train():
    s = Setting(2, 4, m=INF, t=0.1, lam=0.01)
    r = rfdsm.simulate(s, 32, seed=0, n_seeds=2, metrics=["test_emp"])
    assert [row["test_emp"] for row in r.per_seed] == [row["train"] for row in r.per_seed]
    th = theory(s, metrics=["test_emp"])
    assert th.metrics["test_emp"] == th.train


def test_theory_test_emp_tends_to_the_m_inf_train_error():
    # (G8) at finite m tends to (G4) as O(1/m): doubling m halves the gap
    s = Setting(2, 4, t=0.1, lam=0.01)
    ref = theory(s.replace(m=INF)).train
    gaps = [theory(s.replace(m=m), metrics=["test_emp"]).metrics["test_emp"] - ref
            for m in (256, 512, 1024)]
    np.testing.assert_allclose([gaps[1] / gaps[0], gaps[2] / gaps[1]], 0.5, atol=5e-3)
    assert abs(gaps[2]) < 2e-3


# ------------------------------------------------------------------ plateau psi_p -> inf
@pytest.mark.parametrize("kw", [dict(psi_n=2, m=1), dict(psi_n=2, m=4),
                                dict(psi_n=1, m=3, t=0.5, activation="relu"),
                                dict(psi_n=2, m=INF)])
def test_plateau_is_the_limit_of_the_theory(kw):
    s = Setting(psi_p=1.0, lam=1e-3, **{"t": 0.1, **kw})
    P = plateau(s)
    assert P.converged and P.evaluator == "plateau"
    pv = {"train": P.train, "test": P.test, "score": P.score, **P.metrics}
    gaps = {}
    for pp in (1e3, 1e4, 1e5):
        r = theory(s.replace(psi_p=pp), metrics=DIAGNOSTICS)
        assert r.converged
        vals = {"train": r.train, "test": r.test, "score": r.score, **r.metrics}
        gaps[pp] = {q: abs(vals[q] - pv[q]) for q in pv}
    for q, v in pv.items():
        scale = max(1.0, abs(v))
        assert gaps[1e5][q] <= 0.2 * gaps[1e4][q] + 1e-9 * scale, q  # O(1/psi_p) approach
        assert gaps[1e4][q] <= 0.2 * gaps[1e3][q] + 1e-9 * scale, q
        assert gaps[1e5][q] <= 2e-3 * scale, q


def test_plateau_does_not_depend_on_lam_and_refuses_linear():
    a, b = plateau(Setting(2, 1, m=4, lam=1e-3)), plateau(Setting(2, 1, m=4, lam=10.0))
    assert a.test == b.test and a.metrics == b.metrics
    with pytest.raises(ValueError, match="nonlinear activation"):
        plateau(Setting(2, 1, m=4, activation="linear"))


# ------------------------------------------------------------------ optimal ridge
@pytest.mark.parametrize("s", [Setting(2, 4, m=4, t=0.1), Setting(16, 64, m=16, t=0.1)])
def test_lam_star_is_a_minimum(s):
    o = optimal_lambda(s)
    assert o.status == "ok" and o.converged, o.message
    assert o.value == pytest.approx(theory(o.setting).test, rel=1e-12)
    for f in (0.9, 1.1):
        assert theory(s.replace(lam=o.lam * f)).test > o.value


def test_optimal_lambda_bad_input():
    s = Setting(2, 4)
    for kw, word in ((dict(quantity="nope"), "quantity"), (dict(lam_range=(1, 0.5)), "lam_range"),
                     (dict(scan=2), "scan")):
        with pytest.raises(ValueError, match=word):
            optimal_lambda(s, **kw)


# ------------------------------------------------------------------ plumbing
def test_on_request_and_existing_numbers_unchanged():
    s = Setting(2, 3, m=4, t=0.1, lam=0.01)
    plain = rfdsm.simulate(s, 24, seed=0, n_seeds=2)
    diag = rfdsm.simulate(s, 24, seed=0, n_seeds=2, metrics=DIAGNOSTICS)
    assert not set(DIAGNOSTICS) & set(plain.metrics)  # not computed unless asked for
    assert set(diag.metrics) == {*DIAGNOSTICS, *(q + "_se" for q in DIAGNOSTICS)}
    for q in ("train", "test", "score"):
        assert getattr(plain, q) == getattr(diag, q)  # same seed, same numbers
    out = json.loads(json.dumps(diag.to_dict(), allow_nan=False))
    assert out["test_emp"] == diag.metrics["test_emp"]
    assert set(DIAGNOSTICS) <= set(diag.rows()[0])
    assert not set(DIAGNOSTICS) & set(theory(s).metrics)  # the same record as a simulation
    th = theory(s, metrics=DIAGNOSTICS)
    assert set(DIAGNOSTICS) <= set(th.rows()[0]) and set(DIAGNOSTICS) <= set(th.to_dict())
    assert theory(s, metrics="all").metrics == th.metrics
    with pytest.raises(ValueError, match="unknown metric"):
        theory(s, metrics=["nope"])


def test_sweep_computes_requested_metrics(tmp_path):
    from rfdsm.sweep import run_sweep
    from rfdsm.sweep.config import ConfigError, load_config

    cfg = {"sweep": {"name": "diag", "evaluators": ["theory", "simulate"], "curve": "psi_p"},
           "grid": {"psi_n": 2, "psi_p": [1, 2, 4], "m": 4, "t": 0.1, "lam": 0.01},
           "theory": {"metrics": ["test_emp", "bias2", "variance"]},
           "simulate": {"d": 16, "seeds": 2, "metrics": ["test_emp", "bias2", "variance"]}}
    df = run_sweep(cfg, tmp_path / "s", workers=1, progress=False)
    sim = df[df["evaluator"] == "simulate"]
    assert len(sim) == 6 and sim[["test_emp", "bias2", "variance"]].notna().all().all()
    th = df[df["evaluator"] == "theory"]
    assert th[["test_emp", "bias2", "variance"]].notna().all().all()
    bad = {**cfg, "simulate": {**cfg["simulate"], "metrics": ["no_such_metric"]}}
    with pytest.raises((ConfigError, ValueError), match="simulate.metrics"):
        load_config(bad)
    from rfdsm import plots

    written = plots.make_figures(df, tmp_path / "fig", kinds=["diagnostics"])
    assert {p.stem for p in written} == {"diagnostics_losses", "diagnostics_bias_variance"}


def test_bias_needs_the_isotropic_target():
    from rfdsm.core import params

    if "psi_d" not in params.names():
        pytest.skip("no structured data model in this version")
    s = Setting(2, 2, m=4, t=0.1, lam=0.01, psi_d=0.5)
    with pytest.raises(ValueError, match="isotropic"):
        rfdsm.simulate(s, 16, metrics=["bias2"])
    assert "test_emp" in rfdsm.simulate(s, 16, metrics=["test_emp"]).metrics


def test_computed_figures():
    from rfdsm.plots import diagnostics as P

    fig = P.plateau_vs_t(2, [1, 4, INF], [0.05, 0.1, 0.5])
    assert {ln.get_gid() for ax in fig.axes for ln in ax.lines} >= {"plateau:test:m=1",
                                                                   "plateau:variance:m=\\infty"}
    fig, table = P.scaling_collapse([(1, 2), (2, 2)], psi_p=np.geomspace(0.5, 8, 5))
    assert len(table) == 10 and table["converged"].all()
    fig, table = P.optimal_envelope(2, 2, [1.0, 8.0], lams=(1e-3,))
    assert (table["test_star"] <= table["test_lam0.001"]).all() and (table["status"] == "ok").all()


def test_plateau_refuses_a_finite_training_time():
    from rfdsm.theory import plateau

    with pytest.raises(ValueError, match="tau = inf"):
        plateau(Setting(psi_n=2, psi_p=4, m=1, t=0.1, lam=1e-3, tau=10))
