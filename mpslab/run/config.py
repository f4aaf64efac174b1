"""``StressConfig``: every knob of a stress run, its default, and its validation.

A config is frozen and validated once, at construction: every bad value is
refused with one ``ConfigError`` line naming the parameter, the value and what
is allowed, before any work starts. ``device="auto"`` is resolved here (mps,
else cuda, else cpu), so a config always names the device it will run on.

Importing this module does not import torch (the command line reads the defaults
to print ``--help``); building a config does, since validation asks the backends.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mpslab.run.errors import ConfigError
from mpslab.run.params import ParamError, Params, resolve
from mpslab.run.values import check_int, parse_assignment
from mpslab.run.workloads import get_workload, list_workloads

if TYPE_CHECKING:
    import torch

__all__ = ["StressConfig", "ConfigError", "load_plugin", "STREAM_MODES", "option", "optional_int", "collect_params"]

STREAM_MODES = ("shared", "per-thread")


def optional_int(text: str) -> int | None:
    """A CLI limit: ``none``, ``off`` or ``0`` -> None (no limit), else the integer."""
    if text.strip().lower() in ("none", "off", "0"):
        return None
    return int(text)


def collect_params(texts: Any) -> dict[str, Any]:
    """``["batch=16", "mode=fast"]`` -> ``{"batch": 16, "mode": "fast"}`` (each ``parse_assignment``)."""
    return dict(parse_assignment(text, "params") for text in texts)


def option(default: Any, *, help: str, **cli: Any) -> Any:
    """A config field with what the command line needs to offer it (``dataclasses.field`` metadata).

    ``help`` is the flag's help (``%(default)s`` shows the default); ``cli`` may give
    ``flag`` (default ``--`` and the name with dashes), ``type`` (how argparse turns the
    text into the value; plain text when left out), ``metavar``, ``repeat`` (the flag may
    be given again; the values collected by ``collect``) and ``off`` (a ``(flag, value, help)``
    that sets the field to value).
    """
    return field(default=default, metadata={"help": help, **cli})


def load_plugin(spec: str) -> None:
    """Import a module name or a ``.py`` file so the workloads it registers exist."""
    if spec.endswith(".py"):
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise ConfigError(f"plugins={spec!r}: no such file")
        modname = "mpslab_plugin_" + os.path.splitext(os.path.basename(path))[0]
        if modname in sys.modules and getattr(sys.modules[modname], "__file__", None) == path:
            return
        loader_spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(loader_spec)  # type: ignore[arg-type]
        sys.modules[modname] = module
        try:
            loader_spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as exc:
            del sys.modules[modname]
            raise ConfigError(f"plugins={spec!r}: importing it failed: {type(exc).__name__}: {exc}") from exc
        return
    try:
        importlib.import_module(spec)
    except Exception as exc:
        raise ConfigError(f"plugins={spec!r}: importing it failed: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class StressConfig:
    """One stress run: ``threads`` workers x ``iterations`` steps of ``workload``.

    The fields (listed below from their own help, which the command line's flags
    show too) are checked at construction; ``params`` is checked against what the
    workload declares, its defaults filled in.
    """

    threads: int = option(64, help="worker threads, started together at a barrier (default %(default)s)", type=int)
    iterations: int = option(200, help="timed steps per thread (default %(default)s)", type=int)
    sync_every: int = option(
        20, help="synchronise every k iterations; 0 = only at the end (default %(default)s)", type=int
    )
    workload: str = option("seed", help="workload name, see `python -m mpslab workloads` (default %(default)s)")
    size: int = option(256, help="workload size, e.g. matrix side (default %(default)s)", type=int)
    dtype: str = option(
        "float32", help="float32 | float16 | bfloat16 | float64, as the backend allows (default %(default)s)"
    )
    device: str = option(
        "auto", help="auto | cpu | cuda | cuda:N | mps; auto = mps, else cuda, else cpu (default %(default)s)"
    )
    streams: str = option(
        "shared", help="shared (every thread on the current stream) | per-thread (a stream each) (default %(default)s)"
    )
    throttle: int | None = option(
        None, help="at most k threads in device work at once (default: no limit)", type=optional_int
    )
    seed: int = option(0, help="base of every thread's random seed (default %(default)s)", type=int)
    verify: str = option(
        "fingerprint",
        help="serial-replay oracle: fingerprint (each output's fingerprint) | full (every output kept and "
        "compared) | off; in Python True/False mean fingerprint/off (default %(default)s)",
        metavar="MODE",
        off=("--no-verify", "off", "the same as --verify off"),
    )
    warmup: int = option(
        1, help="untimed, unchecked warm-up iterations per thread, before the barrier (default %(default)s)", type=int
    )
    plugins: tuple[str, ...] = option(
        (),
        help="import a module or .py file that registers workloads (repeatable)",
        flag="--plugin",
        metavar="MODULE_OR_FILE",
        repeat=True,
        collect=tuple,
    )
    params: Params = option(
        Params(),
        help="a workload parameter, e.g. --param batch=16 (repeatable; see `mpslab workloads`)",
        flag="--param",
        metavar="KEY=VALUE",
        repeat=True,
        collect=collect_params,
    )
    full_cap_mb: float = option(
        256.0,
        help="--verify full is refused above this many MiB of kept outputs (default %(default)g)",
        type=float,
        metavar="MIB",
    )

    def __post_init__(self) -> None:
        from mpslab.run.backends import DTYPES, get_backend
        from mpslab.run.oracle import VERIFY_MODES, full_refusal, output_nbytes, verify_mode

        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        if isinstance(self.plugins, str):
            set_("plugins", (self.plugins,))
        elif isinstance(self.plugins, list):
            set_("plugins", tuple(self.plugins))
        if not isinstance(self.plugins, tuple) or not all(isinstance(p, str) for p in self.plugins):
            raise ConfigError(f"plugins={self.plugins!r}: must be a list of module names or .py paths")
        for spec in self.plugins:
            load_plugin(spec)

        check_int(self.threads, "threads", 1)
        check_int(self.iterations, "iterations", 1)
        check_int(self.sync_every, "sync_every", 0)
        check_int(self.size, "size", 1)
        check_int(self.seed, "seed", 0)
        check_int(self.warmup, "warmup", 0)
        if self.throttle is not None:
            check_int(self.throttle, "throttle", 1)
            if self.throttle > self.threads:
                raise ConfigError(f"throttle={self.throttle!r}: must be None or between 1 and threads ({self.threads})")
        mode = verify_mode(self.verify)
        if mode is None:
            raise ConfigError(
                f"verify={self.verify!r}: must be one of {', '.join(VERIFY_MODES)} "
                "(or True/False, aliases of fingerprint/off)"
            )
        set_("verify", mode)
        if (
            isinstance(self.full_cap_mb, bool)
            or not isinstance(self.full_cap_mb, (int, float))
            or not self.full_cap_mb > 0
            or self.full_cap_mb == float("inf")
        ):
            raise ConfigError(f"full_cap_mb={self.full_cap_mb!r}: must be a positive number of MiB")

        names = [w.name for w in list_workloads()]
        if self.workload not in names:
            raise ConfigError(f"workload={self.workload!r}: unknown; registered: {', '.join(names)}")
        workload = get_workload(self.workload)
        try:
            set_("params", resolve(workload.params, self.params, self.workload))
        except ParamError as exc:
            raise ConfigError(str(exc)) from None
        why = workload.check_params(self.params) if workload.check_params is not None else None
        if why:
            raise ConfigError(f"params={self.params.text()!r} (workload {self.workload!r}): {why}")

        if self.streams not in STREAM_MODES:
            raise ConfigError(f"streams={self.streams!r}: must be one of {', '.join(STREAM_MODES)}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype={self.dtype!r}: must be one of {', '.join(DTYPES)}")

        device = self.check_device(self.device)
        set_("device", device)
        backend = get_backend(device)
        if not backend.supports_dtype(self.dtype):
            raise ConfigError(
                f"dtype={self.dtype!r}: not supported on {backend.kind}; allowed: {', '.join(backend.dtypes)}"
            )
        why = workload.not_applicable(backend.kind, self.dtype)
        if why:
            raise ConfigError(f"workload={self.workload!r}: not applicable on {backend.kind} with {self.dtype}: {why}")
        if self.streams == "per-thread" and not backend.has_streams:
            raise ConfigError(
                f"streams='per-thread': the {backend.kind} backend has no streams in this torch build; use 'shared'"
            )
        if self.verify == "full":  # sized on the meta device; the runner re-checks what it cannot size
            nbytes = output_nbytes(get_workload(self.workload), self)
            refusal = full_refusal(self, nbytes) if nbytes is not None else None
            if refusal:
                raise ConfigError(refusal)

    @staticmethod
    def check_device(device: Any) -> str:
        """The device a config would run on (``auto`` resolved, ``cuda`` as ``cuda:0``); refused if not here."""
        import torch

        from mpslab.run.backends import get_backend, resolve_device

        allowed = "auto, cpu, cuda, cuda:N, mps"
        if not isinstance(device, str):
            raise ConfigError(f"device={device!r}: must be one of {allowed}")
        resolved = resolve_device(device.strip().lower())
        try:
            dev = torch.device(resolved)
        except (RuntimeError, ValueError):
            raise ConfigError(f"device={device!r}: must be one of {allowed}") from None
        if dev.type not in ("cpu", "cuda", "mps") or (dev.type != "cuda" and dev.index not in (None, 0)):
            raise ConfigError(f"device={device!r}: must be one of {allowed}")
        backend = get_backend(dev)
        if not backend.is_available():
            raise ConfigError(
                f"device={device!r}: not available on this machine (available: {', '.join(_available())})"
            )
        if dev.type == "cuda":
            count = backend.device_count()
            index = dev.index or 0
            if index >= count:
                raise ConfigError(
                    f"device={device!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}"
                )
            return f"cuda:{index}"
        return dev.type

    @property
    def torch_dtype(self) -> torch.dtype:
        from mpslab.run.backends import DTYPES

        return DTYPES[self.dtype]

    @property
    def ops(self) -> int:
        """Tensor operations a run performs, threads x iterations (what a result reports as its total)."""
        return self.threads * self.iterations

    def replace(self, **changes: Any) -> StressConfig:
        """A new validated config with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["plugins"] = list(self.plugins)
        d["params"] = dict(self.params)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StressConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{unknown[0]}={data[unknown[0]]!r}: unknown parameter; known: {', '.join(sorted(known))}"
            )
        data = dict(data)
        if "plugins" in data and isinstance(data["plugins"], list):
            data["plugins"] = tuple(data["plugins"])
        return cls(**data)


def _field_lines(cls: type) -> str:
    """One docstring line per field, from the help its flag shows (defaults filled in)."""
    lines = []
    for f in dataclasses.fields(cls):
        text = f.metadata["help"] % {"default": f.default}
        lines.append(f"    {f.name:<12}{text}")
    return "\n".join(lines)


StressConfig.__doc__ = (StressConfig.__doc__ or "").rstrip() + "\n\n" + _field_lines(StressConfig) + "\n"


def _available() -> list[str]:
    from mpslab.run.backends import available_backends

    return available_backends()
