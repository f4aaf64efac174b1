"""torch's process-wide settings: a snapshot before a run, the changes after it, and the way back.

Several of torch's settings belong to the process, not to the thread that sets them: a worker
thread that calls ``torch.set_default_dtype(torch.float16)`` changes it for every thread, the
main thread included (torch 2.13 on the CPU: the default dtype, deterministic-algorithm mode and
its warn-only flag, the float32 matmul precision, the ``torch.backends`` flags and precisions,
anomaly detection, warn-always, ``fill_uninitialized_memory``; grad mode, inference mode, the
default device and autocast are per thread). The serial replay runs in the main thread after the
run, so a setting a worker left behind would change what the replay computes.

``snapshot()`` reads every setting this torch has (a setting whose getter is missing or fails is
left out); ``changes(before, after)`` words each difference ("default dtype float32 -> float16");
``restore(before)`` sets back each setting that differs now and returns the names it could not.
The global random generator is not a setting here: workloads draw from their own generators.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["SETTINGS", "Setting", "snapshot", "changes", "restore", "describe_value"]


@dataclass(frozen=True)
class Setting:
    name: str  # as printed: the torch call or attribute a reader can look up
    get: Callable[[], Any]
    set: Callable[[Any], None]


def _attr(path: str) -> Setting:
    """A plain attribute of a ``torch.backends`` module, e.g. ``cudnn.benchmark``."""
    owner_path, _, attr = path.rpartition(".")

    def owner() -> Any:
        obj: Any = torch.backends
        for part in owner_path.split(".") if owner_path else ():
            obj = getattr(obj, part)
        return obj

    return Setting(f"torch.backends.{path}", lambda: getattr(owner(), attr), lambda v: setattr(owner(), attr, v))


def _deterministic(enabled: Any = None, warn_only: Any = None) -> None:
    torch.use_deterministic_algorithms(
        torch.are_deterministic_algorithms_enabled() if enabled is None else enabled,
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled() if warn_only is None else warn_only,
    )


def _fill_uninitialized(value: bool) -> None:
    torch.utils.deterministic.fill_uninitialized_memory = value  # type: ignore[attr-defined]


def _sdp(kind: str) -> Setting:
    cuda = torch.backends.cuda
    return Setting(
        f"torch.backends.cuda.{kind}_sdp_enabled",
        getattr(cuda, f"{kind}_sdp_enabled"),
        getattr(cuda, f"enable_{kind}_sdp"),
    )


def _candidates() -> list[Callable[[], Setting]]:
    """Every setting this module knows, in the order ``restore`` sets them (general before specific)."""
    b = torch.backends
    return [
        lambda: Setting("default dtype", torch.get_default_dtype, torch.set_default_dtype),
        lambda: Setting(
            "deterministic algorithms", torch.are_deterministic_algorithms_enabled, lambda v: _deterministic(enabled=v)
        ),
        lambda: Setting(
            "deterministic algorithms warn_only",
            torch.is_deterministic_algorithms_warn_only_enabled,
            lambda v: _deterministic(warn_only=v),
        ),
        lambda: Setting(
            "torch.utils.deterministic.fill_uninitialized_memory",
            lambda: torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
            _fill_uninitialized,
        ),
        lambda: Setting(
            "float32 matmul precision", torch.get_float32_matmul_precision, torch.set_float32_matmul_precision
        ),
        # The precision switches of torch >= 2.9; older builds have the allow_tf32 flags instead.
        lambda: _attr("fp32_precision"),
        lambda: _attr("cuda.matmul.fp32_precision"),
        lambda: _attr("cudnn.fp32_precision"),
        lambda: _attr("cudnn.conv.fp32_precision"),
        lambda: _attr("cudnn.rnn.fp32_precision"),
        lambda: _attr("mkldnn.fp32_precision"),
        lambda: _attr("mkldnn.matmul.fp32_precision"),
        lambda: _attr("mkldnn.conv.fp32_precision"),
        lambda: _attr("mkldnn.rnn.fp32_precision"),
        *(
            []
            if hasattr(b.cuda.matmul, "fp32_precision")
            else [lambda: _attr("cuda.matmul.allow_tf32"), lambda: _attr("cudnn.allow_tf32")]
        ),
        lambda: _attr("cuda.matmul.allow_fp16_reduced_precision_reduction"),
        lambda: _attr("cuda.matmul.allow_bf16_reduced_precision_reduction"),
        lambda: _attr("cudnn.enabled"),
        lambda: _attr("cudnn.benchmark"),
        lambda: _attr("cudnn.deterministic"),
        lambda: _attr("mkldnn.enabled"),
        lambda: _attr("opt_einsum.enabled"),
        lambda: _attr("opt_einsum.strategy"),
        lambda: _attr("quantized.engine"),
        lambda: _sdp("flash"),
        lambda: _sdp("mem_efficient"),
        lambda: _sdp("math"),
        lambda: _sdp("cudnn"),
        lambda: Setting(
            "torch.backends.mha.get_fastpath_enabled",
            torch.backends.mha.get_fastpath_enabled,
            torch.backends.mha.set_fastpath_enabled,
        ),
        lambda: Setting(
            "torch.backends.cuda.preferred_linalg_library",
            torch.backends.cuda.preferred_linalg_library,
            torch.backends.cuda.preferred_linalg_library,
        ),
        lambda: Setting("intra-op threads", torch.get_num_threads, torch.set_num_threads),
        lambda: Setting("anomaly detection", torch.is_anomaly_enabled, lambda v: torch.autograd.set_detect_anomaly(v)),
        lambda: Setting("warn always", torch.is_warn_always_enabled, torch.set_warn_always),
    ]


def _available() -> tuple[Setting, ...]:
    found = []
    for make in _candidates():
        try:
            setting = make()
            setting.get()
        except Exception:  # not in this torch (older, or a build without the backend): not snapshotted
            continue
        found.append(setting)
    return tuple(found)


SETTINGS: tuple[Setting, ...] = _available()


def snapshot() -> dict[str, Any]:
    """The value of every setting in ``SETTINGS``, read in this thread."""
    out = {}
    for s in SETTINGS:
        try:
            out[s.name] = s.get()
        except Exception:
            continue
    return out


def describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    return str(value).removeprefix("_LinalgBackend.")


def changes(before: dict[str, Any], after: dict[str, Any], unrestored: Iterable[str] = ()) -> list[str]:
    """One line per setting whose value differs: ``"default dtype float32 -> float16"``.

    A setting named in ``unrestored`` (what ``restore`` returned) says that it is still changed.
    """
    stuck = set(unrestored)
    return [
        f"{name} {describe_value(before[name])} -> {describe_value(after[name])}"
        + (" (could not be set back)" if name in stuck else "")
        for name in before
        if name in after and after[name] != before[name]
    ]


def restore(before: dict[str, Any]) -> list[str]:
    """Set back each setting that differs from ``before`` now; the names of those still different after."""
    for s in SETTINGS:
        if s.name not in before:
            continue
        try:
            if s.get() != before[s.name]:
                s.set(before[s.name])
        except Exception:
            continue  # reported below: it still differs
    now = snapshot()
    return [name for name in before if now.get(name) != before[name]]
