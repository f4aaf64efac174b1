"""Tables for readers of the notebooks' copies: the studies' raw tables, made readable.

A reader table names its unit in every header, prints a measurement with three significant
digits, a failure rate as a percentage with its interval (``trials.stats.format_percent``:
two significant digits, bounds rounded outward), and shows a row that does not apply as one
line with its reason instead of a row of blanks. It formats; it computes nothing, and the raw
tables (CSV under ``data/``) keep full precision. Not here: the raw tables themselves
(``report.tables`` and the studies).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mpslab.trials.outcomes import Outcome
from mpslab.trials.stats import format_percent

__all__ = ["sig3", "rate_text", "interval_text", "scenario_reader_table", "compare_reader_table", "wrapped"]

DASH = "–"  # an empty measurement: the row did not produce one


def sig3(x: Any) -> str:
    """``x`` with three significant digits, thousands separated: 1793.48 -> ``1,790``, 0.631597 -> ``0.632``."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return DASH
    if not math.isfinite(value):
        return DASH
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    rounded = round(value, 2 - exponent)
    exponent = math.floor(math.log10(abs(rounded)))  # 999.6 rounds to 1000: one more digit
    decimals = max(0, 2 - exponent)
    return f"{rounded:,.{decimals}f}"


def rate_text(rate: Any) -> str:
    """A proportion as a percentage (``format_percent``); ``–`` where there is none."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        return DASH
    return format_percent(value) if math.isfinite(value) else DASH


def interval_text(low: Any, high: Any) -> str:
    """An interval of proportions as ``0%–31%``: the low bound rounded down, the high one up."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        return DASH
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return DASH
    return f"{format_percent(lo, 'down')}{DASH}{format_percent(hi, 'up')}"


def scenario_reader_table(table: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """The scenario library's table (``studies.scenarios.library_table``) for readers, one row per scenario.

    A scenario that did not apply here keeps its row, its reason in the ``result`` column and
    nothing else filled in.
    """
    rows = []
    conf = f"{confidence:.0%}"
    kinds = [o.value for o in Outcome if o is not Outcome.OK and o.value in table.columns]
    for r in table.itertuples(index=False):
        row = {"scenario": r.scenario}
        if r.status != "ran":
            row.update(
                {
                    "result": str(r.status),
                    "trials": "",
                    "failed": "",
                    "failure rate (%)": "",
                    f"{conf} interval (exact, %)": "",
                    "throughput (ops/s, median)": "",
                }
            )
        else:
            failed = [f"{o} {int(getattr(r, o))}" for o in kinds if getattr(r, o)]
            row.update(
                {
                    "result": "failed: " + ", ".join(failed) if failed else "no failure",
                    "trials": str(int(r.trials)),
                    "failed": str(int(r.failures)),
                    "failure rate (%)": rate_text(r.failure_rate),
                    f"{conf} interval (exact, %)": interval_text(r.rate_low, r.rate_high),
                    "throughput (ops/s, median)": sig3(r.ops_per_s),
                }
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("scenario")


def compare_reader_table(table: pd.DataFrame) -> pd.DataFrame:
    """Two builds' table (``studies.compare.compare_table``) for readers: a and b side by side."""
    rows = []
    for r in table.itertuples(index=False):
        rows.append(
            {
                "scenario": r.scenario,
                "a: failed / trials": f"{int(r.a_failures)} / {int(r.a_trials)}",
                "a: 95% interval (exact, %)": interval_text(r.a_low, r.a_high),
                "b: failed / trials": f"{int(r.b_failures)} / {int(r.b_trials)}",
                "b: 95% interval (exact, %)": interval_text(r.b_low, r.b_high),
                "p (Barnard, two-sided)": sig3(r.p_value),
                "p (Holm over scenarios)": sig3(getattr(r, "p_holm", float("nan"))),
                "failures": r.verdict,
                "throughput b / a (median ops/s per round, ×)": _ratio_text(
                    r.speed_ratio,
                    r.speed_low,
                    r.speed_high,
                    getattr(r, "speed_confidence", 0.95),
                    getattr(r, "throughput", ""),
                ),
            }
        )
    return pd.DataFrame(rows).set_index("scenario")


def _ratio_text(ratio: Any, low: Any, high: Any, confidence: Any = 0.95, words: Any = "") -> str:
    """The ratio with its interval at the level it was computed; without one, the table's own words (too few rounds)."""
    try:
        values = [float(v) for v in (ratio, low, high)]
    except (TypeError, ValueError):
        values = [math.nan]
    if not all(math.isfinite(v) for v in values):
        return str(words) if isinstance(words, str) and words else DASH
    level = math.floor(float(confidence) * 1000) / 10  # the level named is never above the one computed
    return f"{sig3(values[0])}× ({level:g}% {sig3(values[1])}{DASH}{sig3(values[2])})"


def wrapped(df: pd.DataFrame, width_em: int = 28):
    """``df`` as a pandas Styler whose long text wraps inside ``width_em``-wide cells instead of being cut off."""
    return df.style.set_properties(
        **{"white-space": "normal", "max-width": f"{width_em}em", "text-align": "left", "vertical-align": "top"}
    )
