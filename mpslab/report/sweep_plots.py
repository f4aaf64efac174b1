"""The sweep figures: throughput, latency and outcome counts per grid point, versus worker threads.

Each reads a sweep or trials frame (``mpslab.studies.sweep``) or its ``summarize`` frame and
returns a matplotlib Figure titled with its context; it runs nothing. A series is a grid point
without threads (stream mode, size, build, ...). Not here: the catalogue figures
(``catalogue_plots``) or two builds side by side (``compare_plots``).
"""

from __future__ import annotations

from collections.abc import Iterable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mpslab.report.style import STATUS_COLORS, cell_grid_axes, context_title, is_dark
from mpslab.trials.outcomes import Outcome

__all__ = ["plot_throughput", "plot_latency", "plot_outcome_matrix"]

# the columns of the outcome matrix: every outcome that is evidence (a lost trial is no grid point's result)
_OUTCOME_COLUMNS = tuple(o for o in Outcome if o.is_evidence)
_SERIES_NAMES = {"env_torch": "torch", "env_torch_build": "build", "env_device_name": "on"}


def _sweep_summary(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` if it is already a ``summarize`` frame, else its summary."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a DataFrame of sweep rows or its summary, got {type(df).__name__}")
    if "ops_per_s_median" in df.columns:
        return df
    from mpslab.studies.sweep import summarize  # plots stay importable without running anything

    return summarize(df)


def _grid_points(df: pd.DataFrame, figure: str, hint: str = "") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The summary of ``df``, its threaded grid points and its batched-baseline rows (the baseline is no
    grid point: its steps are whole batches); a ``ValueError`` naming ``figure`` when no grid point is left."""
    summary = _sweep_summary(df)
    if "mode" in summary.columns:
        is_b = summary["mode"] == "batched"
        threaded, batched = summary[~is_b], summary[is_b]
    else:
        threaded, batched = summary, summary.iloc[0:0]
    if threaded.empty:
        raise ValueError(f"{figure}: no threaded rows to plot{hint}")
    return summary, threaded, batched


def _series(threaded: pd.DataFrame) -> tuple[list[str], list[tuple[str, pd.DataFrame]]]:
    """The columns that tell the series apart, and (label, rows sorted by threads) per series.

    A series is a grid point without threads; only the columns that vary across
    the frame are named in the labels (stream mode, size, build, ...).
    """
    from mpslab.studies.sweep import grid_columns

    cols = [c for c in grid_columns(threaded) if c != "threads"]
    varying = [c for c in cols if threaded[c].astype(str).nunique(dropna=False) > 1]
    out = []
    if not varying:
        return [], [("median", threaded.sort_values("threads", kind="stable"))]
    for key, sub in threaded.groupby(varying, dropna=False, sort=False):
        out.append((_series_label(varying, key), sub.sort_values("threads", kind="stable")))
    return varying, out


def _series_label(cols: list[str], key: object) -> str:
    key = key if isinstance(key, tuple) else (key,)
    parts = []
    for c, v in zip(cols, key):
        if c == "mode":
            parts.append(str(v))
        else:
            parts.append(f"{_SERIES_NAMES.get(c, c)} {v}" if c in _SERIES_NAMES else f"{c}={v}")
    return ", ".join(parts)


def _threads_axis(ax: plt.Axes, threads: Iterable[object]) -> None:
    ticks = sorted({int(t) for t in threads if pd.notna(t)})
    ax.set_xscale("log", base=2)
    if ticks:
        from matplotlib.ticker import NullLocator

        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        if len(ticks) == 1:
            ax.set_xlim(ticks[0] / 1.5, ticks[0] * 1.5)
    ax.set_xlabel("worker threads (log2 scale)")
    ax.grid(True, which="major", alpha=0.3)


def _auto_log_y(ax: plt.Axes, values: Iterable[float], logy: bool | None) -> None:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if logy is None:
        logy = bool(v.size) and v.max() / v.min() > 30
    if logy and v.size:
        ax.set_yscale("log")


def _finish_versus_threads(
    fig: plt.Figure,
    ax: plt.Axes,
    threaded: pd.DataFrame,
    ys: list[float],
    logy: bool | None,
    ylabel: str,
    title: str,
    summary: pd.DataFrame,
) -> plt.Figure:
    """The axes every per-threads figure shares: log2 threads, a log y where the values span > 30x, the
    context title and the legend."""
    _threads_axis(ax, threaded["threads"])
    _auto_log_y(ax, ys, logy)
    ax.set_ylabel(ylabel)
    ax.set_title(context_title(title, summary), fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_throughput(
    df: pd.DataFrame,
    *,
    title: str = "Throughput versus threads",
    baseline: bool = True,
    logy: bool | None = None,
) -> plt.Figure:
    """Median ops/s versus threads: one line and CI band per series, the batched baseline.

    ``df`` is a sweep frame (``mpslab.studies.sweep.sweep``) or its ``summarize`` frame.
    Series are the grid points without threads (stream mode, size, build, ...).
    The x axis is log2; the band is the ``summarize`` confidence interval of the
    median (absent where a point has a single run). Grid points where any run's
    outcome is not ``ok`` are marked with a red X and ``failed/n``; a point with no
    finite ops/s (every run crashed or hung) is marked on the bottom edge. The
    batched baseline (rows with ``mode="batched"``) is a dashed horizontal line in
    its series' colour. ``logy=None`` picks a log y axis when values span > 30x.
    Artists carry gids ``median``, ``ci-band``, ``failed`` and ``baseline``.
    """
    summary, threaded, batched = _grid_points(df, "plot_throughput", " (only batched baseline rows?)")
    varying, groups = _series(threaded)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color_of: dict[str, str] = {}
    ys: list[float] = []
    banded = False
    for k, (label, sub) in enumerate(groups):
        color = colors[k % len(colors)]
        color_of[label] = color
        x = sub["threads"].to_numpy(dtype=float)
        y = sub["ops_per_s_median"].to_numpy(dtype=float)
        ys.extend(y)
        ax.plot(x, y, marker="o", color=color, label=label, gid="median")
        lo, hi = sub["ci_low"].to_numpy(dtype=float), sub["ci_high"].to_numpy(dtype=float)
        if np.isfinite(lo).any():
            ax.fill_between(
                x,
                lo,
                hi,
                where=np.isfinite(lo) & np.isfinite(hi),
                color=color,
                alpha=0.2,
                linewidth=0,
                gid="ci-band",
                label=None if banded else "confidence interval of the median",
            )
            banded = True
            ys.extend(lo)
            ys.extend(hi)

    if baseline and not batched.empty:
        bcols = [c for c in varying if c != "mode"]
        for _, r in batched.iterrows():
            y = float(r["ops_per_s_median"])
            if not np.isfinite(y):
                continue
            # the threaded series of the same grid point, for its colour
            match = [lab for lab, sub in groups if all(str(sub[c].iloc[0]) == str(r[c]) for c in bcols)]
            color = color_of[match[0]] if match else "black"
            what = _series_label(bcols, tuple(r[c] for c in bcols)) if bcols else ""
            ax.axhline(
                y,
                color=color,
                linestyle="--",
                linewidth=1.2,
                gid="baseline",
                label=f"batched baseline ({what + ', ' if what else ''}batch {int(r['threads'])})",
            )
            ys.append(y)

    failed = threaded[threaded["failed"] > 0] if "failed" in threaded.columns else threaded.iloc[0:0]
    if len(failed):
        fx = failed["threads"].to_numpy(dtype=float)
        fy = failed["ops_per_s_median"].to_numpy(dtype=float)
        ok_y = np.isfinite(fy)
        style = dict(marker="X", s=90, color=STATUS_COLORS["failed"], edgecolors="white", zorder=5)
        if ok_y.any():
            ax.scatter(fx[ok_y], fy[ok_y], label="failed (an outcome is not ok)", gid="failed", **style)
        if (~ok_y).any():
            ax.scatter(
                fx[~ok_y],
                np.full((~ok_y).sum(), 0.03),
                transform=ax.get_xaxis_transform(),
                label=None if ok_y.any() else "failed (an outcome is not ok)",
                gid="failed",
                clip_on=False,
                **style,
            )
        for (_, r), has_y in zip(failed.iterrows(), ok_y):
            ax.annotate(
                f"{int(r['failed'])}/{int(r['n'])}",
                (float(r["threads"]), float(r["ops_per_s_median"]) if has_y else 0.03),
                xycoords="data" if has_y else ax.get_xaxis_transform(),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=7,
                color=STATUS_COLORS["failed"],
            )

    return _finish_versus_threads(fig, ax, threaded, ys, logy, "operations per second (ops/s)", title, summary)


def plot_latency(
    df: pd.DataFrame,
    *,
    title: str = "Latency per iteration versus threads",
    logy: bool | None = None,
) -> plt.Figure:
    """p50 (solid) and p99 (dashed) latency per iteration, in ms, versus threads (log2 x).

    ``df`` is a sweep frame or its summary; each point is the median over the runs
    of that run's p50 / p99. One colour per series; batched-baseline rows are left
    out (their steps are whole batches). Lines carry gids ``p50`` and ``p99``.
    """
    summary, threaded, _ = _grid_points(df, "plot_latency")
    _, groups = _series(threaded)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ys: list[float] = []
    for k, (label, sub) in enumerate(groups):
        color = colors[k % len(colors)]
        x = sub["threads"].to_numpy(dtype=float)
        for q, style, marker in (("p50", "-", "o"), ("p99", "--", "^")):
            y = sub[f"latency_{q}_ms"].to_numpy(dtype=float)
            ys.extend(y)
            ax.plot(
                x,
                y,
                linestyle=style,
                marker=marker,
                color=color,
                gid=q,
                label=f"{q}" if label == "median" else f"{q} {label}",
            )
    return _finish_versus_threads(fig, ax, threaded, ys, logy, "latency per iteration (ms)", title, summary)


def plot_outcome_matrix(
    df: pd.DataFrame,
    *,
    title: str = "Outcomes per grid point",
) -> plt.Figure:
    """Grid points (rows) x outcomes ok / error / mismatch / crash / hang (columns): run counts.

    ``df`` is a sweep or trials frame, or its summary. A cell holds the number of
    runs with that outcome, coloured with ``STATUS_COLORS`` (stronger as the share
    of the point's runs grows; light grey for zero). Batched-baseline rows are not
    grid points and are left out. Row labels name the series and threads, and n.
    """
    summary, threaded, _ = _grid_points(df, "plot_outcome_matrix")
    _, groups = _series(threaded)
    rows: list[tuple[str, pd.Series]] = []
    for label, sub in groups:
        for _, r in sub.iterrows():
            prefix = "" if label == "median" else f"{label}, "
            rows.append((f"{prefix}threads={int(r['threads'])} (n={int(r['n'])})", r))
    cols = [o.value for o in _OUTCOME_COLUMNS]
    fig, ax = plt.subplots(
        figsize=(2.5 + 1.1 * len(cols) + 0.05 * max(len(r[0]) for r in rows), 1.0 + 0.36 * len(rows))
    )
    for i, (_, r) in enumerate(rows):
        n = max(int(r["n"]), 1)
        for j, o in enumerate(cols):
            count = int(r[o]) if o in r.index and pd.notna(r[o]) else 0
            if count:
                color, alpha = STATUS_COLORS[o], 0.35 + 0.65 * count / n
            else:
                color, alpha = "#f2f2f2", 1.0
            ax.add_patch(
                plt.Rectangle(
                    (j, i), 1, 1, facecolor=color, alpha=alpha, edgecolor="white", linewidth=2, gid=f"cell-{o}"
                )
            )
            ax.text(
                j + 0.5,
                i + 0.5,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if count and alpha > 0.6 and is_dark(color) else "black",
            )
    cell_grid_axes(ax, cols, [r[0] for r in rows], "runs per outcome (count)", "grid point (n = runs)")
    ax.set_title(context_title(title, summary), fontsize=10, pad=24)
    fig.tight_layout()
    return fig
