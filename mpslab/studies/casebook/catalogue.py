"""The casebook's catalogue: real, public, cited concurrency bugs of released PyTorch, one entry each.

This module is data (plus lookups, and builders for entries that share settings). Each entry names
the workload that reproduces the report (registered by ``cpu_cases`` or ``device_cases`` under the
case's name), where the report is (``links``), the symptom as reported, the affected and fixed
versions as reported, the platform, and the expected outcome class of an isolated trial under an
affected build (``error``, ``crash``, ``hang``, ``mismatch``) or ``ok`` for a control: a fixed bug
that must stay fixed. ``threads`` / ``iterations`` / ``size`` / ``warmup`` are the defaults an
isolated-trial run uses. Not the scenario library
(``mpslab.studies.scenarios``: MPS patterns, no expected outcome per release).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpslab.studies.lookup import entry_named
from mpslab.trials.outcomes import Outcome

__all__ = ["Case", "CASES", "get_case", "case_names", "PLUGIN"]

PLUGIN = "mpslab.studies.casebook"  # what a trial child imports to register the cases' workloads


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    links: tuple[str, ...]
    symptom: str
    versions: str  # affected and fixed, as reported
    platform: str  # cpu | cuda | mps
    expected: Outcome  # outcome class under an affected build; ok for a control
    control: bool = False
    threads: int = 4
    iterations: int = 10
    size: int = 16
    warmup: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = 120.0
    streams: str = "shared"  # "per-thread": each worker on its own stream (CUDA), as the reported pattern does


_PT = "https://github.com/pytorch/pytorch"


def _control(
    name: str, title: str, links: tuple[str, ...], symptom: str, versions: str, platform: str, **trial: Any
) -> Case:
    """A control: a fixed bug that must stay fixed, so the outcome expected of it is ``ok``.
    ``trial`` holds the trial defaults it sets (threads, iterations, size, streams)."""
    return Case(name, title, links, symptom, versions, platform, Outcome.OK, control=True, **trial)


def _first_inverse_case(name: str, title: str, links: tuple[str, ...], symptom: str, versions: str) -> Case:
    """A case of pytorch#90613 (the first torch.inverse calls of a process race to load CUDA's lazy linalg
    library): an error, from 4 threads; 2 steps of 4x4 matrices, since only a process's first calls race."""
    return Case(name, title, links, symptom, versions, "cuda", Outcome.ERROR, threads=4, iterations=2, size=4)


def _test_cuda_control(name: str, title: str, symptom: str, *, size: int) -> Case:
    """A control taken from PyTorch's own test_cuda.py multi-thread tests: they share the link, the
    platform, the pass expected on every release and the pattern (two threads, each on its own stream,
    100 steps); only what they guard and the tensor size differ."""
    return _control(
        name,
        title,
        (f"{_PT}/blob/main/test/test_cuda.py",),
        symptom,
        "PyTorch's own test, expected to pass on every release",
        "cuda",
        threads=2,
        iterations=100,
        size=size,
        streams="per-thread",
    )


CASES: tuple[Case, ...] = (
    Case(
        "pt112775-fx-trace-per-thread",
        "torch.fx.symbolic_trace in several threads, each tracing and running its own model",
        (f"{_PT}/issues/112775",),
        "NameError: module is not installed as a submodule (the tracer patches Module.__call__ "
        "process-wide while it traces; another thread's module call lands in the tracer)",
        "reported on 2.0 and 2.1 (all versions tried); open; failed here on 2.13.0",
        "cpu",
        Outcome.ERROR,
        threads=4,
        iterations=10,
    ),
    Case(
        "chemgraph110-fx-trace-while-serving",
        "one thread traces with torch.fx while the others serve a shared, untraced model",
        ("https://github.com/argonne-lcf/ChemGraph/issues/110", f"{_PT}/issues/112775"),
        "NameError: module is not installed as a submodule in the serving threads (MACE calculator "
        "called from parallel agent tool calls)",
        "downstream report 2026-04 (torch version not named); root cause pytorch#112775, open",
        "cpu",
        Outcome.ERROR,
        threads=4,
        iterations=100,  # 30 passed 3 of 3 trials here, 100 failed 3 of 3 (2.13.0, 2-core VM)
    ),
    Case(
        "pt186537-dynamo-config-thread",
        "recompile limit raised in the main thread; a worker compiles 12 shapes with fullgraph=True",
        (f"{_PT}/issues/186537", f"{_PT}/pull/173568"),
        "torch._dynamo.exc.FailOnRecompileLimitHit: compiler settings made thread-local, so the "
        "worker sees the default limit (8); fails with one worker thread: thread affinity, not a race",
        "regression of 2.12 (from #173568); 2.11 and earlier kept settings process-wide (unsloth#7019); open",
        "cpu",
        Outcome.ERROR,
        threads=1,
        iterations=12,
    ),
    Case(
        "onetrainer1495-compiled-update-thread",
        "compile settings made at start-up; a training thread runs a compiled update over 12 parameter shapes",
        ("https://github.com/Nerogar/OneTrainer/pull/1495", f"{_PT}/issues/186537"),
        "FailOnRecompileLimitHit in the training thread spawned by the UI (compiled optimizer, more "
        "than 8 distinct parameter shapes); fixed downstream by configuring compile per thread",
        "downstream fix merged 2026-06; the torch side is pytorch#186537 (2.12+), open",
        "cpu",
        Outcome.ERROR,
        threads=1,
        iterations=2,
    ),
    Case(
        "mstar167-dynamo-config-ignored",
        "dynamo settings assigned at import (main thread) read back in a worker thread",
        ("https://github.com/mstar-project/mstar/issues/167", "https://github.com/mstar-project/mstar/pull/178"),
        "settings silently ignored on the executor thread (log: hit config.recompile_limit (8)); "
        "the workload raises when the worker reads other values than the main thread set",
        "reported on torch 2.13 (2026-07), open downstream; root cause pytorch#186537",
        "cpu",
        Outcome.ERROR,
        threads=2,
        iterations=2,
    ),
    _first_inverse_case(
        "pt90613-inverse-first-call-threads",
        "torch.inverse first called from several threads at once in a fresh process",
        (f"{_PT}/issues/90613",),
        "RuntimeError: lazy wrapper should be called at most once",
        "reported on 1.13.0+cu117; open",
    ),
    _first_inverse_case(
        "monai5696-inverse-batch-infer",
        "batched inference in a thread pool, each task inverting affine matrices on the GPU",
        ("https://github.com/Project-MONAI/MONAI/issues/5696", f"{_PT}/issues/90613"),
        "RuntimeError from torch.inverse in a multi-thread context (MONAI Label batch inference)",
        "reported 2022-12 (labelled upstream fix required); root cause pytorch#90613",
    ),
    Case(
        "pt123177-compile-cudagraphs-threads",
        "a torch.compile'd model with CUDA graphs (reduce-overhead) called from several threads",
        (f"{_PT}/issues/123177",),
        "assertion inside the CUDA-graph trees when compiled models run in a multithreaded context",
        "reported 2024-04; open (reproduced on an H100 by PyTorch's repro agent, per its label)",
        "cuda",
        Outcome.ERROR,
        threads=4,
        iterations=4,
    ),
    Case(
        "unsloth7019-backward-thread-config",
        "recompile limit raised in the main thread; a fullgraph compiled function runs in backward",
        ("https://github.com/unslothai/unsloth/pull/7019", f"{_PT}/issues/186537"),
        "FailOnRecompileLimitHit at the first backward: autograd runs the device backward on its own "
        "worker threads, which do not see the main thread's settings",
        "reported on 2.12 (gpt-oss fine-tuning with gradient checkpointing); worked around downstream",
        "cuda",
        Outcome.ERROR,
        threads=1,
        iterations=2,
    ),
    Case(
        "pt197805-mps-two-threads",
        "two Python threads running MPS tensor ops (arange, unary ops) concurrently",
        (f"{_PT}/issues/197805", f"{_PT}/pull/197837"),
        "process crash (SIGSEGV/SIGABRT inside Metal); downstream trigger: F5-TTS batches in a thread pool",
        "reported on 2.14 (macOS 26, Apple M-series); closed; the cache guard's follow-up #197837 open",
        "mps",
        Outcome.CRASH,
        threads=2,
        iterations=5,
        size=64,
    ),
    _control(
        "pt115917-default-device-thread",
        "control: torch.set_default_device set and reset inside worker threads",
        (f"{_PT}/issues/115917", f"{_PT}/pull/116014"),
        "was: an exception from set_default_device in a thread (the mode stack was process-wide in Python)",
        "reported 2023-12 on main; fixed by #116014 (2023-12)",
        "cpu",
        threads=4,
        iterations=10,
    ),
    _control(
        "pt1868-autograd-threads",
        "control: backward of independent graphs from several threads",
        (f"{_PT}/issues/1868",),
        "was: occasional segfault, the autograd engine was not thread-safe",
        "reported 2017-06; closed",
        "cpu",
        threads=4,
        iterations=10,
    ),
    _control(
        "pt17896-scriptmodule-in-thread",
        "control: a torch.jit.ScriptModule subclass created and run in a worker thread",
        (f"{_PT}/issues/17896",),
        "was: deadlock while creating the ScriptModule outside the main thread",
        "reported 2019-03; closed",
        "cpu",
        threads=1,
        iterations=3,
    ),
    _control(
        "pt73789-jit-function-threads",
        "control: one torch.jit.script function called from several threads",
        (f"{_PT}/issues/73789",),
        "was: crashes inside the fuser's evaluator when a scripted function ran in several threads",
        "reported 2022-03; closed",
        "cpu",
        threads=4,
        iterations=20,
        size=64,
    ),
    _test_cuda_control(
        "pt-test-cuda-cublas-threads",
        "control: two threads on their own streams chain matmuls with one shared weight (test_cuda.py's cuBLAS test)",
        "guards per-thread cuBLAS handles (test_cublas_multiple_threads_same_device): with one shared handle a "
        "thread's gemm could land on another thread's stream and race with its own div_",
        size=1024,
    ),
    _test_cuda_control(
        "pt-test-cuda-cudnn-threads",
        "control: two threads on their own streams run a shared 2x2 convolution (test_cuda.py's cuDNN test)",
        "guards lazily created per-thread cuDNN handles (test_cudnn_multiple_threads_same_device): a shared "
        "handle would put one thread's convolution on another thread's stream",
        size=512,
    ),
)


def case_names() -> list[str]:
    return [c.name for c in CASES]


def get_case(name: str) -> Case:
    """The entry named ``name``; ``KeyError`` with one line listing the known names."""
    return entry_named(CASES, name, "case")
