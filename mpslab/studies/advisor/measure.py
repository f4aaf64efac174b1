"""Measurements: in-process throughput rows and isolated trials, each stored as it ends.

Throughput: one ``run_stress`` per (candidate, repeat), the oracle off (failures are
counted in isolated trials, where a crash cannot end the run), errors still counted.
``requests_per_s`` is requests served per second: runner steps/s for threaded
candidates, steps/s x B for batched ones (one step = one call serving B requests).
Latencies are per step, so for a batched candidate p50/p99 are per call: every
request of a call waits for the whole call.

Each row is appended to a JSON-lines file (``kind`` ``mpslab.throughput``, through
the same append, read and torn-line path as trial records: ``trials.jsonlines``),
keyed by the configuration (its ``StressConfig`` fields and the torch build), so the
same command again reads the rows back instead of measuring again. Trials go through ``run_trials`` with its
own store (``store=``), which resumes a batch already there.
Not here: what to measure (``budget``) or what it means (``decide``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mpslab.run.config import StressConfig
from mpslab.run.environment import environment
from mpslab.run.runner import run_stress
from mpslab.studies.advisor.batching import batched_name, plugin_file
from mpslab.studies.advisor.grid import Candidate
from mpslab.trials.isolate import run_trials
from mpslab.trials.jsonlines import JsonLinesFile, LineKind, read_lines

__all__ = [
    "config_for",
    "config_key",
    "ThroughputStore",
    "THROUGHPUT_LINES",
    "read_throughput",
    "measure_throughput",
    "run_candidate_trials",
]

# environment fields that identify the build measured (time and load vary from run to run)
_BUILD_FIELDS = ("torch", "torch_build", "device_name", "python", "platform")


def config_for(c: Candidate, base: StressConfig, requests: int, folder: str, *, verify: bool) -> StressConfig:
    """The ``StressConfig`` that serves ``requests`` requests as candidate ``c``."""
    if c.kind == "batched":
        plugin = plugin_file(os.path.join(folder, "plugins"), base.workload, c.batch)
        return base.replace(
            workload=batched_name(base.workload, c.batch),
            threads=1,
            iterations=c.iterations(requests),
            sync_every=0,
            streams="shared",
            throttle=None,
            plugins=tuple(base.plugins) + (plugin,),
            verify=verify,
        )
    return base.replace(
        threads=c.threads,
        iterations=c.iterations(requests),
        sync_every=c.sync_every,
        streams=c.streams,
        throttle=c.throttle,
        verify=verify,
    )


def config_key(config: StressConfig) -> str:
    """A short, stable key of a configuration and the build it runs on (not of time or load)."""
    cfg = config.to_dict()
    cfg["verify"] = None  # the same configuration whether or not the oracle ran
    cfg["plugins"] = [os.path.basename(p) for p in cfg["plugins"]]
    env = environment(config.device)
    blob = json.dumps({"config": cfg, "build": {k: env.get(k) for k in _BUILD_FIELDS}}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _adopt(obj: Any) -> Any:
    """Rows written without a kind and schema (every committed ``throughput.jsonl``) read as schema 1."""
    if isinstance(obj, dict) and "kind" not in obj and "schema" not in obj and "key" in obj and "repeat" in obj:
        return {"schema": 1, "kind": THROUGHPUT_KIND, **obj}
    return obj


THROUGHPUT_KIND = "mpslab.throughput"
THROUGHPUT_LINES = LineKind(
    THROUGHPUT_KIND, "mpslab throughput row", "throughput store", 1, {"key": str, "repeat": int}, _adopt
)


class ThroughputStore:
    """Throughput rows, one per (configuration key, repeat): in memory, and in a JSON-lines file when ``path``
    is given (``jsonlines.JsonLinesFile``: the trial store's checks, append and torn-line handling)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.rows: dict[tuple[str, int], dict[str, Any]] = {}
        self._file: JsonLinesFile | None = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = JsonLinesFile(path, THROUGHPUT_LINES)
            for row in self._file.read_new():
                _keep(self.rows, row)

    def get(self, key: str, repeat: int) -> dict[str, Any] | None:
        return self.rows.get((key, repeat))

    def append(self, row: dict[str, Any]) -> None:
        _keep(self.rows, row)
        if self._file is not None:
            self._file.append_row({"schema": THROUGHPUT_LINES.schema, "kind": THROUGHPUT_KIND, **row})


def read_throughput(path: str) -> dict[tuple[str, int], dict[str, Any]]:
    """(key, repeat) -> row of the file at ``path`` (none if it is missing; the last row of a pair wins, as
    in ``ThroughputStore``), read without writing anything."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for row in read_lines(path, THROUGHPUT_LINES) if os.path.exists(path) else []:
        _keep(rows, row)
    return rows


def _keep(rows: dict[tuple[str, int], dict[str, Any]], row: dict[str, Any]) -> None:
    """Hold ``row`` without its kind and schema: they say what a line of the file is, not what was measured."""
    row = {k: v for k, v in row.items() if k not in ("kind", "schema")}
    rows[(row["key"], int(row["repeat"]))] = row


def measure_throughput(c: Candidate, config: StressConfig, repeat: int, store: ThroughputStore) -> tuple[dict, bool]:
    """One in-process measurement of ``c`` (read back from ``store`` when already there).

    Returns the row and whether it was measured now.
    """
    key = config_key(config)
    old = store.get(key, repeat)
    if old is not None:
        return old, False
    result = run_stress(config.replace(verify=False))
    per_step = c.per_request_steps()
    row = {
        "key": key,
        "repeat": repeat,
        "label": c.label,
        **{f"c_{k}": v for k, v in c.to_dict().items()},
        "requests": config.iterations * config.threads * per_step,
        "seconds": result.seconds,
        "requests_per_s": result.completed * per_step / result.seconds if result.seconds > 0 else math.nan,
        "latency_p50_ms": result.latency_ms["p50"],
        "latency_p99_ms": result.latency_ms["p99"],
        "outcome": result.outcome,
        "error_count": result.error_count,
        "first_error": f"{result.errors[0].type}: {result.errors[0].message}" if result.errors else None,
        "torch": result.environment.get("torch"),
        "device_name": result.environment.get("device_name"),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    store.append(row)
    return row, True


def trial_timeout(estimate_s: float) -> float:
    """A trial that has not ended after this long is a hang: generous against a busy machine."""
    return max(60.0, 20.0 * estimate_s)


def run_candidate_trials(
    config: StressConfig, trials: int, *, store: str | None, timeout_s: float, label: str = "advisor"
) -> pd.DataFrame:
    """``trials`` isolated trials of ``config`` (resumed from ``store``); one row per trial."""
    return run_trials(config, trials=trials, timeout_s=timeout_s, store=store, batch=label, progress=False)


def frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows))
