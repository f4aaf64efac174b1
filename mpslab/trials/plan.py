"""A batch's plan and one trial's record: inputs checked, config validated, the run, the row.

``plan_batch`` checks the config under the trial interpreter (a probe child when it is
another interpreter) and keys the batch; ``run_one`` runs one trial through a runner
(spawn or fork server) and turns what the child left into a record. This is the
unit a local batch and a fleet worker both call. Not here: the batch loop, resume and
progress (``isolate``, ``executors``).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials import records as _records
from mpslab.trials.child import blank_row, environment_block
from mpslab.trials.forkserver import ForkServerRunner
from mpslab.trials.outcomes import (
    Outcome,
    classify,
    last_line,
    notable_line,
    read_end,
    read_result,
    read_stacks,
    signal_name,
    tail_lines,
)
from mpslab.trials.supervise import TEMP_PREFIX, ChildExit, ServerBroken, SpawnRunner

MODES = ("auto", "spawn", "forkserver")

PROBE_TIMEOUT_S = 180.0  # the probe under another interpreter


def default_mode() -> str:
    """What ``mode="auto"`` means on this platform: ``forkserver`` on Linux, else ``spawn``."""
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def remove_stale_temp() -> None:
    """Remove the temporary folders and logs of mpslab processes that no longer exist.

    A parent killed with ``kill -9`` cannot clean up after itself; the next
    ``run_trials`` does, for the current user's entries whose owner pid is gone.
    """
    tmp = tempfile.gettempdir()
    try:
        names = os.listdir(tmp)
    except OSError:
        return
    for name in names:
        if not name.startswith(TEMP_PREFIX):
            continue
        pid_text, _, rest = name[len(TEMP_PREFIX) :].partition("-")
        if not pid_text.isdigit() or not rest.startswith(("trials-", "forkserver-")):
            continue
        path = os.path.join(tmp, name)
        try:
            if os.lstat(path).st_uid != os.getuid():
                continue
            os.kill(int(pid_text), 0)
            continue  # its owner is alive
        except ProcessLookupError:
            pass
        except OSError:  # not ours to judge (permissions), or gone meanwhile
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


@dataclass
class BatchPlan:
    """Everything a batch needs, checked before any trial runs."""

    config: dict[str, Any]  # StressConfig.to_dict(), normalised (device resolved)
    env: dict[str, Any]  # the trial interpreter's environment block (time: when planned)
    template: dict[str, Any]  # to_row() columns of a trial without result
    python: str
    mode: str
    timeout_s: float
    batch: str


def _trial_row(
    plan: BatchPlan,
    k: int,
    exit_: ChildExit,
    payload: dict[str, Any] | None,
    stderr_tail: str,
    diag: str | None,
    hang_stacks: str,
    started_at: str,
) -> dict[str, Any]:
    child_row = payload.get("row") if payload else None
    result_outcome = child_row.get("outcome") if isinstance(child_row, dict) else None
    outcome = classify(exit_.code, exit_.timed_out, result_outcome)
    if isinstance(child_row, dict):
        row = dict(child_row)
    else:
        row = dict(plan.template)
        row["env_time"] = started_at
    code = exit_.code
    sig = -code if code is not None and code < 0 else None
    if outcome is Outcome.HANG:
        what = (
            f"no exit within {plan.timeout_s:g} s"
            + (" (its result was written: it hung on the way out)" if child_row else "")
            + "; stacks dumped, then killed"
        )
        row["first_error"] = what
    elif outcome is Outcome.CRASH:
        how = f"killed by {signal_name(sig)} (signal {sig})" if sig is not None else f"exit code {code}"
        how += " after writing its result" if child_row else " without a result"
        row["first_error"] = how + (f"; stderr: {diag}" if diag else "")
    row.update(
        {
            "trial": k,
            "outcome": outcome,
            "exit_code": code if code is not None and code >= 0 else None,
            "signal": signal_name(sig) if sig is not None else None,
            "signal_number": sig,
            "wall_s": exit_.wall_s,
            "stderr_tail": stderr_tail,
            "hang_stacks": hang_stacks if outcome is Outcome.HANG else "",
            "launch": plan.mode,
        }
    )
    return row


def _request(base: str, **what: Any) -> dict[str, Any]:
    """A request to a child: ``what`` (config, trial or probe), the files it writes under ``base``, where it runs."""
    return {
        **what,
        "result": base + ".json",
        "stderr": base + ".stderr",
        "stacks": base + ".stacks",
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "parent": os.getpid(),
    }


def run_one(runner: Any, plan: BatchPlan, k: int, workdir: str) -> dict[str, Any]:
    """One trial: start, supervise, read what the child left, classify; returns its record's JSON dict."""
    base = os.path.join(workdir, f"trial-{k}")
    req = _request(base, config=plan.config, trial=k)
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    exit_ = runner.run(req, plan.timeout_s)
    payload = read_result(req["result"])
    stderr = read_end(req["stderr"])
    row = _trial_row(
        plan,
        k,
        exit_,
        payload,
        tail_lines(stderr),
        notable_line(stderr),
        read_stacks(req["stacks"]) if exit_.timed_out else "",
        started_at,
    )
    for suffix in (".json", ".stderr", ".stacks"):
        try:
            os.unlink(base + suffix)
        except OSError:
            pass
    return _records.make_record(row, batch=plan.batch, config=plan.config)


def check_inputs(
    config: Any, trials: Any, timeout_s: Any, python: Any, mode: Any, batch: Any, *, local: bool = True
) -> tuple[str, str]:
    """Refuse bad input with one ``ConfigError`` line; returns (interpreter path, concrete mode).

    The one check of a batch's arguments, local or on a fleet (``local=False``: the
    platform checks are the workers' to make, and ``mode`` stays as given for them).
    """
    if not isinstance(config, (StressConfig, dict)):
        raise ConfigError(f"config: must be a StressConfig or a dict, got {type(config).__name__}")
    if local and os.name != "posix":
        raise ConfigError("run_trials: isolated trials need a POSIX system (Linux or macOS)")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}: must be an integer >= 1")
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, (int, float))
        or not math.isfinite(timeout_s)
        or timeout_s <= 0
    ):
        raise ConfigError(f"timeout_s={timeout_s!r}: must be a number of seconds > 0")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: must be one of {', '.join(MODES)}")
    if local and mode == "forkserver" and not sys.platform.startswith("linux"):
        raise ConfigError(
            f"mode='forkserver': Linux only (forking after Metal/ObjC start is unsafe on "
            f"{sys.platform}); use 'spawn' or 'auto'"
        )
    if batch is not None and (not isinstance(batch, str) or not batch):
        raise ConfigError(f"batch={batch!r}: must be None or a non-empty string")
    if python is None:
        path = sys.executable
    else:
        if not isinstance(python, (str, os.PathLike)) or not os.fspath(python):
            raise ConfigError(f"python={python!r}: must be the path of a Python interpreter")
        text = os.fspath(python)
        found = text if os.sep in text else shutil.which(text)
        if not found or not os.path.isfile(found):
            raise ConfigError(f"python={text!r}: no such file")
        if not os.access(found, os.X_OK):
            raise ConfigError(f"python={text!r}: not executable")
        path = os.path.abspath(found)
    return path, (default_mode() if mode == "auto" else mode) if local else mode


def make_runner(mode: str, python: str) -> Any:
    """The runner of a concrete ``mode``: this interpreter's fork server (its lock held) or a spawn runner."""
    return ForkServerRunner(python) if mode == "forkserver" else SpawnRunner(python)


def _probe(runner: Any, config: dict[str, Any], python: str, workdir: str) -> dict[str, Any]:
    """Validate ``config`` under the trial interpreter and fetch its environment block."""
    req = _request(os.path.join(workdir, "probe"), probe=True, config=config)
    exit_ = runner.run(req, PROBE_TIMEOUT_S)
    payload = read_result(req["result"])
    if exit_.code != 0 or not payload or "template" not in payload:
        why = last_line(read_end(req["stderr"])) or (
            f"no answer within {PROBE_TIMEOUT_S:g} s" if exit_.timed_out else f"exit code {exit_.code}"
        )
        raise ConfigError(f"python={python!r}: the trial interpreter refused the config: {why}")
    return payload


def plan_batch(
    config: Any, python: str, mode: str, timeout_s: float, batch: str | None, runner: Any, workdir: str
) -> BatchPlan:
    """Validate ``config`` under the trial interpreter (here, or in a probe child under another one),
    take its environment, and key the batch: config, interpreter, environment, timeout, label."""
    same = python == os.path.abspath(sys.executable)
    if same:
        cfg = config if isinstance(config, StressConfig) else StressConfig.from_dict(dict(config))
        env = environment_block(cfg.device)
        cfg_dict, template = cfg.to_dict(), blank_row(cfg, env)
    else:
        raw = config.to_dict() if isinstance(config, StressConfig) else dict(config)
        answer = _probe(runner, raw, python, workdir)
        cfg_dict, env, template = answer["config"], answer["environment"], answer["template"]
    key = _records.batch_key(
        config=cfg_dict,
        timeout_s=float(timeout_s),
        python=python,
        environment=_records.batch_environment(env),
        label=batch,
    )
    return BatchPlan(cfg_dict, env, template, python, mode, float(timeout_s), key)


def without_sigint(fn: Callable[[], None]) -> None:
    """Run clean-up with Ctrl-C held back (main thread only), so a second Ctrl-C cannot cut it short."""
    if threading.current_thread() is not threading.main_thread():
        fn()
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        fn()
    finally:
        signal.signal(signal.SIGINT, previous)


class LocalTarget:
    """The trials of a local batch: here, one at a time, through one runner (fork server or spawn).

    Holds the runner (the fork server's lock with it) and a temporary folder until ``close``;
    ``abort`` kills the trial running, and the fork server with it, with Ctrl-C held back.
    """

    mixed = False  # the batch key names the environment: its records share one

    def __init__(
        self,
        config: StressConfig | dict[str, Any],
        python: str,
        mode: str,
        timeout_s: float,
        label: str | None,
        executor: Any,
    ) -> None:
        remove_stale_temp()
        self.executor = executor
        self.workdir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-trials-")
        self.runner: Any = None
        try:
            try:
                self.runner = make_runner(mode, python)
            except ServerBroken as exc:
                raise ConfigError(f"python={python!r}: {exc}") from None
            self.plan = plan_batch(config, python, mode, timeout_s, label, self.runner, self.workdir)
        except BaseException:
            self.abort()
            self.close()
            raise
        self.batch, self.config = self.plan.batch, self.plan.config
        self.desc = f"trials {self.config['workload']}"
        self.cancel = None

    def capacity(self) -> int:
        return 1

    def _trial(self, k: int) -> dict[str, Any]:
        rec = run_one(self.runner, self.plan, k, self.workdir)
        rec["result"]["worker"] = "local"
        return rec

    def submit(self, k: int) -> Any:
        return self.executor.submit(self._trial, k)

    def abort(self) -> None:
        if self.runner is not None:
            without_sigint(self.runner.abort)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.release()
            self.runner = None
        shutil.rmtree(self.workdir, ignore_errors=True)
