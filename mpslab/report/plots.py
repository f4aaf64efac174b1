"""The workbook's figures in one namespace (``mpslab.plots``), one function each, saved through ``save_figure``.

Plot functions read tidy DataFrames (records); they never run workloads. Each returns the
matplotlib Figure; ``save_figure`` writes it as PNG and SVG. Figures carry their context in the
title (device, torch version, workload) so they read in a review without the notebook. The
figures live by what they show: ``sweep_plots`` (versus threads), ``catalogue_plots`` (status
matrices, scenario rates) and ``compare_plots`` (two builds), re-exported here; the advisor's
(``advisor_plots``) and the release matrix's (``matrix_plots``) are imported from their modules.
"""

from __future__ import annotations

from mpslab.report.catalogue_plots import (
    plot_coverage_matrix,
    plot_edge_matrix,
    plot_scenario_rates,
    plot_status_matrix,
)
from mpslab.report.compare_plots import plot_compare
from mpslab.report.style import STATUS_COLORS, context_title, save_figure
from mpslab.report.sweep_plots import plot_latency, plot_outcome_matrix, plot_throughput

__all__ = [
    "save_figure",
    "STATUS_COLORS",
    "context_title",
    "plot_throughput",
    "plot_latency",
    "plot_outcome_matrix",
    "plot_status_matrix",
    "plot_coverage_matrix",
    "plot_edge_matrix",
    "plot_scenario_rates",
    "plot_compare",
]
