"""Summaries of sweep runs: one row per grid point, with a bootstrap interval of the median.

``summarize(df)`` reduces a sweep's runs (``mpslab.studies.sweep``) to one row per grid
point: median ops/s with a percentile-bootstrap confidence interval (``median_ci``,
``scipy.stats.bootstrap``), speedup and parallel efficiency against one thread, latency
medians, outcomes counted. Reads records; runs nothing. Not here: running the grid
(``sweep``) or drawing it (``mpslab.report.plots``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from mpslab.run.config import StressConfig
from mpslab.trials.outcomes import FAILURES, OUTCOMES, Outcome

__all__ = [
    "summarize",
    "median_ci",
    "grid_columns",
    "trial_notes",
    "AFFINITY_NOTE",
    "FAILED_OUTCOMES",
    "SERIES_ENV_COLUMNS",
    "CONFIG_FIELDS",
    "failure_kinds",
]


FAILED_OUTCOMES = tuple(o.value for o in FAILURES)

# A failure with one worker thread needs no second thread to race with: the work fails off the main thread.
AFFINITY_NOTE = "fails with a single worker thread: thread affinity, not a race"


# Environment columns that tell two builds (or machines) apart: each value is its own series.
# ``env_interpreter``: Python version, free-threaded build, GIL on or off (``mpslab.run.interpreter``).
SERIES_ENV_COLUMNS = ("env_torch", "env_torch_build", "env_device_name", "env_interpreter")


# The names of the config fields, in declaration order: the columns of a grid point that come from its config.
CONFIG_FIELDS = tuple(f.name for f in dataclasses.fields(StressConfig))


def failure_kinds(outcomes: dict[str, int]) -> str:
    """The counts of every outcome but ok, in one cell: ``"crash 2, hang 1"``, ``"-"`` when all were ok."""
    return ", ".join(f"{k} {v}" for k, v in outcomes.items() if k != Outcome.OK) or "-"


def grid_columns(df: pd.DataFrame) -> list[str]:
    """The columns that name a grid point: mode, every config field, and the build columns."""
    cols = ["mode", *CONFIG_FIELDS, *SERIES_ENV_COLUMNS]
    return [c for c in cols if c in df.columns]


def _bootstrap_kwargs(seed: int) -> dict[str, Any]:
    from scipy import stats

    if "rng" in inspect.signature(stats.bootstrap).parameters:
        return {"rng": np.random.default_rng(seed)}
    return {"random_state": seed}  # scipy < 1.15


def median_ci(
    values: Iterable[float], confidence: float = 0.95, *, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile-bootstrap confidence interval of the median (``scipy.stats.bootstrap``).

    NaN values are dropped first. Fewer than two values: ``(nan, nan)``, since one
    run says nothing about the spread. All values equal: that value twice. The
    resampling is seeded, so the same values always give the same interval. With
    few repeats (< 5) the interval is wide and its coverage is approximate. The
    interval always lies within the smallest and largest value (clipped, so float
    rounding in the quantile step cannot carry it outside).
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.median,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        **_bootstrap_kwargs(seed),
    )
    # Every resampled median lies in [min, max] of the data, and so does any percentile of them;
    # the quantile interpolation can still land one ulp outside. Clip: the promise holds by construction.
    lo, hi = float(x.min()), float(x.max())
    low = min(max(float(res.confidence_interval.low), lo), hi)
    high = min(max(float(res.confidence_interval.high), lo), hi)
    return low, high


def _finite_median(s: pd.Series) -> float:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _key(values: tuple) -> tuple:
    """A hashable, NaN-safe form of a group key (NaN != NaN would break dict look-ups)."""
    return tuple("<nan>" if (isinstance(v, float) and math.isnan(v)) or v is None else v for v in values)


def _is_true(v: Any) -> bool:
    return v is True or (isinstance(v, (bool, np.bool_)) and bool(v))


def _is_false(v: Any) -> bool:
    return v is False or (isinstance(v, (bool, np.bool_)) and not bool(v))


def trial_notes(df: pd.DataFrame, unit: str = "trials") -> list[str]:
    """What a trials (or sweep) frame says beyond its counts, one line each.

    - a free-threaded interpreter: its label (``3.13.1 free-threaded, GIL off``), with the trials it ran;
    - trials whose GIL was off at the start and on at the end (an extension module turned it on);
    - failures with a single worker thread (``threads == 1``, not batched): ``AFFINITY_NOTE``.
    """
    notes: list[str] = []
    if "env_interpreter" in df.columns:
        labels = df["env_interpreter"].dropna().astype(str)
        for label, n in labels.value_counts(sort=False).items():
            if "free-threaded" in label:
                notes.append(f"{label} ({n} of {len(df)} {unit})")
    if {"env_gil_enabled_start", "env_gil_enabled_end"} <= set(df.columns):
        flipped = sum(
            _is_false(a) and _is_true(b) for a, b in zip(df["env_gil_enabled_start"], df["env_gil_enabled_end"])
        )
        if flipped:
            notes.append(f"the GIL was off at the start and on at the end of {flipped} of {len(df)} {unit}")
    if {"threads", "outcome"} <= set(df.columns):
        one = df[(pd.to_numeric(df["threads"], errors="coerce") == 1) & (df["outcome"] != Outcome.LOST)]
        if "mode" in one.columns:
            one = one[one["mode"] != "batched"]
        failed = int(one["outcome"].isin(FAILED_OUTCOMES).sum())
        if failed:
            notes.append(f"{AFFINITY_NOTE} ({failed} of {len(one)} one-thread {unit} failed)")
    return notes


def summarize(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per grid point: the runs of ``sweep`` (or ``run_trials``) reduced.

    Grid points are the groups of ``grid_columns(df)`` (mode, config fields, build
    columns); every other column, ``repeat`` included, varies within a point.

    Columns: the grid columns, then
      n                  runs at this point
      ops_per_s_median   median ops/s over the runs with a finite ops/s
      ci_low, ci_high    ``confidence`` bootstrap interval of that median (``median_ci``);
                         NaN when fewer than two runs have a finite ops/s
      speedup            median ops/s / median ops/s at threads=1 of the same series
                         (series = the grid point without threads; batched rows are
                         compared with the in-process, else isolated, one-thread point);
                         NaN when the series has no threads=1 point
      efficiency         speedup / threads (NaN for batched rows)
      batched_ops_per_s  the series' batched-baseline median, and
      vs_batched         ops_per_s_median / batched_ops_per_s (below 1: batching is ahead)
      latency_p50_ms, latency_p99_ms   medians over the runs of each run's p50 / p99
      ok, error, mismatch, crash, hang   runs per outcome; failed = their sum but ok
      note               ``trial_notes`` of the point joined by "; " (a free-threaded interpreter,
                         a failure with one worker thread: thread affinity, not a race); "" if none
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"summarize needs a DataFrame, got {type(df).__name__}")
    for col in ("ops_per_s", "outcome", "threads"):
        if col not in df.columns:
            raise KeyError(f"summarize: column {col!r} missing; is this a sweep or trials frame?")
    keys = grid_columns(df)
    out_rows: list[dict[str, Any]] = []
    for key, sub in df.groupby(keys, dropna=False, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key))
        row["n"] = len(sub)
        row["ops_per_s_median"] = _finite_median(sub["ops_per_s"])
        row["ci_low"], row["ci_high"] = median_ci(pd.to_numeric(sub["ops_per_s"], errors="coerce"), confidence)
        for q in ("p50", "p99"):
            col = f"latency_{q}_ms"
            row[col] = _finite_median(sub[col]) if col in sub.columns else math.nan
        counts = sub["outcome"].value_counts()
        for o in OUTCOMES:
            row[o] = int(counts.get(o, 0))
        row["failed"] = int(sum(row[o] for o in FAILED_OUTCOMES))
        row["note"] = "; ".join(trial_notes(sub, unit="runs"))
        out_rows.append(row)
    summary = pd.DataFrame(
        out_rows,
        columns=[
            *keys,
            "n",
            "ops_per_s_median",
            "ci_low",
            "ci_high",
            "latency_p50_ms",
            "latency_p99_ms",
            *OUTCOMES,
            "failed",
            "note",
        ],
    )
    if summary.empty:
        for c in ("speedup", "efficiency", "batched_ops_per_s", "vs_batched"):
            summary[c] = pd.Series(dtype=float)
        return summary

    series_cols = [c for c in keys if c not in ("threads", "mode")]
    mode = summary["mode"] if "mode" in summary.columns else pd.Series(["in-process"] * len(summary))
    one_thread: dict[tuple, float] = {}
    batched: dict[tuple, float] = {}
    for i, r in summary.iterrows():
        s = _key(tuple(r[c] for c in series_cols))
        if mode.iloc[i] == "batched":
            batched[s] = r["ops_per_s_median"]
        elif r["threads"] == 1:
            one_thread[(s, mode.iloc[i])] = r["ops_per_s_median"]
    speedup, vs_batched, batched_col = [], [], []
    for i, r in summary.iterrows():
        s = _key(tuple(r[c] for c in series_cols))
        m = mode.iloc[i]
        if m == "batched":
            ref = one_thread.get((s, "in-process"), one_thread.get((s, "isolated"), math.nan))
        else:
            ref = one_thread.get((s, m), math.nan)
        speedup.append(r["ops_per_s_median"] / ref if ref and not math.isnan(ref) else math.nan)
        b = batched.get(s, math.nan)
        batched_col.append(b)
        vs_batched.append(r["ops_per_s_median"] / b if m != "batched" and b and not math.isnan(b) else math.nan)
    summary["speedup"] = speedup
    summary["efficiency"] = summary["speedup"] / summary["threads"].astype(float)
    # parallel efficiency is a threading notion: a batched row has speedup but no efficiency
    summary.loc[mode.to_numpy() == "batched", "efficiency"] = math.nan
    summary["batched_ops_per_s"] = batched_col
    summary["vs_batched"] = vs_batched
    return summary
