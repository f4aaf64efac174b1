"""The release matrix's figure: failure rate per (case, build) with its interval, one row per case.

``plot_matrix(table, builds)`` takes ``mpslab.studies.matrix.matrix_table``'s frame
(case, build, failures, trials, rate, low, high) and draws, per case, one marker per
build in the order given with the interval as an error bar; a case's first failing
build (``transitions``) is ringed. ``write_matrix(result, out)`` writes the
matrix's CSVs, text report and figure into a folder. Not the table or the statistics (``studies.matrix``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from mpslab.report.style import plt

__all__ = ["plot_matrix", "write_matrix"]


def plot_matrix(
    table: pd.DataFrame,
    builds: Sequence[str],
    first_failing: Mapping[str, str] | None = None,
    *,
    title: str = "Failure rate per case and torch build (exact 95% intervals)",
):
    """One horizontal band per case, builds side by side; returns the matplotlib figure."""
    cases = list(dict.fromkeys(table["case"])) if len(table) else []
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.55 * max(1, len(cases)) * max(1, len(builds)) ** 0.5))
    colors = plt.get_cmap("viridis")
    n = max(1, len(builds))
    for j, build in enumerate(builds):
        part = table[table["build"] == build]
        ys, xs, lo, hi = [], [], [], []
        for r in part.itertuples():
            ys.append(cases.index(r.case) + (j - (n - 1) / 2) * 0.7 / n)
            xs.append(100 * r.rate)
            lo.append(100 * (r.rate - r.low))
            hi.append(100 * (r.high - r.rate))
        ax.errorbar(xs, ys, xerr=[lo, hi], fmt="o", color=colors(j / n if n > 1 else 0.3), label=build, capsize=3)
        for case, fb in (first_failing or {}).items():
            if fb == build and case in cases:
                row = part[part["case"] == case]
                if len(row):
                    y = ys[list(part["case"]).index(case)]
                    ax.plot(100 * row["rate"].iloc[0], y, "o", ms=14, mfc="none", mec="#d7191c", mew=1.5)
    ax.set_yticks(range(len(cases)))
    ax.set_yticklabels(cases)
    ax.invert_yaxis()
    ax.set_xlim(-3, 103)
    ax.set_xlabel("failed trials (%)")
    ax.set_title(title + ("\nringed: first failing build (Holm-adjusted)" if first_failing else ""), fontsize=10)
    ax.legend(title="build", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def write_matrix(result, out: str) -> list[str]:
    """The matrix's files in ``out``: table and tests as CSV, the text report, the figure (PNG, SVG)."""
    import os

    from mpslab.report.style import save_figure

    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, "matrix_table.csv"), os.path.join(out, "matrix_tests.csv")]
    result.table.to_csv(paths[0], index=False)
    result.tests.to_csv(paths[1], index=False)
    paths.append(os.path.join(out, "matrix_report.txt"))
    with open(paths[2], "w") as fh:
        fh.write(result.report() + "\n")
    if len(result.table):
        first = {r.case: r.first_failing_build for r in result.tests.itertuples() if r.first_failing_build}
        fig = plot_matrix(result.table, [b.label for b in result.builds], first)
        paths += save_figure(fig, "matrix", out)
        plt.close(fig)
    return paths
