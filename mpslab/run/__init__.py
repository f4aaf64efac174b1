"""The run layer: one stress run in this process.

Lives here: ``StressConfig`` and its validation, the backend adapters, the workload registry, the
in-process runner with its serial-replay oracle, the environment block and device-synchronised timing.
Imports torch (the config and the registry only once work starts) and nothing above it (no trials,
studies or report); the higher layers' workloads reach the registry as named providers
(``workloads.add_provider``, called from the package's face).
"""
