"""mpslab: thread-stress, isolated trials and honest statistics for concurrent PyTorch inference.

Quick start::

    from mpslab import StressConfig, run_stress
    result = run_stress(StressConfig(threads=64, iterations=200, sync_every=20, device="auto"))
    print(result.summary())
"""

from mpslab.run.backends import available_backends, get_backend  # noqa: E402
from mpslab.run.config import ConfigError, StressConfig  # noqa: E402
from mpslab.run.runner import StressResult, run_stress  # noqa: E402
from mpslab.run.timing import Measurement, SyncTimer, measure  # noqa: E402
from mpslab.run.workloads import WorkerContext, get_workload, list_workloads, register_workload  # noqa: E402
from mpslab.studies import (  # noqa: E402,F401  (coverage walkthrough, edge-case catalogue)
    edges,
    probes,
    scenarios,  # noqa: E402,F401  (registers the scenario library's workloads)
)
from mpslab.trials import faults  # noqa: E402,F401  (registers the fault workloads)
from mpslab.trials.isolate import run_trials  # noqa: E402
from mpslab.trials.records import load_records  # noqa: E402
from mpslab.trials.stats import compare_rates, failure_rate  # noqa: E402
from mpslab.version import __version__  # noqa: E402

__all__ = [
    "__version__",
    "StressConfig",
    "ConfigError",
    "run_stress",
    "StressResult",
    "register_workload",
    "get_workload",
    "list_workloads",
    "WorkerContext",
    "get_backend",
    "available_backends",
    "SyncTimer",
    "measure",
    "Measurement",
    "run_trials",
    "failure_rate",
    "compare_rates",
    "load_records",
]


_LAZY = {"sweep": "mpslab.studies.sweep", "plots": "mpslab.report.plots", "pipeline": "mpslab.report.pipeline"}


def __getattr__(name: str):
    """``from mpslab import plots`` (and sweep, pipeline) without paying for matplotlib at every import."""
    if name in _LAZY:
        import importlib

        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'mpslab' has no attribute {name!r}")
