"""CLI exit codes, strict JSON, size guards, failed seeds and
inputs that used to escape as OverflowError or were silently changed."""

import importlib
import json
import math

import numpy as np
import pandas as pd
import pytest

import rfdsm
from rfdsm import Setting, simulate
from rfdsm.activations import QuadratureError
from rfdsm.core.result import Result
from rfdsm.sweep import config as sweep_config
from _cli import run


def strict_loads(text):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


# -- item 8: one rule for converged=False ---------------------------------------------------
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_simulate_not_converged_is_shown_and_exits_1(as_json, capsys):
    # at d = 1 the Mehler series bound (~9e-8) exceeds SERIES_BOUND_OK
    argv = ["simulate", "--psi-n", "1", "--psi-p", "2", "--d", "1"] + (["--json"] if as_json else [])
    code, out, _ = run(argv, capsys)
    assert code == 1
    if as_json:
        assert strict_loads(out)["converged"] is False
    else:
        assert "converged=False" in out and "NOT CONVERGED" in out


def test_theory_not_converged_same_rule(monkeypatch, capsys):
    st = Setting(1, 2)
    fake = Result(setting=st, evaluator="theory", train=0.5, test=1.0, score=0.9,
                  converged=False, residual=1e-3, iterations=500)
    # rfdsm.theory is also the name of the function: patch the module itself
    monkeypatch.setattr(importlib.import_module("rfdsm.theory"), "theory", lambda setting: fake)
    code, out, _ = run(["theory", "--psi-n", "1", "--psi-p", "2"], capsys)
    assert code == 1 and "converged=False" in out and "NOT CONVERGED" in out


def test_converged_simulation_shows_the_flag_and_exits_0(capsys):
    code, out, _ = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--d", "10"], capsys)
    assert code == 0 and "converged=True" in out


# -- item 9: strict JSON ----------------------------------------------------------------------
def test_json_output_is_strict_with_a_single_monte_carlo_sample(capsys):
    # the standard error of one Monte Carlo sample is NaN: it must be null, not a bare NaN
    code, out, _ = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--m", "inf", "--d", "5",
                        "--mc-test", "1", "--json"], capsys)
    assert code == 0
    obj = strict_loads(out)
    assert obj["diagnostics"]["test_mc_se"] is None and obj["diagnostics"]["score_mc_se"] is None
    assert math.isfinite(obj["diagnostics"]["test_mc"]) and obj["m"] == "inf"


def test_to_dict_encodes_nan_and_inf_everywhere():
    st = Setting(1, 2, m=math.inf)
    res = Result(setting=st, evaluator="simulate", train=0.1, test=1.0, score=float("nan"),
                 residual=float("inf"), d=4, n=4, p=8,
                 per_seed=({"seed": 0, "train": 0.1, "test": 1.0, "score": float("nan"),
                            "wall_time": 0.0},),
                 diagnostics={"x": np.float64("nan"), "nested": [{"y": -math.inf}],
                              "arr": np.array([1.0, np.nan]), "flag": np.True_})
    obj = strict_loads(json.dumps(res.to_dict(), allow_nan=False))
    assert obj["score"] is None and obj["residual"] == "inf" and obj["m"] == "inf"
    assert obj["per_seed"][0]["score"] is None
    assert obj["diagnostics"] == {"x": None, "nested": [{"y": "-inf"}], "arr": [1.0, None],
                                  "flag": True}


# -- item 6b: the Monte Carlo sample is bounded ------------------------------------------------
@pytest.fixture
def no_monte_carlo(monkeypatch):
    def ran(*args, **kwargs):
        raise RuntimeError("the Monte Carlo estimate ran")
    monkeypatch.setattr(importlib.import_module("rfdsm.simulate.fit"), "mc_errors", ran)


def test_mc_test_beyond_the_limit_is_refused_before_any_work(no_monte_carlo):
    from rfdsm.simulate import MC_TEST_MAX

    with pytest.raises(ValueError, match=f"^mc_test must be .*{MC_TEST_MAX}"):
        simulate(Setting(1, 2), d=4, mc_test=10**9)


def test_cli_mc_test_beyond_the_limit(no_monte_carlo, capsys):
    code, _, err = run(["simulate", "--psi-n", "1", "--psi-p", "2", "--d", "4",
                        "--mc-test", "1000000000"], capsys)
    assert code == 2 and "--mc-test" in err and "100000000" in err and len(err.splitlines()) == 1


def test_memory_check_counts_the_monte_carlo_sample():
    from rfdsm.simulate import _check_memory

    st = Setting(1, 2)
    _check_memory(st, 10, 10, 20, None, mc_test=10**6)  # 16 MB: fine
    with pytest.raises(ValueError, match="GiB.*mc_test"):
        _check_memory(st, 10, 10, 20, None, mc_test=10**13)


# -- item 12: failed seeds --------------------------------------------------------------------
# A hard clip at +-8 whose kinks are not declared: the quadrature fails for the seeds whose
# preactivations reach them (at d = 3 the feature scales spread widely) and not for the others.
rfdsm.register_activation("hardening_clip8", lambda x: np.clip(x, -8.0, 8.0), overwrite=True)
TINY = Setting(psi_n=2, psi_p=10, m=math.inf, activation="hardening_clip8")
TINY_D = 3


@pytest.fixture(scope="module")
def seed_status():
    from rfdsm.simulate import simulate_seed

    status = {}
    for seed in range(6):
        try:
            simulate_seed(TINY, TINY_D, seed)
            status[seed] = True
        except QuadratureError:
            status[seed] = False
    ok = [s for s, v in status.items() if v]
    bad = [s for s, v in status.items() if not v]
    assert ok and bad, f"the case must mix failing and working seeds, got {status}"
    return ok, bad


def test_failed_seeds_are_named_with_the_activations_cause(seed_status):
    ok, bad = seed_status
    with pytest.raises(ValueError) as err:
        simulate(TINY, d=TINY_D, seed=0, n_seeds=6)
    msg = str(err.value)
    assert f"seed(s) {', '.join(map(str, bad))} " in msg and "skip_failed" in msg
    # the cause is the undeclared kink, not the dimension
    assert "kinks=(x0, ...)" in msg and "larger d" not in msg
    # off 0: a jump at 0 meets the preactivation mean 0 of m = 1 on a panel edge of the rule,
    # where it is integrated exactly
    rfdsm.register_activation("hardening_sign", lambda x: np.sign(x - 0.3), overwrite=True)
    with pytest.raises(ValueError, match="kinks"):
        simulate(Setting(1, 2, activation="hardening_sign"), d=20)


def test_skip_failed_keeps_the_other_seeds(seed_status):
    ok, bad = seed_status
    res = simulate(TINY, d=TINY_D, seed=0, n_seeds=6, skip_failed=True)
    assert [r["seed"] for r in res.per_seed] == ok
    assert res.diagnostics["skipped_seeds"] == bad and "kinks" in res.diagnostics["skipped_reason"]
    singles = [simulate(TINY, d=TINY_D, seed=s).test for s in ok]
    assert res.test == pytest.approx(np.mean(singles), rel=1e-12)


def test_skip_failed_cli(seed_status, capsys):
    ok, bad = seed_status
    base = ["simulate", "--psi-n", "2", "--psi-p", "10", "--m", "inf", "--d", str(TINY_D),
            "--seeds", "6", "--activation", "hardening_clip8"]
    code, _, err = run(base + ["--quiet"], capsys)  # the error line alone, without the seed bar
    assert code == 2 and "--skip-failed" in err and len(err.splitlines()) == 1
    code, out, _ = run(base + ["--skip-failed", "--json"], capsys)
    assert code in (0, 1)  # converged or not by the series bound, but a result
    obj = strict_loads(out)
    assert obj["diagnostics"]["skipped_seeds"] == bad
    assert [r["seed"] for r in obj["per_seed"]] == ok


def test_every_seed_failing_still_raises_even_when_skipping(seed_status):
    ok, bad = seed_status
    with pytest.raises(ValueError, match=f"seed\\(s\\) {bad[0]} \\(1 of 1\\)"):
        simulate(TINY, d=TINY_D, seed=bad[0], skip_failed=True)


# -- item 11: TOML values, binary configs, empty tables ---------------------------------------
def _config(grid_extra=""):
    return ('[sweep]\nevaluators = ["theory"]\n[grid]\npsi_n = 1\npsi_p = 1\n' + grid_extra)


@pytest.mark.parametrize("extra, key", [
    ("t = " + "1" + "0" * 400 + "\n", "t must be"),
    ("lam = " + "1" + "0" * 400 + "\n", "lam must be"),
    ("m = " + "1" + "0" * 400 + "\n", "m must be"),
    ("m = 9007199254740993\n", "m must be"),
    ("t = {start = 1, stop = 1" + "0" * 400 + ", num = 3}\n", "grid.t.stop must be"),
])
def test_toml_integers_beyond_float_range(tmp_path, extra, key):
    path = tmp_path / "c.toml"
    path.write_text(_config(extra))
    with pytest.raises(sweep_config.ConfigError) as err:
        sweep_config.load_config(path)
    msg = str(err.value)
    assert key in msg and str(path) in msg and len(msg) < 300


def test_binary_config_names_the_file(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(sweep_config.ConfigError, match="not a TOML text file") as err:
        sweep_config.load_config(path)
    assert str(path) in str(err.value)
    code, _, err_text = run(["sweep", str(path), "--dry-run"], capsys)
    assert code == 2 and str(path) in err_text and len(err_text.splitlines()) == 1


@pytest.mark.parametrize("content, words", [
    ("", "empty file"),
    ("evaluator,psi_n,psi_p\n", "no rows"),
])
def test_plot_empty_csv_names_the_file(tmp_path, capsys, content, words):
    path = tmp_path / "r.csv"
    path.write_text(content)
    code, _, err = run(["plot", str(path), "--out", str(tmp_path / "f")], capsys)
    assert code == 2 and str(path) in err and words in err and len(err.splitlines()) == 1


def test_plot_all_nan_values_are_not_called_unconverged(tmp_path, capsys):
    rows = [dict(evaluator="theory", psi_n=1.0, psi_p=p, m=1, t=0.1, lam=0.01, activation="tanh",
                 d=None, seed=None, train=np.nan, test=np.nan, score=np.nan, converged=True)
            for p in (0.5, 1.0, 2.0)]
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv", index=False)
    code, _, err = run(["plot", str(tmp_path / "r.csv"), "--out", str(tmp_path / "f")], capsys)
    assert code == 2 and "NaN" in err and "unconverged" not in err
