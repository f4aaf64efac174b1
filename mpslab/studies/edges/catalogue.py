"""The edge-case catalogue (data): every case, what it does, and what to expect per backend.

What it is: ``CASES`` (40 cases in five groups: user-facing errors, memory, threads, inputs,
process, and the harness's own refused inputs), each declared once with its action and its
expectation per backend kind (``"*"`` for every other kind); ``list_cases``, ``get_case`` and
``edge_catalogue`` (case x backend, what is expected where; nothing runs) read it.

What it is not: the actions (``cases``, ``process``, ``harness``) or the code that runs them
(``runner``). To add an edge case: write its action in one of those modules and declare it here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from mpslab.run.config import ConfigError
from mpslab.studies.edges import cases, harness, process
from mpslab.studies.edges.expect import EdgeCase, completes, not_applicable, raises
from mpslab.studies.lookup import entry_named
from mpslab.studies.probes.status import BACKEND_KINDS

__all__ = ["CASES", "edge_catalogue", "get_case", "list_cases"]

_CONFIG_REFUSALS: tuple[tuple[str, Any], ...] = (
    ("threads", 0),
    ("threads", True),
    ("iterations", 0),
    ("sync_every", -1),
    ("size", 0),
    ("seed", -1),
    ("warmup", -1),
    ("throttle", 0),
    ("verify", "yes"),
    ("workload", "no-such-workload"),
    ("streams", "sideways"),
    ("dtype", "int8"),
    ("device", "tpu"),
    ("device", "cuda:99"),
    ("plugins", [1]),
    ("plugins", ["mpslab_no_such_plugin_module"]),
)


def _harness_cases() -> list[EdgeCase]:
    cases = []
    for param, value in _CONFIG_REFUSALS:
        cases.append(
            EdgeCase(
                f"config {param}={value!r}",
                "harness inputs",
                f"StressConfig({param}={value!r}) with the rest valid",
                harness.config_case({param: value}),
                {"*": raises(ConfigError, f"{param}=")},
            )
        )
    cases += [
        EdgeCase(
            "config throttle > threads",
            "harness inputs",
            "StressConfig(threads=2, throttle=3)",
            harness.config_case({"throttle": 3}),
            {"*": raises(ConfigError, "throttle=3")},
        ),
        EdgeCase(
            "config dtype='float64'",
            "harness inputs",
            "StressConfig(dtype='float64') on this backend",
            harness.config_case({"dtype": "float64"}),
            {
                "mps": raises(ConfigError, "dtype='float64'", note="MPS has no float64"),
                "*": completes("float64 is allowed here"),
            },
        ),
        EdgeCase(
            "config streams='per-thread'",
            "harness inputs",
            "StressConfig(streams='per-thread')",
            harness.config_case({"streams": "per-thread"}),
            {"*": harness.streams_expect},
        ),
        EdgeCase(
            "config from_dict unknown key",
            "harness inputs",
            "StressConfig.from_dict({'thread': 4})",
            harness.from_dict_unknown,
            {"*": raises(ConfigError, "unknown parameter")},
        ),
        EdgeCase(
            "run_stress(dict)",
            "harness inputs",
            "run_stress given a dict instead of a StressConfig",
            harness.run_stress_not_config,
            {"*": raises(TypeError, "needs a StressConfig")},
        ),
        EdgeCase(
            "run_probes(threads=0)",
            "harness inputs",
            "the probe runner given threads=0",
            harness.run_probes_bad,
            {"*": raises(ValueError, "threads=0")},
        ),
        EdgeCase(
            "run_edges(threads=0)",
            "harness inputs",
            "the edge-case runner given threads=0",
            harness.run_edges_bad,
            {"*": raises(ValueError, "threads=0")},
        ),
    ]
    return cases


_CPU_ONE_DEVICE = "the CPU backend is one device; there is no second device to mix with"
_CPU_NO_EVENTS = "the CPU backend has no device events (mpslab's HostEvent is a host-clock emulation, not torch)"
_CPU_NO_CACHE = "the CPU allocator keeps no cache: empty_cache does nothing there"
_CPU_NOTHING_QUEUED = "nothing is ever queued on the CPU backend: synchronize has nothing to wait for"
_CPU_NO_QUEUE_AT_EXIT = (
    "CPU ops finish before they return: no device work can be queued at exit (see exit_while_threads_in_ops)"
)

CASES: tuple[EdgeCase, ...] = (
    EdgeCase(
        "matmul_shape_mismatch",
        "user-facing errors",
        "(3x4) @ (5x6) on the device",
        cases.matmul_shape_mismatch,
        {"*": raises(RuntimeError, "cannot be multiplied")},
    ),
    EdgeCase(
        "tensors_on_two_devices",
        "user-facing errors",
        "torch.mm(device tensor, CPU tensor)",
        cases.two_devices,
        {
            "cpu": not_applicable(_CPU_ONE_DEVICE),
            "cuda": raises(RuntimeError, "same device"),
            "mps": raises(RuntimeError, "device", note="MPS wording not checked on hardware here"),
        },
    ),
    EdgeCase(
        "float64_on_device",
        "user-facing errors",
        "torch.ones(4, dtype=float64) on the device, then sum",
        cases.float64,
        {"mps": raises(TypeError, "float64", note="MPS has no float64"), "*": completes("float64 is supported")},
    ),
    EdgeCase(
        "negative_size",
        "user-facing errors",
        "torch.empty(-1) on the device",
        cases.negative_size,
        {"*": raises(RuntimeError, "negative dimension")},
    ),
    EdgeCase(
        "bad_view_size",
        "user-facing errors",
        "a 6-element tensor viewed as 7",
        cases.bad_view,
        {"*": raises(RuntimeError, "is invalid for input of size")},
    ),
    EdgeCase(
        "elapsed_time_before_record",
        "user-facing errors",
        "elapsed_time between two timing events never recorded (on MPS in a child process, with a timeout)",
        process.elapsed_before_record,
        {
            "cpu": not_applicable(_CPU_NO_EVENTS),
            # CUDA 13 builds of torch 2.11 raise ValueError ("Both events must be recorded ..."),
            # older builds RuntimeError
            "cuda": raises((RuntimeError, ValueError), "recorded"),
            "mps": raises(RuntimeError, note="an error, not a hang; MPS wording unchecked"),
        },
    ),
    EdgeCase(
        "oom_then_recovery",
        "memory",
        "an allocation past a per-process memory fraction (CPU: 2**60 bytes, "
        "no fraction exists there), then cache release and a 64 MiB allocation that must work",
        cases.oom_then_recovery,
        {
            "cpu": raises(RuntimeError, "allocate memory", note="no memory fraction on CPU"),
            "cuda": raises(torch.OutOfMemoryError, "out of memory"),
            "mps": raises(RuntimeError, "out of memory"),
        },
    ),
    EdgeCase(
        "empty_cache_race",
        "memory",
        "empty_cache() in a loop while T threads allocate, fill and check buffers",
        cases.empty_cache_race_case,
        {"cpu": not_applicable(_CPU_NO_CACHE), "*": completes()},
    ),
    EdgeCase(
        "worker_exception_mid_run",
        "threads",
        "run_stress where worker 0 raises at iteration 2 of 6",
        cases.worker_exception,
        {"*": completes("the error is captured for thread 0 only; the others verify")},
    ),
    EdgeCase(
        "synchronize_nothing_pending",
        "threads",
        "synchronize() x20 from T threads at once, nothing queued",
        cases.sync_nothing_pending,
        {"cpu": not_applicable(_CPU_NOTHING_QUEUED), "*": completes()},
    ),
    EdgeCase(
        "zero_size_inputs", "inputs", "matmul and sum with zero-size dimensions", cases.zero_size, {"*": completes()}
    ),
    EdgeCase(
        "non_contiguous_inputs",
        "inputs",
        "matmul of strided, transposed and expanded views",
        cases.non_contiguous,
        {"*": completes()},
    ),
    EdgeCase(
        "nan_inf_inputs",
        "inputs",
        "matmul, sum, max and nan_to_num with NaN and +/-Inf entries",
        cases.nan_inf,
        {"*": completes("IEEE NaN/Inf propagation")},
    ),
    EdgeCase(
        "exit_with_device_work_queued",
        "process",
        "child: T threads queue device work, no synchronize, interpreter exits",
        process.exit_with_device_work,
        {"cpu": not_applicable(_CPU_NO_QUEUE_AT_EXIT), "*": completes("child exits 0, no crash text")},
    ),
    EdgeCase(
        "exit_while_threads_in_ops",
        "process",
        "child: daemon threads loop on matmuls; the main thread "
        "returns, so the interpreter exits while they are inside torch ops",
        process.daemon_threads_exit,
        {"*": completes("child exits 0, no crash text")},
    ),
    EdgeCase(
        "keyboard_interrupt_in_worker",
        "process",
        "child: worker 0 raises KeyboardInterrupt mid-run",
        process.keyboard_interrupt_in_worker,
        {"*": completes("exit 0; KeyboardInterrupt reported on stderr; the other workers' results right")},
    ),
    EdgeCase(
        "keyboard_interrupt_main_mid_run",
        "process",
        "child: SIGINT while the main thread computes and "
        "workers run; main catches KeyboardInterrupt, stops and joins them",
        process.keyboard_interrupt_main,
        {"*": completes("exit 130; workers stopped; canary right afterwards")},
    ),
) + tuple(_harness_cases())


def list_cases() -> list[EdgeCase]:
    return list(CASES)


def get_case(name: str) -> EdgeCase:
    """The edge case named ``name``; ``KeyError`` with one line listing the known names."""
    return entry_named(CASES, name, "case")


def edge_catalogue() -> pd.DataFrame:
    """case x backend: what each case does and what is expected there (nothing runs)."""
    rows = []
    for c in CASES:
        row = {"case": c.name, "group": c.group, "does": c.does}
        for kind in BACKEND_KINDS:
            row[kind] = c.expectation(kind).describe()
        rows.append(row)
    return pd.DataFrame(rows)
