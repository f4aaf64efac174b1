"""Trial records: an append-only JSON-lines store, resume by batch, and one loader into pandas.

One line per trial, written as soon as the trial ends::

    {"schema": 1, "kind": "mpslab.trial", "batch": "3f0c...", "trial": 7,
     "result": {"outcome": "crash", "signal": "SIGSEGV", "seconds": null, ...},
     "config": {"threads": 8, "iterations": 50, ...},
     "environment": {"torch": "2.13.0", "device": "mps", "host": "...", "mpslab_commit": "...",
                     "interpreter": "3.12.3 standard build", "gil_enabled_start": null, ...}}

Each record is one complete line appended by ``jsonlines.append_line`` (one
``os.write`` on an ``O_APPEND`` descriptor, then ``fsync``): a run killed at any
moment (``kill -9`` included) leaves a file whose complete lines are all valid
records. A torn last line is skipped on load with a ``TornRecordWarning``; the
next append starts on a fresh line, so a torn line never swallows a later record.

A *batch* is one config run under one interpreter and environment with one
timeout (``run_trials`` computes its key): re-running the same batch against the
same store skips the trials already recorded.

The file holds trial records only. Which writer runs which trial of a batch
(claims, when several writers share one store) lives beside it in a SQLite
sidecar (``mpslab.trials.claims``). Stores written before that hold claim lines
(``"kind": "mpslab.claim"``) among their records: readers skip them silently, and
``store.drop_claim_lines`` rewrites such a file without them.

Schema versions: records of an older schema are upgraded on read (``migrate``,
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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from mpslab.run.config import ConfigError
from mpslab.run.interpreter import fill_interpreter
from mpslab.trials.jsonlines import LineKind, TornRecordWarning, jsonable, read_lines

__all__ = [
    "SCHEMA_VERSION",
    "RECORD_KIND",
    "TornRecordWarning",
    "StoreSchemaError",
    "MIGRATIONS",
    "TRIAL_LINES",
    "migrate",
    "is_record",
    "is_claim_line",
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
CLAIM_KIND = "mpslab.claim"  # the kind of the claim lines that stores once held beside their records

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


class StoreSchemaError(ConfigError):
    """A store holds records of another schema version than this mpslab writes."""


# --------------------------------------------------------------------------- schema migration

# MIGRATIONS[v] takes a record of schema v and returns it as schema v + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(record: dict[str, Any]) -> dict[str, Any]:
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
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


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
    return jsonable(
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


# --------------------------------------------------------------------------- reading a store


def is_claim_line(obj: Any) -> bool:
    """Whether ``obj`` is a claim line: stores written before claims moved to their sidecar hold them
    among the records. They are neither records nor damage: readers skip them silently."""
    return isinstance(obj, dict) and obj.get("kind") == CLAIM_KIND


def _adopt(obj: Any) -> Any:
    return None if is_claim_line(obj) else obj


_RECORD_FIELDS = {"batch": str, "trial": int, "result": dict, "config": dict, "environment": dict}
TRIAL_LINES = LineKind(
    RECORD_KIND, "mpslab trial record", "trial store", SCHEMA_VERSION, _RECORD_FIELDS, _adopt, migrate
)


def is_record(obj: Any) -> bool:
    """Whether ``obj`` has the shape of a trial record (of any schema)."""
    return TRIAL_LINES.valid(obj)


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete, valid record of one file, in file order.

    A line that is not a complete JSON record (a write torn by ``kill -9``) is
    skipped with a ``TornRecordWarning``; so is a record of a newer schema.
    Claim lines of older stores are skipped silently.
    """
    return read_lines(path, TRIAL_LINES)


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
