"""Trial records: an append-only JSON-lines store, resume by batch, and one loader into pandas.

One line per trial, written as soon as the trial ends::

    {"schema": 1, "kind": "mpslab.trial", "batch": "3f0c...", "trial": 7,
     "result": {"outcome": "crash", "signal": "SIGSEGV", "seconds": null, ...},
     "config": {"threads": 8, "iterations": 50, ...},
     "environment": {"torch": "2.13.0", "device": "mps", "host": "...", "mpslab_commit": "...", ...}}

Each record is one ``os.write`` of a complete line on an ``O_APPEND`` file
descriptor, followed by ``fsync``: a run killed at any moment (``kill -9``
included) leaves a file whose complete lines are all valid records. A torn last
line is skipped on load with a ``TornRecordWarning``; the next append starts on a
fresh line, so a torn line never swallows a later record.

A *batch* is one config run under one interpreter and environment with one
timeout (``run_trials`` computes its key): re-running the same batch against the
same store skips the trials already recorded.

``load_records`` reads any number of such files (from several machines) into one
DataFrame. Rows keep their own environment in ``env_*`` columns and an
``env_id`` (a hash of the environment block without its time stamp), so records
from different machines or builds are never silently pooled: group by ``env_id``.
Only JSON is read and written here; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import warnings
from typing import Any, Iterable, Iterator

__all__ = [
    "SCHEMA_VERSION",
    "RECORD_KIND",
    "TornRecordWarning",
    "TrialStore",
    "make_record",
    "record_to_row",
    "records_frame",
    "read_records",
    "load_records",
    "environment_id",
    "batch_key",
]

SCHEMA_VERSION = 1
RECORD_KIND = "mpslab.trial"

# Columns first in every frame, in this order; the rest follow as they come.
LEADING_COLUMNS = [
    "trial", "outcome", "exit_code", "signal", "signal_number", "seconds", "wall_s", "ops_per_s",
    "error_count", "mismatch_count", "latency_p50_ms", "latency_p99_ms", "first_error",
]
TRAILING_COLUMNS = ["stderr_tail", "hang_stacks", "launch", "batch", "env_id"]
_NULLABLE_INT = ["exit_code", "signal_number", "error_count", "mismatch_count", "completed", "verified"]
_FLOAT = ["seconds", "wall_s", "ops_per_s"]


class TornRecordWarning(UserWarning):
    """A line of a records file could not be read (a torn write) and was skipped."""


# --------------------------------------------------------------------------- identity


def _canonical(obj: Any) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def environment_id(env: dict[str, Any]) -> str:
    """A short hash of an environment block, its ``time`` left out: equal for equal environments."""
    ident = {k: v for k, v in env.items() if k != "time"}
    return hashlib.sha256(_canonical(ident).encode()).hexdigest()[:12]


def batch_key(**parts: Any) -> str:
    """A short hash of whatever identifies a batch (config, interpreter, environment, timeout, label)."""
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- records


def _jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    return str(value)


def make_record(row: dict[str, Any], *, batch: str, config: dict[str, Any]) -> dict[str, Any]:
    """A storable record from one flat trial row.

    ``row`` has ``trial``, result columns, the config's columns and ``env_*``
    columns (as ``StressResult.to_row()`` plus the isolation columns);
    ``config`` is ``StressConfig.to_dict()`` of the trial's config. NaN becomes
    ``null``: the record is plain JSON.
    """
    cfg_keys = set(config)
    result = {k: v for k, v in row.items()
              if k not in cfg_keys and not k.startswith("env_") and k not in ("trial", "batch")}
    env = {k[4:]: v for k, v in row.items() if k.startswith("env_") and k != "env_id"}
    return _jsonable({
        "schema": SCHEMA_VERSION,
        "kind": RECORD_KIND,
        "batch": batch,
        "trial": int(row["trial"]),
        "result": result,
        "config": config,
        "environment": env,
    })


def record_to_row(record: dict[str, Any]) -> dict[str, Any]:
    """The flat row of a record: result, config (plugins, params joined by commas), ``env_*``, ``env_id``."""
    row: dict[str, Any] = {"trial": record["trial"]}
    row.update(record["result"])
    cfg = dict(record["config"])
    if isinstance(cfg.get("plugins"), list):
        cfg["plugins"] = ",".join(cfg["plugins"])
    if isinstance(cfg.get("params"), dict):  # workload parameters: one flat cell, as to_row() writes it
        cfg["params"] = ",".join(f"{k}={v}" for k, v in sorted(cfg["params"].items()))
    row.update(cfg)
    row["batch"] = record["batch"]
    env = record["environment"]
    row.update({f"env_{k}": v for k, v in env.items()})
    row["env_id"] = environment_id(env)
    return row


def records_frame(records: Iterable[dict[str, Any]], sources: Iterable[str] | None = None):
    """A DataFrame of records, one row each, columns in a stable order and nullable ints."""
    import pandas as pd

    rows = [record_to_row(r) for r in records]
    if sources is not None:
        for row, src in zip(rows, sources):
            row["source"] = src
    if not rows:
        return pd.DataFrame(columns=LEADING_COLUMNS + TRAILING_COLUMNS)
    df = pd.DataFrame(rows)
    present = [c for c in LEADING_COLUMNS if c in df.columns]
    trailing = [c for c in TRAILING_COLUMNS if c in df.columns]
    env = sorted(c for c in df.columns if c.startswith("env_") and c != "env_id")
    middle = [c for c in df.columns if c not in present and c not in trailing and c not in env and c != "source"]
    order = present + middle + trailing + env + (["source"] if "source" in df.columns else [])
    df = df[order]
    for col in _NULLABLE_INT:
        if col in df.columns:
            df[col] = pd.array([None if _isnull(v) else int(v) for v in df[col]], dtype="Int64")
    for col in _FLOAT + [c for c in df.columns if c.startswith("latency_")]:
        if col in df.columns:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def _isnull(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _valid(obj: Any) -> bool:
    return (isinstance(obj, dict) and obj.get("kind") == RECORD_KIND and isinstance(obj.get("schema"), int)
            and isinstance(obj.get("batch"), str) and isinstance(obj.get("trial"), int)
            and isinstance(obj.get("result"), dict) and isinstance(obj.get("config"), dict)
            and isinstance(obj.get("environment"), dict))


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, valid record of one file, in file order.

    A line that is not a complete JSON record (a write torn by ``kill -9``) is
    skipped with a ``TornRecordWarning``; so is a record of a newer schema.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    out: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            where = "last line" if lineno == len(lines) else f"line {lineno}"
            warnings.warn(f"{path}: {where} is not a complete record (a torn write?); skipped",
                          TornRecordWarning, stacklevel=2)
            continue
        if not _valid(obj):
            warnings.warn(f"{path}: line {lineno} is not an mpslab trial record; skipped",
                          TornRecordWarning, stacklevel=2)
            continue
        if obj["schema"] > SCHEMA_VERSION:
            warnings.warn(f"{path}: line {lineno} has schema {obj['schema']}, newer than this mpslab "
                          f"reads ({SCHEMA_VERSION}); skipped", TornRecordWarning, stacklevel=2)
            continue
        out.append(obj)
    return out


def _expand(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if name.endswith(".jsonl"):
                    yield os.path.join(p, name)
        elif os.path.exists(p):
            yield p
        else:
            raise FileNotFoundError(f"load_records: {p!r}: no such file or directory")


def load_records(*paths: str | os.PathLike[str]):
    """One DataFrame from any number of records files (a directory means its ``*.jsonl`` files).

    One row per record, with a ``source`` column naming its file. Rows are never
    merged or de-duplicated: records from different environments stay apart in
    their ``env_*`` columns and ``env_id``.
    """
    records: list[dict[str, Any]] = []
    sources: list[str] = []
    for path in _expand(paths):
        recs = read_records(path)
        records.extend(recs)
        sources.extend([path] * len(recs))
    return records_frame(records, sources)


# --------------------------------------------------------------------------- the store


class TrialStore:
    """An append-only JSON-lines file of trial records.

    The path is checked at construction (its directory must exist, it must not
    be a directory, it must be writable); a missing file is created empty.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from mpslab.run.config import ConfigError

        self.path = os.path.abspath(os.fspath(path))
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise ConfigError(f"store={os.fspath(path)!r}: directory {parent!r} does not exist")
        if os.path.isdir(self.path):
            raise ConfigError(f"store={os.fspath(path)!r}: is a directory, not a file")
        try:
            existed = os.path.exists(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(fd)
        except OSError as exc:
            raise ConfigError(f"store={os.fspath(path)!r}: cannot be written: {exc.strerror}") from None
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise ConfigError(f"store={os.fspath(path)!r}: not a regular file")
        if not existed:
            _fsync_dir(parent)

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.path)

    def finished(self, batch: str) -> dict[int, dict[str, Any]]:
        """Trial number -> record, for the trials of ``batch`` already stored (first record wins)."""
        done: dict[int, dict[str, Any]] = {}
        for rec in self.records():
            if rec["batch"] == batch and rec["trial"] not in done:
                done[rec["trial"]] = rec
        return done

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line: a single ``write`` on an ``O_APPEND`` fd, then ``fsync``."""
        if not _valid(record):
            raise ValueError("TrialStore.append: not an mpslab trial record")
        line = json.dumps(_jsonable(record), allow_nan=False, ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8") + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn line before us: start on a fresh line
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"TrialStore({self.path!r})"


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
