"""What the user sees while work runs and on the figures: progress in units of estimated work,
time estimates, the subcommand list of the top-level help, figure legends."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from _cli import run

INF = math.inf

# a small Bonnaire-like sweep: theory curves along psi_n and gradient-flow times, simulations
# that share one fit per (d, seed) across the times
SWEEP = {"sweep": {"evaluators": ["theory", "simulate"], "curve": "psi_n"},
         "grid": {"psi_n": [1, 2], "psi_p": 4, "m": "inf", "t": 0.1, "lam": 0,
                  "tau": [10.0, 1e3, INF]},
         "simulate": {"d": [8, 12], "seeds": 2}}


# --- the sweep's progress -----------------------------------------------------------------
def test_task_work_grows_with_the_task_sizes():
    from rfdsm import Setting
    from rfdsm.sweep.runner import task_work

    s = Setting(2, 4, m=INF, t=0.1, lam=0.01)
    sim = {"kind": "simulate", "setting": s, "d": 200}
    assert task_work({**sim, "d": 400}) > 4 * task_work(sim)  # p^2 n and p^3 terms
    assert task_work({**sim, "setting": s.replace(psi_n=8)}) > task_work(sim)
    assert task_work({**sim, "setting": s.replace(m=64)}) > task_work({**sim, "setting":
                                                                       s.replace(m=2)})
    taus = [s.replace(tau=v) for v in (1.0, 10.0, 100.0)]
    assert task_work({"kind": "simulate", "settings": taus, "d": 200}) > task_work(sim)
    theory = {"kind": "theory", "settings": [s] * 5}
    assert 0 < task_work(theory) < task_work({"kind": "simulate", "setting": s, "d": 200})


def test_task_work_of_an_unknown_task_format_counts_its_rows():
    from rfdsm.sweep.runner import THEORY_POINT_FLOPS, task_work

    assert task_work({"key": "x", "kind": "mine", "rows": 3}) == 3 * THEORY_POINT_FLOPS


def test_sweep_progress_total_is_the_work_estimate(tmp_path, monkeypatch):
    import rfdsm.sweep as sweep
    from rfdsm.sweep import load_config
    from rfdsm.sweep.runner import task_work

    bars = []
    real = sweep._progress

    def spy(total, initial, enabled, **kw):
        bar = real(total, initial, enabled, **kw)
        bars.append(bar)
        return bar

    monkeypatch.setattr(sweep, "_progress", spy)
    sweep.run_sweep(SWEEP, tmp_path / "o", workers=1, log=lambda _: None)
    work = [task_work(t) for t in load_config(SWEEP).tasks()]
    (bar,) = bars
    assert bar.total == pytest.approx(sum(work), rel=1e-12)
    assert bar.n == pytest.approx(sum(work), rel=1e-12)  # every task advanced it by its work
    assert bar.unit == "flop"


def test_dry_run_prints_an_estimated_time(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sweep]\nevaluators = ["theory", "simulate"]\ncurve = "psi_n"\n'
                   '[grid]\npsi_n = [1, 2]\npsi_p = 4\nm = inf\nt = 0.1\nlam = 0.01\n'
                   '[simulate]\nd = [40, 80]\nseeds = 2\n')
    code, out, err = run(["sweep", str(cfg), "--dry-run"], capsys)
    assert code == 0, err
    line = [ln for ln in out.splitlines() if ln.startswith("estimated time")]
    assert len(line) == 1
    assert re.search(r"about [0-9.]+ (s|min|h) \(between .* and .*\)", line[0])
    assert "GEMM rate" in line[0] and "estimate" in line[0]


def test_gemm_rate_and_estimate():
    from rfdsm import Setting
    from rfdsm.sweep.runner import estimate_seconds, gemm_rate, task_work

    rate = gemm_rate(size=128, repeats=2)
    assert 1e7 < rate < 1e15
    s = Setting(2, 4, m=INF, t=0.1, lam=0.01)
    tasks = [{"kind": "simulate", "setting": s, "d": d} for d in (40, 80)]
    total = sum(task_work(t) for t in tasks)
    assert estimate_seconds(tasks, 1, rate) == pytest.approx(total / rate)
    # two workers share the cores: no faster than the longest task on half of them
    assert estimate_seconds(tasks, 2, rate) == pytest.approx(2 * task_work(tasks[1]) / rate)
    assert estimate_seconds([], 2, rate) == 0.0


# --- validate -----------------------------------------------------------------------------
def test_validate_shows_a_progress_bar_and_quiet_silences_it(capsys):
    code, out, err = run(["validate", "--quick"], capsys)
    assert code == 0
    assert "rfdsm validate:" in err and "%|" in err and "simulation 8/8" in err
    assert "ALL PASS" in out
    code, out_q, err_q = run(["validate", "--quick", "--quiet"], capsys)
    assert code == 0 and err_q == "" and "ALL PASS" in out_q


def test_validate_work_puts_a_shared_tau_fit_on_its_first_setting():
    from rfdsm import Setting
    from rfdsm.cli.validate import _work

    taus = [Setting(2, 0.5, m=INF, t=0.1, tau=v) for v in (10.0, 1e3)]
    work = _work(taus, [16, 24], 2, ())
    assert all(work[taus[0], d] > 0 and work[taus[1], d] == 0 for d in (16, 24))
    # with diagnostics every setting is simulated on its own
    work = _work(taus, [16, 24], 2, ("test_emp",))
    assert all(w > 0 for w in work.values())


def test_validation_table_announces_each_simulation():
    from rfdsm.analysis import validate as V

    settings = V.default_settings("quick")
    started, finished = [], []
    V.validation_table(settings, [16, 24, 32], n_seeds=2,
                       on_start=lambda st, d: started.append((st, d)),
                       progress=lambda text: finished.append(text))
    assert started == [(st, d) for st in settings for d in (16, 24, 32)]
    assert len(finished) == len(started)


# --- help ---------------------------------------------------------------------------------
def test_top_level_help_names_every_subcommand(capsys):
    from rfdsm.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    names = list(sub.choices)
    assert {"simulate", "theory", "validate", "sweep", "plot", "spectrum", "sample"} <= set(names)
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    description = out.split("\n\n")[1]  # after the usage, before the argument list
    for name in names:
        assert re.search(rf"\b{name}\b", description), (name, description)
        assert re.search(rf"^\s+{name}\s", out, re.M), name  # and each has its help line


# --- figures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def urfin():
    from pathlib import Path

    from rfdsm import load_results

    return load_results(Path(__file__).resolve().parent.parent / "data" / "urfin2026.parquet")


def _legend_texts(fig):
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_diagnostics_legend_has_bayes_and_says_what_lines_and_markers_are(urfin):
    from rfdsm.plots import diagnostics

    fig = diagnostics.losses(urfin)
    texts = _legend_texts(fig)
    assert any(t.startswith("Bayes level") for t in texts), texts
    assert any("theory" in t for t in texts) and any("simulation" in t for t in texts)


def test_train_stays_visible_on_the_empirical_test_loss(urfin):
    from rfdsm.plots import diagnostics

    fig = diagnostics.losses(urfin)
    ax = next(a for a in fig.axes if a.get_title().endswith(r"$m = \infty$"))
    line = {ln.get_gid(): ln for ln in ax.lines if ln.get_gid()}
    train, emp = line["theory:train"], line["theory:test_emp"]
    # at m = inf the two curves are the same function of psi_p
    assert np.allclose(train.get_ydata(), emp.get_ydata(), rtol=1e-6)
    assert train.get_zorder() > emp.get_zorder()
    assert train.get_linestyle() != emp.get_linestyle()
    assert emp.get_linewidth() > train.get_linewidth()  # the broad one underneath shows


@pytest.mark.parametrize("which", ["plateau_vs_t", "scaling_collapse"])
def test_theory_figures_label_the_bayes_line(which):
    from rfdsm.plots import diagnostics

    if which == "plateau_vs_t":
        fig = diagnostics.plateau_vs_t(4, [1, INF], np.geomspace(0.01, 1.0, 5))
    else:
        fig = diagnostics.scaling_collapse([(1, 4)], psi_p=np.geomspace(0.5, 64, 9))[0]
    assert any(t.startswith("Bayes level") for t in _legend_texts(fig))


def test_sampler_legend_says_which_marker_is_theory_and_which_simulation(tmp_path):
    from rfdsm.plots.sampling import memorisation_and_gap, memorisation_curves
    from rfdsm.sweep import run_sweep

    cfg = {"sweep": {"evaluators": ["theory", "sample"], "curve": "psi_n"},
           "grid": {"psi_n": [0.5, 2], "psi_p": 2, "m": "inf", "lam": 1e-3, "t": 0.1},
           "sample": {"d": 12, "n_samples": 60, "times": 3, "steps": 10}}
    df = run_sweep(cfg, tmp_path / "o", workers=1, progress=False, log=lambda _: None)
    texts = _legend_texts(memorisation_and_gap(df))
    assert any(t.startswith("markers: simulation") for t in texts), texts
    assert any("theory" in t and "lines" in t for t in texts), texts
    # no theory on the f_mem-only figure: its legend must not claim one
    texts = _legend_texts(memorisation_curves(df))
    assert any(t.startswith("markers: simulation") for t in texts)
    assert not any("theory" in t for t in texts)
