"""Where a batch of trials runs: here, one at a time, or on an executor (a Dask cluster, a process pool).

``drive_batch`` is the one loop every batch goes through: it claims free trial
numbers in the store (``store.Claimant``: two writers on one store never run
the same trial), submits them, and appends each record to the store as its
future completes, on this (the submitting) side only. It waits for trials that
other live writers hold, and returns every record of the batch.

``run_fleet`` sends trials to a ``distributed.Client`` or any
``concurrent.futures.Executor``. Each task (``fleet_trial``) runs one trial on
the worker in an isolated child process exactly as a local run does (the same
``isolate`` supervision: crash, hang, timeout, stderr and stacks kept) and
returns the record as a JSON-able dict. Plugin ``.py`` files travel by content
and are loaded on the worker. On a cluster whose workers declare a ``device``
resource, each task asks for ``resources={"device": 1}``, so trials sharing a
device never overlap. A worker that dies mid-trial: Dask reruns the task
elsewhere; when it gives up (``KilledWorker``) the trial is stored as
``outcome="lost"`` with the reason; never twice, never dropped.

What it is not: process isolation and outcome classes (``isolate``), the store
format (``records``), statistics (``stats``).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials import records as _records
from mpslab.trials.outcomes import Outcome
from mpslab.trials.store import TrialStore

__all__ = ["drive_batch", "run_fleet", "fleet_trial", "connect", "LOST"]

LOST = Outcome.LOST  # a trial whose worker died and that Dask would not rerun
POLL_S = 0.5  # how often to look at trials other writers hold


# --------------------------------------------------------------------------- the driver


class _MemoryClaimant:
    """What a batch without a store claims: everything, from nobody."""

    def __init__(self, trials: int) -> None:
        self.trials, self.next = trials, 0

    def take(self, limit: int) -> list[int]:
        out = list(range(self.next, min(self.trials, self.next + max(limit, 0))))
        self.next += len(out)
        return out

    def done(self, k: int) -> None:
        pass

    def finished(self) -> dict[int, dict[str, Any]]:
        return {}

    def held_by_others(self) -> list[int]:
        return []

    def __enter__(self) -> _MemoryClaimant:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def _is_dask_future(fut: Any) -> bool:
    return type(fut).__module__.startswith("distributed")


def _wait_first(futures: list[Any]) -> list[Any]:
    if futures and _is_dask_future(futures[0]):
        from distributed import wait

        return list(wait(futures, return_when="FIRST_COMPLETED").done)
    return list(cf.wait(futures, return_when=cf.FIRST_COMPLETED).done)


def _lost_reason(exc: BaseException) -> str | None:
    """Why a trial is lost (its worker died and would not be replaced), or ``None`` for a real error."""
    name = type(exc).__name__
    if name == "KilledWorker" or isinstance(exc, cf.BrokenExecutor):
        return f"{name}: {str(exc).splitlines()[0] if str(exc) else 'the worker running it died'}"
    return None


def lost_record(k: int, why: str, *, batch: str, config: dict[str, Any]) -> dict[str, Any]:
    """The record of trial ``k`` that ran nowhere to the end: outcome ``lost`` and why."""
    row = {"trial": k, "outcome": LOST, "first_error": why, "worker": None}
    return _records.make_record(row, batch=batch, config=config)


def drive_batch(
    submit: Callable[[int], Any],
    *,
    trials: int,
    batch: str,
    config: dict[str, Any],
    store: TrialStore | None,
    capacity: Callable[[], int] | int = 1,
    stop_when: Callable[[dict[int, dict[str, Any]]], bool] | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    cancel: Callable[[list[Any]], None] | None = None,
) -> tuple[dict[int, dict[str, Any]], int]:
    """Run the trials of ``batch`` not yet stored; returns (trial -> record for all of them, trials run here).

    ``submit(k)`` starts trial ``k`` and returns a future (``concurrent.futures``
    or Dask) whose result is the record. At most ``capacity`` trials are in
    flight. After each stored record ``stop_when(records)`` may stop the batch
    early: nothing new is submitted, trials in flight are waited for and stored.
    """
    claimant: Any = store.claimant(batch, trials) if store is not None else _MemoryClaimant(trials)
    records: dict[int, dict[str, Any]] = {}
    inflight: dict[Any, int] = {}
    ran = 0
    stopping = False
    with claimant:
        records.update(claimant.finished())
        try:
            while True:
                if not stopping:
                    room = (capacity() if callable(capacity) else capacity) - len(inflight)
                    for k in claimant.take(max(room, 0) if inflight else max(room, 1)):
                        inflight[submit(k)] = k
                if not inflight:
                    if stopping or not claimant.held_by_others():
                        break
                    time.sleep(POLL_S)  # another writer holds the rest: wait for its records
                    continue
                for fut in _wait_first(list(inflight)):
                    k = inflight.pop(fut)
                    try:
                        rec = fut.result()
                    except Exception as exc:
                        why = _lost_reason(exc)
                        if why is None:
                            raise
                        rec = lost_record(k, why, batch=batch, config=config)
                    if store is not None:
                        store.append(rec)
                    records[k] = rec
                    claimant.done(k)
                    ran += 1
                    if on_record is not None:
                        on_record(rec)
                    if stop_when is not None and not stopping and stop_when(records):
                        stopping = True
        except BaseException:
            if inflight:
                if cancel is not None:
                    cancel(list(inflight))
                else:
                    for fut in inflight:
                        fut.cancel()
            raise
        records.update(claimant.finished())
    return {k: records[k] for k in sorted(records) if k < trials}, ran


# --------------------------------------------------------------------------- the worker side

_PLANS: dict[str, Any] = {}


def _materialise(spec: str, files: dict[str, str]) -> str:
    """A plugin spec usable here: a shipped ``.py`` file is written to a folder named by its content."""
    if spec not in files:
        return spec
    text = files[spec]
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), f"mpslab-plugins-{digest}")
    path = os.path.join(folder, os.path.basename(spec))
    if not os.path.isfile(path):
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    return path


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def fleet_trial(spec: dict[str, Any], k: int) -> dict[str, Any]:
    """One trial on a worker: isolated child process, supervised as locally; returns its record (JSON-able)."""
    from mpslab.trials import plan as trial_plan

    cfg = dict(spec["config"])
    cfg["plugins"] = [_materialise(p, spec["plugin_files"]) for p in cfg.get("plugins") or []]
    mode = trial_plan.default_mode() if spec["mode"] == "auto" else spec["mode"]
    workdir = tempfile.mkdtemp(prefix=f"{trial_plan.TEMP_PREFIX}{os.getpid()}-trials-")
    runner = trial_plan.make_runner(mode, sys.executable)
    try:
        key = _records.batch_key(config=cfg, spec=spec["batch"], mode=mode)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = trial_plan.plan_batch(
                cfg, sys.executable, mode, spec["timeout_s"], None, runner, workdir
            )
            plan.batch = spec["batch"]
        rec = trial_plan.run_one(runner, plan, k, workdir)
    except BaseException:
        trial_plan.without_sigint(runner.abort)
        raise
    finally:
        runner.release()
        shutil.rmtree(workdir, ignore_errors=True)
    rec["config"] = spec["config"]  # as submitted (plugin paths of the submitting machine)
    rec["result"]["worker"] = _worker_name()
    return rec


# --------------------------------------------------------------------------- the submitting side


def connect(scheduler: str):
    """A ``distributed.Client`` for ``tcp://HOST:PORT``; one ``ConfigError`` line if there is none."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("scheduler: needs dask distributed (pip install 'dask[distributed]')") from None
    try:
        return Client(scheduler, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"scheduler={scheduler!r}: cannot connect: {str(exc).splitlines()[0]}") from None


def _is_client(client: Any) -> bool:
    return type(client).__name__ == "Client" and type(client).__module__.startswith("distributed")


def _slots(client: Any) -> Callable[[], int]:
    """How many trials may be in flight: device resources, else worker threads (Dask); pool size otherwise."""
    if _is_client(client):

        def slots() -> int:
            workers = client.scheduler_info(n_workers=-1)["workers"].values()
            devices = sum(int((w.get("resources") or {}).get("device", 0)) for w in workers)
            return devices if devices else sum(int(w.get("nthreads", 1)) for w in workers)

        return slots
    return lambda: int(getattr(client, "_max_workers", 0) or os.cpu_count() or 1)


def _uses_devices(client: Any) -> bool:
    if not _is_client(client):
        return False
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any("device" in (w.get("resources") or {}) for w in workers)


def run_fleet(
    config: StressConfig | dict[str, Any],
    trials: int,
    timeout_s: float,
    store: str | os.PathLike[str] | None,
    client: Any,
    *,
    mode: str = "auto",
    batch: str | None = None,
    progress: bool | None = None,
    stop_when: Callable[[dict[int, dict[str, Any]]], bool] | None = None,
):
    """``run_trials`` on a ``distributed.Client`` or a ``concurrent.futures.Executor``.

    A dict ``config`` is validated by the workers (so ``device="mps"`` can be
    sent from a machine without one); a ``StressConfig`` was validated here.
    The batch key leaves the environment out (each record keeps its worker's).
    """
    from mpslab.trials.outcomes import OUTCOMES
    from mpslab.trials.plan import MODES

    if not isinstance(config, (StressConfig, dict)):
        raise ConfigError(f"config: must be a StressConfig or a dict, got {type(config).__name__}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"trials={trials!r}: must be an integer >= 1")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ConfigError(f"timeout_s={timeout_s!r}: must be a number of seconds > 0")
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r}: must be one of {', '.join(MODES)}")
    if not (_is_client(client) or isinstance(client, cf.Executor)):
        raise ConfigError(
            f"client: must be a distributed.Client or a concurrent.futures.Executor, got {type(client).__name__}"
        )
    cfg = config.to_dict() if isinstance(config, StressConfig) else dict(config)
    plugins = cfg.get("plugins") or []
    cfg["plugins"] = list([plugins] if isinstance(plugins, str) else plugins)
    files: dict[str, str] = {}
    for spec in cfg["plugins"]:
        if spec.endswith(".py"):
            try:
                with open(spec, encoding="utf-8") as fh:
                    files[spec] = fh.read()
            except OSError as exc:
                raise ConfigError(f"plugins={spec!r}: cannot be read: {exc.strerror}") from None
    key = _records.batch_key(
        config=cfg, plugin_files=files, timeout_s=float(timeout_s), mode=mode, label=batch, fleet=True
    )
    spec = {"config": cfg, "plugin_files": files, "timeout_s": float(timeout_s), "mode": mode, "batch": key}
    trial_store = TrialStore(store) if store is not None else None

    if _is_client(client):
        resources = {"device": 1} if _uses_devices(client) else None

        def submit(k: int) -> Any:
            return client.submit(fleet_trial, spec, k, key=f"mpslab-trial-{key}-{k}", pure=False, resources=resources)

        def cancel(futs: list[Any]) -> None:
            client.cancel(futs)
    else:

        def submit(k: int) -> Any:
            return client.submit(fleet_trial, spec, k)

        cancel = None  # type: ignore[assignment]

    bar = None
    if progress or (progress is None and trials > 5):
        from mpslab.run.progress import progress_bar

        bar = progress_bar(trials, desc=f"trials {cfg.get('workload')} (fleet)", unit="trial", enabled=True)
    counts: dict[str, int] = {}

    def on_record(rec: dict[str, Any]) -> None:
        outcome = rec["result"]["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
        if bar is not None:
            bar.set_postfix({o: counts[o] for o in OUTCOMES + (LOST,) if o in counts}, refresh=False)
            bar.update(1)

    try:
        records, ran = drive_batch(
            submit,
            trials=trials,
            batch=key,
            config=cfg,
            store=trial_store,
            capacity=_slots(client),
            stop_when=stop_when,
            on_record=on_record,
            cancel=cancel,
        )
    finally:
        if bar is not None:
            bar.close()
    df = _records.records_frame(records.values())
    df.attrs.update(batch=key, resumed=len(records) - ran, ran=ran, scheduler=_describe(client))
    return df


def _describe(client: Any) -> str:
    if _is_client(client):
        return str(getattr(client.scheduler, "address", None) or "dask")
    return type(client).__name__
