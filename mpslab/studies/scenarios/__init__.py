"""The scenario library: workloads reduced from public MPS bug reports, plus real inference models.

Importing this package registers every scenario as a workload (``catalogue`` lists
them with their citations; ``kernels``, ``handoff``, ``models`` and ``lifecycle``
hold the steps; ``run`` runs the library as isolated trials and builds its table).
``python -m mpslab scenarios`` prints the listing. Not the edge-case catalogue
(``mpslab.studies.edges``), which reaches two of these through ``lifecycle``.
"""

from mpslab.studies.scenarios import handoff, kernels, lifecycle, models  # noqa: F401  (registration)
from mpslab.studies.scenarios.catalogue import SCENARIOS, Scenario, get_scenario, scenario_names
from mpslab.studies.scenarios.run import library_table, run_library, scenario_config, scenario_listing

__all__ = [
    "SCENARIOS",
    "Scenario",
    "get_scenario",
    "scenario_names",
    "scenario_listing",
    "scenario_config",
    "run_library",
    "library_table",
]
