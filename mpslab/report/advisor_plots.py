"""The advisor's figures: throughput against threads per concurrency control, and throughput against p99.

Both read the advisor's table (``AdvisorResult.table``: one row per configuration, with the
median requests/s and its interval, latency percentiles and the failure bound) and return
a matplotlib Figure. Runs nothing. Not here: deciding what to recommend
(``mpslab.studies.advisor.decide``) or saving (``plots.save_figure``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import mpslab.report.style  # noqa: F401  (the headless backend choice)

__all__ = ["plot_advisor_throughput", "plot_advisor_frontier", "non_dominated"]


def _series_key(r: pd.Series) -> str:
    return f"{r['control']}, sync {r['sync']}" + (f", {r['streams']} streams" if r["streams"] != "shared" else "")


def plot_advisor_throughput(
    table: pd.DataFrame, *, max_failure: float | None = None, title: str = "Advisor: requests/s against threads"
) -> plt.Figure:
    """One line per concurrency control (median requests/s, a band for its interval, named by the level it
    has: the range of 3 repeats is a 75% interval); batched calls as horizontal lines; configurations whose
    failure bound met ``max_failure`` ringed (the target printed as given, never rounded), failed ones crossed."""
    from mpslab.studies.advisor.budget import format_target
    from mpslab.studies.advisor.speed import name_for_repeats

    fig, ax = plt.subplots(figsize=(8, 4.8))
    threaded = table[table["kind"] == "threaded"].copy()
    for key, part in threaded.groupby(threaded.apply(_series_key, axis=1), sort=True):
        part = part.sort_values("threads")
        x = part["threads"].to_numpy(dtype=float)
        y = part["requests_per_s"].to_numpy(dtype=float)
        (line,) = ax.plot(x, y, marker="o", label=key)
        ax.fill_between(
            x,
            part["ci_low"].to_numpy(dtype=float),
            part["ci_high"].to_numpy(dtype=float),
            color=line.get_color(),
            alpha=0.15,
            linewidth=0,
        )
    for r in table[table["kind"] == "batched"].itertuples():
        ax.axhline(r.requests_per_s, linestyle="--", linewidth=1, color="0.35")
        ax.annotate(
            f"batched B={int(r.batch)}",
            (1, r.requests_per_s),
            xycoords=("axes fraction", "data"),
            ha="right",
            va="bottom",
            fontsize=8,
            color="0.25",
        )
    if max_failure is not None:
        ok = threaded[threaded["upper_bound"] < max_failure]
        ax.scatter(
            ok["threads"],
            ok["requests_per_s"],
            s=160,
            facecolors="none",
            edgecolors="#4c9a2a",
            linewidths=2,
            label=f"failure bound < {format_target(max_failure)}",
            zorder=3,
        )
    failed = threaded[threaded["failures"].fillna(0) > 0]
    if len(failed):
        ax.scatter(
            failed["threads"],
            failed["requests_per_s"],
            marker="x",
            s=90,
            color="#d7191c",
            label="failed in trials",
            zorder=4,
        )
    ts = sorted(set(threaded["threads"].dropna().astype(int)))
    if ts:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("threads")
    if "ci_name" in table:
        names = table.loc[table["ci_low"].notna(), "ci_name"]
    else:
        names = table.loc[table["ci_low"].notna(), "repeats"].map(lambda n: name_for_repeats(int(n)))
    band = ", band: " + " / ".join(sorted(set(names))) if len(names) else ""
    ax.set_ylabel(f"requests / s (median{band})")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def non_dominated(table: pd.DataFrame) -> pd.Series:
    """True where no other configuration is both faster (requests/s) and has a lower p99 latency."""
    rps = table["requests_per_s"].to_numpy(dtype=float)
    p99 = table["latency_p99_ms"].to_numpy(dtype=float)
    keep = []
    for i in range(len(table)):
        better = (rps >= rps[i]) & (p99 <= p99[i]) & ((rps > rps[i]) | (p99 < p99[i]))
        keep.append(not bool(np.any(better)))
    return pd.Series(keep, index=table.index)


def plot_advisor_frontier(table: pd.DataFrame, *, title: str = "Advisor: requests/s against p99 latency") -> plt.Figure:
    """Every configuration as a point; the non-dominated ones (faster and lower p99 than no other) labelled."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    front = non_dominated(table)
    ax.scatter(table.loc[~front, "latency_p99_ms"], table.loc[~front, "requests_per_s"], color="0.6", label="dominated")
    ax.scatter(
        table.loc[front, "latency_p99_ms"], table.loc[front, "requests_per_s"], color="#2c7bb6", label="not dominated"
    )
    for r in table[front].itertuples():
        ax.annotate(
            r.configuration, (r.latency_p99_ms, r.requests_per_s), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    ax.set_xscale("log")
    ax.set_xlabel("p99 latency per request (ms, log scale)")
    ax.set_ylabel("requests / s (median)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
