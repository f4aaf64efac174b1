"""The scenario catalogue: one entry per scenario, what it reproduces, where it comes from, how to run it.

This module is data (plus two lookups). The step functions live beside it
(``kernels``, ``handoff``, ``models``, ``lifecycle``), each registered as a
workload under the scenario's name; the library runner is ``run``. An entry's
``threads`` / ``iterations`` / ``size`` / ``params`` / ``warmup`` /
``sync_every`` are the library's defaults for an isolated-trial run; ``cold``
says the bug shows only in a fresh process (run it as isolated trials, no
warm-up); ``launch`` names the child start mode the run needs (``spawn`` where
the interpreter's own exit is what is measured).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpslab.studies.lookup import entry_named

__all__ = ["Scenario", "SCENARIOS", "get_scenario", "scenario_names"]


@dataclass(frozen=True)
class Scenario:
    name: str
    does: str
    source: str  # the one-line citation
    threads: int = 4
    iterations: int = 10
    size: int = 64
    params: dict[str, Any] = field(default_factory=dict)
    warmup: int = 1
    sync_every: int = 0
    cold: bool = False
    launch: str = "auto"  # run_trials mode the scenario needs


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "threads-arange",
        "arange + linspace over growing lengths, dtype cycling f32/f16/bf16, host read",
        "pytorch/pytorch#197805 (2 threads x 5 iterations crashed every run, torch 2.14 MPS)",
        threads=2,
        iterations=5,
        size=64,
    ),
    Scenario(
        "unary-burst",
        "15 unary ops (tanh ... log), one per thread, released at one barrier, in-domain values",
        "pytorch/pytorch#167541 (shader-cache race on first use; cold process only)",
        threads=15,
        iterations=1,
        size=256,
        warmup=0,
        cold=True,
    ),
    Scenario(
        "nonzero",
        "torch.nonzero of a random mask from several threads",
        "pytorch/pytorch#100285, pytorch/pytorch#108996",
        threads=4,
        iterations=10,
        size=64,
    ),
    Scenario(
        "cast-sync",
        "float16 -> float32 casts, then a per-thread synchronize",
        "PixlStash project notes (M1 Pro, torch 2.13.0/2.14: 10/10 runs failed)",
        threads=4,
        iterations=20,
        size=64,
    ),
    Scenario(
        "copy-sync",
        "host -> device copies, then a per-thread synchronize (control)",
        "PixlStash project notes (M1 Pro, torch 2.13.0/2.14: 4-6/10 runs failed)",
        threads=4,
        iterations=20,
        size=64,
    ),
    Scenario(
        "copy-nosync",
        "host -> device copies, no synchronize (control)",
        "PixlStash project notes (M1 Pro, torch 2.13.0/2.14: 0/10 runs failed)",
        threads=4,
        iterations=20,
        size=64,
    ),
    Scenario(
        "empty-cache-under-load",
        "thread 0 empties the allocator cache every step while the others run an MLP",
        "mpslab edge case empty_cache_race; allocator-cache release under concurrent use",
        threads=4,
        iterations=20,
        size=64,
    ),
    Scenario(
        "exit-after-work",
        "threads queue matmuls and the process exits with no final synchronize",
        "pytorch/pytorch#188812 (exit with device work queued)",
        threads=4,
        iterations=10,
        size=256,
        launch="spawn",
    ),
    Scenario(
        "sdpa-contiguous",
        "linear -> unflatten -> transpose -> contiguous -> SDPA on shared weights",
        "dropbox/dML metal_mps_parallel tests/minimal_mps_contiguous_race.py (8 threads x 30 iterations)",
        threads=8,
        iterations=30,
        size=64,
    ),
    Scenario(
        "handoff",
        "a tensor produced in one thread, consumed in another, synchronised correctly",
        "mpslab control: correct cross-thread hand-off (events / wait_stream / record_stream)",
        threads=4,
        iterations=10,
        size=64,
    ),
    Scenario(
        "mlp-origin",
        "inference: shared MLP 512 -> 1024 -> 1024 -> 512 under inference_mode",
        "the verification round's model shape",
        threads=4,
        iterations=10,
        params={"batch": 8},
    ),
    Scenario(
        "transformer",
        "inference: a shared nn.TransformerEncoderLayer under inference_mode",
        "PyTorch nn.TransformerEncoderLayer (fast path in eval + inference_mode)",
        threads=4,
        iterations=5,
        params={"d_model": 64, "heads": 4, "seq": 16, "batch": 2},
    ),
    Scenario(
        "convnet",
        "inference: a small shared CNN in channels_last under inference_mode",
        "channels_last convolution inference, shared weights",
        threads=4,
        iterations=5,
        params={"batch": 2, "image": 32},
    ),
)


def scenario_names() -> list[str]:
    return [s.name for s in SCENARIOS]


def get_scenario(name: str) -> Scenario:
    """The entry named ``name``; ``KeyError`` with one line listing the known names."""
    return entry_named(SCENARIOS, name, "scenario")
