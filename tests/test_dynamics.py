"""Training dynamics: the time-scales tau_gen, tau_mem (rfdsm.analysis.timescales), early stopping
(rfdsm.analysis.early_stopping), their figures (rfdsm.plots.dynamics) and the Bonnaire et al. preset."""

import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rfdsm
from rfdsm import Setting
from rfdsm.analysis.early_stopping import (early_stopping, early_stopping_table, optimal_ridge,
                                  optimal_stopping, stopping_point)
from rfdsm.simulate import simulate_tau_curve
from rfdsm.sweep.config import ConfigError, load_config
from rfdsm.theory.common import ge_constants
from rfdsm.analysis.timescales import (curve_timescales, simulated_spectral_timescales,
                              spectral_timescales, timescale_table, timescales)

INF = math.inf
ROOT = Path(__file__).resolve().parents[1]
# a small over-parameterised m = inf case whose curve has both stages within 1e-1 .. 1e5
CASE = Setting(psi_n=2, psi_p=16, m=INF, t=0.1, lam=0.0)
D = 20


@pytest.fixture(scope="module")
def dense():
    """One seed's curve on 401 log-spaced tau and a coarse one (4 per decade) of the same fit."""
    fine = np.geomspace(0.1, 1e5, 401)
    coarse = np.geomspace(0.1, 1e5, 25)
    return (fine, simulate_tau_curve(CASE, fine, D, seed=3),
            coarse, simulate_tau_curve(CASE, coarse, D, seed=3))


def _errors(results):
    return [np.array([getattr(r, e) for r in results]) for e in ("train", "test", "score")]


# --- time-scales ---------------------------------------------------------------------------
def test_curve_timescales_by_hand():
    taus = [1.0, 10.0, 100.0, 1000.0]
    score = [1.0, 0.5, 0.1, 0.2]          # drop 0.9 to the minimum 0.1: threshold 0.19
    train = [1.0, 0.9, 0.8, 0.7]
    test = [1.0, 0.901, 0.81, 0.8]        # gap 0, 0.001, 0.01, 0.1; h = 0.02: threshold 0.02
    out = curve_timescales(taus, train, test, score, h=0.02)
    assert out["tau_gen"].status == "ok"
    assert out["tau_gen"].value == pytest.approx(10.0 * 10 ** ((0.19 - 0.5) / (0.1 - 0.5)))
    assert out["tau_mem"].value == pytest.approx(100.0 * 10 ** ((0.02 - 0.01) / 0.09))
    # half-rise: L_gen reaches half its tau = inf value 0.12 between tau = 100 and 1000
    half = curve_timescales(taus + [INF], train + [0.6], test + [0.72], score + [0.3], h=0.02,
                            mem_frac=0.5)
    assert half["tau_mem"].value == pytest.approx(100.0 * 10 ** ((0.06 - 0.01) / 0.09))
    assert half["tau_gen"].value == pytest.approx(out["tau_gen"].value)
    assert curve_timescales(taus, train, test, score, h=0.02, mem_frac=0.5)[
        "tau_mem"].status == "uncertain"  # no tau = inf point: the last one stands for it
    # a gap that never reaches the threshold, one already there, a score still falling
    flat = curve_timescales(taus, train, np.array(train) + 0.001, score, h=0.02)
    assert flat["tau_mem"].status == "not_reached" and math.isnan(flat["tau_mem"].value)
    assert "no memorisation" in flat["tau_mem"].message
    early = curve_timescales(taus, train, np.array(train) + 0.05, score, h=0.02)
    assert early["tau_mem"].status == "at_bound"
    falling = curve_timescales(taus, train, test, [1.0, 0.5, 0.2, 0.1], h=0.02)
    assert falling["tau_gen"].status == "uncertain" and falling["tau_gen"].reached
    with pytest.raises(ValueError, match="gen_drop"):
        curve_timescales(taus, train, test, score, h=0.02, gen_drop=1.5)
    with pytest.raises(ValueError, match="increasing"):
        curve_timescales(taus[::-1], train, test, score, h=0.02)


def test_timescales_agree_with_a_brute_force_scan_of_a_dense_curve(dense):
    fine, fres, coarse, cres = dense
    tr, te, sc = _errors(fres)
    h = CASE.h
    # brute force: the first dense grid point past each threshold
    i_gen = np.flatnonzero(sc <= sc.min() + 0.1 * (sc[0] - sc.min()))[0]
    i_mem = np.flatnonzero(te - tr >= h)[0]
    on_fine = curve_timescales(fine, tr, te, sc, h=h)
    assert fine[i_gen - 1] <= on_fine["tau_gen"].value <= fine[i_gen]
    assert fine[i_mem - 1] <= on_fine["tau_mem"].value <= fine[i_mem]
    # the coarse curve (a factor 1.78 between points) interpolates to the dense answer
    on_coarse = timescales(cres)
    assert on_coarse["tau_gen"].value == pytest.approx(fine[i_gen], rel=0.05)
    assert on_coarse["tau_mem"].value == pytest.approx(fine[i_mem], rel=0.05)
    # generalisation first, memorisation later
    assert on_coarse["tau_gen"].value < on_coarse["tau_mem"].value


def test_timescales_per_seed_mean_and_standard_error():
    taus = np.geomspace(0.1, 1e5, 25)
    res = simulate_tau_curve(CASE, taus, 12, seed=0, n_seeds=3)
    both = timescales(res)
    singles = [timescales(simulate_tau_curve(CASE, taus, 12, seed=s))["tau_mem"].value
               for s in range(3)]
    assert both["tau_mem"].per_seed == pytest.approx(singles, rel=1e-10)
    assert both["tau_mem"].value == pytest.approx(np.mean(singles), rel=1e-10)
    assert both["tau_mem"].se == pytest.approx(np.std(singles, ddof=1) / math.sqrt(3), rel=1e-8)
    table = timescale_table(pd.DataFrame([row for r in res for row in r.rows()]))
    assert len(table) == 1 and table["n_seeds"].iloc[0] == 3
    assert table["tau_mem"].iloc[0] == pytest.approx(both["tau_mem"].value, rel=1e-10)
    assert table["tau_mem_spectral"].iloc[0] == pytest.approx(
        spectral_timescales(CASE)["tau_mem"].value)


def test_spectral_timescales_are_thm_3_2():
    s = Setting(psi_n=4, psi_p=64, m=INF, t=0.01, lam=0.0)
    k = ge_constants(s)
    lam_min = k.kappa_i2 + k.kappa_s2 * (1 - math.sqrt(16)) ** 2
    sp = spectral_timescales(s)
    # the e-folding time psi_p/(2 h lambda) (docs/model.md, "Time-scales")
    assert sp["tau_mem"].value == pytest.approx(64 / (2 * s.h * lam_min), rel=1e-12)
    assert sp["tau_gen"].value == pytest.approx(
        64 / (2 * s.h * (k.kappa_i2 + k.kappa_s2 + 64 * k.mu1 ** 2)), rel=1e-12)
    # tau_gen does not depend on n; tau_mem grows with it
    other = spectral_timescales(s.replace(psi_n=8))
    assert other["tau_gen"].value == sp["tau_gen"].value
    assert other["tau_mem"].value > 2 * sp["tau_mem"].value
    with pytest.raises(ValueError, match="m = inf"):
        spectral_timescales(s.replace(m=4))


def test_spectral_timescale_is_the_e_folding_time_of_the_flow():
    from rfdsm.estimators import flow_filter, flow_rate

    s = Setting(psi_n=4, psi_p=64, m=INF, t=0.01, lam=0.0)
    k = ge_constants(s)
    lam_min = k.kappa_i2 + k.kappa_s2 * (1 - math.sqrt(16)) ** 2
    tau = spectral_timescales(s)["tau_mem"].value
    # the mode of eigenvalue lambda_min has made 1 - 1/e of its way to the ridgeless fit
    g = flow_filter(np.array([lam_min]), 0.0, flow_rate(s.replace(tau=tau)) * tau)[0]
    assert g * lam_min == pytest.approx(1 - math.exp(-1), rel=1e-12)


@pytest.mark.parametrize("psi_n, why", [(1, "n - d <= 0"), (0.5, "n - d <= 0"),
                                        (63.5, "no atom"), (64, "no atom"), (128, "no atom")])
def test_spectral_tau_mem_needs_the_memorisation_bulk(psi_n, why):
    s = Setting(psi_n=psi_n, psi_p=64, m=INF, t=0.01)
    sp = spectral_timescales(s)
    mem = sp["tau_mem"]
    assert mem.status == "undefined" and math.isnan(mem.value) and not mem.reached
    assert why in mem.message and "1 < psi_n <= psi_p - 1" in mem.message
    assert sp["tau_gen"].reached  # rho_2 is there whatever n
    # the same limit as the simulated reading, d < n <= p - d
    assert spectral_timescales(s.replace(psi_n=63))["tau_mem"].reached
    assert spectral_timescales(Setting(psi_n=4, psi_p=1, m=INF, t=0.01))["tau_mem"].status \
        == "undefined"


def test_simulated_spectral_timescales_read_the_gram_bulks():
    from rfdsm.simulate.spectrum import gram_eigenvalues

    s = Setting(psi_n=4, psi_p=16, m=INF, t=0.1)
    n, p = s.sizes(D)
    ev = gram_eigenvalues(s, D, 0)
    sim = simulated_spectral_timescales(s, D, 0)
    assert sim["tau_mem"].value == pytest.approx(s.psi_p / (2 * s.h * ev[p - n]), rel=1e-12)
    # the top d eigenvalues (rho_2, the directions of W) stand apart from the rest
    assert ev[p - D] > 5 * ev[p - D - 1]
    assert simulated_spectral_timescales(s.replace(psi_n=0.5), D)["tau_mem"].status == "undefined"


# --- early stopping ------------------------------------------------------------------------
def test_tau_star_is_a_minimum_of_the_curve(dense):
    fine, fres, coarse, cres = dense
    test = np.array([r.test for r in cres])
    tau_star, test_star, status, _ = stopping_point(coarse, test)
    assert status == "ok" and test_star == test.min()
    i = int(np.argmin(test))
    # the dense curve's minimum lies between the coarse neighbours of tau*, and below test*
    dense_test = np.array([r.test for r in fres])
    j = int(np.argmin(dense_test))
    assert coarse[i - 1] < fine[j] < coarse[i + 1] and dense_test[j] <= test_star
    sp = early_stopping(simulate_tau_curve(CASE, list(coarse) + [INF], D, seed=3, n_seeds=2))
    assert sp.test_star < sp.test_inf and len(sp.per_seed) == 2 and sp.test_star_se > 0
    # a monotone curve has no interior minimum
    assert stopping_point([1, 2, 3, 4], [4, 3, 2, 1])[2] == "at_bound"


def test_theory_tau_star_is_a_minimum_of_the_theory():
    s = CASE.replace(psi_n=4, psi_p=64, t=0.01)
    sp = optimal_stopping(s)
    assert sp.status == "ok" and sp.test_star < sp.test_inf
    for f in (1.05, 1 / 1.05):
        assert sp.test_star <= rfdsm.theory(s.replace(tau=sp.tau_star * f)).test
    grid = [10.0 ** (k / 4) for k in range(-4, 33)]
    assert sp.test_star <= min(rfdsm.theory(s.replace(tau=t)).test for t in grid)


def test_optimal_ridge_is_the_theory_minimum_at_tau_inf():
    # rfdsm.analysis.optimal.optimal_lambda at tau = inf: a finite tau of the setting is ignored
    s = Setting(psi_n=2, psi_p=16, m=INF, t=0.1, tau=5.0)
    opt = optimal_ridge(s)
    assert opt.status == "ok" and opt.setting.tau == INF
    for f in (1.3, 1 / 1.3):
        assert opt.value <= rfdsm.theory(s.replace(lam=opt.lam * f, tau=INF)).test
    with pytest.raises(ValueError, match="lam_range"):
        optimal_ridge(s, (1.0, 0.1))


# --- figures -------------------------------------------------------------------------------
def _tau_table(psi_ns=(1, 2), psi_ps=(16,), d=12, seeds=2, taus=None):
    taus = list(np.geomspace(0.1, 1e5, 13)) + [INF] if taus is None else taus
    rows = []
    for pn in psi_ns:
        for pp in psi_ps:
            s = CASE.replace(psi_n=pn, psi_p=pp)
            for r in simulate_tau_curve(s, taus, d, 0, seeds):
                rows += r.rows()
    return pd.DataFrame(rows)


def _as_theory(df):
    """The seed means relabelled as theory rows: the figures draw them by evaluator style."""
    th = df.groupby([c for c in df.columns if c in ("psi_n", "psi_p", "tau")], as_index=False)[
        ["train", "test", "score"]].mean()
    base = df.iloc[0]
    for c in ("m", "t", "lam", "activation", "estimator", "data", "psi_d", "version"):
        if c in df:
            th[c] = base[c]
    return th.assign(evaluator="theory", d=np.nan, seed=np.nan, converged=True)


def test_tau_figures_draw_theory_lines_and_simulation_points(tmp_path):
    from rfdsm import plots

    sim = _tau_table()
    df = pd.concat([sim, _as_theory(sim)], ignore_index=True)
    fig = plots.tau_curves(df)
    assert len(fig.axes) == 3
    gids = {ln.get_gid() for ln in fig.axes[0].lines}
    assert {"theory:test:psi_n=1", "simulate:test:psi_n=1", "theory:test:psi_n=2"} <= gids
    line = next(ln for ln in fig.axes[0].lines if ln.get_gid() == "theory:test:psi_n=1")
    assert len(line.get_xdata()) == 13  # the tau = inf row is not on the axis
    col = plots.tau_curves(df, rescale="tau_mem")
    mem = spectral_timescales(CASE.replace(psi_n=2))["tau_mem"].value
    x = next(ln for ln in col.axes[0].lines if ln.get_gid() == "theory:test:psi_n=2").get_xdata()
    assert x[0] == pytest.approx(0.1 / mem)
    # psi_n = 1 has no memorisation bulk: left out of the collapse, and said so
    assert not any(str(ln.get_gid()).endswith("psi_n=1") for ln in col.axes[0].lines)
    assert "psi_n = 1" in col._suptitle.get_text()
    with pytest.raises(ValueError, match="1 < psi_n <= psi_p - 1"):
        plots.tau_curves(df[df["psi_n"] == 1], rescale="tau_mem")
    written = plots.make_figures(sim, tmp_path)
    assert sorted(p.name for p in written) == ["training_time.png", "training_time_collapse.png"]
    with pytest.raises(ValueError, match="rescale"):
        plots.tau_curves(df, rescale="n")


def test_gap_heatmap_and_early_stopping_figures(tmp_path):
    from rfdsm import plots

    grid = _tau_table(psi_ns=(1, 2, 4), psi_ps=(2, 4, 8), d=8, seeds=1,
                      taus=[1.0, 10.0, 100.0, 1e3, 1e4])
    fig = plots.gap_heatmap(grid, (1e3, 1e4))
    assert [ax.get_gid() for ax in fig.axes[:2]] == ["gap:tau=1000", "gap:tau=10000"]
    with pytest.raises(ValueError, match="tau = 5"):
        plots.gap_heatmap(grid, (5.0,))
    assert {p.name for p in plots.make_figures(grid, tmp_path)} == {"generalisation_gap.png"}
    line = _tau_table(psi_ns=(2,), psi_ps=(2, 4, 8), d=10, seeds=2)
    fig = plots.early_stopping_plot(line)
    gids = {ln.get_gid() for ln in fig.axes[0].lines}
    assert {"simulate:test_star", "simulate:test_inf", "theory:ridge"} <= gids
    with pytest.raises(ValueError, match="psi_n vary"):
        plots.early_stopping_plot(grid)
    tab = early_stopping_table(line)
    assert (tab["test_star"] <= tab["test_inf"]).all() and (tab["lam_star"] > 0).all()


def test_gram_spectrum_figure():
    from rfdsm import plots

    fig = plots.gram_spectrum(Setting(psi_n=4, psi_p=16, m=INF, t=0.1), d=16)
    gids = {a.get_gid() for a in fig.axes[0].get_children()}
    assert {"simulate:histogram", "theory:density", "theory:atom"} <= gids
    with pytest.raises(ValueError, match="dimension d"):
        plots.gram_spectrum(CASE)


# --- the preset ----------------------------------------------------------------------------
@pytest.mark.parametrize("name, n_sim, n_th", [("bonnaire2025", 6 * 34 * 3, 6 * 34),
                                                ("bonnaire2025_grid", 42 * 34 * 2, 42 * 34)])
def test_bonnaire_presets_load_and_count_their_rows(name, n_sim, n_th):
    path = ROOT / "scripts" / f"{name}.toml"
    raw = tomllib.loads(path.read_text())
    assert raw["grid"]["psi_p"] == 64 or 64 in raw["grid"]["psi_p"]
    assert raw["grid"]["t"] == 0.01 and raw["grid"]["m"] == INF and raw["grid"]["tau"][-1] == INF
    try:
        cfg = load_config(path)
    except ConfigError as exc:  # until the theory has equations at finite tau
        assert "finite tau" in str(exc)
        raw["sweep"]["evaluators"] = ["simulate"]
        cfg = load_config(raw)
    else:
        assert cfg.n_rows["theory"] == n_th
    assert cfg.n_rows["simulate"] == n_sim
    assert cfg.n_tasks["simulate"] == n_sim // 34  # one fit per (psi_n, psi_p, seed)
