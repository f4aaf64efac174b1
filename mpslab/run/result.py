"""The result of one in-process stress run: ``StressResult`` and the ``ThreadError`` records it holds.

What a run measured (the timed region, the oracle's replay time and the whole call's, completed steps,
latency percentiles, errors, the oracle's mismatches, the torch settings the run changed, the
environment), its outcome (``ok`` / ``error`` / ``mismatch``), the printed header and summary and the
flat row that sweeps and isolated trials share. This module does not run anything:
``mpslab.run.runner`` fills it in.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Any

from mpslab.run.config import StressConfig
from mpslab.run.oracle import Mismatch
from mpslab.run.outcome import Outcome
from mpslab.run.workloads import get_workload

__all__ = ["StressResult", "ThreadError", "config_line", "run_header"]


def config_line(config: StressConfig, environment: dict[str, Any]) -> str:
    """``mpslab stress: 8 threads x 1500 iterations of 'seed' (size 128, float32) on cpu [x86_64], ...``."""
    c = config
    return (
        f"mpslab stress: {c.threads} threads x {c.iterations} iterations of {c.workload!r} "
        f"(size {c.size}, {c.dtype}) on {c.device} [{environment.get('device_name') or c.device}], "
        f"sync every {c.sync_every or 'run (end only)'}, {c.streams} streams"
        + (f", throttle {c.throttle}" if c.throttle else "")
    )


def run_header(config: StressConfig, environment: dict[str, Any]) -> str:
    """What is about to run, printed before any work: the config line, then torch, Python and the oracle."""
    e = environment
    if config.verify == "off":
        oracle = "no oracle (verify='off')"
    elif not get_workload(config.workload).final_sync:
        oracle = "no oracle (the workload has no final synchronisation)"
    else:
        oracle = f"then the oracle replays every output serially (verify={config.verify!r})"
    return (
        config_line(config, e)
        + f"\ntorch {e.get('torch')} ({e.get('torch_build')} build), Python {e.get('python')}, "
        + f"{e.get('cpu_count')} CPUs; {oracle}"
    )


@dataclass
class ThreadError:
    thread: int
    iteration: int  # -1 during warm-up or set-up
    phase: str  # setup | warmup | run | flush
    type: str
    message: str
    traceback: str

    @classmethod
    def capture(cls, thread: int, iteration: int, phase: str, exc: BaseException) -> ThreadError:
        return cls(
            thread,
            iteration,
            phase,
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        )


@dataclass
class StressResult:
    config: StressConfig
    seconds: float
    completed: int  # iterations that finished, over all threads
    latency_ms: dict[str, float]
    errors: list[ThreadError] = field(default_factory=list)
    error_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    mismatch_count: int = 0
    verified: int = 0  # outputs the oracle compared
    environment: dict[str, Any] = field(default_factory=dict)
    replay_seconds: float = 0.0  # the oracle's serial replay and comparison, after the timed region
    total_seconds: float = math.nan  # the whole run_stress call: set-up, warm-up, timed region, replay
    # torch's process-wide settings a worker thread changed ("default dtype float32 -> float16"); the runner
    # set them back before the replay. Empty: none of the ``global_state_checked`` settings changed.
    global_state_changes: list[str] = field(default_factory=list)
    global_state_checked: int = 0

    @property
    def ops(self) -> int:
        """Operations planned: threads x iterations, what a throughput in ops/s divides by."""
        return self.config.ops

    @property
    def ops_per_s(self) -> float:
        return self.completed / self.seconds if self.seconds > 0 else float("nan")

    @property
    def outcome(self) -> Outcome:
        if self.error_count:
            return Outcome.ERROR
        if self.mismatch_count:
            return Outcome.MISMATCH
        return Outcome.OK

    @property
    def failed_threads(self) -> list[int]:
        return sorted({e.thread for e in self.errors})

    def _oracle_line(self) -> str:
        c = self.config
        if c.verify == "off":
            return "Mismatches: not checked (verify='off')"
        if not get_workload(c.workload).final_sync:
            return "Mismatches: not checked (no final synchronisation: the process's exit is the measurement)"
        return (
            f"Mismatches (serial-replay oracle): {self.mismatch_count} of {self.verified} outputs, verify={c.verify!r}"
        )

    def _replay_line(self) -> str:
        c = self.config
        if c.verify == "off" or not get_workload(c.workload).final_sync:
            return "Oracle replay: not run"
        return f"Oracle replay: {self.replay_seconds:.2f}s ({self.verified} outputs recomputed serially, after the run)"

    def _global_state_line(self) -> str:
        if self.global_state_changes:
            return "Global state changed during the run: " + "; ".join(self.global_state_changes)
        if not self.global_state_checked:
            return "Global state: not checked"
        return f"Global state: unchanged ({self.global_state_checked} process-wide torch settings compared)"

    def summary(self, header: bool = True) -> str:
        """The printed report; ``header=False`` leaves out the config line (a caller that printed it first)."""
        lat = self.latency_ms
        lines = [config_line(self.config, self.environment)] if header else []
        lines += [
            f"Timed region: {self.seconds:.2f}s (the threads' steps, first start to last synchronisation)",
            self._replay_line(),
            f"Total: {self.total_seconds:.2f}s (set-up, warm-up, timed region, gathering outputs, replay)",
            f"Total operations: {self.ops} tensor ops ({self.completed} completed)",
            f"Throughput: {self.ops_per_s:.1f} ops/sec (completed steps / timed region)",
            f"Total errors: {self.error_count}"
            + (f" in threads {self.failed_threads[:10]}" if self.error_count else ""),
            self._oracle_line(),
            self._global_state_line(),
            "Latency per iteration: " + ", ".join(f"{k} {v:.3f} ms" for k, v in lat.items()),
        ]
        for e in self.errors[:3]:
            lines.append(f"  error: thread {e.thread} iteration {e.iteration} ({e.phase}): {e.type}: {e.message}")
        for m in self.mismatches[:3]:
            lines.append(
                f"  mismatch: thread {m.thread} iteration {m.iteration} ({m.what}): {m.detail}; "
                f"sum expected {m.expected!r}, got {m.got!r}"
            )
        lines.append(
            f"Outcome: {self.outcome} (one run; for a failure rate with its interval run isolated trials)"
            + ("; the run also changed torch's process-wide settings (above)" if self.global_state_changes else "")
        )
        return "\n".join(lines)

    def to_row(self) -> dict[str, Any]:
        """One flat row for a tidy DataFrame: results, config fields, ``env_*`` columns.

        Isolated trials and sweeps use the same columns, so plots read either.
        """
        row: dict[str, Any] = {
            "outcome": self.outcome,
            "seconds": self.seconds,
            "ops": self.ops,
            "completed": self.completed,
            "ops_per_s": self.ops_per_s,
            "error_count": self.error_count,
            "mismatch_count": self.mismatch_count,
            "verified": self.verified,
        }
        row.update({f"latency_{k}_ms": v for k, v in self.latency_ms.items()})
        row["first_error"] = f"{self.errors[0].type}: {self.errors[0].message}" if self.errors else None
        cfg = self.config.to_dict()
        cfg["plugins"] = ",".join(cfg["plugins"])
        cfg["params"] = self.config.params.text()
        row.update(cfg)
        row.update({f"env_{k}": v for k, v in self.environment.items()})
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "config": self.config.to_dict(),
            "seconds": self.seconds,
            "ops": self.ops,
            "completed": self.completed,
            "ops_per_s": self.ops_per_s,
            "latency_ms": dict(self.latency_ms),
            "error_count": self.error_count,
            "errors": [vars(e) for e in self.errors],
            "mismatch_count": self.mismatch_count,
            "verified": self.verified,
            "mismatches": [vars(m) for m in self.mismatches],
            "replay_seconds": self.replay_seconds,
            "total_seconds": self.total_seconds,
            "global_state_changes": list(self.global_state_changes),
            "global_state_checked": self.global_state_checked,
            "environment": dict(self.environment),
        }
