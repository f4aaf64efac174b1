"""mpslab: thread-stress, isolated trials and honest statistics for concurrent PyTorch inference.

Quick start::

    from mpslab import StressConfig, run_stress
    result = run_stress(StressConfig(threads=64, iterations=200, sync_every=20, device="auto"))
    print(result.summary())
"""

__version__ = "0.1.0"

from .backends import available_backends, get_backend  # noqa: E402
from .config import ConfigError, StressConfig  # noqa: E402
from .stress import StressResult, run_stress  # noqa: E402
from .timing import Measurement, SyncTimer, measure  # noqa: E402
from .workloads import WorkerContext, get_workload, list_workloads, register_workload  # noqa: E402
from . import faults  # noqa: E402,F401  (registers the fault workloads)
from .isolate import run_trials  # noqa: E402
from .records import load_records  # noqa: E402
from .stats import compare_rates, failure_rate  # noqa: E402
from . import edges, probes  # noqa: E402,F401  (coverage walkthrough, edge-case catalogue)

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
