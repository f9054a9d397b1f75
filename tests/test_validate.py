"""rfdsm validate: the table, the verdict, the CLI (tiny sizes; not a validation run itself)."""

import math

import pytest

import rfdsm
from rfdsm import Setting
from rfdsm import validate as V
from rfdsm.cli import main

TINY = [Setting(2, 0.5, m=1, t=0.5, lam=0.05), Setting(2, 2, m=math.inf, t=0.5, lam=0.05)]


def test_default_settings_cover_the_brief():
    st = V.default_settings(finite_m=False)
    assert len(st) >= 12
    assert {s.m for s in st} == {1, math.inf}
    assert {s.activation for s in st} >= {"tanh", "relu"} and len({s.t for s in st}) >= 2
    assert any(s.psi_p < s.psi_n for s in st) and any(s.psi_p > s.psi_n for s in st)
    if rfdsm.theory.supports(4):
        assert any(1 < s.m < math.inf for s in V.default_settings())


def test_table_and_summary():
    df = V.validation_table(TINY, ds=(20, 30), n_seeds=2)
    assert len(df) == len(TINY) * 2 * 2
    assert set(df.columns) >= {"psi_n", "psi_p", "m", "quantity", "d", "theory", "sim", "sim_se",
                               "rel_dev", "ok", "converged"}
    last = df[df["largest_d"]]
    assert last["ok"].notna().all() and df[~df["largest_d"]]["ok"].isna().all()
    row = df.iloc[0]
    assert row["rel_dev"] == pytest.approx((row["sim"] - row["theory"]) / abs(row["theory"]))
    wide, ok = V.summarize(df)
    assert len(wide) == len(TINY) * 2 and ok == bool(last["ok"].all())


def test_wrong_theory_is_caught(monkeypatch):
    import rfdsm.theory as th

    real = th.theory

    def shifted(setting, **kw):  # a theory off by 10 %
        r = real(setting, **kw)
        return r.__class__(**{**r.__dict__, "test": 1.1 * r.test})

    monkeypatch.setattr(th, "theory", shifted)
    df = V.validation_table(TINY, ds=(20, 30), n_seeds=2)
    _, ok = V.summarize(df)
    assert not ok


def test_cli_bad_arguments(capsys):
    assert main(["validate", "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--seeds" in err[0]
    assert main(["validate", "--d", "1"]) == 2


def test_cli_runs(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(V, "default_settings", lambda finite_m=None: TINY)
    out_csv = tmp_path / "v.csv"
    rc = main(["validate", "--d", "20", "30", "--seeds", "2", "--csv", str(out_csv)])
    out = capsys.readouterr().out
    assert "theory vs simulation" in out and "largest |dev|" in out
    assert (rc == 0) == ("ALL PASS" in out) and rc in (0, 1)
    assert out_csv.exists()
