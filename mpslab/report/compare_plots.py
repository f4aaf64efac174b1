"""Two torch builds side by side: failure rates per scenario, and the throughput ratio with its interval.

``plot_compare`` reads ``mpslab.studies.compare.compare_table``'s frame and runs nothing. Not here:
the statistics behind the table (``studies.compare_stats``).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mpslab.report.style import figure_caption, interval_whiskers, times_axis

__all__ = ["plot_compare"]


def plot_compare(
    table: pd.DataFrame,
    *,
    label_a: str = "a",
    label_b: str = "b",
    title: str = "Two torch builds on the same scenarios",
) -> plt.Figure:
    """Left: failure rate (%) of a and b per scenario with 95% whiskers; right: throughput b / a.

    ``table`` is ``mpslab.studies.compare.compare_table``'s. The right panel's
    whisker is the exact signed-rank interval of the per-round ratio at the level the
    table computed (1 - 0.05/scenarios); a whisker that crosses 1 (the dashed line) is
    "not significant", and a scenario with too few rounds has no point.
    """
    if table.empty:
        raise ValueError("plot_compare: no scenarios to plot")
    n = len(table)
    y = np.arange(n)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, 1.6 + 0.45 * n), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    for side, off, color, label in (("a", -0.18, "#7f7f7f", label_a), ("b", 0.18, "#1f77b4", label_b)):
        rate = table[f"{side}_rate"].to_numpy(float) * 100
        low = table[f"{side}_low"].to_numpy(float) * 100
        high = table[f"{side}_high"].to_numpy(float) * 100
        left.barh(y + off, rate, height=0.34, color=color, alpha=0.85, label=f"{side}: {label}", gid=f"rate-{side}")
        left.errorbar(rate, y + off, xerr=[rate - low, high - rate], fmt="none", ecolor="black", capsize=2)
    names = [f"{r.scenario}{' *' if r.significant else ''}" for r in table.itertuples()]
    left.set_yticks(y, names, fontsize=8)
    left.set_ylim(n - 0.5, -0.5)
    left.set_xlim(0, 100)
    left.set_xlabel("failure rate (% of isolated trials)")
    left.legend(fontsize=7, loc="lower right")
    left.grid(axis="x", alpha=0.3)
    ratio = table["speed_ratio"].to_numpy(float)
    lo, hi = table["speed_low"].to_numpy(float), table["speed_high"].to_numpy(float)
    ok = np.isfinite(ratio)
    interval_whiskers(right, ratio[ok], y[ok], lo[ok], hi[ok], gid="speed-ratio", markersize=4)
    right.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    right.set_xscale("log")
    times_axis(right)
    right.set_xlabel("throughput ratio b / a (median ops/s, log scale)")
    right.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{title}\na = {label_a}   b = {label_b}", fontsize=10)
    figure_caption(
        fig,
        "Left: bars are observed failure rates, whiskers exact (Clopper-Pearson) 95% intervals; "
        "* = Barnard's exact test significant after Holm over the scenarios (5% family-wise). Right: throughput "
        "of b over a per interleaved round (Hodges-Lehmann) with its exact signed-rank interval at 1 - 0.05/scenarios; "
        "> 1 means b is faster, a whisker across 1 is not significant, no point: too few rounds.",
    )
    fig.tight_layout()
    return fig
