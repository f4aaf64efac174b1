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

Where each part lives: ``outcomes`` (classes, reading what a child left), ``child``
(the child's side), ``boot.py`` (every child's and fork server's first code),
``supervise`` (timeouts, stacks, kills; the spawn runner), ``forkserver`` (one server per
interpreter), ``plan`` (a batch's checks and one trial's record), ``executors`` (the
batch loop, local or on Dask workers), ``records``/``store`` (the JSON-lines store).
This module is only the public call.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import tempfile
from typing import Any

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials import records as _records
from mpslab.trials.forkserver import ServerBroken, shutdown_server
from mpslab.trials.outcomes import OUTCOMES, classify
from mpslab.trials.plan import (
    MODES,
    check_inputs,
    default_mode,
    make_runner,
    plan_batch,
    remove_stale_temp,
    run_one,
    without_sigint,
)
from mpslab.trials.store import TrialStore
from mpslab.trials.supervise import TEMP_PREFIX

__all__ = ["run_trials", "classify", "shutdown_server", "OUTCOMES", "MODES", "default_mode"]


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
    client: Any = None,
):
    """Run ``config`` ``trials`` times, each in its own child process; one DataFrame row per trial.

    config     a ``StressConfig`` (or its ``to_dict()``, validated by the trial interpreter)
    trials     number of trials (>= 1), numbered 0 .. trials-1
    timeout_s  seconds from a child's start to its exit; past it the trial is a ``hang``
    python     interpreter for the children (default: this one); e.g. another venv's torch build
    store      a JSON-lines file: each trial is appended as it ends, and trials of the
               same batch already there are not run again (resume)
    mode       ``auto`` (forkserver on Linux, else spawn), ``spawn`` or ``forkserver``
    batch      a label that starts a new batch of an otherwise identical run in the same store
    progress   a tqdm bar; ``None``: only for more than 5 trials to run
    client     a ``distributed.Client`` or a ``concurrent.futures.Executor``: the trials run
               on its workers, each still in its own child process (``executors.run_fleet``)

    Several processes may share one ``store``: each trial number is claimed
    before it runs, so none runs twice and each call returns the whole batch.

    Columns: ``trial``, ``outcome`` (ok | error | mismatch | crash | hang),
    ``exit_code``, ``signal``, ``signal_number``, ``seconds``, ``wall_s``,
    ``ops_per_s``, ``error_count``, ``mismatch_count``, ``latency_*_ms``,
    ``first_error``, every other ``StressResult.to_row()`` column (config fields,
    ``env_*``), ``stderr_tail``, ``hang_stacks``, ``launch`` (the mode used), ``batch``, ``env_id``.
    Measurements are NaN for a trial that left no result. ``df.attrs`` holds
    ``batch`` (the batch key), ``resumed`` (trials read back from the store) and
    ``ran`` (trials run by this call). Bad input raises one
    ``ConfigError`` (a ``ValueError``) line before any trial runs.
    """
    if client is not None:
        if python is not None:
            raise ConfigError("python=: not with client= (each worker runs its trials under its own interpreter)")
        from mpslab.trials.executors import run_fleet

        return run_fleet(config, trials, timeout_s, store, client, mode=mode, batch=batch, progress=progress)
    if not isinstance(config, (StressConfig, dict)):
        raise ConfigError(f"config: must be a StressConfig or a dict, got {type(config).__name__}")
    python_path, concrete = check_inputs(trials, timeout_s, python, mode, batch)
    trial_store = TrialStore(store) if store is not None else None

    remove_stale_temp()
    workdir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-trials-")
    runner = None
    bar = None
    try:
        try:
            runner = make_runner(concrete, python_path)
        except ServerBroken as exc:
            raise ConfigError(f"python={python_path!r}: {exc}") from None
        plan = plan_batch(config, python_path, concrete, timeout_s, batch, runner, workdir)
        from mpslab.trials.executors import drive_batch

        known = trial_store.finished(plan.batch) if trial_store is not None else {}
        todo_n = trials - len([k for k in known if k < trials])
        show = progress if progress is not None else todo_n > 5
        if show and todo_n:
            from mpslab.run.progress import progress_bar

            bar = progress_bar(
                trials, initial=trials - todo_n, desc=f"trials {plan.config['workload']}", unit="trial", enabled=True
            )
        counts: dict[str, int] = {}

        def submit(k: int) -> Any:  # here, one at a time: a future already done
            fut: Any = concurrent.futures.Future()
            rec = run_one(runner, plan, k, workdir)
            rec["result"]["worker"] = "local"
            fut.set_result(rec)
            return fut

        def on_record(rec: dict[str, Any]) -> None:
            outcome = rec["result"]["outcome"]
            counts[outcome] = counts.get(outcome, 0) + 1
            if bar is not None:
                bar.set_postfix({o: counts[o] for o in OUTCOMES if o in counts}, refresh=False)
                bar.update(1)

        records, ran = drive_batch(
            submit,
            trials=trials,
            batch=plan.batch,
            config=plan.config,
            store=trial_store,
            capacity=1,
            on_record=on_record,
        )
    except BaseException:
        if runner is not None:
            without_sigint(runner.abort)
        raise
    finally:
        if bar is not None:
            bar.close()
        if runner is not None:
            runner.release()
        shutil.rmtree(workdir, ignore_errors=True)
    df = _records.records_frame(records[k] for k in sorted(records))
    df.attrs.update(batch=plan.batch, resumed=len(records) - ran, ran=ran)
    return df
