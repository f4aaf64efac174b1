"""One adapter per device backend (cpu, cuda, mps) behind one interface.

The adapters are thin on purpose. What torch offers device-generically goes through
``torch.accelerator`` (``synchronize``; on CUDA also the allocator's counters and
``empty_cache``); what really differs per backend goes through that backend's module
(``torch.cuda`` streams and events, the MPS allocator's own counters, per-process memory
fractions, device names). Each adapter says plainly what its backend lacks (``has_streams``,
memory counters that return ``None``); capabilities are detected by feature (a build that
exposes ``torch.mps.Stream``), never by version number.

The modules are injected (``api=``, ``accel=``), which is how the MPS adapter is tested on
machines without Apple hardware: with ``unittest.mock.create_autospec`` of the real
``torch.mps`` / ``torch.accelerator`` modules, so a misspelt function or a wrong signature
fails a test (``tests/test_backends.py``). Not here: what runs on the device (workloads) or
timing (``timing``).
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Backend",
    "CpuBackend",
    "CudaBackend",
    "MpsBackend",
    "MemoryCounters",
    "HostEvent",
    "get_backend",
    "available_backends",
    "resolve_device",
    "backend_named",
]

# dtypes the harness offers; each backend narrows the list.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}


@dataclass(frozen=True)
class MemoryCounters:
    """Bytes held by the backend's allocator; ``None`` where the backend has no such counter."""

    allocated: int | None
    reserved: int | None  # cuda: reserved by the caching allocator; mps: driver-allocated

    def as_dict(self) -> dict[str, int | None]:
        return {"allocated": self.allocated, "reserved": self.reserved}


class HostEvent:
    """An event for a synchronous backend (cpu): the host clock at ``record``.

    On the CPU every op has finished when it returns, so the host clock marks the
    same point a device event would.
    """

    def __init__(self) -> None:
        self._t: float | None = None

    def record(self, stream: Any = None) -> None:
        self._t = time.perf_counter()

    def wait(self, stream: Any = None) -> None:
        return None

    def synchronize(self) -> None:
        return None

    def query(self) -> bool:
        return self._t is not None

    def elapsed_time(self, end: HostEvent) -> float:
        if self._t is None or end._t is None:
            raise RuntimeError("elapsed_time: both events must be recorded first")
        return (end._t - self._t) * 1e3


class Backend:
    """Interface every adapter implements. ``kind`` is ``cpu``, ``cuda`` or ``mps``."""

    kind: str = "?"
    has_streams: bool = False
    has_events: bool = True
    is_async: bool = False  # ops return before the device finishes
    dtypes: tuple[str, ...] = tuple(DTYPES)

    def __init__(self, index: int = 0) -> None:
        self.index = index

    # availability -------------------------------------------------------
    def is_available(self) -> bool:
        raise NotImplementedError

    def device_count(self) -> int:
        return 1 if self.is_available() else 0

    @property
    def device(self) -> torch.device:
        return torch.device(self.kind)

    # synchronisation ----------------------------------------------------
    def synchronize(self) -> None:
        """Wait for all work queued on this device (every stream)."""

    # events -------------------------------------------------------------
    def new_event(self, enable_timing: bool = True) -> Any:
        return HostEvent()

    # streams ------------------------------------------------------------
    def new_stream(self) -> Any:
        raise NotImplementedError(f"the {self.kind} backend has no streams")

    def current_stream(self) -> Any:
        return None

    @contextlib.contextmanager
    def use_stream(self, stream: Any) -> Iterator[None]:
        """Make ``stream`` current in this thread for the ``with`` block."""
        if stream is not None:
            raise NotImplementedError(f"the {self.kind} backend has no streams")
        yield

    def synchronize_stream(self, stream: Any) -> None:
        if stream is None:
            self.synchronize()
        else:
            stream.synchronize()

    # memory ---------------------------------------------------------------
    def memory(self) -> MemoryCounters:
        return MemoryCounters(None, None)

    def empty_cache(self) -> bool:
        """Release cached blocks to the system; ``False`` where the backend has no cache."""
        return False

    def set_memory_fraction(self, fraction: float) -> bool:
        """Cap this process's share of device memory; ``False`` where unsupported."""
        return False

    # description --------------------------------------------------------
    def device_name(self) -> str:
        raise NotImplementedError

    def versions(self) -> dict[str, str | None]:
        return {"torch": torch.__version__}

    def supports_dtype(self, name: str) -> bool:
        return name in self.dtypes

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.device}>"


class CpuBackend(Backend):
    kind = "cpu"

    def is_available(self) -> bool:
        return True

    def device_name(self) -> str:
        return platform.processor() or platform.machine() or "cpu"

    def versions(self) -> dict[str, str | None]:
        return {"torch": torch.__version__, "intra_op_threads": str(torch.get_num_threads())}


class CudaBackend(Backend):
    """NVIDIA (and ROCm, which torch exposes as ``cuda``) through ``torch.cuda``."""

    kind = "cuda"
    has_streams = True
    is_async = True

    def __init__(self, index: int = 0, api: Any = None, accel: Any = "torch") -> None:
        super().__init__(index)
        self.api = api if api is not None else torch.cuda
        self.accel = _accelerator() if isinstance(accel, str) else accel  # None: use the backend module only

    def is_available(self) -> bool:
        return bool(self.api.is_available())

    def device_count(self) -> int:
        return int(self.api.device_count()) if self.is_available() else 0

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", self.index)

    def synchronize(self) -> None:
        if self.accel is not None:
            self.accel.synchronize(self.index)
        else:
            self.api.synchronize(self.index)

    def new_event(self, enable_timing: bool = True) -> Any:
        return self.api.Event(enable_timing=enable_timing)

    def new_stream(self) -> Any:
        return self.api.Stream(device=self.index)

    def current_stream(self) -> Any:
        return self.api.current_stream(self.index)

    @contextlib.contextmanager
    def use_stream(self, stream: Any) -> Iterator[None]:
        if stream is None:
            yield
            return
        with self.api.stream(stream):
            yield

    def memory(self) -> MemoryCounters:
        src = self.accel if self.accel is not None and hasattr(self.accel, "memory_allocated") else self.api
        return MemoryCounters(int(src.memory_allocated(self.index)), int(src.memory_reserved(self.index)))

    def empty_cache(self) -> bool:
        (self.accel if self.accel is not None and hasattr(self.accel, "empty_cache") else self.api).empty_cache()
        return True

    def set_memory_fraction(self, fraction: float) -> bool:
        self.api.set_per_process_memory_fraction(fraction, self.index)
        return True

    def device_name(self) -> str:
        return str(self.api.get_device_name(self.index))

    def versions(self) -> dict[str, str | None]:
        return {
            "torch": torch.__version__,
            "cuda": getattr(torch.version, "cuda", None),
            "hip": getattr(torch.version, "hip", None),
        }


class MpsBackend(Backend):
    """Apple Metal through ``torch.mps`` (public API only).

    Streams are offered only when the installed torch exposes ``torch.mps.Stream``
    (no released torch up to 2.13 does); otherwise every thread shares the one MPS
    stream and ``per-thread`` streams are refused at configuration time.
    """

    kind = "mps"
    is_async = True
    dtypes = ("float32", "float16", "bfloat16")  # MPS has no float64

    def __init__(self, index: int = 0, api: Any = None, backends_api: Any = None, accel: Any = "torch") -> None:
        super().__init__(index)
        self.api = api if api is not None else torch.mps
        self.backends_api = backends_api if backends_api is not None else torch.backends.mps
        self.accel = _accelerator() if isinstance(accel, str) else accel  # None: use the backend module only

    @property
    def has_streams(self) -> bool:  # type: ignore[override]
        return hasattr(self.api, "Stream")

    def is_available(self) -> bool:
        return bool(self.backends_api.is_available())

    def synchronize(self) -> None:
        if self.accel is not None:
            self.accel.synchronize()
        else:
            self.api.synchronize()

    def new_event(self, enable_timing: bool = True) -> Any:
        return self.api.event.Event(enable_timing=enable_timing)

    def new_stream(self) -> Any:
        if not self.has_streams:
            raise NotImplementedError("this torch build has no torch.mps.Stream")
        return self.api.Stream()

    def current_stream(self) -> Any:
        getter = getattr(self.api, "current_stream", None)
        return getter() if getter is not None else None

    @contextlib.contextmanager
    def use_stream(self, stream: Any) -> Iterator[None]:
        if stream is None:
            yield
            return
        if not self.has_streams:
            raise NotImplementedError("this torch build has no torch.mps.Stream")
        with self.api.stream(stream):
            yield

    def memory(self) -> MemoryCounters:
        return MemoryCounters(int(self.api.current_allocated_memory()), int(self.api.driver_allocated_memory()))

    def empty_cache(self) -> bool:
        self.api.empty_cache()
        return True

    def set_memory_fraction(self, fraction: float) -> bool:
        self.api.set_per_process_memory_fraction(fraction)
        return True

    def device_name(self) -> str:
        mac = platform.mac_ver()[0]
        return f"Apple MPS ({platform.machine()}, macOS {mac})" if mac else "Apple MPS"

    def versions(self) -> dict[str, str | None]:
        return {"torch": torch.__version__, "macos": platform.mac_ver()[0] or None}


def _accelerator() -> Any:
    """``torch.accelerator`` where this torch has it (2.6 and later), else ``None``."""
    return getattr(torch, "accelerator", None)


_KINDS = {"cpu": CpuBackend, "cuda": CudaBackend, "mps": MpsBackend}


def get_backend(device: str | torch.device) -> Backend:
    """The adapter for a concrete device string such as ``cpu``, ``cuda:1`` or ``mps``."""
    dev = torch.device(device)
    cls = _KINDS.get(dev.type)
    if cls is None:
        raise ValueError(f"device={str(device)!r}: no mpslab backend for {dev.type!r} (have cpu, cuda, mps)")
    return cls(dev.index or 0)


def available_backends() -> list[str]:
    """Backend kinds usable on this machine, best first (mps, cuda, cpu)."""
    return [k for k in ("mps", "cuda", "cpu") if _KINDS[k]().is_available()]


def resolve_device(device: str) -> str:
    """``auto`` -> mps if available, else cuda, else cpu; other names pass through."""
    if device == "auto":
        return available_backends()[0]
    return device


def backend_named(device: object, param: str = "device") -> Backend:
    """The adapter for a device as a user writes it (``auto``, ``CPU``, `` cuda:1``); anything else is a
    ``ValueError`` of one line naming ``param`` and the value, before any work starts."""
    if not isinstance(device, str):
        raise ValueError(f"{param}={device!r}: must be a string such as cpu, cuda, cuda:N, mps or auto")
    try:
        return get_backend(resolve_device(device.strip().lower()))
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"{param}={device!r}: {exc}") from None
