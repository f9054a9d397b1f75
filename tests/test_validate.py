"""rfdsm validate: the d -> inf extrapolation test, the built-in sets, the CLI (tiny sizes; not a
validation run itself)."""

import importlib
import math
import pickle
import types

import numpy as np
import pytest
from scipy import stats

from rfdsm import Setting
from rfdsm.analysis import validate as V
from rfdsm.cli import main

TINY = [Setting(2, 0.5, m=1, t=0.5, lam=0.05), Setting(2, 2, m=math.inf, t=0.5, lam=0.05)]
DS = np.array([80.0, 120.0, 160.0, 240.0])


def _cli(argv):
    """Exit status of ``rfdsm argv`` (argparse errors exit via SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_sets_cover_the_brief():
    st = V.default_settings()
    full = V.default_settings("full")
    builtin = {"tanh", "erf", "relu", "linear"}
    for group in (st, full):
        assert {s.m for s in group} == {1, 4, 16, math.inf}
        assert {s.activation for s in group} >= builtin | {V.SOFTPLUS}
        ratios = {s.psi_p / s.psi_n for s in group}
        assert 64 in ratios and 1 / 64 in ratios
        assert {0.001, 3.0} <= {s.t for s in group}
        assert any(s.psi_p < s.psi_n for s in group) and any(s.psi_p > s.psi_n for s in group)
    assert set(map(repr, st)) < set(map(repr, full))
    assert {s.m for s in V.default_settings(finite_m=False)} == {1, math.inf}
    # n = psi_n d and p = psi_p d are integers at every size of every set: no rounding jitter
    for which, (_, ds, seeds) in V.SETS.items():
        assert len(ds) >= 3 and seeds >= 2
        for s in V.default_settings(which):
            for d in ds:
                assert float(s.psi_n * d).is_integer() and float(s.psi_p * d).is_integer()
    with pytest.raises(ValueError, match="which"):
        V.default_settings("medium")


def test_softplus_is_registered_importably_and_not_centred():
    from rfdsm.activations import get_activation, registered_activations

    assert V.SOFTPLUS in registered_activations()
    # namespaced: a user's own "softplus" (docs/guide.md registers one) does not collide
    assert V.SOFTPLUS != "softplus" and get_activation(V.SOFTPLUS).fn is V.softplus
    assert pickle.loads(pickle.dumps(V.softplus)) is V.softplus  # by reference: workers import it
    x, w = np.polynomial.hermite_e.hermegauss(80)
    mu0 = float(w @ V.softplus(x) / w.sum())
    assert mu0 == pytest.approx(0.8063, abs=1e-3)


def test_a_known_1_over_d_law_passes():
    c0, c1, se = 1.3, -2.5, 1e-3 * DS[0] / DS  # se shrinking with d, as seed means do
    fit = V.extrapolate(DS, c0 + c1 / DS, se, n_seeds=4)
    assert fit.intercept == pytest.approx(c0, rel=1e-12) and fit.coef[1] == pytest.approx(c1)
    assert fit.chi2 == pytest.approx(0, abs=1e-16) and fit.birge == 1.0 and fit.chi2_dof == 2
    verdict = V.check(fit, c0, n_checks=60)
    assert verdict["ok"] and verdict["reason"] == ""
    # with noise of the stated size: the intercept stays within its confidence interval
    rng = np.random.default_rng(1)
    z = []
    for _ in range(400):
        f = V.extrapolate(DS, c0 + c1 / DS + se * rng.standard_normal(4), se)
        z.append((f.intercept - c0) / f.se)
    assert abs(np.mean(z)) < 0.2 and 0.8 < np.std(z) < 1.2  # se(c0) is the right size


def test_the_fit_is_weighted_least_squares():
    y = np.array([1.02, 1.011, 1.004, 1.003])
    se = np.array([0.004, 0.002, 0.001, 0.001])
    fit = V.extrapolate(DS, y, se)
    X = np.column_stack([np.ones(4), 1 / DS])
    W = np.diag(1 / se**2)
    cov = np.linalg.inv(X.T @ W @ X)
    coef = cov @ X.T @ W @ y
    chi2 = float(((y - X @ coef) / se) @ ((y - X @ coef) / se))
    assert fit.intercept == pytest.approx(coef[0]) and fit.coef[1] == pytest.approx(coef[1])
    assert fit.chi2 == pytest.approx(chi2)
    assert fit.se == pytest.approx(math.sqrt(cov[0, 0] * max(1, chi2 / 2)))
    assert fit.dof == math.inf
    # Welch-Satterthwaite: one seed set per size with n_seeds - 1 degrees of freedom each
    g = (cov @ X.T @ W)[0]
    nu = (g**2 * se**2).sum() ** 2 / ((g**2 * se**2) ** 2 / 3).sum()
    assert V.extrapolate(DS, y, se, n_seeds=4).dof == pytest.approx(nu)
    assert 3 <= nu <= 12
    assert V.critical_value(60, math.inf) == pytest.approx(stats.norm.ppf(1 - 0.05 / 120))
    assert V.critical_value(60, 5.0) == pytest.approx(stats.t.ppf(1 - 0.05 / 120, 5))


def test_a_shifted_intercept_fails():
    c0, c1, se = 1.3, -2.5, 1e-3 * DS[0] / DS
    fit = V.extrapolate(DS, c0 + c1 / DS, se, n_seeds=4)
    crit = V.critical_value(60, fit.dof)
    off = (crit + 0.5) * fit.se + V.FLOOR * c0
    verdict = V.check(fit, c0 + off, n_checks=60)
    assert not verdict["ok"] and "intercept off by" in verdict["reason"]
    assert V.check(fit, c0 + 0.9 * crit * fit.se, n_checks=60)["ok"]
    assert not V.check(fit, c0, n_checks=60, converged=False)["ok"]


def test_curvature_is_not_hidden():
    # a strong 1/d^2 term: the linear law's residuals reject the fit, the quadratic one fits it
    c0, se = 1.0, np.full(4, 1e-4)
    y = c0 - 3.0 / DS + 2000.0 / DS**2
    v = V.check(V.extrapolate(DS, y, se, n_seeds=6), c0, n_checks=10)
    assert not v["ok"] and "1/d law does not fit" in v["reason"]
    ds5 = np.append(DS, 320.0)
    fit2 = V.extrapolate(ds5, c0 - 3.0 / ds5 + 2000.0 / ds5**2, np.full(5, 1e-4), order=2)
    assert fit2.intercept == pytest.approx(c0) and V.check(fit2, c0, n_checks=10)["ok"]


@pytest.mark.parametrize("args, word", [
    (((80, 160), (1.0, 1.0), (0.1, 0.1)), "at least 3 sizes"),
    (((80, 160, 240), (1.0,) * 3, (0.1,) * 3, None, 2), "at least 4 sizes"),
    (((80, 80, 160), (1.0,) * 3, (0.1,) * 3), "distinct"),
    (((80, 160, 240), (1.0,) * 2, (0.1,) * 3), "same length"),
    (((80, 160, 240), (1.0,) * 3, (0.1, 0.0, 0.1)), "ses"),
    (((80, 160, 240), (1.0, math.nan, 1.0), (0.1,) * 3), "finite"),
    (((80, 160, 240), (1.0,) * 3, (0.1,) * 3, 1), "n_seeds"),
    (((80, 160, 240), (1.0,) * 3, (0.1,) * 3, None, 3), "order"),
])
def test_underdetermined_or_bad_input_errors(args, word):
    with pytest.raises(ValueError, match=word):
        V.extrapolate(*args)


def test_table_and_summary():
    df = V.validation_table(TINY, ds=(16, 24, 32), n_seeds=2)
    assert len(df) == len(TINY) * 3 * 3
    assert set(df.columns) >= {"psi_n", "psi_p", "m", "quantity", "d", "n", "p", "theory",
                               "sim", "sim_se", "n_seeds", "rel_dev", "converged"}
    row = df.iloc[0]
    assert row["rel_dev"] == pytest.approx((row["sim"] - row["theory"]) / abs(row["theory"]))
    wide, ok = V.summarize(df)
    assert len(wide) == len(TINY) * 3 and ok == bool(wide["ok"].all())
    assert set(wide.columns) >= {"theory", "intercept", "se", "z", "crit", "allow", "ok",
                                 "reason"}
    with pytest.raises(ValueError, match="3 distinct sizes"):
        V.validation_table(TINY, ds=(16, 24), n_seeds=2)


def _fake_evaluators(monkeypatch, law):
    """Replace simulate/theory by ``law(d) -> relative deviation`` with a 0.02 % seed error."""
    th = types.SimpleNamespace(train=0.6, test=1.2, score=2.2, converged=True, residual=1e-12)

    def simulate(setting, d, seed=0, n_seeds=1):
        vals = {q: getattr(th, q) * (1 + law(d)) for q in ("train", "test", "score")}
        return types.SimpleNamespace(**vals, **{q + "_se": 2e-4 * v for q, v in vals.items()},
                                     n=round(setting.psi_n * d), p=round(setting.psi_p * d),
                                     converged=True)

    monkeypatch.setattr(importlib.import_module("rfdsm.simulate"), "simulate", simulate)
    monkeypatch.setattr(importlib.import_module("rfdsm.theory"), "theory", lambda s, **kw: th)
    monkeypatch.setattr(V, "default_settings", lambda *a, **k: [
        Setting(0.5, 32, m=math.inf, t=0.1, lam=0.01)])


def test_clean_1_over_d_effect_at_ratio_64_passes(monkeypatch, capsys):
    # The case (tanh, psi_n = 0.5, psi_p = 32, m = inf, t = 0.1): -6.4 / -3.2 / -1.6 %
    # at d = 100 / 200 / 400, a clean 1/d effect with the right limit.  The old calibrated
    # tolerance ((0.005 + 4/d)|theory| + 3 se = 1.56 % at d = 400) rejected it.
    _fake_evaluators(monkeypatch, lambda d: -6.4 / d)
    rc = main(["validate", "--d", "100", "200", "400", "--seeds", "4"])
    out = capsys.readouterr().out
    assert rc == 0 and "ALL PASS" in out, out
    # the same law with a limit 1 % away from the theory fails, with the reason named
    _fake_evaluators(monkeypatch, lambda d: 0.01 - 6.4 / d)
    rc = main(["validate", "--d", "100", "200", "400", "--seeds", "4"])
    out = capsys.readouterr().out
    assert rc == 1 and "intercept off by" in out, out


def test_quick_real_run(capsys, tmp_path):
    out_csv = tmp_path / "v.csv"
    rc = main(["validate", "--quick", "--csv", str(out_csv)])
    out = capsys.readouterr().out
    assert rc == 0 and "ALL PASS" in out and "intercept +- se" in out, out
    assert out_csv.exists() and len(out_csv.read_text().splitlines()) == 1 + 2 * 3 * 4


def test_wrong_theory_is_caught(monkeypatch):
    import rfdsm.theory as th

    real = th.theory

    def shifted(setting, **kw):  # a theory off by 30 %
        r = real(setting, **kw)
        return r.__class__(**{**r.__dict__, "test": 1.3 * r.test})

    monkeypatch.setattr(th, "theory", shifted)
    df = V.validation_table(TINY, ds=(16, 24, 32), n_seeds=3)
    wide, ok = V.summarize(df)
    assert not ok
    bad = wide[~wide["ok"]]
    assert set(bad["quantity"]) == {"test"} and bad["reason"].str.contains("intercept").all()


def test_cli_bad_arguments(capsys, tmp_path):
    for argv, word in ((["validate", "--seeds", "1"], "--seeds"),
                       (["validate", "--seeds", "x"], "--seeds"),
                       (["validate", "--d", "1"], "--d"),
                       (["validate", "--d", "50", "100"], "--d"),
                       (["validate", "--d", "50", "100", "150", "--order", "2"], "--d"),
                       (["validate", "--order", "3"], "--order"),
                       (["validate", "--quick", "--full"], "--full"),
                       (["validate", "--seed", "-1"], "--seed"),
                       (["validate", "--csv", str(tmp_path / "no" / "x.csv")], "--csv"),
                       (["validate", "--csv", str(tmp_path)], "--csv"),
                       (["validate", "--rtol", "0.1"], "--rtol")):
        assert _cli(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rfdsm: error:") and word in err[0], err
    assert not (tmp_path / "no").exists()
