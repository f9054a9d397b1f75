"""Figures: each plot renders from a small table; bad tables fail with a clear message."""

import math

import numpy as np
import pandas as pd
import pytest

import rfdsm
from rfdsm import plots
from rfdsm.cli import main

INF = math.inf
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(evaluator, psi_n, psi_p, m, train, test, *, t=0.1, lam=0.01, d=None, seed=None,
         converged=True):
    return dict(evaluator=evaluator, psi_n=psi_n, psi_p=psi_p, m=m, t=t, lam=lam,
                activation="tanh", d=d, n=None, p=None, seed=seed, train=train, test=test,
                score=(test - math.exp(-2 * t)) / (1 - math.exp(-2 * t)), converged=converged,
                residual=0.0, iterations=3, wall_time=0.01, version="0")


def _fake_errors(psi_n, psi_p, m):
    """Smooth made-up errors: the plots only need numbers of the right shape."""
    r = psi_p / psi_n
    test = 1.0 + 0.5 * r / (1 + r * r) + (0.2 if m == 1 else 0.0)
    train = 0.9 / (1 + r ** (2 if m == 1 else 1))
    return train, test


def curve_table(psi_ns=(1.0, 4.0), ms=(1, INF), psi_ps=(0.25, 0.5, 1.0, 2.0, 4.0),
                ds=(20, 40), seeds=3, sim_psi_ps=None):
    rows = []
    rng = np.random.default_rng(0)
    for psi_n in psi_ns:
        for m in ms:
            for psi_p in psi_ps:
                tr, te = _fake_errors(psi_n, psi_p, m)
                rows.append(_row("theory", psi_n, psi_p, m, tr, te))
            for psi_p in (sim_psi_ps or psi_ps):
                tr, te = _fake_errors(psi_n, psi_p, m)
                for d in ds:
                    for s in range(seeds):
                        rows.append(_row("simulate", psi_n, psi_p, m, tr + 0.01 * rng.normal(),
                                         te + 0.01 * rng.normal(), d=d, seed=s))
    return pd.DataFrame(rows)


def _gids(ax, prefix):
    return sorted(a.get_gid() for a in ax.lines if (a.get_gid() or "").startswith(prefix))


def _check_files(paths, n):
    assert len(paths) == n
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG_MAGIC
        else:
            assert p.read_bytes()[:5] == b"%PDF-"


# ---------------------------------------------------------------------------------------------
def test_aggregate_mean_and_standard_error():
    df = curve_table(psi_ns=(1.0,), ms=(1,), psi_ps=(2.0,), ds=(20,), seeds=4)
    agg = plots.aggregate(df)
    assert len(agg) == 2  # one theory row, one simulation group
    sim = df[df.evaluator == "simulate"]
    row = agg[agg.evaluator == "simulate"].iloc[0]
    assert row["n_seeds"] == 4
    assert row["test"] == pytest.approx(sim["test"].mean())
    assert row["test_se"] == pytest.approx(sim["test"].std(ddof=1) / 2.0)
    assert math.isnan(agg[agg.evaluator == "theory"].iloc[0]["test_se"])


def test_aggregate_single_seed_has_no_standard_error():
    df = curve_table(psi_ns=(1.0,), ms=(1,), psi_ps=(2.0,), ds=(20,), seeds=1)
    agg = plots.aggregate(df)
    assert agg["test_se"].isna().all()


def test_learning_curves_one_line_per_m_and_panel(tmp_path):
    df = curve_table()
    fig = plots.learning_curves(df)
    axes = fig.axes
    assert len(axes) == 4  # 2 psi_n panels x (test, train)
    for ax in axes:
        assert len(_gids(ax, "theory:")) == 2  # m = 1 and m = inf
        assert len(_gids(ax, "simulate:")) == 2
    top_left = axes[0]
    assert _gids(top_left, "theory:") == ["theory:test:m=1", "theory:test:m=\\infty"]
    # the Bayes level a^2 and the psi_p = psi_n line of the panel
    hlines = [ln for ln in top_left.lines if ln.get_ydata()[0] == ln.get_ydata()[-1]
              and len(ln.get_ydata()) == 2 and ln.get_xdata()[0] == 0]
    assert any(np.isclose(ln.get_ydata()[0], math.exp(-0.2)) for ln in hlines)
    vlines = [ln for ln in top_left.lines if np.isscalar(ln.get_xdata()[0])
              and len(ln.get_xdata()) == 2 and ln.get_xdata()[0] == ln.get_xdata()[1]]
    assert any(ln.get_xdata()[0] == 1.0 for ln in vlines)
    # simulation points are the largest-d seed means
    sim = df[(df.evaluator == "simulate") & (df.d == 40) & (df.m == 1) & (df.psi_n == 1.0)]
    y = [ln for ln in top_left.lines if ln.get_gid() == "simulate:test:m=1"][0].get_ydata()
    assert np.allclose(y, sim.groupby("psi_p")["test"].mean().to_numpy())
    _check_files(plots.save_figure(fig, tmp_path / "lc", ("png", "pdf")), 2)


def test_learning_curves_against_psi_n_and_chosen_d():
    df = curve_table(psi_ns=(0.5, 1.0, 2.0), psi_ps=(2.0,), ms=(1,))
    fig = plots.learning_curves(df, x="psi_n", errors="test", d=20)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_xlabel() == r"$\psi_n = n/d$"
    assert len(_gids(ax, "theory:test")) == 1
    with pytest.raises(ValueError, match="d = 30"):
        plots.learning_curves(df, x="psi_n", d=30)


def test_learning_curves_skips_unconverged_theory_with_warning():
    df = curve_table(psi_ns=(1.0,), ms=(1,))
    df.loc[(df.evaluator == "theory") & (df.psi_p == 1.0), "converged"] = False
    with pytest.warns(RuntimeWarning, match="1 theory point"):
        fig = plots.learning_curves(df)
    line = [ln for ln in fig.axes[0].lines if ln.get_gid() == "theory:test:m=1"][0]
    assert 1.0 not in list(line.get_xdata())


def test_learning_curves_works_on_a_real_simulation_table():
    rows = []
    for psi_p in (0.5, 1.0, 2.0):
        rows += rfdsm.simulate(rfdsm.Setting(1.0, psi_p, m=2), d=8, n_seeds=2).rows()
    fig = plots.learning_curves(pd.DataFrame(rows))
    assert len(fig.axes) == 2
    assert _gids(fig.axes[0], "simulate:") == ["simulate:test:m=2"]
    assert _gids(fig.axes[0], "theory:") == []


def test_phase_diagram_panels_and_unconverged_cells(tmp_path):
    rows = []
    for m in (1, INF):
        for psi_n in (0.5, 1.0, 2.0, 4.0):
            for psi_p in (0.25, 0.5, 1.0, 2.0, 4.0):
                tr, te = _fake_errors(psi_n, psi_p, m)
                rows.append(_row("theory", psi_n, psi_p, m, tr, te,
                                 converged=not (psi_n == 1.0 and psi_p == 2.0)))
    df = pd.DataFrame(rows)
    fig = plots.phase_diagram(df)
    main_axes = [ax for ax in fig.axes if ax.get_xlabel() == r"$\psi_p = p/d$"]
    assert len(main_axes) == 4  # 2 m values x (gap, train/a^2), plus 4 colour bars
    assert len(fig.axes) == 8
    meshes = [c for ax in main_axes for c in ax.collections if c.__class__.__name__ == "QuadMesh"]
    assert len(meshes) == 4
    for ax in main_axes:
        assert [ln.get_gid() for ln in ax.lines] == ["diagonal"]
    z = meshes[0].get_array()
    assert z.shape == (4, 5) and z.mask.sum() == 1  # the one unconverged cell is left blank
    gap = z[np.argwhere(~z.mask)[0][0], np.argwhere(~z.mask)[0][1]]
    assert np.isfinite(gap)
    assert "2 unconverged" in fig._suptitle.get_text()  # one per m
    _check_files(plots.save_figure(fig, tmp_path / "ph", "png"), 1)


def test_phase_diagram_needs_a_grid():
    df = curve_table(psi_ns=(1.0,))
    with pytest.raises(ValueError, match="psi_n"):
        plots.phase_diagram(df)
    with pytest.raises(ValueError, match="quantities"):
        plots.phase_diagram(df, quantities=("gap", "nope"))


def test_m_dependence_axis_and_ratio_selection(tmp_path):
    df = curve_table(psi_ns=(2.0,), ms=(1, 2, 4, INF), psi_ps=(0.5, 1.0, 2.0, 4.0, 8.0),
                     sim_psi_ps=(1.0, 4.0), ds=(20,))
    fig = plots.m_dependence(df)  # default ratios 0.5, 2 -> psi_p = 1 and 4
    assert len(fig.axes) == 4  # 2 panels x (test, train)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2
    assert "under-parameterised" in titles[0] and "over-parameterised" in titles[1]
    for ax, e in zip(fig.axes, ("test", "test", "train", "train")):
        assert [tk.get_text() for tk in ax.get_xticklabels()] == ["$1$", "$2$", "$4$",
                                                                  "$\\infty$"]
        assert _gids(ax, "theory:") == [f"theory:{e}"]
        assert _gids(ax, "simulate:") == [f"simulate:{e}"]
    line = [ln for ln in fig.axes[0].lines if ln.get_gid() == "theory:test"][0]
    assert np.allclose(line.get_xdata(), [0, 1, 2])  # log2 m for the finite m
    _check_files(plots.save_figure(fig, tmp_path / "m", "pdf"), 1)
    with pytest.raises(ValueError, match="2 distinct values of m"):
        plots.m_dependence(df[df.m == 1])


def test_validation_table_and_scatter(tmp_path):
    df = curve_table(psi_ns=(1.0,), ms=(1, INF), psi_ps=(0.5, 2.0))
    vt = plots.validation_table(df)
    assert set(plots.VALIDATION_COLUMNS) <= set(vt.columns)
    assert len(vt) == 2 * 2 * 2 * 3  # m x psi_p x d x error
    one = vt[(vt.error == "test") & (vt.d == 20) & (vt.m == 1) & (vt.psi_p == 2.0)].iloc[0]
    sims = df[(df.evaluator == "simulate") & (df.d == 20) & (df.m == 1) & (df.psi_p == 2.0)]
    assert one["sim_mean"] == pytest.approx(sims["test"].mean())
    assert one["theory"] == pytest.approx(_fake_errors(1.0, 2.0, 1)[1])
    assert one["rel_dev"] == pytest.approx((one["sim_mean"] - one["theory"]) / one["theory"])
    fig = plots.validation_scatter(vt)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert len(_gids(ax, "simulate:")) == 2  # one series per d
        assert [ln.get_gid() for ln in ax.lines if ln.get_gid() == "identity"] == ["identity"]
    _check_files(plots.save_figure(fig, tmp_path / "v", ("png", "pdf")), 2)


def test_validation_scatter_minimal_schema():
    vt = pd.DataFrame(dict(error=["test", "test", "train"], d=[100, 200, 100],
                           theory=[1.2, 1.2, 0.5], sim_mean=[1.25, 1.22, 0.52],
                           sim_se=[0.01, np.nan, 0.02]))
    fig = plots.validation_scatter(vt)
    assert [ax.get_title() for ax in fig.axes] == ["train error", "test error"]


def test_validation_scatter_accepts_the_validate_module_names():
    vt = pd.DataFrame(dict(quantity=["test", "score"], d=[50, 50], theory=[1.2, 2.0],
                           sim=[1.25, 2.1], sim_se=[0.01, None], rel_dev=[0.04, 0.05]))
    fig = plots.validation_scatter(vt)
    assert [ax.get_title() for ax in fig.axes] == ["test error", "score error"]


def test_validation_table_needs_matching_settings():
    df = curve_table(psi_ns=(1.0,), ms=(1,), psi_ps=(0.5, 2.0), sim_psi_ps=(1.0,))
    with pytest.raises(ValueError, match="both"):
        plots.validation_table(df)


# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("func", [plots.learning_curves, plots.phase_diagram,
                                  plots.m_dependence, plots.aggregate])
def test_missing_columns_are_named(func):
    df = curve_table().drop(columns=["lam", "test"])
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['lam', 'test'\]"):
        func(df)


@pytest.mark.parametrize("func", [plots.learning_curves, plots.phase_diagram,
                                  plots.m_dependence, plots.aggregate])
def test_empty_table_is_refused(func):
    with pytest.raises(ValueError, match="no rows"):
        func(curve_table().iloc[:0])


def test_validation_scatter_bad_tables():
    with pytest.raises(ValueError, match=r"\['sim_se'\]"):
        plots.validation_scatter(pd.DataFrame(dict(error=["test"], d=[10], theory=[1.0],
                                                   sim_mean=[1.0])))
    with pytest.raises(ValueError, match="no rows"):
        plots.validation_scatter(pd.DataFrame(columns=list(plots.VALIDATION_COLUMNS)))


def test_bad_arguments():
    df = curve_table()
    with pytest.raises(ValueError, match="x must be"):
        plots.learning_curves(df, x="m")
    with pytest.raises(ValueError, match="errors must be"):
        plots.learning_curves(df, errors=("test", "gap"))
    with pytest.raises(ValueError, match="column"):
        plots.learning_curves(df.drop(columns=["score"]), errors=("score",))
    with pytest.raises(ValueError, match="formats"):
        plots.save_figure(plots.learning_curves(df), "/tmp/x", ("svg",))
    with pytest.raises(ValueError, match="DataFrame"):
        plots.learning_curves([1, 2, 3])


def test_non_numeric_column_is_named():
    df = curve_table()
    df["psi_p"] = df["psi_p"].astype(str)
    df.loc[0, "psi_p"] = "wide"
    with pytest.raises(ValueError, match="'psi_p' must hold numbers"):
        plots.learning_curves(df)


def test_too_many_panels_is_refused():
    df = curve_table(psi_ns=tuple(float(v) for v in range(1, 20)), ms=(1,), ds=(20,), seeds=1)
    with pytest.raises(ValueError, match="panels"):
        plots.learning_curves(df)


# --------------------------------------------------------------------------------------------
def test_cli_plot_writes_figures(tmp_path, capsys):
    src = tmp_path / "sweep"
    src.mkdir()
    df = curve_table(psi_ns=(1.0,), ms=(1, 2, INF))
    df.to_parquet(src / "results.parquet")
    rc = main(["plot", str(src), "--out", str(tmp_path / "figs"), "--format", "png,pdf"])
    assert rc == 0
    printed = capsys.readouterr().out.split()
    names = sorted(p.split("/")[-1] for p in printed)
    assert names == ["learning_curves.pdf", "learning_curves.png", "m_dependence.pdf",
                     "m_dependence.png", "validation.pdf", "validation.png"]
    for p in printed:
        assert (tmp_path / "figs" / p.split("/")[-1]).stat().st_size > 1000


def test_cli_plot_unreadable_input_is_reported_as_such(tmp_path, capsys, monkeypatch):
    # (root ignores permission bits, so the read failure is simulated)
    def refuse(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(plots, "load_table", refuse)
    rc = main(["plot", str(tmp_path / "r.csv"), "--out", str(tmp_path / "figs")])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot read the table" in err and "--out" not in err


def test_cli_plot_csv_with_inf_strings(tmp_path, capsys):
    df = curve_table(psi_ns=(1.0,), ms=(1, INF))
    df["m"] = df["m"].map(lambda m: "inf" if m == INF else str(int(m)))
    df.to_csv(tmp_path / "r.csv", index=False)
    rc = main(["plot", str(tmp_path / "r.csv"), "--kind", "curves"])
    assert rc == 0
    assert (tmp_path / "figures" / "learning_curves.png").exists()


@pytest.mark.parametrize("args, message", [
    (["--format", "svg"], "--format"),
    (["--kind", "pie"], "--kind"),
])
def test_cli_plot_bad_options(tmp_path, capsys, args, message):
    curve_table().to_parquet(tmp_path / "r.parquet")
    rc = main(["plot", str(tmp_path / "r.parquet"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_cli_plot_bad_inputs(tmp_path, capsys):
    rc = main(["plot", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    rc = main(["plot", str(tmp_path / "empty")])
    err = capsys.readouterr().err
    assert rc == 2 and "empty" in err and len(err.strip().splitlines()) == 1
    curve_table().drop(columns=["t"]).to_parquet(tmp_path / "r.parquet")
    rc = main(["plot", str(tmp_path / "r.parquet")])
    err = capsys.readouterr().err
    assert rc == 2 and "['t']" in err and len(err.strip().splitlines()) == 1


def test_cli_plot_reads_a_real_sweep(tmp_path, capsys):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text('[sweep]\nevaluators = ["theory", "simulate"]\ncurve = "psi_p"\n'
                   '[grid]\npsi_n = 1\npsi_p = [0.5, 1, 2]\nm = [1, "inf"]\n'
                   '[simulate]\nd = 10\nseeds = 2\n')
    out = tmp_path / "sweep"
    assert main(["sweep", str(cfg), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    printed = sorted(p.split("/")[-1] for p in capsys.readouterr().out.split())
    assert printed == ["learning_curves.png", "validation.png"]
    assert (out / "figures" / "learning_curves.png").stat().st_size > 1000


def test_cli_plot_notes_unconverged_theory(tmp_path, capsys):
    df = curve_table(psi_ns=(1.0,), ms=(1,))
    df.loc[(df.evaluator == "theory") & (df.psi_p == 1.0), "converged"] = False
    df.to_parquet(tmp_path / "r.parquet")
    assert main(["plot", str(tmp_path / "r.parquet"), "--kind", "curves"]) == 0
    err = capsys.readouterr().err
    assert err.strip() == ("rfdsm: note: learning_curves: 1 theory point(s) did not converge "
                           "and are left out of the figure")


@pytest.mark.parametrize("func", [plots.learning_curves, plots.m_dependence])
def test_all_nan_values_are_refused(func):
    df = curve_table(psi_ns=(1.0,), ms=(1, 2, INF))
    nan_test = df.assign(test=np.nan)
    with pytest.raises(ValueError, match="no finite value of test"):
        func(nan_test)
    # NaN only on unconverged theory rows, no simulation: nothing is left once they are dropped
    th = df[df.evaluator == "theory"].assign(converged=False)
    th.loc[:, ["train", "test"]] = np.nan
    with pytest.warns(RuntimeWarning, match="did not converge"):
        with pytest.raises(ValueError, match="nothing to draw"):
            func(th)
    # one error without values is refused too (an empty row of panels), the others are fine
    func(df, errors=("train",))
    with pytest.raises(ValueError, match="no finite value of test"):
        func(nan_test, errors=("train", "test"))


@pytest.mark.parametrize("where", ["file", "proc"])
def test_cli_plot_unwritable_out_is_one_line(tmp_path, capsys, where):
    curve_table(psi_ns=(1.0,), ms=(1, INF)).to_parquet(tmp_path / "r.parquet")
    if where == "file":
        out = tmp_path / "afile"
        out.write_text("x")
    else:  # not writable even for root
        out = "/proc/rfdsm-nope"
    rc = main(["plot", str(tmp_path / "r.parquet"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("rfdsm: error: --out"), err


# --------------------------------------------------------------------------------------------
def test_aggregate_uses_the_one_seed_summary():
    from rfdsm.sweep.store import seed_summary

    df = curve_table(psi_ns=(1.0,), ms=(1,), psi_ps=(0.5, 2.0), ds=(20, 40), seeds=3)
    sim = plots.aggregate(df).query("evaluator == 'simulate'").reset_index(drop=True)
    keys = ["psi_p", "d"]
    ref = seed_summary(df[df.evaluator == "simulate"], keys, ["train", "test"]).reset_index()
    for col in ("train", "test", "train_se", "test_se", "n_seeds"):
        assert np.allclose(sim[col], ref[col], rtol=1e-14, atol=0), col


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_binary_or_foreign_files_are_named(tmp_path, capsys, suffix):
    path = tmp_path / f"r{suffix}"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00" * 8)
    with pytest.raises(ValueError, match=f"DIR: .*r{suffix}' is not a readable"):
        plots.load_table(path)
    rc = main(["plot", str(path), "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert rc == 2 and str(path) in err and len(err.strip().splitlines()) == 1


def test_csv_keeps_its_columns(tmp_path, capsys):
    # a hand-made CSV without 'converged' or 't' is not read as all-unconverged / all-null
    df = curve_table(psi_ns=(1.0,), ms=(1, INF))
    df.drop(columns=["converged"]).to_csv(tmp_path / "a.csv", index=False)
    table = plots.load_table(tmp_path / "a.csv")
    assert "converged" not in table.columns
    assert len(_gids(plots.learning_curves(table).axes[0], "theory:")) == 2
    df.drop(columns=["t"]).to_csv(tmp_path / "b.csv", index=False)
    rc = main(["plot", str(tmp_path / "b.csv"), "--out", str(tmp_path / "f")])
    assert rc == 2 and "['t']" in capsys.readouterr().err
