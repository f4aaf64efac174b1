"""Every figure of the workbook, one function each, saved through ``save_figure``.

Plot functions read tidy DataFrames (records); they never run workloads. Each
returns the matplotlib Figure; ``save_figure`` writes it as PNG and SVG.
Figures carry their context in the title (device, torch version, workload) so
they read in a review without the notebook.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import matplotlib

if not os.environ.get("MPLBACKEND") and "ipykernel" not in __import__("sys").modules:
    matplotlib.use("Agg")  # headless unless a notebook chose its own backend

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["save_figure", "plot_status_matrix", "STATUS_COLORS", "context_title"]

# One palette for every status-like value in the workbook.
STATUS_COLORS = {
    "ok": "#4c9a2a",
    "covered": "#4c9a2a",
    "pass": "#4c9a2a",
    "exercised": "#a6d96a",
    "not applicable": "#d9d9d9",
    "n/a": "#d9d9d9",
    "mismatch": "#7b3294",
    "error": "#fdae61",
    "crash": "#d7191c",
    "hang": "#2c7bb6",
    "failed": "#d7191c",
    "fail": "#d7191c",
}


def save_figure(fig: "plt.Figure", name: str, figures_dir: str, formats: Sequence[str] = ("png", "svg")) -> list[str]:
    """Save ``fig`` as ``figures_dir/name.{png,svg}``; returns the paths written."""
    if not name or os.sep in name or name.startswith("."):
        raise ValueError(f"figure name={name!r}: must be a plain file stem")
    os.makedirs(figures_dir, exist_ok=True)
    paths = []
    for ext in formats:
        path = os.path.join(figures_dir, f"{name}.{ext}")
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    return paths


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


def plot_status_matrix(
    df: pd.DataFrame,
    row: str,
    col: str,
    status: str,
    *,
    title: str,
    row_order: Iterable[str] | None = None,
    col_order: Iterable[str] | None = None,
) -> "plt.Figure":
    """A grid of coloured cells, one per (row, col), labelled with its status.

    Used for the coverage matrix (path x backend) and the edge-case matrix
    (case x check). Unknown statuses are drawn white.
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
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=STATUS_COLORS.get(value, "white"),
                                       edgecolor="white", linewidth=2))
            ax.text(j + 0.5, i + 0.5, value, ha="center", va="center", fontsize=7)
    ax.set_xlim(0, len(cols))
    ax.set_ylim(len(rows), 0)
    ax.set_xticks(np.arange(len(cols)) + 0.5, cols)
    ax.set_yticks(np.arange(len(rows)) + 0.5, rows, fontsize=8)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=10, pad=24)
    fig.tight_layout()
    return fig
