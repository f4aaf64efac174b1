"""The figures' shared style: the status palette, titles that carry their context, saving as PNG and SVG.

Every figure module of the report layer imports from here (never the other way). Selects the
headless matplotlib backend unless a notebook chose one. Not here: any figure itself (``plots``,
``catalogue_plots``, ``advisor_plots``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

if not os.environ.get("MPLBACKEND") and "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")  # headless unless a notebook chose its own backend

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mpslab.trials.outcomes import Outcome  # noqa: E402

__all__ = [
    "STATUS_COLORS",
    "save_figure",
    "context_title",
    "figure_caption",
    "is_dark",
    "cell_grid_axes",
    "interval_whiskers",
]


# One palette for every status-like value in the workbook. Outcomes are keyed by the enum (a member hashes
# as its string, so ``STATUS_COLORS["crash"]`` finds ``Outcome.CRASH``); the other keys are the statuses of
# the catalogue studies (coverage, edge checks), which are not trial outcomes.
STATUS_COLORS = {
    Outcome.OK: "#4c9a2a",
    Outcome.ERROR: "#fdae61",
    Outcome.MISMATCH: "#7b3294",
    Outcome.CRASH: "#d7191c",
    Outcome.HANG: "#2c7bb6",
    Outcome.LOST: "#bdbdbd",
    "covered": "#4c9a2a",
    "pass": "#4c9a2a",
    "exercised": "#a6d96a",
    "not applicable": "#d9d9d9",
    "n/a": "#d9d9d9",
    "not run": "#f4f4f4",  # backend absent: distinct from "not applicable"
    "failed": "#d7191c",
    "fail": "#d7191c",
}


def save_figure(fig: plt.Figure, name: str, figures_dir: str, formats: Sequence[str] = ("png", "svg")) -> list[str]:
    """Save ``fig`` as ``figures_dir/name.{png,svg}``; returns the paths written.

    The figure's title goes into the files' metadata (the report index's caption). The figure
    is then closed in pyplot, so a notebook cell shows it once, where the cell ends with ``fig``
    (left open, the inline backend would show it as well).
    """
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"figure name={name!r}: must be a plain file stem")
    os.makedirs(figures_dir, exist_ok=True)
    title = figure_title(fig)
    paths = []
    for ext in formats:
        path = os.path.join(figures_dir, f"{name}.{ext}")
        meta = {"Title": title} if title and ext in ("png", "svg", "pdf") else None
        fig.savefig(path, dpi=150, bbox_inches="tight", metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths


def figure_title(fig: plt.Figure) -> str:
    """The figure's suptitle, else its first axes title, on one line ('' if none)."""
    texts = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) is not None else []
    texts += [ax.get_title() for ax in fig.axes]
    lines = next(([ln.strip() for ln in t.splitlines() if ln.strip()] for t in texts if t and t.strip()), [])
    return " — ".join(" ".join(ln.split()) for ln in lines)


def context_title(title: str, df: pd.DataFrame | None = None, **extra: object) -> str:
    """``title`` plus a second line naming device, torch and workload from ``env_*`` columns."""
    parts: list[str] = []
    if df is not None and len(df):
        for col, label in (("env_device_name", ""), ("device", ""), ("env_torch", "torch "), ("workload", "workload ")):
            if col in df.columns:
                vals = sorted({str(v) for v in df[col].dropna().unique()})
                if vals:
                    parts.append(label + "/".join(vals[:3]))
    parts += [f"{k} {v}" for k, v in extra.items()]
    return title + ("\n" + ", ".join(parts) if parts else "")


def times_axis(ax: plt.Axes) -> None:
    """A log-scaled ratio axis labelled 0.9x, 1x, 1.1x (not 9x10^-1); minor ticks labelled only when the
    axis spans less than a factor of 10, where there would otherwise be at most one label."""
    from matplotlib.ticker import FuncFormatter

    def times(value: float, _pos: int) -> str:
        return f"{value:.3g}x"

    def minor(value: float, _pos: int) -> str:
        low, high = ax.get_xlim()
        return times(value, _pos) if low > 0 and high / low < 10 else ""

    ax.xaxis.set_major_formatter(FuncFormatter(times))
    ax.xaxis.set_minor_formatter(FuncFormatter(minor))


def is_dark(color: str) -> bool:
    """Whether ``color`` is dark enough (by its luma) that text on it reads better in white than in black."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b < 0.5


def cell_grid_axes(ax: plt.Axes, cols: Sequence[str], rows: Sequence[str], xlabel: str, ylabel: str) -> None:
    """Frame ``ax`` as a table of unit cells: ``cols`` labelled along the top, ``rows`` down the side (first row
    at the top), no ticks and no spines, so the coloured cells are the whole picture."""
    import numpy as np

    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def figure_caption(fig: plt.Figure, text: str) -> None:
    """A small wrapped caption under the axes: what the marks and whiskers of the figure mean, so a saved
    PNG reads without the notebook around it."""
    fig.text(0.01, -0.02, text, fontsize=7, ha="left", va="top", wrap=True)


def interval_whiskers(ax: plt.Axes, value, y, low, high, *, gid: str, markersize: float = 3) -> None:
    """Black points at ``value`` (one per ``y`` row) with horizontal whiskers from ``low`` to ``high``: the way
    every figure here draws an estimate with its interval."""
    ax.errorbar(
        value, y, xerr=[value - low, high - value], fmt="o", color="black", capsize=3, markersize=markersize, gid=gid
    )
