"""mpslab: thread-stress, isolated trials and honest statistics for concurrent PyTorch inference.

Quick start::

    from mpslab import StressConfig, run_stress
    result = run_stress(StressConfig(threads=64, iterations=200, sync_every=20, device="auto"))
    print(result.summary())

``import mpslab`` imports neither torch nor pandas: every name below is loaded the
first time it is used, and the built-in workloads are registered when the workload
registry is first read (a config is built, ``list_workloads()`` is called).
"""

from mpslab.run.workloads import add_provider as _add_provider
from mpslab.version import __version__

# The higher layers' workloads: the fault self-tests and the scenario library (see run/workloads.py).
_add_provider("mpslab.trials.faults")
_add_provider("mpslab.studies.scenarios")

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
    "run_batch",
    "TrialRecord",
    "TrialBatch",
    "failure_rate",
    "compare_rates",
    "load_records",
]

# name -> the module that defines it (a module's own name: the module itself)
_LAZY = {
    "available_backends": "mpslab.run.backends",
    "get_backend": "mpslab.run.backends",
    "ConfigError": "mpslab.run.config",
    "StressConfig": "mpslab.run.config",
    "StressResult": "mpslab.run.runner",
    "run_stress": "mpslab.run.runner",
    "Measurement": "mpslab.run.timing",
    "SyncTimer": "mpslab.run.timing",
    "measure": "mpslab.run.timing",
    "WorkerContext": "mpslab.run.workloads",
    "get_workload": "mpslab.run.workloads",
    "list_workloads": "mpslab.run.workloads",
    "register_workload": "mpslab.run.workloads",
    "run_trials": "mpslab.trials.isolate",
    "run_batch": "mpslab.trials.isolate",
    "TrialRecord": "mpslab.trials.trial",
    "TrialBatch": "mpslab.trials.trial",
    "load_records": "mpslab.trials.records",
    "compare_rates": "mpslab.trials.stats",
    "failure_rate": "mpslab.trials.stats",
    "edges": "mpslab.studies.edges",
    "probes": "mpslab.studies.probes",
    "scenarios": "mpslab.studies.scenarios",
    "faults": "mpslab.trials.faults",
    "sweep": "mpslab.studies.sweep",
    "plots": "mpslab.report.plots",
    "pipeline": "mpslab.report.pipeline",
}


def __getattr__(name: str):
    """Load a public name on first use (PEP 562), so that ``import mpslab`` stays cheap."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mpslab' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    value = mod if module.rpartition(".")[2] == name else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
