"""rfdsm validate: tolerance, table, verdict, CLI (tiny sizes; not a validation run itself)."""

import math

import pytest

from rfdsm import Setting
from rfdsm import validate as V
from rfdsm.cli import main

TINY = [Setting(2, 0.5, m=1, t=0.5, lam=0.05), Setting(2, 2, m=math.inf, t=0.5, lam=0.05)]


def _cli(argv):
    """Exit status and stderr lines of ``rfdsm argv`` (argparse errors exit via SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_default_settings_cover_the_brief():
    st = V.default_settings()
    assert len(st) == 22 and len(V.default_settings(finite_m=False)) == 16
    assert {s.m for s in st} == {1, 4, 16, math.inf}
    assert {s.m for s in V.default_settings(finite_m=False)} == {1, math.inf}
    assert {s.activation for s in st} >= {"tanh", "relu"} and len({s.t for s in st}) >= 2
    assert any(s.psi_p < s.psi_n for s in st) and any(s.psi_p > s.psi_n for s in st)


def test_tolerance_formula():
    # (R0 + C/d)|theory| + Z se, with the documented constants
    assert V.tolerance("test", -0.5, 200, 0.001) == pytest.approx((0.005 + 4 / 200) * 0.5 + 0.003)
    assert V.tolerance("train", 0.004, 400, None) == pytest.approx((0.005 + 20 / 400) * 0.004)
    assert V.tolerance("score", 1.0, 100, 0.0) == pytest.approx(0.005 + 0.08)
    # shrinks towards R0 |theory| as d grows: an O(1) relative error cannot hide at large d
    assert V.tolerance("test", 1.0, 10**6, None) < 0.0051
    for bad in (("nope", 1.0, 100, None), ("test", 1.0, 0, None), ("test", 1.0, 2.5, None),
                ("test", 1.0, 100, -1.0), ("test", 1.0, 100, math.nan)):
        with pytest.raises(ValueError):
            V.tolerance(*bad)


def test_table_and_summary():
    df = V.validation_table(TINY, ds=(20, 30), n_seeds=2)
    assert len(df) == len(TINY) * 2 * 2
    assert set(df.columns) >= {"psi_n", "psi_p", "m", "quantity", "d", "theory", "sim", "sim_se",
                               "rel_dev", "tol", "ok", "converged"}
    last = df[df["largest_d"]]
    assert last["ok"].notna().all() and df[~df["largest_d"]]["ok"].isna().all()
    row = df.iloc[0]
    assert row["rel_dev"] == pytest.approx((row["sim"] - row["theory"]) / abs(row["theory"]))
    assert row["tol"] == pytest.approx(V.tolerance(row["quantity"], row["theory"], row["d"],
                                                   row["sim_se"]))
    wide, ok = V.summarize(df)
    assert len(wide) == len(TINY) * 2
    assert ok == bool((last["ok"].to_numpy() & wide["trend_ok"].to_numpy()).all())


def test_wrong_theory_is_caught(monkeypatch):
    import rfdsm.theory as th

    real = th.theory

    def shifted(setting, **kw):  # a theory off by 30 % (tolerance at d = 30: 13.8 % + 3 se)
        r = real(setting, **kw)
        return r.__class__(**{**r.__dict__, "test": 1.3 * r.test})

    monkeypatch.setattr(th, "theory", shifted)
    df = V.validation_table(TINY, ds=(20, 30), n_seeds=2)
    _, ok = V.summarize(df)
    assert not ok


def test_trend_check():
    # deviation grows from 0.01 to 0.05 with se 0.001: far beyond 3 combined se -> not ok
    ratio, ok = V._trend((1.01, 0.001, 1.0), (1.05, 0.001, 1.0))
    assert ratio == pytest.approx(0.2) and not ok
    ratio, ok = V._trend((1.04, 0.001, 1.0), (0.99, 0.001, 1.0))
    assert ratio == pytest.approx(4.0) and ok
    # a growth within the noise passes
    assert V._trend((1.01, 0.01, 1.0), (1.03, 0.01, 1.0))[1]


def test_single_d_prints_dash(capsys, monkeypatch):
    monkeypatch.setattr(V, "default_settings", lambda finite_m=True: TINY[:1])
    rc = main(["validate", "--d", "30", "--seeds", "2"])
    out = capsys.readouterr().out
    assert rc == (0 if "ALL PASS" in out else 1) and "nan" not in out.lower()
    line = [ln for ln in out.splitlines() if ln.strip().endswith(("yes", "NO"))][0]
    assert line.split()[-2] == "-"


def test_cli_bad_arguments(capsys, tmp_path):
    for argv, word in ((["validate", "--seeds", "1"], "--seeds"),
                       (["validate", "--seeds", "x"], "--seeds"),
                       (["validate", "--d", "1"], "--d"),
                       (["validate", "--seed", "-1"], "--seed"),
                       (["validate", "--csv", str(tmp_path / "no" / "x.csv")], "--csv"),
                       (["validate", "--csv", str(tmp_path)], "--csv"),
                       (["validate", "--rtol", "0.1"], "--rtol")):
        assert _cli(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rfdsm: error:") and word in err[0], err
    assert not (tmp_path / "no").exists()


def test_cli_runs(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(V, "default_settings", lambda finite_m=True: TINY)
    out_csv = tmp_path / "v.csv"
    rc = main(["validate", "--d", "20", "30", "--seeds", "2", "--csv", str(out_csv)])
    out = capsys.readouterr().out
    assert "theory vs simulation" in out and "largest |dev|" in out
    assert (rc == 0) == ("ALL PASS" in out) and rc in (0, 1)
    assert out_csv.exists()
