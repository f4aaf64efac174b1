"""Isolated trials: each run of a config in its own child process, every outcome classified.

``run_trials(config, trials=N, timeout_s=...)`` runs ``run_stress(config)`` N
times, each time in a fresh child process, and returns one DataFrame row per
trial. The parent survives whatever the child does:

``ok`` / ``error`` / ``mismatch``
    the child wrote its result (``StressResult.to_row()``) and exited 0.
``crash``
    the child died by a signal (``signal`` = ``SIGSEGV``, ``signal_number`` = 11)
    or exited non-zero, or exited without writing a result.
``hang``
    no exit within ``timeout_s`` (counted from the child's start, interpreter
    start-up included in ``spawn`` mode): the child is sent ``SIGUSR1``, on which
    ``faulthandler`` writes every thread's Python stack (``hang_stacks``), then
    its process group is killed.

Each row also keeps the last 40 lines of the child's stderr (``stderr_tail``:
where a Metal assertion or ``faulthandler``'s fatal-signal report appears),
``wall_s`` (the child's lifetime as the parent saw it), the config's fields, and
the ``env_*`` columns (the child's own, or the parent's when the child wrote none).

Two ways to start a child (``mode``):

``spawn``
    a new interpreter per trial (``python .../mpslab/trials/boot.py child ...``): ~3 s of start-up
    and ``import torch`` per trial. The only mode outside Linux (forking after
    Metal/Objective-C has started is unsafe on macOS).
``forkserver`` (Linux; what ``auto`` picks there)
    one server process imports torch and mpslab once, initialises no device
    and runs no tensor op, and forks one child per trial. Each child is still a
    fresh process (own address space, own device context), so isolation is
    kept; the import is paid once. The server stays up between calls (so a
    sweep pays it once), under the interpreter it was started with, and exits
    when the parent exits, after 5 minutes idle, or on ``shutdown_server()``.

``python=`` names another interpreter (another venv, another torch build): the
children and the fork server run under it, and load this mpslab package from its
own directory, so nothing needs installing there. Before any trial, one probe
child under that interpreter validates the config and reports its environment.

Calls from several threads at once take turns on the fork server (one batch at a
time); ``spawn`` batches run side by side.

Nothing is left behind: children run in their own process group, which is
killed after each trial; a ``KeyboardInterrupt`` (Ctrl-C, a notebook's
interrupt) kills the running trial and the fork server before it propagates; on
Linux children die with their parent even on ``kill -9`` (``PR_SET_PDEATHSIG``).
POSIX only.

Where the trials run (``executor``): ``None`` runs them here, one at a time (a
``LocalExecutor``); a ``concurrent.futures.Executor`` or a ``distributed.Client`` runs
each on a worker, still in its own child process (``fleet``). Every batch goes
through one loop (``executors.drive_batch``). ``run_batch`` returns a ``TrialBatch``
of ``TrialRecord``s; ``run_trials`` returns its DataFrame.

Where each part lives: ``outcomes`` (classes, reading what a child left), ``child``
(the child's side), ``boot.py`` (every child's and fork server's first code),
``supervise`` (timeouts, stacks, kills; the spawn runner), ``forkserver`` (one server per
interpreter), ``plan`` (a batch's checks and one trial's record), ``executors`` (the
batch loop), ``fleet`` (trials on workers), ``trial`` (the types), ``records``/``store``
(the store). This module is only the public call.
"""

from __future__ import annotations

import os
from typing import Any

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials.executors import LocalExecutor, as_executor, describe, drive_batch
from mpslab.trials.forkserver import shutdown_server
from mpslab.trials.outcomes import OUTCOMES, Outcome, classify
from mpslab.trials.plan import MODES, LocalTarget, check_inputs, default_mode
from mpslab.trials.store import TrialStore
from mpslab.trials.trial import TrialBatch

__all__ = ["run_trials", "run_batch", "run_fleet", "classify", "shutdown_server", "OUTCOMES", "MODES", "default_mode"]


def run_batch(
    config: StressConfig | dict[str, Any],
    trials: int = 20,
    timeout_s: float = 60.0,
    python: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    *,
    mode: str = "auto",
    batch: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    client: Any = None,
) -> TrialBatch:
    """Run ``config`` ``trials`` times, each in its own child process; a ``TrialBatch`` of every trial.

    config     a ``StressConfig`` (or its ``to_dict()``, validated by the trial interpreter)
    trials     number of trials (>= 1), numbered 0 .. trials-1
    timeout_s  seconds from a child's start to its exit; past it the trial is a ``hang``
    python     interpreter for the children (default: this one); e.g. another venv's torch build
    store      a JSON-lines file: each trial is appended as it ends, and trials of the
               same batch already there are not run again (resume)
    mode       ``auto`` (forkserver on Linux, else spawn), ``spawn`` or ``forkserver``
    batch      a label that starts a new batch of an otherwise identical run in the same store
    progress   a tqdm bar; ``None``: only for more than 5 trials to run
    executor   ``None`` (here, one trial at a time), a ``concurrent.futures.Executor`` or a
               ``distributed.Client``: the trials run on its workers, each still in its own
               child process (``fleet``); ``client`` is another name for it

    Several processes may share one ``store``: each trial number is claimed
    before it runs, so none runs twice and each call returns the whole batch.
    Bad input raises one ``ConfigError`` (a ``ValueError``) line before any trial runs.
    """
    executor = as_executor(executor, client)
    local = isinstance(executor, LocalExecutor)
    if not local and python is not None:
        raise ConfigError("python=: not with executor= (each worker runs its trials under its own interpreter)")
    python_path, concrete = check_inputs(config, trials, timeout_s, python, mode, batch, local=local)
    trial_store = TrialStore(store) if store is not None else None
    if local:
        target: Any = LocalTarget(config, python_path, concrete, float(timeout_s), batch, executor)
    else:
        from mpslab.trials.fleet import FleetTarget

        target = FleetTarget(config, float(timeout_s), mode, batch, executor)
    bar = None
    try:
        known = trial_store.finished(target.batch) if trial_store is not None else {}
        todo = trials - len([k for k in known if k < trials])
        if todo and (progress if progress is not None else todo > 5):
            from mpslab.run.progress import progress_bar

            bar = progress_bar(trials, initial=trials - todo, desc=target.desc, unit="trial", enabled=True)
        counts = dict.fromkeys(Outcome, 0)

        def on_record(rec: Any) -> None:
            counts[rec.outcome] += 1
            if bar is not None:
                bar.set_postfix({o.value: n for o, n in counts.items() if n}, refresh=False)
                bar.update(1)

        return drive_batch(
            target.submit,
            trials=trials,
            batch=target.batch,
            config=target.config,
            store=trial_store,
            capacity=target.capacity,
            on_record=on_record,
            cancel=target.cancel,
            mixed=target.mixed,
        )
    except BaseException:
        target.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        target.close()


def run_trials(
    config: StressConfig | dict[str, Any],
    trials: int = 20,
    timeout_s: float = 60.0,
    python: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    *,
    mode: str = "auto",
    batch: str | None = None,
    progress: bool | None = None,
    executor: Any = None,
    client: Any = None,
):
    """``run_batch(...)`` as a DataFrame: one row per trial (arguments as ``run_batch``).

    Columns: ``trial``, ``outcome`` (ok | error | mismatch | crash | hang; ``lost`` on a
    fleet), ``exit_code``, ``signal``, ``signal_number``, ``seconds``, ``wall_s``,
    ``ops_per_s``, ``error_count``, ``mismatch_count``, ``latency_*_ms``,
    ``first_error``, every other ``StressResult.to_row()`` column (config fields,
    ``env_*``), ``stderr_tail``, ``hang_stacks``, ``launch`` (the mode used), ``worker``,
    ``batch``, ``env_id``. Measurements are NaN for a trial that left no result.
    ``df.attrs`` holds ``batch`` (the batch key), ``resumed`` (trials read back from the
    store), ``ran`` (trials run by this call) and, on a fleet, ``scheduler``.
    """
    executor = as_executor(executor, client)
    kw = dict(mode=mode, batch=batch, progress=progress, executor=executor)
    df = run_batch(config, trials, timeout_s, python, store, **kw).frame()
    if not isinstance(executor, LocalExecutor):
        df.attrs["scheduler"] = describe(executor)
    return df


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
):
    """``run_trials`` on ``client`` (a ``distributed.Client`` or a ``concurrent.futures.Executor``)."""
    return run_trials(
        config, trials, timeout_s, None, store, mode=mode, batch=batch, progress=progress, executor=client
    )
