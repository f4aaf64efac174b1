"""Sweeps: one config run over a grid of values, and the summaries read from them.

``sweep(config, threads=[1, 2, 4, 8], streams=["shared", "per-thread"], repeats=3)``
runs every grid point ``repeats`` times and returns a tidy DataFrame, one row
per run, with the columns of ``StressResult.to_row()`` plus ``mode``
(``in-process`` | ``isolated`` | ``batched``) and ``repeat``. Every grid point
is built and validated before anything runs: a bad field or value is refused
in one line.

Alongside the threaded runs, the batched baseline (``batched_baseline``) does
the same total work in one thread, ``iterations`` steps each over a batch of
``threads`` inputs; it is measured once per series (every grid point but
threads) at the largest thread count, and its rows carry ``mode="batched"``.
Batching, not threading, is what users are told to compare against.

``summarize(df)`` (``mpslab.studies.summary``, re-exported here) reduces the runs to one
row per grid point: median ops/s with
a bootstrap confidence interval, speedup and parallel efficiency against one
thread, latency medians, outcomes counted.
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from mpslab.run.backends import get_backend
from mpslab.run.config import ConfigError, StressConfig
from mpslab.run.environment import environment
from mpslab.run.progress import progress_bar
from mpslab.run.runner import run_stress, thread_seed
from mpslab.run.timing import SyncTimer
from mpslab.run.workloads import WorkerContext, Workload, get_workload
from mpslab.studies.summary import (  # noqa: F401  (re-exported: summaries belong to sweeps)
    CONFIG_FIELDS,
    FAILED_OUTCOMES,
    SERIES_ENV_COLUMNS,
    grid_columns,
    median_ci,
    summarize,
)
from mpslab.trials import records as _records
from mpslab.trials.isolate import run_trials
from mpslab.trials.outcomes import Outcome
from mpslab.trials.store import TrialStore

__all__ = [
    "sweep",
    "summarize",
    "batched_baseline",
    "median_ci",
    "SERIES_ENV_COLUMNS",
    "grid_columns",
]

_NOT_SWEEPABLE = ("plugins",)  # a tuple-valued field: set it on the base config instead

BatchedFn = Callable[[WorkerContext, int, int], torch.Tensor]


# --------------------------------------------------------------------------- the batched baseline


def _batched_form(workload: Workload) -> BatchedFn | None:
    return workload.batched if callable(workload.batched) else None


def _latency_ms(samples_ns: np.ndarray) -> dict[str, float]:
    if samples_ns.size == 0:
        return {"p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan}
    p50, p90, p99 = np.percentile(samples_ns, [50, 90, 99]) / 1e6
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(samples_ns.max()) / 1e6}


def batched_baseline(config: StressConfig) -> dict[str, Any]:
    """The same total work as ``config``, done by one thread as batched ops: one row.

    One thread runs ``config.iterations`` steps, each one op over a batch of
    ``config.threads`` inputs (the seed workload: ``randn(threads, size, size)``
    -> ``bmm`` -> ``sum``), after ``config.warmup`` untimed steps, synchronising
    every ``sync_every`` steps and timed between device synchronisations
    (``mpslab.run.timing.SyncTimer``). ``ops_per_s`` counts ``threads x iterations``
    ops, as the stress runner does, so the two compare directly.

    A workload without a batched form gets ``outcome="n/a"``, NaN timings and a
    ``note`` saying so: no number is made up for it. A batched step that raises
    gives ``outcome="error"`` and ``first_error``. The row has the columns of
    ``StressResult.to_row()`` plus ``mode="batched"`` and ``note``.
    """
    if not isinstance(config, StressConfig):
        raise TypeError(f"batched_baseline needs a StressConfig, got {type(config).__name__}")
    workload = get_workload(config.workload)
    backend = get_backend(config.device)
    device = backend.device
    batch = config.threads
    seconds, completed, lat = math.nan, 0, np.zeros(0, dtype=np.int64)
    outcome, first_error, note = Outcome.OK.value, None, f"one thread, {config.iterations} steps of a batch of {batch}"
    fn = _batched_form(workload)
    if fn is None:
        outcome = "n/a"
        note = f"workload {config.workload!r} has no batched form: no baseline measured"
    else:
        try:
            ctx = WorkerContext(0, device, config.torch_dtype, config.size, None)
            if workload.setup_fn is not None:
                ctx.state = workload.setup_fn(WorkerContext(-1, device, config.torch_dtype, config.size, None))
            if config.warmup:
                ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, 0) ^ 0x5EED)
                for i in range(config.warmup):
                    fn(ctx, i, batch)
            ctx.generator = torch.Generator(device=device).manual_seed(thread_seed(config.seed, 0))
            lat = np.zeros(config.iterations, dtype=np.int64)
            sync, sync_every, clock = backend.synchronize, config.sync_every, time.perf_counter_ns
            with SyncTimer(backend) as timer:
                for i in range(config.iterations):
                    t0 = clock()
                    fn(ctx, i, batch)
                    if sync_every and (i + 1) % sync_every == 0:
                        sync()
                    lat[i] = clock() - t0
                    completed = i + 1
            seconds = timer.seconds
        except Exception as exc:
            outcome = Outcome.ERROR.value
            first_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            lat = lat[:completed]
    # Ops are counted as the runner counts them: each completed step did `batch` steps' work.
    done_ops = completed * batch
    row: dict[str, Any] = {
        "outcome": outcome,
        "seconds": seconds,
        "ops": config.ops,
        "completed": done_ops,
        "ops_per_s": done_ops / seconds if outcome == Outcome.OK and seconds > 0 else math.nan,
        "error_count": int(outcome == Outcome.ERROR),
        "mismatch_count": 0,
        "verified": 0,
    }
    row.update({f"latency_{k}_ms": v for k, v in _latency_ms(lat).items()})
    row["first_error"] = first_error
    cfg = config.to_dict()
    cfg["plugins"] = ",".join(cfg["plugins"])
    cfg["params"] = config.params.text()  # one flat cell, as StressResult.to_row() writes it
    row.update(cfg)
    row.update({f"env_{k}": v for k, v in environment(config.device).items()})
    row["mode"] = "batched"
    row["note"] = note
    return row


# --------------------------------------------------------------------------- the sweep


def _grid_values(name: str, values: Any) -> list[Any]:
    if name not in CONFIG_FIELDS:
        raise ConfigError(f"{name}={values!r}: not a StressConfig field; known: {', '.join(CONFIG_FIELDS)}")
    if name in _NOT_SWEEPABLE:
        raise ConfigError(f"{name}={values!r}: cannot be swept; set it on the base config")
    if isinstance(values, (list, tuple, range, np.ndarray, pd.Index, pd.Series)):
        out = [v.item() if isinstance(v, np.generic) else v for v in values]
    elif isinstance(values, (set, frozenset, dict)) or inspect.isgenerator(values):
        raise ConfigError(f"{name}={values!r}: give the grid values as a list")
    else:
        out = [values.item() if isinstance(values, np.generic) else values]  # one fixed value
    if not out:
        raise ConfigError(f"{name}=[]: a grid axis needs at least one value")
    seen: list[Any] = []
    for v in out:
        if v in seen:
            raise ConfigError(f"{name}={values!r}: {v!r} is listed twice")
        seen.append(v)
    return out


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r}: must be an integer >= {minimum}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r}: must be True or False")


def _progress_bar(total: int, enabled: bool) -> Any:
    # a notebook widget under Jupyter, text elsewhere; delay: nothing drawn for sweeps done within 2 s
    return progress_bar(total, desc="sweep", unit="run", enabled=enabled, delay=2.0)


def sweep(
    config: StressConfig,
    *,
    repeats: int = 1,
    isolate: bool = False,
    store: Any = None,
    timeout_s: float = 300.0,
    progress: bool = True,
    baseline: bool = True,
    **grid: Any,
) -> pd.DataFrame:
    """Run ``config`` over a grid and return one row per run.

    Each keyword in ``grid`` is a ``StressConfig`` field mapped to a list of
    values (``threads=[1, 2, 4]``, ``streams=["shared", "per-thread"]``,
    ``size=[64, 1024]``); a single value is a fixed override. The grid is the
    product of the lists, in the order given. Every grid point (and every
    baseline config) is built before anything runs, so an unknown field or a
    bad value is refused with one ``ConfigError`` line and no work done.

    repeats    runs per grid point (>= 1). In process, the repeats are interleaved:
               pass r runs every grid point once, so drift spreads over all points.
    isolate    run each grid point as ``repeats`` isolated trials, one child
               process each (``mpslab.trials.isolate.run_trials``): crashes and hangs
               become outcomes instead of ending the sweep.
    store      a JSON-lines records file (``mpslab.trials.store.TrialStore``): every run is
               appended as it ends, one record per run (``trial`` = repeat; ``mode``
               and ``repeat`` in its result). Isolated sweeps hand it to ``run_trials``,
               which also resumes a batch already there; an in-process sweep always
               runs everything and stores each grid point as a fresh batch. Baseline
               rows are not stored (they are not trials of the config).
    timeout_s  per isolated trial; a trial still running then is a ``hang``.
    progress   a tqdm bar (a widget in notebooks), drawn once a sweep passes 2 s.
    baseline   also measure the batched baseline, ``repeats`` times per series,
               at the series' largest thread count (rows with ``mode="batched"``).

    Columns: those of ``StressResult.to_row()``, ``mode`` and ``repeat``; isolated
    rows add ``run_trials``' columns (trial, exit_code, signal, ...); baseline
    rows add ``note``.
    """
    if not isinstance(config, StressConfig):
        raise TypeError(f"sweep needs a StressConfig, got {type(config).__name__}")
    _check_int("repeats", repeats, 1)
    _check_bool("isolate", isolate)
    _check_bool("progress", progress)
    _check_bool("baseline", baseline)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ConfigError(f"timeout_s={timeout_s!r}: must be a number of seconds > 0")
    axes = {name: _grid_values(name, values) for name, values in grid.items()}

    points = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    configs = [config.replace(**point) for point in points]  # validates every point now
    trial_store = TrialStore(store) if store is not None else None  # checks the path now

    baselines: list[StressConfig] = []
    if baseline:
        by_series: dict[tuple, StressConfig] = {}
        for cfg in configs:
            d = cfg.to_dict()
            key = tuple((k, repr(v)) for k, v in d.items() if k != "threads")
            if key not in by_series or cfg.threads > by_series[key].threads:
                by_series[key] = cfg
        baselines = list(by_series.values())

    total = repeats * (len(configs) + len(baselines))
    frames: list[pd.DataFrame] = []
    records: list[dict[str, Any]] = []
    bar = _progress_bar(total, progress)
    try:
        if isolate:
            for cfg in configs:
                bar.set_postfix_str(_point_label(cfg, axes), refresh=False)
                trials = run_trials(cfg, trials=repeats, timeout_s=timeout_s, store=store, progress=False)
                trials = trials.copy()
                trials["mode"] = "isolated"
                trials["repeat"] = trials["trial"] if "trial" in trials.columns else range(len(trials))
                frames.append(trials)
                bar.update(repeats)
            for r in range(repeats):
                for cfg in baselines:
                    records.append(_baseline_row(cfg, r))
                    bar.update(1)
        else:
            token = uuid.uuid4().hex  # this call's batches: in-process sweeps do not resume
            for r in range(repeats):
                for cfg in configs:
                    bar.set_postfix_str(_point_label(cfg, axes), refresh=False)
                    row = run_stress(cfg).to_row()
                    row["mode"] = "in-process"
                    row["repeat"] = r
                    if trial_store is not None:
                        _store_row(trial_store, row, cfg, token)
                    records.append(row)
                    bar.update(1)
                for cfg in baselines:
                    records.append(_baseline_row(cfg, r))
                    bar.update(1)
    finally:
        bar.close()
    if records:
        frames.append(pd.DataFrame.from_records(records))
    frames = [f for f in frames if len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return df


def _baseline_row(cfg: StressConfig, repeat: int) -> dict[str, Any]:
    row = batched_baseline(cfg)
    row["repeat"] = repeat
    return row


def _point_label(cfg: StressConfig, axes: dict[str, list[Any]]) -> str:
    return " ".join(f"{k}={getattr(cfg, k)}" for k in axes) or "base config"


def _store_row(store: TrialStore, row: dict[str, Any], cfg: StressConfig, token: str) -> None:
    """Append one in-process run as a trial record (schema: ``mpslab.trials.records``)."""
    config = cfg.to_dict()
    env = {k[4:]: v for k, v in row.items() if k.startswith("env_")}
    batch = _records.batch_key(
        kind="sweep", mode="in-process", config=config, env=_records.environment_id(env), call=token
    )
    store.append(_records.make_record(dict(row, trial=row["repeat"]), batch=batch, config=config))
