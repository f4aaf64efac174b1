"""Reader tables: the few columns of a result frame that a notebook's reader needs.

``trials_table(trials_df)`` and ``sweep_table(summary)`` pick the columns worth
reading, name them with their units (``time (s)``, ``throughput (ops/s)``,
``p99 latency (ms)``), round measurements to three significant digits and show
a missing value (a single run's interval, a batched row's efficiency) as ``–``
instead of ``NaN``. A column that holds the same value in every row (the
configuration, the build) is left out: the notebook states it once above.

This module is display only. It never changes the frame it is given, and its
tables are not for storage: the full frames go to CSV (``df.to_csv``) with
every column and full precision. Figures live in ``mpslab.report.plots``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mpslab.trials.outcomes import Outcome

__all__ = ["MISSING", "fmt_number", "trials_table", "sweep_table"]

MISSING = "–"  # what a reader table shows for a value that does not exist


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fmt_number(value: Any, digits: int = 3) -> str:
    """``value`` rounded to ``digits`` significant digits, thousands separated; ``–`` when missing.

    ``212228.4`` -> ``212,000``; ``0.057473`` -> ``0.0575``; ``1.0`` -> ``1``; NaN -> ``–``.
    """
    if _missing(value):
        return MISSING
    x = float(value)
    if not math.isfinite(x):
        return MISSING if math.isnan(x) else ("∞" if x > 0 else "-∞")
    if x == 0:
        return "0"
    rounded = round(x, digits - 1 - math.floor(math.log10(abs(x))))
    if abs(rounded) >= 10 ** (digits - 1):
        return f"{rounded:,.0f}"
    return f"{rounded:.{digits}g}"


def _text(value: Any) -> str:
    return MISSING if _missing(value) or value == "" else str(value)


def _need(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"{what}: column {missing[0]!r} missing; have {list(df.columns)}")


def trials_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per isolated trial (``run_trials`` frame): outcome, exit, time, throughput, errors.

    ``first error`` is added only when some trial has one: what happened (an error with an empty
    message says where it was raised; a mismatch row says what the serial replay found).
    """
    _need(df, ("trial", "outcome", "seconds", "ops_per_s"), "trials_table")
    out = pd.DataFrame(
        {
            "trial": df["trial"].astype(int).to_numpy(),
            "outcome": df["outcome"].map(_text).to_numpy(),
            "exit code": df["exit_code"].map(lambda v: _text(v if _missing(v) else int(v))).to_numpy()
            if "exit_code" in df.columns
            else MISSING,
            "signal": df["signal"].map(_text).to_numpy() if "signal" in df.columns else MISSING,
            "time (s)": df["seconds"].map(fmt_number).to_numpy(),
            "throughput (ops/s)": df["ops_per_s"].map(fmt_number).to_numpy(),
        }
    )
    for col, header in (("error_count", "errors"), ("mismatch_count", "mismatches")):
        if col in df.columns:
            out[header] = df[col].map(lambda v: _text(v if _missing(v) else int(v))).to_numpy()
    detail = [_trial_detail(r) for r in df.to_dict(orient="records")]
    if any(d != "" for d in detail):
        out["first error"] = [d or MISSING for d in detail]
    return out.set_index("trial")


def _trial_detail(row: dict[str, Any]) -> str:
    """What happened in a non-ok trial: its first error, or for a mismatch what the oracle found."""
    first = row.get("first_error")
    text = "" if _missing(first) else str(first).strip()
    if text.endswith(":"):  # ``AssertionError: ``: an exception without a message, from a record that lacks where
        return f"{text[:-1]} (empty message; where it was raised was not recorded)"
    if text or row.get("outcome") != Outcome.MISMATCH:
        return text
    count, verified = row.get("mismatch_count"), row.get("verified")
    if _missing(count):
        return "results differ from a serial replay of the same work"
    of = "" if _missing(verified) else f" of {int(verified)}"
    return f"mismatch: {int(count)}{of} outputs differ from a serial replay of the same work"


def sweep_table(summary: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per grid point of a ``summarize`` frame, the way a reader compares them.

    Columns: ``mode``, the grid columns that vary (stream mode, size, build, ...),
    ``threads``, the median throughput and its ``confidence`` interval (ops/s),
    speedup against one thread (×), parallel efficiency (%), throughput against
    the batched baseline (×), p50 and p99 latency (ms) and ``failed/runs``.
    """
    _need(summary, ("threads", "n", "ops_per_s_median", "ci_low", "ci_high", "failed"), "sweep_table")
    from mpslab.studies.sweep import grid_columns  # the report layer reads the studies' frames

    keys = [c for c in grid_columns(summary) if c not in ("mode", "threads")]
    varying = [c for c in keys if summary[c].astype(str).nunique(dropna=False) > 1]
    out = pd.DataFrame(index=summary.index)
    if "mode" in summary.columns:
        out["mode"] = summary["mode"].map(_text)
    for c in varying:
        out[c] = summary[c].map(_text)
    out["threads"] = summary["threads"].astype(int)

    def col(name: str, fn=fmt_number) -> pd.Series:
        return summary[name].map(fn) if name in summary.columns else pd.Series(MISSING, index=summary.index)

    out["median (ops/s)"] = col("ops_per_s_median")
    level = f"{confidence:.0%}"
    out[f"{level} CI (ops/s)"] = [
        MISSING if _missing(lo) or _missing(hi) else f"{fmt_number(lo)} – {fmt_number(hi)}"
        for lo, hi in zip(summary["ci_low"], summary["ci_high"])
    ]
    out["speedup vs 1 thread (×)"] = col("speedup")
    out["efficiency (%)"] = col("efficiency", lambda v: fmt_number(v * 100 if not _missing(v) else v))
    out["vs batched (×)"] = col("vs_batched")
    out["p50 latency (ms)"] = col("latency_p50_ms")
    out["p99 latency (ms)"] = col("latency_p99_ms")
    out["failed/runs"] = [f"{int(f)}/{int(n)}" for f, n in zip(summary["failed"], summary["n"])]
    return out.reset_index(drop=True)


def advisor_table(table: pd.DataFrame) -> pd.DataFrame:
    """The advisor's table (``AdvisorResult.table``) the way a reader compares configurations.

    Columns: configuration, requests/s median and its interval (named by the level it has:
    ``range of 3 (75% interval)`` for 3 repeats, a CI from 6), p50/p99 latency (ms), trials,
    failures, the failure rate's upper bound (rounded up, never below its value) and the verdict.
    """
    from mpslab.studies.advisor.speed import name_for_repeats, round_outward
    from mpslab.trials.stats import format_percent

    _need(
        table,
        ("configuration", "requests_per_s", "ci_low", "ci_high", "trials", "failures", "upper_bound", "verdict"),
        "advisor_table",
    )
    if "ci_name" in table:
        names = table["ci_name"].astype(object)
    elif "repeats" in table:
        names = table["repeats"].map(lambda n: name_for_repeats(int(n)) if not _missing(n) else MISSING)
    else:
        names = pd.Series(["interval"] * len(table), index=table.index)
    has = [not (_missing(lo) or _missing(hi)) for lo, hi in zip(table["ci_low"], table["ci_high"])]
    shown = names[has]
    common = shown.mode().iloc[0] if len(shown) else "interval"
    out = pd.DataFrame(
        {
            "configuration": table["configuration"].map(_text).to_numpy(),
            "median (requests/s)": table["requests_per_s"].map(fmt_number).to_numpy(),
            f"{common} (requests/s)": [
                MISSING
                if not ok
                else f"{fmt_number(round_outward(float(lo), 'down', 3))} – "
                f"{fmt_number(round_outward(float(hi), 'up', 3))}" + ("" if name == common else f" ({name})")
                for ok, lo, hi, name in zip(has, table["ci_low"], table["ci_high"], names)
            ],
            "p50 latency (ms)": table["latency_p50_ms"].map(fmt_number).to_numpy(),
            "p99 latency (ms)": table["latency_p99_ms"].map(fmt_number).to_numpy(),
            "trials": table["trials"].map(lambda v: _text(v if _missing(v) else int(v))).to_numpy(),
            "failures": table["failures"].map(lambda v: _text(v if _missing(v) else int(v))).to_numpy(),
            "failure bound": table["upper_bound"].map(lambda v: MISSING if _missing(v) else format_percent(v, "up")),
            "verdict": table["verdict"].map(_text).to_numpy(),
        }
    )
    return out.set_index("configuration")
