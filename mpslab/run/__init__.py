"""The run layer: one stress run in this process.

Lives here: ``StressConfig`` and its validation, the backend adapters, the workload registry, the
in-process runner with its serial-replay oracle, the environment block and device-synchronised timing.
Imports torch and nothing above it (no trials, studies or report).
"""
