"""Sweeps: config validation, tidy table, resume after kill -9, and backend equivalence.

All sweeps here are tiny (d <= 40) so that the file runs in well under a minute.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rfdsm
from rfdsm.cli import main
from rfdsm.core.result import Result
from rfdsm.sweep import ConfigError, SweepError, load_results, run_sweep
from rfdsm.sweep.config import load_config
from rfdsm.sweep.store import COLUMNS, JOURNAL, StoreError, SweepDir

theory_module = importlib.import_module("rfdsm.theory")

SIM_TOML = """
[sweep]
name = "tiny"
evaluators = ["simulate"]

[grid]
psi_n = 2
psi_p = [0.5, 1.5]
m = [1, inf]

[simulate]
d = [20, 30]
seeds = 2
"""

BOTH_TOML = """
[sweep]
evaluators = ["theory", "simulate"]

[grid]
psi_n = [1, 2]
m = [1, inf]
t = 0.1

[theory]
grid.psi_p = {start = 0.25, stop = 4, num = 5, spacing = "log"}

[simulate]
d = 20
seeds = 2
grid.psi_p = [0.5, 2]
"""

# Columns whose values must agree between runs (wall_time is a measurement, not a result).
STABLE = [c for c in COLUMNS if c != "wall_time"]
VALUES = ["train", "test", "score"]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def fake_curve(calls):
    """A stand-in for ``theory_curve``: smooth made-up errors, records each call."""

    def theory_curve(settings):
        calls.append(list(settings))
        out = []
        for k, s in enumerate(settings):
            test = s.bayes + s.h / (1 + s.psi_n / s.psi_p) + (0.1 if s.m == math.inf else 0.0)
            out.append(Result(setting=s, evaluator="theory", train=test / 2, test=test,
                              score=(test - s.bayes) / s.h, converged=True, residual=1e-13,
                              iterations=k + 1))
        return out

    return theory_curve


@pytest.fixture
def fake_theory(monkeypatch):
    calls = []
    monkeypatch.setattr(theory_module, "theory_curve", fake_curve(calls), raising=False)
    return calls


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 0.0):
    """Same rows in the same order, same parameters, seeds and diagnostics; errors equal to
    ``rtol`` (0: bitwise)."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    exact = [c for c in STABLE if c not in VALUES]
    pd.testing.assert_frame_equal(a[exact], b[exact])
    if rtol == 0:
        pd.testing.assert_frame_equal(a[VALUES], b[VALUES], check_exact=True)
    else:
        # Absolute part too: a small train error is a difference of O(1) terms, so its
        # rounding is absolute (about 1e-16 x the terms), not relative to its own size.
        np.testing.assert_allclose(a[VALUES].to_numpy(), b[VALUES].to_numpy(), rtol=rtol,
                                   atol=rtol)


# Different BLAS thread counts (the in-process run uses the machine's threads, each worker
# process one) sum the same products in a different order: results then differ at rounding
# level (seen: 1e-14 relative; 1e-15 absolute on train errors near 0).  With equal thread
# counts they are bitwise equal (see the kill test: both runs are subprocesses, same setup).
THREAD_RTOL = 1e-12


# --- configuration errors ------------------------------------------------------------------
GOOD = {"sweep": {"evaluators": ["simulate"]}, "grid": {"psi_n": [1], "psi_p": [1]},
        "simulate": {"d": [20]}}


def variant(**changes):
    cfg = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *head, last = path.split("__")
        node = cfg
        for k in head:
            node = node.setdefault(k, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return cfg


DELETE = object()

BAD_CONFIGS = {
    # unknown keys
    "unknown top-level": (variant(extra={"a": 1}), "'extra'"),
    "unknown sweep key": (variant(sweep__evaluator=["simulate"]), "'sweep.evaluator'"),
    "unknown grid key": (variant(grid__psi_q=[1]), "'grid.psi_q'"),
    "unknown simulate key": (variant(simulate__seedz=2), "'simulate.seedz'"),
    "unknown range key": (variant(grid__psi_p={"start": 1, "stop": 2, "num": 2, "step": 1}),
                          "'grid.psi_p.step'"),
    "unknown evaluator": (variant(sweep__evaluators=["simulation"]), "sweep.evaluators"),
    # wrong types
    "psi_p string": (variant(grid__psi_p=["abc"]), "grid.psi_p must be a number"),
    "lam bool": (variant(grid__lam=True), "grid.lam must be a number"),
    "m string": (variant(grid__m=["lots"]), "grid.m must be an integer >= 1 or inf"),
    "m bool": (variant(grid__m=[True]), "grid.m must be an integer >= 1 or inf"),
    "activation number": (variant(grid__activation=[1]), "grid.activation must be a string"),
    "d string": (variant(simulate__d=["20"]), "simulate.d must be an integer"),
    "seeds float": (variant(simulate__seeds=1.5), "simulate.seeds must be an integer"),
    "grid not a table": (variant(grid=[1, 2]), "grid must be a table"),
    "m range": (variant(grid__m={"start": 1, "stop": 4, "num": 4}), "grid.m: range tables"),
    # empty grids
    "empty list": (variant(grid__psi_p=[]), "grid.psi_p is an empty list"),
    "empty range": (variant(grid__psi_p={"start": 1, "stop": 2, "num": 0}), "grid.psi_p.num"),
    "empty d": (variant(simulate__d=[]), "simulate.d is an empty list"),
    "empty evaluators": (variant(sweep__evaluators=[]), "sweep.evaluators"),
    # missing keys
    "no psi_n": (variant(grid__psi_n=DELETE), "grid.psi_n is required"),
    "no grid": (variant(grid=DELETE), "[grid] table is required"),
    "no evaluators": (variant(sweep__evaluators=DELETE), "sweep.evaluators is required"),
    "no d": (variant(simulate__d=DELETE), "simulate.d is required"),
    "range without num": (variant(grid__psi_p={"start": 1, "stop": 2}), "missing 'num'"),
    # invalid values
    "psi_p negative": (variant(grid__psi_p=[1, -1]), "grid.psi_p[1]: psi_p must be"),
    "psi_n inf": (variant(grid__psi_n=[math.inf]), "psi_n must be a finite number > 0"),
    "t zero": (variant(grid__t=0), "grid.t: t must be a finite number > 0"),
    "lam negative": (variant(grid__lam=-0.1), "grid.lam: lam must be a finite number >= 0"),
    "m zero": (variant(grid__m=[0]), "grid.m: m must be an integer"),
    "m fractional": (variant(grid__m=[1.5]), "grid.m: m must be an integer"),
    "activation unknown": (variant(grid__activation="sine"), "activation must be one of"),
    "d zero": (variant(simulate__d=0), "simulate.d must be an integer >= 1"),
    "d too small": (variant(grid__psi_n=0.1, simulate__d=4), "simulate.d = 4 with psi_n = 0.1"),
    "log range at zero": (variant(grid__psi_p={"start": 0, "stop": 2, "num": 3,
                                               "spacing": "log"}), "log spacing needs start > 0"),
    "bad spacing": (variant(grid__psi_p={"start": 1, "stop": 2, "num": 3, "spacing": "geo"}),
                    "spacing must be 'linear' or 'log'"),
    "duplicate values": (variant(grid__m=[1, 1.0]), "grid.m lists the value 1 more than once"),
    "bad curve axis": (variant(sweep__curve="m"), "sweep.curve must be one of"),
    "section without evaluator": (variant(theory={"grid": {"psi_p": 2}}),
                                  "[theory] is given but 'theory' is not in sweep.evaluators"),
}


def toml_text(cfg: dict) -> str:
    """A small TOML writer, enough for the test configs (tables of scalars, lists, tables)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, float) and math.isinf(v):
            return "inf"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"

    lines = []
    for section, body in cfg.items():
        if not isinstance(body, dict):
            lines.insert(0, f"{section} = {value(body)}")
            continue
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in body.items())
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_fails_before_any_work(case, tmp_path, capsys):
    cfg, expected = BAD_CONFIGS[case]
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert expected in str(info.value)
    # The same through the CLI: one line on stderr, exit status 2, nothing created.
    path = write(tmp_path / "bad.toml", toml_text(cfg))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rfdsm: error: ") and err.count("\n") == 1 and expected in err
    assert err.count(str(path)) == 1  # the file is named once
    assert not out.exists()


def test_good_variant_is_accepted():
    # The bad cases above differ from this one only by the key they name.
    assert len(load_config(GOOD).tasks()) == 1


def test_invalid_toml_and_missing_file(tmp_path, capsys):
    path = write(tmp_path / "broken.toml", "[grid\npsi_n = 1\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "invalid TOML" in err and err.count(str(path)) == 1
    assert main(["sweep", str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "cannot read the sweep config" in capsys.readouterr().err
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "2",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not both" in capsys.readouterr().err


# --- grid expansion ------------------------------------------------------------------------
def test_ranges_tasks_and_curves(tmp_path):
    cfg = load_config(write(tmp_path / "c.toml", BOTH_TOML))
    assert cfg.grids["theory"]["psi_p"] == [0.25, 0.5, 1.0, 2.0, 4.0]  # clean log points
    assert cfg.grids["simulate"]["psi_p"] == [0.5, 2.0]
    tasks = cfg.tasks()
    theory = [t for t in tasks if t["kind"] == "theory"]
    sim = [t for t in tasks if t["kind"] == "simulate"]
    # One theory task per curve (psi_n x m), ordered along psi_p; one simulation task per
    # (setting, d, seed).
    assert len(theory) == 4 and all(t["rows"] == 5 for t in theory)
    for t in theory:
        assert [s.psi_p for s in t["settings"]] == [0.25, 0.5, 1.0, 2.0, 4.0]
        assert len({(s.psi_n, s.m) for s in t["settings"]}) == 1
    assert len(sim) == 2 * 2 * 2 * 2
    assert len({t["key"] for t in tasks}) == len(tasks)
    # The hash ignores names and spelling, not the work.
    same = load_config(write(tmp_path / "d.toml", BOTH_TOML.replace(
        "evaluators", 'name = "renamed"\nevaluators').replace("t = 0.1", "t = [0.10]")))
    assert same.hash == cfg.hash
    other = load_config(write(tmp_path / "e.toml", BOTH_TOML.replace("seeds = 2", "seeds = 3")))
    assert other.hash != cfg.hash


def test_dry_run_runs_nothing(tmp_path, capsys):
    path = write(tmp_path / "c.toml", BOTH_TOML)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "theory: 4 task(s), simulate: 16 task(s); 36 rows" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()
    # --out is needed to run, not to count
    assert main(["sweep", str(path), "--dry-run"]) == 0
    assert main(["sweep", str(path)]) == 2
    assert "--out" in capsys.readouterr().err


# --- the table -----------------------------------------------------------------------------
def test_table_schema_theory_and_simulation(tmp_path, fake_theory):
    out = tmp_path / "o"
    df = run_sweep(write(tmp_path / "c.toml", BOTH_TOML), out, workers=1, csv=True,
                   progress=False)
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == 4 * 5 + 16
    th, sim = df[df.evaluator == "theory"], df[df.evaluator == "simulate"]
    assert th.d.isna().all() and th.seed.isna().all() and th.n.isna().all()
    assert (th.iterations >= 1).all() and (th.residual == 1e-13).all()
    assert set(sim.d) == {20} and set(sim.seed) == {0, 1} and set(sim.n) == {20, 40}
    assert set(df.m) == {1.0, math.inf}
    assert (df.version == rfdsm.__version__).all()
    # Theory was called once per curve, each in increasing psi_p.
    assert len(fake_theory) == 4
    assert all([s.psi_p for s in call] == sorted(s.psi_p for s in call) for call in fake_theory)
    # Simulation rows are exactly what simulate() gives for that seed.
    row = sim.iloc[-1]
    s = rfdsm.Setting(row.psi_n, row.psi_p, m=row.m, t=row.t, lam=row.lam)
    ref = rfdsm.simulate(s, int(row.d), seed=int(row.seed))
    assert (row.train, row.test, row.score) == pytest.approx((ref.train, ref.test, ref.score),
                                                             rel=THREAD_RTOL)
    # One pandas call reads it back, from the directory, the Parquet or the CSV; inf survives.
    for source in (out, out / "results.parquet", out / "results.csv"):
        back = load_results(source)
        pd.testing.assert_frame_equal(back, df)
    assert ",inf," in (out / "results.csv").read_text()
    assert rfdsm.load_results(out).equals(df)


def test_load_results_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_results(tmp_path / "nothing")
    with pytest.raises(ValueError, match="not a sweep directory"):
        load_results(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="expected a sweep directory"):
        load_results(tmp_path / "x.txt")


# --- resuming ------------------------------------------------------------------------------
def test_failed_tasks_are_reported_kept_and_retried(tmp_path, monkeypatch):
    calls = []
    good = fake_curve(calls)

    def flaky(settings):
        if settings[0].m == math.inf:
            raise FloatingPointError("solver blew up")
        return good(settings)

    monkeypatch.setattr(theory_module, "theory_curve", flaky, raising=False)
    path = write(tmp_path / "c.toml", BOTH_TOML)
    out = tmp_path / "o"
    with pytest.raises(SweepError, match=r"2 of 20 task\(s\) failed.*solver blew up"):
        run_sweep(path, out, workers=1, progress=False)
    assert "FloatingPointError" in (out / "errors.log").read_text()
    assert not (out / "results.parquet").exists()
    with pytest.warns(UserWarning, match="incomplete"):
        partial = load_results(out)
    assert len(partial) == 36 - 10
    # Rerun with a working solver: only the two failed curves run again.
    monkeypatch.setattr(theory_module, "theory_curve", good)
    calls.clear()
    logs = []
    df = run_sweep(path, out, workers=1, progress=False, log=logs.append)
    assert len(calls) == 2 and all(c[0].m == math.inf for c in calls)
    assert "resuming: 18 of 20 tasks already done" in logs
    ref = run_sweep(path, tmp_path / "ref", workers=1, progress=False)
    assert_same_table(df, ref, rtol=THREAD_RTOL)


def test_torn_journal_line_is_dropped_and_rerun(tmp_path):
    path = write(tmp_path / "c.toml", SIM_TOML)
    out = tmp_path / "o"
    full = run_sweep(path, out, workers=1, progress=False)
    journal = out / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    assert len(lines) == 16
    # What a kill -9 in the middle of a write leaves: the last line cut short.
    journal.write_bytes(b"".join(lines[:10]) + lines[10][: len(lines[10]) // 2])
    (out / "results.parquet").unlink()
    again = run_sweep(path, out, workers=1, progress=False)
    assert_same_table(again, full, rtol=THREAD_RTOL)
    keys = [json.loads(x)["key"] for x in journal.read_bytes().splitlines()]
    assert len(keys) == 16 == len(set(keys))


def test_changed_config_is_refused_unless_forced(tmp_path, capsys):
    path = write(tmp_path / "c.toml", SIM_TOML)
    out = tmp_path / "o"
    run_sweep(path, out, workers=1, progress=False)
    changed = write(tmp_path / "c2.toml", SIM_TOML.replace("seeds = 2", "seeds = 1"))
    assert main(["sweep", str(changed), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds a different sweep" in err and "--force" in err
    assert len(load_results(out)) == 16  # untouched
    assert main(["sweep", str(changed), "--out", str(out), "--quiet", "--force",
                 "--workers", "1"]) == 0
    assert len(load_results(out)) == 8
    assert (out / "config.toml").read_text() == changed.read_text()


def test_concurrent_sweep_in_same_directory_is_refused(tmp_path):
    out = tmp_path / "o"
    holder = SweepDir(out)
    holder.lock()
    try:
        with pytest.raises(StoreError, match="another sweep is running"):
            run_sweep(write(tmp_path / "c.toml", SIM_TOML), out, workers=1, progress=False)
    finally:
        holder.unlock()


KILL_TOML = """
[sweep]
evaluators = ["simulate"]

[grid]
psi_n = 2
psi_p = [0.5, 1, 2, 3]
m = [1, inf]

[simulate]
d = 40
seeds = 2
"""


def _cli(*args):
    # One BLAS thread in every run, so that the runs compared below are bitwise comparable.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    return [sys.executable, "-m", "rfdsm.cli", "sweep", *map(str, args)], env


def test_kill_minus_9_then_resume_equals_uninterrupted(tmp_path):
    path = write(tmp_path / "k.toml", KILL_TOML)
    total = 4 * 2 * 2
    out = tmp_path / "killed"
    cmd, env = _cli(path, "--out", out, "--workers", "1", "--quiet")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    finished = journal.read_bytes().count(b"\n")
    assert 3 <= finished < total, "the run was not interrupted mid-way"
    assert not (out / "results.parquet").exists()

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming: {finished} of {total} tasks already done" in resumed.stderr
    # Only the unfinished tasks ran again, each recorded once.
    assert f"ran {total - finished} task(s)" in resumed.stderr
    keys = [json.loads(x)["key"] for x in journal.read_bytes().splitlines()]
    assert len(keys) == total == len(set(keys))
    cmd, env = _cli(path, "--out", tmp_path / "clean", "--workers", "1", "--quiet")
    clean = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    a, b = load_results(out), load_results(tmp_path / "clean")
    assert len(a) == total
    assert_same_table(a, b)  # bitwise: same seeds, same thread count
    assert not a[["psi_p", "m", "seed"]].duplicated().any()


# --- backends ------------------------------------------------------------------------------
def test_two_workers_equal_serial(tmp_path):
    path = write(tmp_path / "c.toml", SIM_TOML)
    serial = run_sweep(path, tmp_path / "serial", workers=1, progress=False)
    assert main(["sweep", str(path), "--out", str(tmp_path / "two"), "--workers", "2",
                 "--quiet"]) == 0
    assert_same_table(load_results(tmp_path / "two"), serial, rtol=THREAD_RTOL)


def test_dask_local_cluster_equals_serial(tmp_path, fake_theory):
    distributed = pytest.importorskip("distributed")
    path = write(tmp_path / "c.toml", BOTH_TOML)
    serial = run_sweep(path, tmp_path / "serial", workers=1, progress=False)
    n_serial_calls = len(fake_theory)
    # Threads in this process, so that the stand-in theory is seen by the workers; the
    # scheduler is still reached over TCP exactly as a remote one would be.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        assert main(["sweep", str(path), "--out", str(tmp_path / "dask"), "--scheduler",
                     cluster.scheduler_address, "--quiet"]) == 0
    assert len(fake_theory) == 2 * n_serial_calls  # still one call per curve
    assert_same_table(load_results(tmp_path / "dask"), serial, rtol=THREAD_RTOL)


def test_unreachable_scheduler_is_a_usage_error(tmp_path, capsys, monkeypatch):
    def refuse(address, timeout):
        raise OSError(f"Timed out trying to connect to {address}")

    pytest.importorskip("distributed")
    # The connection probe that precedes any Client (a real refused connection would cost
    # the whole connect timeout; tests/test_sweep_hardening.py has a real one).
    monkeypatch.setattr(importlib.import_module("rfdsm.sweep.runner"), "_probe_scheduler", refuse)
    path = write(tmp_path / "c.toml", SIM_TOML)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler",
                 "tcp://127.0.0.1:9", "--quiet"]) == 2
    assert "cannot connect to the Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "o" / JOURNAL).exists()


# --- with the real asymptotic solver -------------------------------------------------------
def _theory_available() -> bool:
    try:
        theory_module.theory(rfdsm.Setting(1, 1))
    except NotImplementedError:
        return False
    return True


@pytest.mark.skipif(not _theory_available(), reason="the asymptotic solver is not implemented")
def test_real_theory_serial_and_workers_agree(tmp_path):
    path = write(tmp_path / "c.toml", BOTH_TOML)
    serial = run_sweep(path, tmp_path / "serial", workers=1, progress=False)
    two = run_sweep(path, tmp_path / "two", workers=2, progress=False)
    assert_same_table(two, serial, rtol=THREAD_RTOL)
    th = serial[serial.evaluator == "theory"]
    assert th.converged.all() and th.iterations.notna().all()
    assert np.isfinite(th[VALUES].to_numpy()).all()
    # The sweep adds nothing to the solver: its rows are theory_curve's, point for point.
    curve = [rfdsm.Setting(2, p, m=math.inf) for p in (0.25, 0.5, 1, 2, 4)]
    ref = theory_module.theory_curve(curve)
    got = th[(th.psi_n == 2) & (th.m == math.inf)]
    np.testing.assert_allclose(got.test.to_numpy(), [r.test for r in ref], rtol=1e-12)
    # test = h * score + a^2 holds row by row (docs/model.md identity).
    s = rfdsm.Setting(1, 1, t=0.1)
    np.testing.assert_allclose(serial.test, s.h * serial.score + s.bayes, rtol=1e-10)


@pytest.mark.parametrize("where", ["file", "below_file", "proc"])
def test_unusable_out_is_a_one_line_error(tmp_path, capsys, where, fake_theory):
    cfg = write(tmp_path / "c.toml", BOTH_TOML)
    afile = write(tmp_path / "afile", "x")
    out = {"file": afile, "below_file": afile / "sub", "proc": Path("/proc/rfdsm-nope")}[where]
    assert main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rfdsm: error: --out"), err
    assert not fake_theory  # refused before any work


def test_store_lock_reports_an_unusable_directory(tmp_path):
    from rfdsm.sweep.store import StoreError, SweepDir

    afile = write(tmp_path / "afile", "x")
    for path in (afile, afile / "sub"):
        with pytest.raises(StoreError, match="cannot use .* as the sweep output directory"):
            SweepDir(path).lock()
