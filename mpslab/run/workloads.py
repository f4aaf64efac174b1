"""The workload registry: named pieces of device work that the runner repeats.

A workload is a per-iteration ``step(ctx, i) -> Tensor`` and, optionally, a
``setup(ctx) -> state`` run once per run (build a model every thread then shares).
``step`` returns its output tensor (not its ``.sum()``): the runner fingerprints
it (``mpslab.run.oracle``), position by position. A step that returns a 0-d
scalar still works, but then a race that only moves values around inside the
output cannot be seen. It must draw all randomness from ``ctx.generator``, the
per-thread generator the runner hands it. That is what lets the serial-replay
oracle recompute every thread's expected answers.

Register your own from a notebook cell or a module::

    from mpslab import register_workload

    @register_workload("mlp", description="two-layer MLP forward, weights shared")
    def mlp(ctx, i):
        x = torch.randn(ctx.size, ctx.size, generator=ctx.generator,
                        device=ctx.device, dtype=ctx.dtype)
        return ctx.state(x)

    @mlp.setup
    def build(ctx):
        return torch.nn.Linear(ctx.size, ctx.size).to(ctx.device, ctx.dtype)

or call it: ``register_workload("name", step, description=..., setup=...)``.

A workload may declare parameters (``params={"batch": Param(int, 8, "rows")}``,
see ``mpslab.run.params``): the config validates them and the step reads
``ctx.params["batch"]``. It may say where it cannot run (``applies(kind, dtype)``
returns the reason, or ``None`` where it can), and ``final_sync=False`` makes
the runner skip its final synchronisation and the oracle (the process's exit is
then the measurement).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mpslab.run.params import Param, Params

if TYPE_CHECKING:  # torch is imported by the workloads themselves, when work starts
    import torch

__all__ = [
    "Workload",
    "WorkerContext",
    "register_workload",
    "get_workload",
    "list_workloads",
    "unregister_workload",
    "add_provider",
]


@dataclass
class WorkerContext:
    """What a workload sees: where to run, how big, and its own random generator."""

    thread: int
    device: torch.device
    dtype: torch.dtype
    size: int
    generator: torch.Generator | None
    state: Any = None  # the value ``setup`` returned, shared by every thread
    params: Params = field(default_factory=Params)  # the config's workload parameters, validated


StepFn = Callable[[WorkerContext, int], "torch.Tensor"]
SetupFn = Callable[[WorkerContext], Any]


@dataclass
class Workload:
    name: str
    step: StepFn
    description: str
    setup_fn: SetupFn | None = None
    # Typical L2 norm of one step's output at a given size (for a 0-d output: its typical
    # magnitude): the oracle's tolerance is relative to max(||expected||_2, scale), so an
    # output that happens to land near zero does not turn rounding noise into a false mismatch.
    scale: Callable[[int], float] = field(default=lambda size: 1.0)
    kind: str = "workload"  # "workload" or "fault" (instrument self-test)
    # The batched baseline's form: ``batched(ctx, i, batch)`` does ``batch`` steps' work as one
    # op (``mpslab.studies.sweep.batched_baseline``); None where the workload has no batched form.
    batched: Callable[[WorkerContext, int, int], torch.Tensor] | None = None
    params: Mapping[str, Param] = field(default_factory=dict)  # declared parameters
    # ``applies(backend_kind, dtype)``: None where the workload can run, else why it cannot.
    applies: Callable[[str, str], str | None] | None = None
    final_sync: bool = True  # False: no final synchronisation and no oracle (exit-after-work)
    # ``check_params(params)``: None when the parameters fit together, else why not (e.g. d_model % heads).
    check_params: Callable[[Params], str | None] | None = None

    def not_applicable(self, kind: str, dtype: str) -> str | None:
        """Why this workload cannot run on backend ``kind`` with ``dtype``; ``None`` when it can."""
        return self.applies(kind, dtype) if self.applies is not None else None

    def setup(self, fn: SetupFn) -> SetupFn:
        """Decorator: attach a once-per-run set-up step to this workload."""
        self.setup_fn = fn
        return fn

    def __call__(self, ctx: WorkerContext, i: int) -> torch.Tensor:
        return self.step(ctx, i)


_REGISTRY: dict[str, Workload] = {}

# Modules whose import registers built-in workloads. They import torch, so they are imported the first
# time the registry is read or written (when work starts), not when mpslab is imported: `--help` and a
# config's defaults stay torch-free. Higher layers add theirs from the package's face (``add_provider``).
_PROVIDERS: list[str] = ["mpslab.run.builtin_workloads"]
_PROVIDERS_LOCK = threading.RLock()
_loading = False


def add_provider(module: str) -> None:
    """Name a module that registers workloads when imported; it is imported when the registry is first used."""
    with _PROVIDERS_LOCK:
        if module not in _PROVIDERS:
            _PROVIDERS.append(module)


def _load_providers() -> None:
    global _loading
    if not _PROVIDERS:
        return
    with _PROVIDERS_LOCK:
        if _loading:  # a provider's own registrations, while it is being imported
            return
        _loading = True
        try:
            while _PROVIDERS:
                importlib.import_module(_PROVIDERS.pop(0))
        finally:
            _loading = False


def register_workload(
    name: str,
    step: StepFn | None = None,
    *,
    description: str,
    setup: SetupFn | None = None,
    scale: Callable[[int], float] | None = None,
    kind: str = "workload",
    replace: bool = True,
    batched: Callable[[WorkerContext, int, int], torch.Tensor] | None = None,
    params: Mapping[str, Param] | None = None,
    applies: Callable[[str, str], str | None] | None = None,
    final_sync: bool = True,
    check_params: Callable[[Params], str | None] | None = None,
):
    """Register ``step`` under ``name``; without ``step``, return a decorator.

    Re-registering a name replaces it (so a notebook cell can be re-run); pass
    ``replace=False`` to refuse that instead.
    """
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"workload name={name!r}: must be a non-empty string without spaces")
    if not description or not isinstance(description, str):
        raise ValueError(f"workload {name!r}: description must be a non-empty string")

    def add(fn: StepFn) -> Workload:
        _load_providers()  # a built-in loaded later must not replace what the caller registers now
        if not callable(fn):
            raise TypeError(f"workload {name!r}: step must be callable, got {type(fn).__name__}")
        if not replace and name in _REGISTRY:
            raise ValueError(f"workload {name!r} is already registered")
        wl = Workload(
            name,
            fn,
            description.strip().splitlines()[0],
            setup,
            kind=kind,
            batched=batched,
            params=dict(params or {}),
            applies=applies,
            final_sync=final_sync,
            check_params=check_params,
        )
        if scale is not None:
            wl.scale = scale
        _REGISTRY[name] = wl
        return wl

    return add if step is None else add(step)


def unregister_workload(name: str) -> None:
    _load_providers()
    _REGISTRY.pop(name, None)


def get_workload(name: str) -> Workload:
    _load_providers()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"workload={name!r}: unknown; registered: {', '.join(sorted(_REGISTRY))}") from None


def list_workloads(kind: str | None = None) -> list[Workload]:
    """Registered workloads sorted by name (``kind="fault"`` for the self-test ones)."""
    _load_providers()
    return [w for _, w in sorted(_REGISTRY.items()) if kind is None or w.kind == kind]
