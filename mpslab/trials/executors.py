"""Where a batch's trials run, and the one loop that drives every batch.

An executor is where each trial's task runs: ``LocalExecutor`` (here, one trial at a
time, through this process's fork server or spawn runner: what ``executor=None``
means), any ``concurrent.futures.Executor`` (a process pool), or a
``distributed.Client`` (a Dask cluster). ``drive_batch`` is the one loop every batch
goes through, whatever the executor: it claims free trial numbers in the store
(``claims.Claimant``: two writers on one store never run the same trial), submits them,
and, like dask's ``as_completed``, takes each future as it completes, turns its dict
into a ``TrialRecord`` and appends it to the store on this (the submitting) side only.
It waits for trials that other live writers hold, and returns the whole batch as a
``TrialBatch``. A worker that died and would not be replaced (``KilledWorker``, a
broken pool) leaves its trial stored as ``outcome="lost"`` with the reason: never
twice, never dropped.

What it is not: one trial's run (``plan``), the worker side of a fleet (``fleet``),
the store (``store``), the public call (``isolate``).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from mpslab.run.config import ConfigError
from mpslab.trials import records as _records
from mpslab.trials.outcomes import Outcome
from mpslab.trials.store import TrialStore
from mpslab.trials.trial import TrialBatch, TrialRecord

__all__ = ["LocalExecutor", "drive_batch", "as_executor", "connect", "lost_record", "LOST"]

LOST = Outcome.LOST  # a trial whose worker died and that Dask would not rerun
POLL_S = 0.5  # how often to look at trials other writers hold


class LocalExecutor(cf.Executor):
    """Runs each task here, at ``submit``, and hands back a future already done.

    What ``run_trials(executor=None)`` uses: trials one at a time in this process's
    fork server or spawn runner, so a local batch goes through the same loop as a fleet.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as exc:
            fut.set_exception(exc)
        return fut


def is_client(executor: Any) -> bool:
    """Whether ``executor`` is a ``distributed.Client`` (told by its type, without importing Dask)."""
    return type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed")


def as_executor(executor: Any, client: Any) -> Any:
    """The executor a batch runs on: ``executor``, else ``client`` (its alias), else a ``LocalExecutor``."""
    if executor is not None and client is not None and executor is not client:
        raise ConfigError("executor=, client=: give one (client= is another name for executor=)")
    chosen = executor if executor is not None else client
    if chosen is None:
        return LocalExecutor()
    if not (is_client(chosen) or isinstance(chosen, cf.Executor)):
        raise ConfigError(
            f"executor: must be a distributed.Client or a concurrent.futures.Executor, got {type(chosen).__name__}"
        )
    return chosen


def slots(executor: Any) -> Callable[[], int]:
    """How many trials may be in flight: device resources, else worker threads (Dask); pool size otherwise."""
    if isinstance(executor, LocalExecutor):
        return lambda: 1
    if is_client(executor):

        def count() -> int:
            workers = executor.scheduler_info(n_workers=-1)["workers"].values()
            devices = sum(int((w.get("resources") or {}).get("device", 0)) for w in workers)
            return devices if devices else sum(int(w.get("nthreads", 1)) for w in workers)

        return count
    return lambda: int(getattr(executor, "_max_workers", 0) or os.cpu_count() or 1)


def uses_devices(executor: Any) -> bool:
    """Whether a Dask cluster's workers declare a ``device`` resource (then each trial asks for one)."""
    if not is_client(executor):
        return False
    workers = executor.scheduler_info(n_workers=-1)["workers"].values()
    return any("device" in (w.get("resources") or {}) for w in workers)


def describe(executor: Any) -> str:
    """The scheduler's address for a Dask client, else the executor's class name."""
    if is_client(executor):
        return str(getattr(executor.scheduler, "address", None) or "dask")
    return type(executor).__name__


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


# --------------------------------------------------------------------------- the loop


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


def _completed(futures: list[Any]) -> list[Any]:
    """The futures of ``futures`` that are done, waiting for at least one (Dask's or ``concurrent.futures``')."""
    if futures and type(futures[0]).__module__.startswith("distributed"):
        from distributed import wait

        return list(wait(futures, return_when="FIRST_COMPLETED").done)
    return list(cf.wait(futures, return_when=cf.FIRST_COMPLETED).done)


def _lost_reason(exc: BaseException) -> str | None:
    """Why a trial is lost (its worker died and would not be replaced), or ``None`` for a real error."""
    name = type(exc).__name__
    if name == "KilledWorker" or isinstance(exc, cf.BrokenExecutor):
        return f"{name}: {str(exc).splitlines()[0] if str(exc) else 'the worker running it died'}"
    return None


def lost_record(k: int, why: str, *, batch: str, config: dict[str, Any]) -> TrialRecord:
    """The record of trial ``k`` that ran nowhere to the end: outcome ``lost`` and why, no environment."""
    row = {"trial": k, "outcome": LOST, "first_error": why, "worker": None}
    return TrialRecord.from_json(_records.make_record(row, batch=batch, config=config))


def drive_batch(
    submit: Callable[[int], Any],
    *,
    trials: int,
    batch: str,
    config: dict[str, Any],
    store: TrialStore | None,
    capacity: Callable[[], int] = lambda: 1,
    on_record: Callable[[TrialRecord], None] | None = None,
    cancel: Callable[[list[Any]], None] | None = None,
    mixed: bool = False,
) -> TrialBatch:
    """Run the trials of ``batch`` not yet stored; returns all of them (``ran``: run here, ``resumed``: read back).

    ``submit(k)`` starts trial ``k`` and returns a future (``concurrent.futures`` or
    Dask) whose result is the record's JSON dict. At most ``capacity()`` trials are in
    flight. ``mixed``: the batch key leaves the environment out (a fleet).
    """
    claimant: Any = store.claimant(batch, trials) if store is not None else _MemoryClaimant(trials)
    done = TrialBatch(batch, mixed=mixed)
    inflight: dict[Any, int] = {}

    def keep_finished() -> None:  # the batch's records in the store that this batch does not hold yet
        have = {rec.trial for rec in done}
        for k, obj in claimant.finished().items():
            if k < trials and k not in have:
                done.add(TrialRecord.from_json(obj))

    with claimant:
        keep_finished()
        try:
            for k, rec in _as_completed(submit, claimant, inflight, capacity):
                if isinstance(rec, str):  # why it was lost
                    rec = lost_record(k, rec, batch=batch, config=config)
                if store is not None:
                    store.append(rec.to_json())
                done.add(rec)
                claimant.done(k)
                done.ran += 1
                if on_record is not None:
                    on_record(rec)
        except BaseException:
            if inflight:
                if cancel is not None:
                    cancel(list(inflight))
                else:
                    for fut in inflight:
                        fut.cancel()
            raise
        keep_finished()
    done.resumed = len(done) - done.ran
    return done


def _as_completed(
    submit: Callable[[int], Any], claimant: Any, inflight: dict[Any, int], capacity: Callable[[], int]
) -> Iterator[tuple[int, TrialRecord | str]]:
    """(trial, record) as each trial completes, submitting claimed trials as room frees up; a ``str``
    in place of the record says why the trial was lost."""
    while True:
        room = capacity() - len(inflight)
        for k in claimant.take(max(room, 0) if inflight else max(room, 1)):
            inflight[submit(k)] = k
        if not inflight:
            if not claimant.held_by_others():
                return
            time.sleep(POLL_S)  # another writer holds the rest: wait for its records
            continue
        for fut in _completed(list(inflight)):
            k = inflight.pop(fut)
            try:
                obj = fut.result()
            except Exception as exc:
                why = _lost_reason(exc)
                if why is None:
                    raise
                yield k, why
                continue
            yield k, obj if isinstance(obj, TrialRecord) else TrialRecord.from_json(obj)
