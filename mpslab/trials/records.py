"""Trial records: an append-only JSON-lines store, resume by batch, and one loader into pandas.

One line per trial, written as soon as the trial ends::

    {"schema": 1, "kind": "mpslab.trial", "batch": "3f0c...", "trial": 7,
     "result": {"outcome": "crash", "signal": "SIGSEGV", "seconds": null, ...},
     "config": {"threads": 8, "iterations": 50, ...},
     "environment": {"torch": "2.13.0", "device": "mps", "host": "...", "mpslab_commit": "...",
                     "interpreter": "3.12.3 standard build", "gil_enabled_start": null, ...}}

Each record is one ``os.write`` of a complete line on an ``O_APPEND`` file
descriptor, followed by ``fsync``: a run killed at any moment (``kill -9``
included) leaves a file whose complete lines are all valid records. A torn last
line is skipped on load with a ``TornRecordWarning``; the next append starts on a
fresh line, so a torn line never swallows a later record.

A *batch* is one config run under one interpreter and environment with one
timeout (``run_trials`` computes its key): re-running the same batch against the
same store skips the trials already recorded.

Many writers, one store. Before a writer runs trial *k* of a batch it *claims*
it: under an exclusive ``lockf`` lock on the sidecar file ``<store>.lock`` it
reads what the store holds for the batch (records and claims, incrementally from
where it last read), picks trial numbers that have neither a record nor a live
claim, and appends one claim line per number (``"kind": "mpslab.claim"``, owner
= host, pid, run id). A claim is live while its owner lives: each owner holds a
``lockf`` lock on one byte of the lock file (offset ``OWNER_BASE + pid``) for as
long as its process runs, and the kernel drops it when the process dies, even
on ``kill -9``; so a test lock on that byte tells a dead owner from a live one,
and the trials of a dead owner are claimed again. Two processes started together
on one store therefore split the trials between them, and each waits for the
other's claims before it returns the whole batch. Records are never rewritten.
This needs the writers on one machine (one kernel sees the locks); a fleet of
machines writes through its one submitting process (``mpslab.trials.executors``).

Schema versions: records of an older schema are upgraded on read (``_migrate``,
one step per version in ``MIGRATIONS``); a newer one is skipped with a warning.
A store whose records are of another schema than this mpslab writes is refused
for appending (``StoreSchemaError``, one line naming the file and both versions),
so one file never mixes schemas. A field added within a version is filled on read
(``_fill``): a record without ``environment.interpreter`` (how Python ran: version,
free-threaded build, GIL on or off; ``mpslab.run.interpreter``) reads as a standard build.

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
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mpslab.run.config import ConfigError
from mpslab.run.interpreter import fill_interpreter

__all__ = [
    "SCHEMA_VERSION",
    "RECORD_KIND",
    "TornRecordWarning",
    "StoreSchemaError",
    "MIGRATIONS",
    "make_record",
    "batch_environment",
    "record_to_row",
    "records_frame",
    "read_records",
    "load_records",
    "environment_id",
    "batch_key",
]

SCHEMA_VERSION = 1
RECORD_KIND = "mpslab.trial"
CLAIM_KIND = "mpslab.claim"
OWNER_BASE = 1 << 20  # lock-file byte of the owner with pid p: OWNER_BASE + p (byte 0 is the claim mutex)

# Columns first in every frame, in this order; the rest follow as they come.
LEADING_COLUMNS = [
    "trial",
    "outcome",
    "exit_code",
    "signal",
    "signal_number",
    "seconds",
    "wall_s",
    "ops_per_s",
    "error_count",
    "mismatch_count",
    "latency_p50_ms",
    "latency_p99_ms",
    "first_error",
]
TRAILING_COLUMNS = ["stderr_tail", "hang_stacks", "launch", "batch", "env_id"]
_NULLABLE_INT = ["exit_code", "signal_number", "error_count", "mismatch_count", "completed", "verified"]
_FLOAT = ["seconds", "wall_s", "ops_per_s"]


class TornRecordWarning(UserWarning):
    """A line of a records file could not be read (a torn write) and was skipped."""


class StoreSchemaError(ConfigError):
    """A store holds records of another schema version than this mpslab writes."""


# --------------------------------------------------------------------------- schema migration

# MIGRATIONS[v] takes a record of schema v and returns it as schema v + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _migrate(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` upgraded, one schema step at a time, to ``SCHEMA_VERSION``."""
    while record["schema"] < SCHEMA_VERSION:
        step = MIGRATIONS.get(record["schema"])
        if step is None:
            raise ValueError(f"no migration from schema {record['schema']}")
        version = record["schema"]
        record = dict(step(dict(record)))
        record["schema"] = version + 1
    return _fill(record)


def _fill(record: dict[str, Any]) -> dict[str, Any]:
    """Fields added within a schema version, filled on read: a record without ``interpreter`` (how
    Python ran) was written before it was recorded, by a standard build (``interpreter.fill_interpreter``)."""
    if "interpreter" in record["environment"]:
        return record
    return {**record, "environment": fill_interpreter(record["environment"])}


# --------------------------------------------------------------------------- identity


def _canonical(obj: Any) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# Fields of the environment block that a trial measured rather than ran in: left out of its identity.
_NOT_IDENTITY = ("time", "gil_enabled_end")


def environment_id(env: dict[str, Any]) -> str:
    """A short hash of an environment block, its ``time`` left out: equal for equal environments.

    ``gil_enabled_end`` is left out too: whether the GIL was on when a trial ended is a finding of
    that trial (a trial that died has none), and the trials of one batch share one environment.
    """
    ident = {k: v for k, v in fill_interpreter(env).items() if k not in _NOT_IDENTITY}
    return hashlib.sha256(_canonical(ident).encode()).hexdigest()[:12]


# The interpreter fields (run/interpreter.py) tell a free-threaded build's GIL modes apart; on a standard build
# they say nothing the Python version does not, and a batch key without them is the one stores written before
# the fields existed carry: such a batch still resumes.
_INTERPRETER_FIELDS = ("py_gil_disabled", "gil_enabled_start", "gil_enabled_end", "interpreter")


def batch_environment(env: dict[str, Any]) -> dict[str, Any]:
    """The part of an environment block that names a batch: not the time, not the checkout's commit (an edit to
    the checkout during a long batch must not start a new one; each record keeps its commit), and the interpreter
    fields only on a free-threaded build."""
    drop = {"time", "mpslab_commit"}
    if not env.get("py_gil_disabled"):
        drop.update(_INTERPRETER_FIELDS)
    return {k: v for k, v in env.items() if k not in drop}


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
    result = {
        k: v for k, v in row.items() if k not in cfg_keys and not k.startswith("env_") and k not in ("trial", "batch")
    }
    env = {k[4:]: v for k, v in row.items() if k.startswith("env_") and k != "env_id"}
    return _jsonable(
        {
            "schema": SCHEMA_VERSION,
            "kind": RECORD_KIND,
            "batch": batch,
            "trial": int(row["trial"]),
            "result": result,
            "config": config,
            "environment": env,
        }
    )


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
    env = fill_interpreter(record["environment"])
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
    return (
        isinstance(obj, dict)
        and obj.get("kind") == RECORD_KIND
        and isinstance(obj.get("schema"), int)
        and isinstance(obj.get("batch"), str)
        and isinstance(obj.get("trial"), int)
        and isinstance(obj.get("result"), dict)
        and isinstance(obj.get("config"), dict)
        and isinstance(obj.get("environment"), dict)
    )


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, valid record of one file, in file order.

    A line that is not a complete JSON record (a write torn by ``kill -9``) is
    skipped with a ``TornRecordWarning``; so is a record of a newer schema.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    return [rec for kind, rec in _parse_lines(path, data, 1, final=True) if kind == RECORD_KIND]


def _parse_lines(
    path: str, data: bytes, first_lineno: int, *, final: bool, migrate: bool = True, schemas: set[int] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, object) for each valid record or claim in ``data`` (whole lines); the rest skipped.

    Skipped lines are reported once ``data`` is read, in one ``TornRecordWarning`` per kind
    of problem with its count and line numbers (a file of thousands of bad lines gives a few
    lines of warning, not thousands). ``final``: ``data`` runs to the end of the file, so a
    bad last line is named as such. Records of an older schema are migrated when ``migrate``;
    ``schemas`` collects every record's schema version, a skipped newer one included.
    """
    lines = data.split(b"\n")
    skipped: dict[str, list[int]] = {}
    newer: set[int] = set()
    last = first_lineno + len(lines) - 1 if final else None
    for index, line in enumerate(lines):
        lineno = first_lineno + index
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            skipped.setdefault("corrupt", []).append(lineno)
            continue
        if _valid_claim(obj):
            yield CLAIM_KIND, obj
            continue
        if not _valid(obj):
            skipped.setdefault("foreign", []).append(lineno)
            continue
        if schemas is not None:
            schemas.add(obj["schema"])
        if obj["schema"] > SCHEMA_VERSION:
            skipped.setdefault("newer", []).append(lineno)
            newer.add(obj["schema"])
            continue
        yield RECORD_KIND, (_migrate(obj) if migrate else obj)
    for kind, numbers in skipped.items():
        warnings.warn(_skipped_message(path, kind, numbers, last, newer), TornRecordWarning, stacklevel=3)


# Each kind of skipped line: (singular, plural, why).
_SKIPPED = {
    "corrupt": ("corrupt line", "corrupt lines", "not JSON: a torn write?"),
    "foreign": ("line of other data", "lines of other data", "JSON, but not an mpslab trial record"),
    "newer": ("record of a newer schema", "records of a newer schema", "schema {newer}; mpslab reads schema {ours}"),
}
_LINES_SHOWN = 10


def _skipped_message(path: str, kind: str, numbers: list[int], last: int | None, newer: set[int]) -> str:
    """One line: how many lines of ``kind`` were skipped, which ones (the first few), and why."""
    one, many, why = _SKIPPED[kind]
    why = why.format(newer=", ".join(map(str, sorted(newer))), ours=SCHEMA_VERSION)
    shown = [str(n) for n in numbers[:_LINES_SHOWN]]
    ends_last = numbers[-1] == last and len(numbers) <= _LINES_SHOWN
    if ends_last:
        shown[-1] = f"the last line, {last}"
    if len(numbers) == 1:
        where = shown[0] if ends_last else f"line {shown[0]}"
        return f"{path}: 1 {one} skipped: {where} ({why})"
    where = ", ".join(shown[:-1]) + (" and " if ends_last else ", ") + shown[-1]
    if len(numbers) > _LINES_SHOWN:
        where += f" and {len(numbers) - _LINES_SHOWN} more"
    return f"{path}: {len(numbers)} {many} skipped: lines {where} ({why})"


def _valid_claim(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == CLAIM_KIND
        and isinstance(obj.get("batch"), str)
        and isinstance(obj.get("trial"), int)
        and isinstance(obj.get("owner"), dict)
    )


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

# Lock files are opened once per process and never closed: closing any descriptor of a file
# drops every lockf lock this process holds on it (POSIX), the owner byte included.
