"""Structured data x_0 ~ N(0, Sigma): data models, simulator, theory (docs/theory.md, Sec. 12).

Theory vs simulation uses the d -> inf extrapolation of rfdsm.analysis.validate (three sizes, weighted
1/d fit, Bonferroni level), as tests/test_validate.py does for isotropic data.
"""

import math

import numpy as np
import pytest

import rfdsm
import rfdsm.metrics.split  # the par/perp metrics
from rfdsm.data import DataModel, GaussianLaw
from rfdsm import Setting
from rfdsm.analysis import validate as V
from rfdsm.data import Spectrum, get_data, parse_spectrum, subspace
from rfdsm.simulate import fit as fitmod
from rfdsm.theory.structured import solve_data

INF = math.inf
SPLIT = rfdsm.metrics.split.SPLIT_METRICS


# ------------------------------------------------------------------ the data models
def test_spectrum_forms_and_bayes():
    s = Spectrum([0.75, 0.25], [0, 1])
    assert s.name == "spectrum(0.25:1,0.75:0)" and s == subspace(0.25)
    assert parse_spectrum(s.name) == s == parse_spectrum({"weights": [0.25, 0.75],
                                                           "values": [1, 0]})
    assert get_data(s.name) == s and s.psi_d == 0.25 and s.mean == 0.25
    st = Setting(psi_n=1, psi_p=2, t=0.3, psi_d=0.25)
    assert st.data == "isotropic" and st.data_model == s
    assert st.bayes == pytest.approx(0.25 * math.exp(-0.6), rel=1e-15)  # psi_d a^2
    spiked = Setting(psi_n=1, psi_p=2, t=0.3, data="spectrum(0.1:5,0.9:1)")
    a2, h = math.exp(-0.6), -math.expm1(-0.6)
    assert spiked.bayes == pytest.approx(0.1 * 5 * a2 / (5 * a2 + h) + 0.9 * a2, rel=1e-14)
    # psi_d restricts a spectrum to a subspace: its atoms scaled, 0 on the complement
    assert spiked.replace(psi_d=0.5).data_model == Spectrum([0.05, 0.45, 0.5], [5, 1, 0])
    assert Setting(psi_n=1, psi_p=2, psi_d=1.0).data_model is get_data("isotropic")


@pytest.mark.parametrize("bad, match", [
    (dict(data={"weights": [0.5, 0.6], "values": [1, 0]}), "sum to 1"),
    (dict(data={"weights": [0.5, 0.5], "values": [1, -1]}), ">= 0"),
    (dict(data={"weights": [0.5, 0.5], "values": [0, 0]}), "not all be 0"),
    (dict(data={"weights": [1.0], "values": [1, 2]}), "as many weights"),
    (dict(data={"weights": [1.0]}), "weights and values"),
    (dict(data="spectrum(0.5,0.5)"), "weight:value"),
    (dict(data="spectrum(1:nan)"), "values"),
    (dict(psi_d=0.0), "psi_d"), (dict(psi_d=1.5), "psi_d"), (dict(psi_d=math.nan), "psi_d"),
    (dict(psi_d="x"), "psi_d"),
])
def test_bad_data_is_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match) as exc:
        Setting(psi_n=1, psi_p=2, **bad)
    assert "data" in str(exc.value) or "psi_d" in str(exc.value)


def test_psi_d_needs_a_spectrum_and_cli_refuses_bad_values(capsys):
    from rfdsm.cli import main
    from rfdsm.data import Isotropic, register_data

    class Toy(Isotropic):
        name = "toy-structured"
        restricted = None

    register_data(Toy(), overwrite=True)
    with pytest.raises(ValueError, match="psi_d = 0.5 < 1 needs a data model with a covariance"):
        Setting(psi_n=1, psi_p=2, data="toy-structured", psi_d=0.5)
    assert main(["theory", "--psi-n", "1", "--psi-p", "2", "--psi-d", "2"]) == 2
    err = capsys.readouterr().err
    assert "psi_d must be a number in (0, 1]" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="text forms of built-in laws"):
        class Bad(Isotropic):
            name = "spectrum(1:1)"
        register_data(Bad())


def test_cli_theory_with_psi_d_and_a_spectrum(capsys):
    from rfdsm.cli import main

    assert main(["theory", "--psi-n", "2", "--psi-p", "1", "--psi-d", "0.25", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"psi_d": 0.25' in out
    assert main(["theory", "--psi-n", "2", "--psi-p", "1", "--m", "inf",
                 "--data", "spectrum(0.1:5,0.9:1)", "--json"]) == 0
    assert '"data": "spectrum(0.1:5,0.9:1)"' in capsys.readouterr().out


# ------------------------------------------------------------------ simulator
def test_isotropic_numbers_unchanged():
    # recorded with the code before structured data existed (same seeds): bit for bit up to
    # summation order
    s = Setting(psi_n=1.5, psi_p=2, m=4, activation="relu", t=0.5)
    r = rfdsm.simulate(s, d=40, seed=3, n_seeds=2)
    ref = [0.3209747175075307, 0.749628652734452, 0.6039183605584117]
    got = [r.per_seed[1][k] for k in ("train", "test", "score")]
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    r = rfdsm.simulate(Setting(psi_n=2, psi_p=1, m=1), d=40, seed=3, n_seeds=2, mc_test=2000)
    np.testing.assert_allclose([r.train, r.test, r.score, r.diagnostics["score_mc"]],
                               [0.455686408285215, 1.4563053851030991, 3.5172796425827344,
                                3.771814061784372], rtol=1e-12)
    s = Setting(psi_n=2, psi_p=3, m=INF, activation="erf", lam=0.0, t=1.0)
    r = rfdsm.simulate(s, d=40, seed=3, n_seeds=2)
    np.testing.assert_allclose([r.train, r.test, r.score],
                               [0.1469541605327903, 0.1615868366445018, 0.030360384665808815],
                               rtol=1e-12)
    th = rfdsm.theory(s)
    np.testing.assert_allclose([th.train, th.test, th.score],
                               [0.147779656144702, 0.16208489032540152, 0.03093639253480579],
                               rtol=1e-13)


@pytest.mark.parametrize("data, psi_d", [("isotropic", 0.25), ("spectrum(0.2:4,0.8:0.5)", 1.0),
                                         ("spectrum(0.5:2,0.5:1)", 0.5)])
@pytest.mark.parametrize("m", [1, INF])
def test_test_is_h_score_plus_bayes_and_monte_carlo(data, psi_d, m):
    s = Setting(psi_n=1.5, psi_p=2, m=m, t=0.3, data=data, psi_d=psi_d)
    d = 40  # every atom gets an integer number of coordinates: the finite-d Bayes is the limit's
    r = rfdsm.simulate(s, d=d, seed=1, mc_test=40000)
    assert r.test == pytest.approx(s.h * r.score + s.bayes, rel=1e-12)
    dg = r.diagnostics  # the true score -(a^2 Sigma + h)^{-1} y, by Monte Carlo
    assert abs(dg["test_mc"] - r.test) < 4.5 * dg["test_mc_se"]
    assert abs(dg["score_mc"] - r.score) < 4.5 * dg["score_mc_se"]
    # the split adds up, and the Bayes error lies in the subspace
    f = fitmod.fit(s, d, 1)
    sp = rfdsm.metrics.split.split_errors(f)
    assert sp["test_par"] + sp["test_perp"] == pytest.approx(r.test, rel=1e-12)
    assert sp["score_par"] + sp["score_perp"] == pytest.approx(r.score, rel=1e-12)
    assert sp["test_perp"] == pytest.approx(s.h * sp["score_perp"], rel=1e-12, abs=1e-15)


def _orthogonal(d):
    q, r = np.linalg.qr(np.random.default_rng(99).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


class _Rotated(DataModel):
    """``Sigma = O Lambda O^T`` for a fixed random orthogonal ``O``: a law with an orientation
    (the evaluators read it from the descriptor)."""

    def __init__(self, base, d):
        self.name = "rotated-" + base.name
        self.O = _orthogonal(d)
        self._law = GaussianLaw(base.weights, base.values, basis=_orthogonal)

    def law(self):
        return self._law


def test_orientation_of_sigma_is_irrelevant(monkeypatch):
    from rfdsm.data import register_data

    d = 40
    rot = register_data(_Rotated(subspace(0.25), d), overwrite=True)
    base = dict(psi_n=1.5, psi_p=2, t=0.2)
    coord = Setting(**base, m=INF, psi_d=0.25)
    rotated = Setting(**base, m=INF, data=rot.name)
    # in distribution, W O^T is W: mean errors over seeds agree (m = 1: noise drawn too)
    a = rfdsm.simulate(coord.replace(m=1), d=d, seed=0, n_seeds=8)
    b = rfdsm.simulate(rotated.replace(m=1), d=d, seed=100, n_seeds=8)
    for q in ("train", "test"):
        assert abs(getattr(a, q) - getattr(b, q)) < 4 * math.hypot(getattr(a, q + "_se"),
                                                                   getattr(b, q + "_se"))
    # exactly, with W rotated too (m = inf: no noise is drawn)
    ref = rfdsm.simulate(coord, d=d, seed=5)
    draw = fitmod.draw

    def rotated_draw(n, p, d, seed, data=None):
        dr = draw(n, p, d, seed, subspace(0.25))
        return fitmod.Draw(dr.W @ rot.O.T, dr.X @ rot.O.T, dr.noise_seed, dr.mc_seed)

    monkeypatch.setattr(fitmod, "draw", rotated_draw)
    got = rfdsm.simulate(rotated, d=d, seed=5)
    for q in ("train", "test", "score"):
        assert getattr(got, q) == pytest.approx(getattr(ref, q), rel=1e-10)


# ------------------------------------------------------------------ theory
@pytest.mark.parametrize("m", [1, 3, INF])
@pytest.mark.parametrize("kw", [dict(psi_n=2, psi_p=1, lam=0.01), dict(psi_n=1, psi_p=3, lam=0.01),
                                dict(psi_n=2, psi_p=1, lam=0.0, activation="relu", t=0.5),
                                dict(psi_n=1, psi_p=4, lam=0.0, activation="erf", t=1.0)])
def test_new_equations_reproduce_isotropic_solvers(m, kw):
    # the one-atom spectrum {1: 1} is isotropic data: eqs. (H6)-(H12) at psi_d = 1 are the
    # Marchenko-Pastur solvers (which isotropic settings still use)
    s = Setting(m=m, **kw)
    ref, mine = rfdsm.theory(s), solve_data(s.replace(data="spectrum(1:1)"))
    assert ref.converged and mine.converged
    if math.isinf(ref.test):
        assert math.isinf(mine.test)
        return
    np.testing.assert_allclose([mine.train, mine.test], [ref.train, ref.test], rtol=1e-10,
                               atol=1e-13)
    assert mine.diagnostics["metrics"]["test_perp"] == 0.0


def test_theory_dispatch_and_refusals():
    s = Setting(psi_n=2, psi_p=1, m=4, psi_d=0.25)
    r = rfdsm.theory(s)
    assert r.converged and r.diagnostics["solver"].startswith("finite-m structured")
    assert r.test == pytest.approx(r.score * s.h + s.bayes, rel=1e-13)
    assert r.to_dict()["bayes"] == s.bayes
    with pytest.raises(ValueError, match="nonlinear activation"):
        rfdsm.theory(s.replace(activation="linear"))
    # nothing regularises the resolvents (lam = 0, t -> 0): not converged, never a traceback
    for m in (4, INF):
        bad = rfdsm.theory(Setting(psi_n=1, psi_p=3, m=m, t=1e-40, lam=0.0, psi_d=0.25))
        assert not bad.converged and "not converged" in bad.diagnostics["warning"]
    # ridgeless at the finite-m threshold p = m n diverges, as for isotropic data
    d = rfdsm.theory(Setting(psi_n=1, psi_p=4, m=4, lam=0.0, psi_d=0.5))
    assert d.converged and math.isinf(d.test) and d.diagnostics["divergent"]


#: psi_d in {0.1, 0.25, 0.5, 1 (the one-atom spectrum, through the new equations)},
#: m in {1, 4, inf}, under- (p < n) and over-parameterised (p > n), and a spiked spectrum
VALIDATED = [
    Setting(2, 0.5, m=1, psi_d=0.1), Setting(2, 4, m=INF, psi_d=0.1),
    Setting(1, 3, m=1, psi_d=0.25), Setting(1, 3, m=4, psi_d=0.25),
    Setting(2, 0.5, m=INF, psi_d=0.5), Setting(2, 0.5, m=4, psi_d=0.5),
    Setting(1, 3, m=INF, data="spectrum(1:1)"),
    Setting(2, 0.5, m=1, t=0.3, data="spectrum(0.2:4,0.8:0.5)"),
]


def test_theory_is_the_limit_of_the_simulation():
    df = V.validation_table(VALIDATED, ds=(40, 80, 160), n_seeds=4)
    wide, ok = V.summarize(df)
    bad = wide[~wide["ok"]]
    assert ok, bad[["m", "psi_n", "psi_p", "psi_d", "data", "quantity", "theory", "intercept",
                    "se", "reason"]].to_string()
    assert len(wide) == 3 * len(VALIDATED)


def test_split_is_the_limit_of_the_simulation():
    s = Setting(2, 4, m=INF, psi_d=0.25)
    th = rfdsm.theory(s)
    ds, means, ses = (40, 80, 120), {q: [] for q in SPLIT}, {q: [] for q in SPLIT}
    for d in ds:
        r = rfdsm.simulate(s, d=d, seed=0, n_seeds=4, metrics=SPLIT)
        for q in SPLIT:
            means[q].append(r.metrics[q])
            ses[q].append(r.metrics[q + "_se"])
    for q in SPLIT:
        fit = V.extrapolate(ds, means[q], ses[q], n_seeds=4)
        verdict = V.check(fit, th.metrics[q], len(SPLIT))
        assert verdict["ok"], (q, th.metrics[q], fit.intercept, fit.se, verdict["reason"])
    assert rfdsm.metrics.get_metric("test_perp").theory(s, th) == th.metrics["test_perp"]
    row = th.rows()[0]  # a column of the table
    assert row["test_perp"] == th.metrics["test_perp"] and row["test_perp"] > 0


# ------------------------------------------------------------------ figures
def test_structured_figures_from_a_table(tmp_path):
    pytest.importorskip("matplotlib")
    from rfdsm import plots
    from rfdsm.sweep.store import to_frame
    from rfdsm.theory import theory_curve

    rows = []
    for m in (1, INF):
        for pd_ in (0.25, 1.0):
            line = [Setting(psi_n=pn, psi_p=pp, m=m, psi_d=pd_) for pn in (0.5, 1, 2)
                    for pp in (0.5, 1, 2, 4)]
            rows += [row for r in theory_curve(line) for row in r.rows()]
    rows += rfdsm.simulate(Setting(psi_n=1, psi_p=2, m=1, psi_d=0.25), d=40, n_seeds=2,
                           metrics=SPLIT).rows()
    df = to_frame(rows)
    fig = plots.psi_d_curves(df[df["psi_n"] == 1], x="psi_p", quantities=("test", "test_perp"))
    gids = {line.get_gid() for ax in fig.axes for line in ax.lines}
    assert {"theory:test:psi_d=0.25", "theory:test_perp:psi_d=1",
            "simulate:test_perp:psi_d=0.25"} <= gids
    fig = plots.psi_d_curves(df, x="psi_n", scaled=True, quantities=("excess", "score_par_per_d"))
    assert fig.axes[0].get_xlabel().startswith(r"$\psi_n/\psi_d")
    plots.boundary_diagram(df)
    written = plots.make_figures(df, tmp_path, kinds=["psi_d"])
    assert [p.name for p in written] == ["psi_d_boundary.png"]
    with pytest.raises(ValueError, match="scaled"):
        plots.psi_d_curves(df, x="psi_p", scaled=True)


def test_toml_grid_takes_psi_d_and_a_spectrum_table():
    from rfdsm.sweep.config import load_config

    cfg = load_config({"sweep": {"evaluators": ["theory", "simulate"]}, "simulate": {"d": [40]},
                       "grid": {"psi_n": 1, "psi_p": 2, "psi_d": [0.25, 1.0],
                                "data": {"weights": [0.5, 0.5], "values": [2, 1]}}})
    got = [(s.data, s.psi_d, s.data_model.name) for s in cfg.settings["theory"]]
    assert got == [("spectrum(0.5:2,0.5:1)", 0.25, "spectrum(0.125:2,0.125:1,0.75:0)"),
                   ("spectrum(0.5:2,0.5:1)", 1.0, "spectrum(0.5:2,0.5:1)")]
    from rfdsm.sweep.config import ConfigError
    with pytest.raises(ConfigError, match="sum to 1"):
        load_config({"sweep": {"evaluators": ["theory"]},
                     "grid": {"psi_n": 1, "psi_p": 2,
                              "data": {"weights": [0.5, 0.4], "values": [2, 1]}}})
