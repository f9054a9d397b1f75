"""Sweeps under hostile input: oversized grids, kill -9 during worker start-up, malformed
scheduler addresses, damaged sweep directories.

Whatever could hang on a broken implementation runs in a subprocess with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rfdsm.cli import main
from rfdsm.sweep import ConfigError, run_sweep
from rfdsm.sweep.config import DEFAULT_MAX_ROWS, load_config
from rfdsm.sweep.runner import check_scheduler_address
from rfdsm.sweep.store import JOURNAL, MANIFEST, StoreError

psutil = pytest.importorskip("psutil")

SMALL = """
[sweep]
evaluators = ["simulate"]
[grid]
psi_n = 2
psi_p = [0.5, 1.5]
[simulate]
d = 20
seeds = {seeds}
"""

HUGE = {  # config, rows
    "seeds": (SMALL.replace("{seeds}", "100000000"), "200,000,000"),
    "range": ("""
        [sweep]
        evaluators = ["theory"]
        [grid]
        psi_n = 1
        psi_p = {start = 0.1, stop = 10, num = 100000000}
        """, "100,000,000"),
}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# Runs `rfdsm` in a fresh interpreter and reports the command's own time and peak memory.
_MEASURED = """
import sys, time
from rfdsm.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so it would report the peak of
# the (large) test process that started this one
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:"))
print(f"MEASURED {time.perf_counter() - t0:.3f} {hwm}", file=sys.stderr)
sys.exit(rc)
"""


def run_measured(*args, timeout=20):
    """(returncode, stderr lines without the measurement, seconds, peak RSS in MB)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _MEASURED, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"rfdsm {' '.join(map(str, args))} did not finish in {timeout} s")
    lines = proc.stderr.strip().splitlines()
    tag = [x for x in lines if x.startswith("MEASURED ")]
    assert tag, proc.stderr
    _, secs, kb = tag[-1].split()
    return proc.returncode, [x for x in lines if x not in tag], float(secs), int(kb) / 1024


# --- item 4: oversized grids are refused before anything is expanded ----------------------
@pytest.mark.parametrize("kind", sorted(HUGE))
def test_huge_grid_dry_run_is_refused_at_once(tmp_path, kind):
    text, rows = HUGE[kind]
    cfg = write(tmp_path / "huge.toml", text)
    rc, err, secs, mb = run_measured("sweep", cfg, "--dry-run")
    assert rc == 2 and len(err) == 1, err
    assert f"has {rows} rows" in err[0] and f"limit of {DEFAULT_MAX_ROWS:,}" in err[0], err
    assert "--max-rows" in err[0]
    # The count is arithmetic: no memory beyond the interpreter's own (~150 MB); expanding the
    # grid instead would fail the 20 s limit of run_measured or this bound.  (Not timed: the
    # machine is shared.)
    assert mb < 400, mb


def test_row_limit_counts_exactly_and_can_be_raised(tmp_path, capsys):
    cfg = write(tmp_path / "c.toml", SMALL.replace("{seeds}", "3"))  # 2 x 3 = 6 rows
    with pytest.raises(ConfigError, match=r"6 rows \(simulate 6\), more than the limit of 5"):
        load_config(cfg, max_rows=5)
    with pytest.raises(ConfigError, match="more than the limit of 5"):
        run_sweep(cfg, tmp_path / "out", max_rows=5, progress=False)
    assert not (tmp_path / "out").exists()  # refused before the directory is touched
    assert main(["sweep", str(cfg), "--dry-run", "--max-rows", "5"]) == 2
    assert "more than the limit of 5" in capsys.readouterr().err
    assert main(["sweep", str(cfg), "--dry-run", "--max-rows", "6"]) == 0
    assert "simulate: 6 task(s); 6 rows" in capsys.readouterr().out
    # An already loaded config is checked against the caller's limit too.
    with pytest.raises(ConfigError, match="limit of 5"):
        load_config(load_config(cfg), max_rows=5)


def test_arithmetic_count_equals_the_expanded_tasks(tmp_path):
    cfg = load_config({
        "sweep": {"evaluators": ["theory", "simulate"], "curve": "psi_n"},
        "grid": {"psi_n": {"start": 0.5, "stop": 2, "num": 4}, "psi_p": [0.5, 1, 2],
                 "m": [1, "inf"]},
        "theory": {"grid": {"lam": [0.01, 0.1]}},
        "simulate": {"d": [20, 40], "seeds": 3, "grid": {"psi_p": [1, 2]}},
    })
    tasks = cfg.tasks()
    for kind in cfg.evaluators:
        mine = [t for t in tasks if t["kind"] == kind]
        assert cfg.n_tasks[kind] == len(mine)
        assert cfg.n_rows[kind] == sum(t["rows"] for t in mine)
    assert cfg.n_rows == {"theory": 4 * 3 * 2 * 2, "simulate": 4 * 2 * 2 * 2 * 3}
    assert cfg.n_tasks["theory"] == 3 * 2 * 2  # one curve along psi_n per other point


# --- item 5: kill -9 during worker start-up leaves no process behind ----------------------
KILL_TOML = """
[sweep]
evaluators = ["simulate"]
[grid]
psi_n = 2
psi_p = [0.5, 1, 2, 3]
m = [1, inf]
[simulate]
d = 40
seeds = 4
"""


def _session(sid: int) -> list:
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid:
                out.append(p)
        except (ProcessLookupError, PermissionError):
            pass
    return out


@pytest.mark.slow
def test_kill_during_worker_start_up_leaves_no_process(tmp_path):
    cfg = write(tmp_path / "k.toml", KILL_TOML)
    # Moments in start-up: first child (resource tracker or a worker being spawned), all
    # three children there (workers importing), then twice later (numba, first tasks).
    moments = [(1, 0.0), (3, 0.0), (3, 0.5), (3, 1.5)]
    survivors = {}
    for i, (children, delay) in enumerate(moments):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rfdsm.cli", "sweep", str(cfg), "--out",
             str(tmp_path / f"o{i}"), "--workers", "2", "--quiet"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            parent = psutil.Process(proc.pid)
            deadline = time.monotonic() + 20
            while len(parent.children()) < children and time.monotonic() < deadline:
                assert proc.poll() is None, "the sweep ended before its workers started"
                time.sleep(0.005)
            assert len(parent.children()) >= children, "no workers after 20 s"
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            deadline = time.monotonic() + 10
            while _session(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            left = _session(proc.pid)
            if left:
                survivors[(children, delay)] = [" ".join(p.cmdline())[-70:] for p in left]
        finally:
            proc.kill()
            proc.wait()
            for p in _session(proc.pid):  # this test's own leftovers, by pid
                with contextlib.suppress(psutil.Error):
                    p.kill()
    assert not survivors, f"processes alive 10 s after kill -9 of the sweep: {survivors}"


# --- item 6 (first half): malformed or wrong scheduler addresses fail fast ----------------
@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://h.x:1",
                                     "tcp://[::1]:8786", "inproc://10.0.0.1/123/1"])
def test_scheduler_address_forms_accepted(address):
    assert check_scheduler_address(address) == address


@pytest.mark.parametrize("address", ["garbage", "tcp://host", "host:0", "host:99999",
                                     "http://host:80", "tcp://:8786", ""])
def test_malformed_scheduler_address_is_refused_before_any_work(tmp_path, address):
    cfg = write(tmp_path / "c.toml", SMALL.replace("{seeds}", "1"))
    with pytest.raises(ValueError, match="scheduler address must look like tcp://HOST:PORT"):
        run_sweep(cfg, tmp_path / "out", scheduler=address, progress=False)
    assert not (tmp_path / "out").exists()


def test_scheduler_garbage_fails_fast_in_one_line(tmp_path):
    cfg = write(tmp_path / "c.toml", SMALL.replace("{seeds}", "1"))
    rc, err, secs, _ = run_measured("sweep", cfg, "--out", tmp_path / "o", "--scheduler",
                                    "garbage", "--quiet")
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("rfdsm: error: --scheduler: ") and "'garbage'" in err[0], err
    # the old code hung 40 s in Client.__del__: far beyond any start-up delay of a loaded machine
    assert secs < 15, secs
    assert not (tmp_path / "o" / JOURNAL).exists()


@pytest.fixture
def babbling_server():
    """A TCP server that answers every connection with bytes that are not the Dask protocol
    (a proxy or another service on the scheduler's port)."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    conns = []

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            conns.append(conn)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    th.join()
    for c in conns:
        c.close()
    srv.close()


def test_a_server_that_is_not_a_scheduler_fails_fast_and_cleanly(tmp_path, babbling_server):
    pytest.importorskip("distributed")
    cfg = write(tmp_path / "c.toml", SMALL.replace("{seeds}", "1"))
    # In a thread of this process, so that the server is reachable; the CLI itself runs in
    # a child with a timeout (a lingering Client used to block its exit for 40 s).
    rc, err, secs, _ = run_measured("sweep", cfg, "--out", tmp_path / "o", "--scheduler",
                                    babbling_server, "--quiet", timeout=30)
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"rfdsm: error: cannot connect to the Dask scheduler at "
                             f"{babbling_server}: "), err
    assert secs < 12, secs  # at most the 10 s connect timeout
    assert not (tmp_path / "o" / JOURNAL).exists()


# --- item 10: damaged sweep directories are named, with the fix ---------------------------
def _finished_sweep(tmp_path) -> Path:
    cfg = write(tmp_path / "c.toml", SMALL.replace("{seeds}", "1"))
    out = tmp_path / "out"
    run_sweep(cfg, out, workers=1, progress=False)
    (out / "results.parquet").unlink()
    return cfg, out


BAD_LINES = {
    "a string": ('"hello"', "a JSON string, expected an object"),
    "a list": ('[1, 2]', "a JSON list, expected an object"),
    "rows a string": ('{"key": "k", "rows": "abc"}', "'rows' is not a non-empty list"),
    "rows of strings": ('{"key": "k", "rows": ["abc"]}', "rows[0] is a JSON string"),
    "key a number": ('{"key": 3, "rows": [{}]}', "'key' is a JSON number"),
    "no rows": ('{"key": "k"}', "no 'rows'"),
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_structurally_wrong_journal_line_is_named(tmp_path, capsys, case):
    cfg, out = _finished_sweep(tmp_path)
    line, problem = BAD_LINES[case]
    journal = out / JOURNAL
    good = journal.read_text().splitlines()
    journal.write_text("\n".join([good[0], line, *good[1:]]) + "\n")
    with pytest.raises(StoreError) as info:
        run_sweep(cfg, out, workers=1, progress=False)
    msg = str(info.value)
    assert f"{journal}: line 2 is not a journal entry ({problem}" in msg
    assert "delete that line" in msg and "--force" in msg
    capsys.readouterr()
    assert main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 2 is not a journal entry" in err[0], err
    run_sweep(cfg, out, workers=1, progress=False, force=True)  # the stated fix works


def test_journal_entry_with_wrong_row_count_is_named(tmp_path):
    cfg, out = _finished_sweep(tmp_path)
    journal = out / JOURNAL
    lines = journal.read_text().splitlines()
    entry = json.loads(lines[1])
    entry["rows"] = entry["rows"] * 2
    lines[1] = json.dumps(entry)
    journal.write_text("\n".join(lines) + "\n")
    with pytest.raises(StoreError, match=r"line 2 holds 2 row\(s\) for a task of 1; delete"):
        run_sweep(cfg, out, workers=1, progress=False)


@pytest.mark.parametrize("text, problem", [("[1, 2]", "a JSON list, expected an object"),
                                           ('"x"', "a JSON string, expected an object"),
                                           ("{}", "no config_hash")])
def test_manifest_that_is_not_an_object_is_named(tmp_path, capsys, text, problem):
    cfg, out = _finished_sweep(tmp_path)
    (out / MANIFEST).write_text(text)
    with pytest.raises(StoreError, match=f"sweep.json is not a sweep manifest \\({problem}\\); "
                                         "rerun with --force"):
        run_sweep(cfg, out, workers=1, progress=False)
    capsys.readouterr()
    assert main(["sweep", str(cfg), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out / MANIFEST) in err[0], err
    run_sweep(cfg, out, workers=1, progress=False, force=True)
