"""The on-disk state of a sweep directory, and the tidy results table.

Layout of ``DIR``::

    sweep.json       manifest: config hash, normalised config, task and row counts
    config.toml      the configuration as given (when it came from a file)
    journal.jsonl    one line per finished task: {"key": ..., "rows": [...]}
    results.parquet  the consolidated table, written once every task is in the journal
    results.csv      the same table as CSV (``--csv``; ``m = inf`` written as ``inf``)
    errors.log       tracebacks of failed tasks (failed tasks are retried on the next run)

Why a journal: a finished task costs one appended line, flushed and fsync'ed before the next
result is taken, so a ``kill -9`` can lose only the task being written.  A line cut short by
the kill has no trailing newline; it is dropped (and the file truncated) when the sweep
resumes, and that task simply runs again.  Each task key appears at most once, so rows are
neither lost nor duplicated.  Whole files (manifest, tables) are written to a temporary name
and renamed into place, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from ..core import params

__all__ = ["COLUMNS", "SORT_KEYS", "Journal", "SweepDir", "to_frame", "load_results",
           "seed_summary", "StoreError"]

_SETTING = params.names()
_OBJECTS = params.names(kind="object")
#: Column order of the tidy table (one row per setting x evaluator x d x seed); the setting's
#: columns are the parameter table's (rfdsm/params.py).
COLUMNS = ("evaluator", *_SETTING, "d", "n", "p", "seed",
           "train", "test", "score", "converged", "residual", "iterations", "wall_time", "version")
#: Rows are sorted by these, so equal work gives an identical table whatever the scheduling.
SORT_KEYS = ("evaluator", *params.sort_keys(), "d", "seed")
_INT_COLUMNS = ("d", "n", "p", "seed", "iterations")
_FLOAT_COLUMNS = (*params.names(kind="float"), "train", "test", "score", "residual",
                  "wall_time")

MANIFEST, CONFIG, JOURNAL, RESULTS, RESULTS_CSV, ERRORS_LOG, LOCK = (
    "sweep.json", "config.toml", "journal.jsonl", "results.parquet", "results.csv",
    "errors.log", ".lock")


class StoreError(RuntimeError):
    """A sweep directory that cannot be used as it is (foreign, corrupt, or busy)."""


def _plain(v):
    """Python scalars only (numpy scalars would not serialise to JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    return v


def plain_rows(rows) -> list[dict]:
    return [{k: _plain(v) for k, v in row.items()} for row in rows]


def to_frame(rows) -> pd.DataFrame:
    """The tidy table from row dicts: fixed columns and dtypes, deterministic row order.

    ``m`` is a float column (``inf`` for the exact noise expectation); ``d, n, p, seed,
    iterations`` are nullable integers (null on theory rows, or when a solver reports none).
    """
    import pandas as pd  # here, not at import: `import rfdsm` and sweep workers do without
    df = pd.DataFrame(list(rows))
    for col in COLUMNS:
        if col not in df.columns:
            df[col] = None
    for row in params.PARAMS:  # journal rows of an rfdsm older than the parameter
        if row.fill:
            df[row.name] = df[row.name].where(df[row.name].notna(), row.default)
    extra = [c for c in df.columns if c not in COLUMNS]
    df = df[list(COLUMNS) + extra]
    for col in _INT_COLUMNS:
        df[col] = pd.array([None if v is None or (isinstance(v, float) and math.isnan(v))
                            else int(v) for v in df[col]], dtype="Int64")
    for col in _FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["converged"] = df["converged"].astype(bool)
    for col in ("evaluator", *_OBJECTS, "version"):
        df[col] = df[col].astype(str)
    if len(df):
        df = df.sort_values(list(SORT_KEYS), kind="mergesort", na_position="first")
    return df.reset_index(drop=True)


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(text))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_entry(line: bytes):
    """``(problem, key, rows)``: ``problem`` is None for a well-formed journal line, else what
    is wrong with it, in words (read back from disk, so anything may be there)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return "not valid JSON", None, None
    if not isinstance(entry, dict):
        return f"a JSON {_json_kind(entry)}, expected an object", None, None
    missing = [k for k in ("key", "rows") if k not in entry]
    if missing:
        return f"no {' or '.join(map(repr, missing))}", None, None
    key, rows = entry["key"], entry["rows"]
    if not isinstance(key, str):
        return f"'key' is a JSON {_json_kind(key)}, expected a string", None, None
    if not isinstance(rows, list) or not rows:
        return "'rows' is not a non-empty list", None, None
    for i, row in enumerate(rows):
        # Missing columns are not checked: to_frame fills them, and a journal of an older
        # rfdsm (fewer columns) must still resume.
        if not isinstance(row, dict):
            return f"rows[{i}] is a JSON {_json_kind(row)}, expected an object", None, None
    return None, key, rows


def _json_kind(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean",
            type(None): "null"}.get(type(v), "number")


class Journal:
    """Append-only record of finished tasks (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lines: dict[str, int] = {}  # task key -> line number, filled by read()

    def read(self, repair: bool = False) -> dict[str, list[dict]]:
        """``{task key: rows}`` of every complete line; ``repair`` cuts a torn last line."""
        if not self.path.exists():
            return {}
        data = self.path.read_bytes()
        done: dict[str, list[dict]] = {}
        good_end = 0
        pos = 0
        lineno = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:  # no newline: the write was cut short; the task reruns
                break
            lineno += 1
            problem, key, rows = _check_entry(data[pos:nl])
            if problem:
                raise StoreError(
                    f"{self.path}: line {lineno} is not a journal entry ({problem}); the file "
                    "was changed by something other than rfdsm sweep: delete that line (its "
                    "task runs again) or rerun with --force to discard all results")
            done.setdefault(key, rows)  # first record wins; a key is never written twice
            self.lines.setdefault(key, lineno)
            pos = good_end = nl + 1
        if repair and good_end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                os.fsync(f.fileno())
        return done

    def open(self):
        self._f = open(self.path, "a", encoding="utf-8")
        return self

    def append(self, key: str, rows: list[dict]) -> None:
        line = json.dumps({"key": key, "rows": plain_rows(rows)}, allow_nan=True)
        self._f.write(line + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        f = getattr(self, "_f", None)
        if f is not None:
            f.close()
            self._f = None


class SweepDir:
    """A sweep output directory: manifest, lock, journal, consolidated tables."""

    def __init__(self, path):
        self.path = Path(path)
        self.journal = Journal(self.path / JOURNAL)
        self._lock_fd = None

    # locking ---------------------------------------------------------------------------
    def lock(self) -> None:
        """Exclusive lock for the duration of a run; released by the kernel if we are killed."""
        try:
            if self.path.exists() and not self.path.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "exists and is not a directory")
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot use {str(self.path)!r} as the sweep output directory: "
                             f"{exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"another sweep is running in {self.path}") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # manifest --------------------------------------------------------------------------
    def manifest(self) -> dict | None:
        p = self.path / MANIFEST
        if not p.exists():
            return None
        fix = "rerun with --force to discard the directory's results, or use another --out"
        try:
            data = json.loads(p.read_text())
        except (ValueError, UnicodeDecodeError):
            raise StoreError(f"{p} is not valid JSON; {fix}") from None
        if not isinstance(data, dict):
            raise StoreError(f"{p} is not a sweep manifest (a JSON {_json_kind(data)}, "
                             f"expected an object); {fix}")
        if not isinstance(data.get("config_hash"), str):
            raise StoreError(f"{p} is not a sweep manifest (no config_hash); {fix}")
        return data

    def start(self, config, n_tasks: int, n_rows: int, force: bool, version: str) -> None:
        """Claim the directory for ``config``; refuse a different config unless ``force``."""
        for stale in self.path.glob(".*.tmp*"):  # left by a kill during an atomic write
            stale.unlink(missing_ok=True)
        try:
            old = self.manifest()
        except StoreError:
            if not force:
                raise
            old = None  # --force discards a damaged manifest like any other
        if old is None and self.journal.path.exists() and not force:
            raise StoreError(f"{self.path} holds a journal without a manifest; "
                             "use another --out directory or --force to discard it")
        if old is not None and old.get("config_hash") != config.hash and not force:
            raise StoreError(
                f"{self.path} holds a different sweep (config hash "
                f"{str(old.get('config_hash', '?'))[:12]}, this config {config.hash[:12]}); use "
                "another --out directory, or --force to discard the old results")
        if force or old is None:
            for name in (JOURNAL, RESULTS, RESULTS_CSV, ERRORS_LOG, CONFIG):
                (self.path / name).unlink(missing_ok=True)
            if config.source_text is not None:
                _write_text_atomic(self.path / CONFIG, config.source_text)
            manifest = {"format": 1, "config_hash": config.hash, "name": config.name,
                        "description": config.description, "tasks": n_tasks, "rows": n_rows,
                        "created_with": version, "config": config.normalised()}
            _write_text_atomic(self.path / MANIFEST, json.dumps(manifest, indent=1) + "\n")
            _fsync_dir(self.path)

    # tables ----------------------------------------------------------------------------
    def write_results(self, df: pd.DataFrame, csv: bool) -> list[Path]:
        out = [self.path / RESULTS]
        _write_atomic(out[0], lambda tmp: df.to_parquet(tmp, index=False, engine="pyarrow"))
        # An existing CSV is rewritten too, so that it never goes stale next to the Parquet.
        if csv or (self.path / RESULTS_CSV).exists():
            out.append(self.path / RESULTS_CSV)
            _write_atomic(out[1], lambda tmp: df.to_csv(tmp, index=False))
        _fsync_dir(self.path)
        return out

    def clear_errors(self) -> None:
        (self.path / ERRORS_LOG).unlink(missing_ok=True)

    def log_error(self, key: str, text: str) -> None:
        with open(self.path / ERRORS_LOG, "a", encoding="utf-8") as f:
            f.write(f"--- task {key}\n{text.rstrip()}\n")


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    raw = pd.read_csv(path)
    if len(raw) == 0:
        return raw
    df = to_frame(raw.replace({np.nan: None}).to_dict("records"))
    # to_frame fills the columns a sweep always writes; a table from elsewhere keeps its own
    # (a missing column is then named by whoever needs it, instead of read as all-null)
    return df[[c for c in df.columns if c in raw.columns]]


def _read_file(path: Path, name: str) -> pd.DataFrame:
    """One ``.parquet`` or ``.csv`` table; what is wrong with the file is said in words,
    because pandas and pyarrow parse errors name neither the file nor the format."""
    import pandas as pd

    if path.suffix not in (".parquet", ".csv"):
        raise ValueError(f"{name}: expected a sweep directory, .parquet or .csv file, "
                         f"got {str(path)!r}")
    kind = path.suffix[1:].upper()
    try:
        return pd.read_parquet(path) if kind == "PARQUET" else _read_csv(path)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{name}: {str(path)!r} is an empty file (not even a header line); "
                         "expected a result table written by rfdsm sweep") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        # ArrowInvalid is a ValueError; its first line is the useful one
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{name}: {str(path)!r} is not a readable {kind} table: {first}") from None


def load_results(path, *, name: str = "load_results") -> pd.DataFrame:
    """The tidy results table of a sweep: ``rfdsm.load_results(DIR)``.

    ``path`` is a sweep directory (its ``results.parquet``; for a sweep still running or
    interrupted, the rows finished so far, with a warning) or a ``.parquet`` / ``.csv`` file
    written by a sweep.  One row per setting x evaluator x d x seed; columns :data:`COLUMNS`
    (a file keeps the columns it has).  A path that is missing, empty or not a table is a
    ``ValueError`` that starts with ``name`` (the CLI passes the argument it came from).
    """
    path = Path(path)
    if path.is_file():
        return _read_file(path, name)
    if not path.is_dir():
        raise ValueError(f"{name}: {str(path)!r} does not exist")
    store = SweepDir(path)
    if (path / RESULTS).exists():
        return _read_file(path / RESULTS, name)
    manifest = store.manifest()
    if manifest is None:
        raise ValueError(f"{name}: {str(path)!r} is not a sweep directory (no {MANIFEST})")
    done = store.journal.read()
    warnings.warn(f"the sweep in {path} is incomplete ({len(done)} of {manifest.get('tasks')} "
                  "tasks finished); returning the rows finished so far", stacklevel=2)
    return to_frame(row for rows in done.values() for row in rows)


def seed_summary(df: pd.DataFrame, keys, values) -> pd.DataFrame:
    """Mean and standard error over seeds: one row per distinct value of ``keys``.

    For each column ``v`` of ``values``, over the ``k`` rows of a group: ``v`` the mean and
    ``v_se = std(v, ddof=1) / sqrt(k)`` its standard error (NaN for ``k = 1``, where none
    exists); ``n_seeds = k``.  Null keys form groups of their own (``d`` is null on theory
    rows).  The result is indexed by ``keys``, so that callers can add per-group columns.
    """
    grouped = df.groupby(list(keys), dropna=False, sort=True)
    out = grouped[list(values)].mean()
    k = grouped.size()
    for v in values:
        out[f"{v}_se"] = (grouped[v].std(ddof=1) / np.sqrt(k)).where(k > 1)
    out["n_seeds"] = k
    return out
