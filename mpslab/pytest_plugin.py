"""The pytest plugin's work: a ``concurrent`` marker checked, run as isolated trials, and judged.

The hooks live in ``pytest_mpslab`` (a top-level module importing neither mpslab nor torch, so
a run with no marked test pays nothing); they call in here for a marked test. Guide: docs/pytest-plugin.md.

A marked test names a *step*: a module-level ``step(ctx, i) -> Tensor`` (and optionally a
module-level ``setup(ctx)``), as a registered workload has. Each trial is a child process
(``mpslab.trials.isolate.run_trials``), so the step is re-imported there: a generated plugin
file loads the test module from its path and registers the step as a workload, and the
serial-replay oracle checks every thread's outputs.

Verdicts (one-sided Clopper-Pearson bounds at ``confidence``, default 95%):

must pass (``expect=None``)
    passes when the upper bound of the failure rate is below ``max_failure``; a crash or a
    hang fails it at once (the trials stop there), naming the class, signal, stderr tail and
    the hung threads' stacks.
known bug (``expect="fail"``)
    passes while the lower bound of the failure rate is above ``fail_rate`` (every class of
    failure counts: error, mismatch, crash, hang).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import math
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mpslab.run.errors import ConfigError
from mpslab.run.values import check_int, parse_proportion, zero_failure_trials
from mpslab.trials.outcomes import FAILURES, Outcome

__all__ = ["OPTIONS", "MarkerError", "Spec", "Verdict", "check_marker", "skip_reason", "run_spec", "register_step"]

# marker option -> default; ``step`` has none (required)
OPTIONS: dict[str, Any] = {
    "step": None,
    "setup": None,
    "threads": 8,
    "iterations": 20,
    "trials": 30,
    "max_failure": "10%",
    "expect": None,
    "fail_rate": 0.0,
    "confidence": 0.95,
    "timeout": 60.0,
    "device": None,  # None: --mpslab-device (default auto)
    "dtype": "float32",
    "size": 64,
    "warmup": 1,
    "seed": 0,
    "sync_every": 0,
    "verify": "fingerprint",
}

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
STDERR_LINES = 15
# the ends that stop a must-pass test at once (its process state is gone), and are told first
_STOPS = (Outcome.CRASH, Outcome.HANG)
STACK_LINES = 40


class MarkerError(ConfigError):
    """A ``concurrent`` marker value was refused; the message names the option and the value."""


@dataclass(frozen=True)
class Spec:
    """A checked marker: everything one marked test needs to run its trials."""

    step: Any
    setup: Any
    threads: int
    iterations: int
    trials: int
    max_failure: float
    expect: str | None
    fail_rate: float
    confidence: float
    timeout: float
    device: str
    dtype: str
    size: int
    warmup: int
    seed: int
    sync_every: int
    verify: str


def _int(name: str, value: Any, minimum: int) -> int:
    try:
        return check_int(value, name, minimum)
    except ConfigError as exc:
        raise MarkerError(str(exc)) from None


def _fraction(name: str, value: Any, *, zero_ok: bool) -> float:
    """``"10%"``, ``"0.5%"`` or a float in (0, 1) ([0, 1) with ``zero_ok``)."""
    try:
        return parse_proportion(value, name, zero_ok=zero_ok)
    except ConfigError as exc:
        raise MarkerError(str(exc)) from None


def _module_function(name: str, fn: Any) -> Any:
    """A function a child can re-import: defined at a module's top level, in a file."""
    if not callable(fn) or not hasattr(fn, "__qualname__") or not hasattr(fn, "__module__"):
        raise MarkerError(f"{name}={fn!r}: must be a module-level function of (ctx, i)")
    module = sys.modules.get(fn.__module__)
    if fn.__qualname__ != fn.__name__ or getattr(module, fn.__name__, None) is not fn:
        raise MarkerError(
            f"{name}={fn.__qualname__}: must be a module-level function (a child process re-imports it by "
            "module and name; a closure, lambda, method or fixture value cannot be)"
        )
    if not getattr(module, "__file__", None):
        raise MarkerError(f"{name}={fn.__qualname__}: its module {fn.__module__!r} has no file to re-import")
    return fn


def trials_needed(max_failure: float, confidence: float) -> int:
    """The fewest clean trials whose one-sided upper bound falls below ``max_failure``."""
    return zero_failure_trials(max_failure, confidence)


def failing_trials_needed(fail_rate: float, confidence: float) -> int:
    """The fewest all-failing trials whose one-sided lower bound rises above ``fail_rate``.

    Every trial failing is zero of the other outcome, so this is the zero-failure count of
    the complementary rate, ``1 - fail_rate`` (kept exact as a fraction).
    """
    if fail_rate <= 0.0:
        return 1
    return zero_failure_trials(1 - Fraction(fail_rate), confidence)


def check_marker(kwargs: dict[str, Any], args: tuple = (), *, trials: int | None = None, device: str = "auto") -> Spec:
    """Check a marker's values (parametrized values of the same names already merged in).

    ``trials`` and ``device`` come from ``--mpslab-trials`` (overrides the marker) and
    ``--mpslab-device`` (for a marker that names no device). Raises ``MarkerError``.
    """
    from mpslab.trials.stats import format_percent

    if args:
        raise MarkerError(f"positional arguments {args!r}: name every option (step=..., threads=...)")
    unknown = sorted(set(kwargs) - set(OPTIONS))
    if unknown:
        raise MarkerError(f"{unknown[0]}={kwargs[unknown[0]]!r}: unknown option; known: {', '.join(OPTIONS)}")
    v = {**OPTIONS, **kwargs}
    if v["step"] is None:
        raise MarkerError("step: missing; name a module-level function step(ctx, i) returning a tensor")
    step = _module_function("step", v["step"])
    setup = _module_function("setup", v["setup"]) if v["setup"] is not None else None
    if trials is not None:
        v["trials"] = trials
    for name, low in (("threads", 1), ("iterations", 1), ("trials", 1), ("size", 1), ("warmup", 0), ("seed", 0)):
        _int(name, v[name], low)
    _int("sync_every", v["sync_every"], 0)
    if v["expect"] not in (None, "fail"):
        raise MarkerError(f"expect={v['expect']!r}: must be None (must pass) or 'fail' (a known bug)")
    if v["expect"] is None and "fail_rate" in kwargs:
        raise MarkerError(f"fail_rate={kwargs['fail_rate']!r}: only with expect='fail'")
    if v["expect"] == "fail" and "max_failure" in kwargs:
        raise MarkerError(f"max_failure={kwargs['max_failure']!r}: not with expect='fail' (use fail_rate)")
    max_failure = _fraction("max_failure", v["max_failure"], zero_ok=False)
    fail_rate = _fraction("fail_rate", v["fail_rate"], zero_ok=True)
    conf = v["confidence"]
    if isinstance(conf, bool) or not isinstance(conf, float) or not 0.5 <= conf < 1.0:
        raise MarkerError(f"confidence={conf!r}: must be a float in [0.5, 1)")
    t = v["timeout"]
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise MarkerError(f"timeout={t!r}: must be a number of seconds > 0")
    dev = v["device"] if v["device"] is not None else device
    if not isinstance(dev, str) or not _DEVICE.match(dev):
        raise MarkerError(f"device={dev!r}: must be one of auto, cpu, cuda, cuda:N, mps")
    if not isinstance(v["dtype"], str) or v["dtype"] not in ("float32", "float16", "bfloat16", "float64"):
        raise MarkerError(f"dtype={v['dtype']!r}: must be one of float32, float16, bfloat16, float64")
    if v["verify"] not in ("fingerprint", "full"):
        raise MarkerError(f"verify={v['verify']!r}: must be fingerprint or full (the oracle is the point)")
    n, level = v["trials"], f"{conf * 100:g}%"
    if v["expect"] is None and trials_needed(max_failure, conf) > n:
        bound = 1.0 - (1.0 - conf) ** (1.0 / n)
        raise MarkerError(
            f"max_failure={v['max_failure']!r} with trials={n}: unreachable, {n} clean trials give a {level} upper "
            f"bound of {format_percent(bound, 'up')}; it needs trials >= {trials_needed(max_failure, conf)}"
        )
    if v["expect"] == "fail" and failing_trials_needed(fail_rate, conf) > n:
        bound = (1.0 - conf) ** (1.0 / n)
        raise MarkerError(
            f"fail_rate={v['fail_rate']!r} with trials={n}: unreachable, {n} failing trials give a {level} lower "
            f"bound of {format_percent(bound, 'down')}; it needs trials >= {failing_trials_needed(fail_rate, conf)}"
        )
    return Spec(
        step, setup, v["threads"], v["iterations"], n, max_failure, v["expect"], fail_rate, conf, float(t), dev,
        v["dtype"], v["size"], v["warmup"], v["seed"], v["sync_every"], v["verify"],
    )  # fmt: skip


def skip_reason(device: str) -> str | None:
    """Why a test on ``device`` cannot run here (the device is absent), or None."""
    if device == "auto":
        return None
    from mpslab.run.backends import available_backends, get_backend

    backend = get_backend(device)
    if not backend.is_available():
        return f"device={device!r}: not available on this machine (available: {', '.join(available_backends())})"
    if device.startswith("cuda:") and int(device.split(":")[1]) >= backend.device_count():
        return f"device={device!r}: this machine has {backend.device_count()} CUDA device(s)"
    return None


# ------------------------------------------------------------------ the step, re-imported in a child

_FOLDER: list[str] = []


def _plugin_folder() -> str:
    if not _FOLDER:
        _FOLDER.append(tempfile.mkdtemp(prefix="mpslab-pytest-"))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
    return _FOLDER[0]


def _basedir(path: str) -> str:
    """The first folder above ``path`` that is not a package (pytest's ``prepend`` import root)."""
    folder = os.path.dirname(path)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder = os.path.dirname(folder)
    return folder


def register_step(name: str, modname: str, path: str, step: str, setup: str | None) -> None:
    """Import the test module (the one pytest already imported, else from its file) and register the step."""
    from mpslab.run.workloads import register_workload

    module = sys.modules.get(modname)
    if module is None or os.path.abspath(getattr(module, "__file__", "") or "") != path:
        root = _basedir(path)
        if root not in sys.path:
            sys.path.insert(0, root)
        spec = importlib.util.spec_from_file_location(modname, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[modname] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    setup_fn = getattr(module, setup) if setup else None
    register_workload(name, getattr(module, step), description=f"pytest step {modname}.{step}", setup=setup_fn)


def _workload_plugin(spec: Spec) -> tuple[str, str]:
    """(plugin file, workload name) for the spec's step: the file registers it wherever it is imported."""
    modname = spec.step.__module__
    path = os.path.abspath(sys.modules[modname].__file__)
    setup = spec.setup.__name__ if spec.setup is not None else None
    name = f"pytest-{modname}.{spec.step.__name__}" + (f"+{setup}" if setup else "")
    digest = hashlib.sha1(f"{path}\0{name}".encode()).hexdigest()[:16]
    file = os.path.join(_plugin_folder(), f"step_{digest}.py")
    if not os.path.exists(file):
        args = ", ".join(repr(a) for a in (name, modname, path, spec.step.__name__, setup))
        with open(file, "w", encoding="utf-8") as fh:
            fh.write(f"from mpslab.pytest_plugin import register_step\n\nregister_step({args})\n")
    return file, name


# ------------------------------------------------------------------ trials and the verdict


@dataclass(frozen=True)
class Verdict:
    """What a marked test's trials came to: pass or not, the report line, details, JUnit properties."""

    passed: bool
    line: str  # e.g. "0 of 30 trials failed: rate 0%, 95% upper bound 9.5% < max_failure 10%"
    details: str  # the first failing trial of each class: error text, signal, stderr tail, stacks
    properties: tuple[tuple[str, str], ...]


def _bound(failures: int, n: int, confidence: float, side: str) -> float:
    from scipy.stats import binomtest

    alternative = "less" if side == "upper" else "greater"
    ci = binomtest(failures, n, alternative=alternative).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.high if side == "upper" else ci.low)


def _text(value: Any) -> str:  # a frame cell: NaN and None read as ""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _cut(text: str, lines: int) -> str:
    rows = text.strip("\n").splitlines()
    return "\n".join(rows if len(rows) <= lines else [f"[... {len(rows) - lines} lines cut]", *rows[-lines:]])


def _describe(k: int, row: dict[str, Any], timeout: float) -> str:
    """One failing trial in words: its class, then what explains it."""
    outcome = row["outcome"]
    if outcome == Outcome.CRASH:
        sig = _text(row.get("signal"))
        how = (
            f"killed by {sig} (signal {int(row['signal_number'])})"
            if sig
            else f"exit code {_text(row.get('exit_code'))}"
        )
        text = f"trial {k}: crash, {how}"
    elif outcome == Outcome.HANG:
        text = f"trial {k}: hang, no exit within {timeout:g} s"
        stacks = _text(row.get("hang_stacks"))
        if stacks:
            text += "\n  stacks of every thread:\n" + _cut(stacks, STACK_LINES)
    elif outcome == Outcome.MISMATCH:
        text = f"trial {k}: mismatch, {int(row['mismatch_count'])} output(s) differ from the serial replay"
    else:
        raised = int(row["error_count"]) if _text(row.get("error_count")) else "?"
        text = f"trial {k}: error, {raised} step(s) raised; first: {_text(row.get('first_error'))}"
    tail = _text(row.get("stderr_tail"))
    if outcome in _STOPS and tail:
        text += "\n  stderr tail:\n" + _cut(tail, STDERR_LINES)
    return text


def run_spec(spec: Spec) -> Verdict:
    """Run the spec's trials one by one (a must-pass test stops at its first crash or hang) and judge them."""
    from mpslab.run.config import StressConfig
    from mpslab.trials.isolate import run_trials
    from mpslab.trials.stats import format_percent

    plugin, name = _workload_plugin(spec)
    config = StressConfig(
        threads=spec.threads, iterations=spec.iterations, sync_every=spec.sync_every, workload=name,
        size=spec.size, dtype=spec.dtype, device=spec.device, seed=spec.seed, verify=spec.verify,
        warmup=spec.warmup, plugins=(plugin,),
    )  # fmt: skip
    outcomes: list[str] = []
    firsts: dict[str, str] = {}
    for k in range(spec.trials):
        row = run_trials(config, trials=1, timeout_s=spec.timeout, progress=False).iloc[0].to_dict()
        outcomes.append(row["outcome"])
        if row["outcome"] != Outcome.OK and row["outcome"] not in firsts:
            firsts[row["outcome"]] = _describe(k, row, spec.timeout)
        if spec.expect is None and row["outcome"] in _STOPS:
            break
    n, failures = len(outcomes), sum(o != Outcome.OK for o in outcomes)
    counts = ", ".join(f"{o} {outcomes.count(o)}" for o in FAILURES if o in outcomes)
    head = f"{failures} of {n} trials failed" + (f" ({counts})" if counts else "")
    level = f"{spec.confidence * 100:g}%"
    props = [("mpslab_device", config.device), ("mpslab_threads", str(spec.threads))]
    props += [("mpslab_trials", str(n)), ("mpslab_failures", str(failures)), ("mpslab_rate", f"{failures / n:.6g}")]
    if counts:
        props.append(("mpslab_outcomes", counts))
    if spec.expect is None:
        high = _bound(failures, n, spec.confidence, "upper")
        props += [("mpslab_upper_bound", f"{high:.6g}"), ("mpslab_max_failure", f"{spec.max_failure:.6g}")]
        crashed = [o for o in _STOPS if o in outcomes]
        passed = not crashed and high < spec.max_failure
        sign = "<" if high < spec.max_failure else ">="
        line = (
            f"{head}: rate {format_percent(failures / n)}, {level} upper bound {format_percent(high, 'up')} "
            f"{sign} max_failure {format_percent(spec.max_failure)}"
        )
        if crashed:
            line += f"; stopped at trial {n} of {spec.trials}, a {crashed[0]}"
    else:
        low = _bound(failures, n, spec.confidence, "lower")
        props += [("mpslab_lower_bound", f"{low:.6g}"), ("mpslab_fail_rate", f"{spec.fail_rate:.6g}")]
        passed = low > spec.fail_rate
        sign = ">" if passed else "<="
        line = (
            f"expected to fail, {head}: rate {format_percent(failures / n)}, {level} lower bound "
            f"{format_percent(low, 'down')} {sign} fail_rate {format_percent(spec.fail_rate)}"
        )
    props.append(("mpslab_verdict", line))
    details = "\n".join(firsts[o] for o in (*_STOPS, Outcome.ERROR, Outcome.MISMATCH) if o in firsts)
    return Verdict(passed, line, details, tuple(props))
