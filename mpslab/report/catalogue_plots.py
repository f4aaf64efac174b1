"""Catalogue figures: status matrices (coverage walkthrough, edge cases) and scenario failure rates.

Each function reads a tidy frame from a study (``mpslab.studies``) and returns a
matplotlib Figure, titled with its context; ``save_figure`` (``style``) writes it. Runs
nothing. Not here: the sweep figures (throughput, latency, outcomes: ``sweep_plots``).
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mpslab.report.style import STATUS_COLORS, cell_grid_axes, context_title, figure_caption, interval_whiskers
from mpslab.trials.outcomes import Outcome

__all__ = ["plot_status_matrix", "plot_coverage_matrix", "plot_edge_matrix", "plot_scenario_rates"]


def plot_status_matrix(
    df: pd.DataFrame,
    row: str,
    col: str,
    status: str,
    *,
    title: str,
    row_order: Iterable[str] | None = None,
    col_order: Iterable[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
) -> plt.Figure:
    """A grid of coloured cells, one per (row, col), labelled with its status; axes named by the labels.

    Used for the coverage matrix (path x backend) and the edge-case matrix
    (case x check). Rows and columns come in the order first seen in ``df`` unless
    ``row_order`` / ``col_order`` say otherwise. Unknown statuses are drawn white.
    """
    for c in (row, col, status):
        if c not in df.columns:
            raise KeyError(f"plot_status_matrix: column {c!r} missing; have {list(df.columns)}")
    rows = list(row_order) if row_order is not None else list(dict.fromkeys(df[row]))
    cols = list(col_order) if col_order is not None else list(dict.fromkeys(df[col]))
    table = df.drop_duplicates([row, col], keep="last").set_index([row, col])[status]
    fig, ax = plt.subplots(figsize=(1.6 + 1.9 * len(cols), 0.8 + 0.36 * len(rows)))
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            value = table.get((r, c), "")
            value = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
            ax.add_patch(
                plt.Rectangle((j, i), 1, 1, facecolor=STATUS_COLORS.get(value, "white"), edgecolor="white", linewidth=2)
            )
            ax.text(j + 0.5, i + 0.5, value, ha="center", va="center", fontsize=7)
    cell_grid_axes(ax, cols, rows, xlabel, ylabel)
    ax.set_title(title, fontsize=10, pad=24)
    fig.tight_layout()
    return fig


_EDGE_CHECKS = (
    ("expected_met_alone", "as expected\n(alone)"),
    ("expected_met_with_others", "as expected\n(with others)"),
    ("isolated", "isolated"),
    ("healthy", "healthy"),
)


def plot_coverage_matrix(df: pd.DataFrame, *, title: str = "Coverage walkthrough: path x backend") -> plt.Figure:
    """The coverage matrix (``mpslab.studies.probes.coverage_matrix`` rows): one cell per path and backend."""
    backends = [k for k in ("cpu", "cuda", "mps") if k in set(df["backend"])]
    return plot_status_matrix(
        df,
        "path",
        "backend",
        "status",
        title=context_title(title, df),
        col_order=backends,
        xlabel="backend (status of each probed path)",
        ylabel="probed path",
    )


def plot_edge_matrix(df: pd.DataFrame, *, title: str = "Edge-case catalogue: case x check") -> plt.Figure:
    """The edge-case matrix (``mpslab.studies.edges.run_edges`` rows): per case, each check as pass / fail.

    Columns: as expected alone, as expected with other threads working, isolated,
    healthy, and the case's status; one group of columns per backend when several.
    """
    several = df["backend"].nunique() > 1
    cells = []
    for _, r in df.iterrows():
        prefix = f"{r['backend']}: " if several else ""
        for col, label in _EDGE_CHECKS:
            v = r.get(col)
            value = r["status"] if v is None or (isinstance(v, float) and np.isnan(v)) else ("pass" if v else "fail")
            cells.append({"case": r["case"], "check": prefix + label, "result": value})
        cells.append({"case": r["case"], "check": prefix + "status", "result": r["status"]})
    long = pd.DataFrame(cells)
    return plot_status_matrix(
        long,
        "case",
        "check",
        "result",
        title=context_title(title, df),
        xlabel="check (pass / fail per run)",
        ylabel="edge case",
    )


def plot_scenario_rates(
    table: pd.DataFrame,
    *,
    title: str = "Scenario library: failure rate per scenario",
    context: pd.DataFrame | None = None,
) -> plt.Figure:
    """Failure rate (%) per scenario with its confidence-interval whiskers (``library_table`` rows).

    One horizontal bar per scenario that ran (n = its trials), whiskers from
    ``rate_low`` to ``rate_high``; scenarios that could not run there are listed
    as "not applicable" at zero with no bar. ``context`` (the trial rows) names
    device and torch in the title. A caption under the axes says what the
    whiskers are.
    """
    if table.empty:
        raise ValueError("plot_scenario_rates: no scenarios to plot")
    ran = table["status"] == "ran"
    labels = [
        f"{r.scenario} (n={int(r.trials)})" if ok else f"{r.scenario} (not applicable)"
        for r, ok in zip(table.itertuples(), ran)
    ]
    y = np.arange(len(table))
    rate = np.where(ran, pd.to_numeric(table["failure_rate"], errors="coerce").fillna(0) * 100, 0.0)
    low = np.where(ran, pd.to_numeric(table["rate_low"], errors="coerce").fillna(0) * 100, 0.0)
    high = np.where(ran, pd.to_numeric(table["rate_high"], errors="coerce").fillna(0) * 100, 0.0)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.38 * len(table)))
    colors = [STATUS_COLORS[Outcome.CRASH] if r > 0 else STATUS_COLORS[Outcome.OK] for r in rate]
    ax.barh(y[ran], rate[ran], color=np.array(colors, dtype=object)[ran], alpha=0.8, gid="rate-bars")
    interval_whiskers(ax, rate[ran], y[ran], low[ran], high[ran], gid="rate-whiskers")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(len(table) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_xlabel("failure rate (% of isolated trials: error, mismatch, crash or hang)")
    if context is not None:
        context = context.drop(columns=["workload"], errors="ignore")  # one per bar: named on the y axis
    ax.set_title(context_title(title, context), fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    figure_caption(
        fig,
        "Bars: observed failure rate; whiskers: its exact (Clopper-Pearson) 95% interval. "
        "A zero rate over n trials still allows a true rate up to the whisker's end.",
    )
    fig.tight_layout()
    return fig
