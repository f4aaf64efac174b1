"""One driver for every executor: run_batch / run_trials with executor=None, a concurrent.futures pool, client=."""

from __future__ import annotations

import concurrent.futures as cf
import math
import sys

import pytest

from mpslab.run.config import ConfigError, StressConfig
from mpslab.trials.executors import LocalExecutor
from mpslab.trials.isolate import run_batch, run_fleet, run_trials
from mpslab.trials.outcomes import Outcome
from mpslab.trials.records import load_records
from mpslab.trials.trial import TrialBatch, TrialRecord

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses the fork server")

CFG = StressConfig(threads=2, iterations=2, workload="mlp", size=8, device="cpu", warmup=0)


def test_the_local_executor_runs_each_task_at_submit_and_keeps_its_exception():
    ex = LocalExecutor()
    ran: list[int] = []
    fut = ex.submit(lambda x: ran.append(x) or x * 2, 21)
    assert ran == [21] and fut.done() and fut.result() == 42
    bad = ex.submit(lambda: 1 / 0)
    assert bad.done() and isinstance(bad.exception(), ZeroDivisionError)


@pytest.mark.parametrize(
    ("kw", "named"),
    [
        (dict(timeout_s=math.inf), "timeout_s=inf"),
        (dict(trials=0), "trials=0"),
        (dict(mode="fork"), "mode='fork'"),
        (dict(python=sys.executable), "python=: not with executor="),
        (dict(client=cf.ThreadPoolExecutor(1)), "give one"),
    ],
)
def test_a_pool_batch_refuses_bad_input_with_the_checks_of_a_local_one(kw, named, tmp_path):
    store = tmp_path / "s.jsonl"
    with cf.ThreadPoolExecutor(1) as pool:
        with pytest.raises(ConfigError, match=named) as info:
            run_trials(CFG, **{"trials": 2, "store": store, "executor": pool, "progress": False, **kw})
    assert "\n" not in str(info.value)
    assert not store.exists() or store.read_bytes() == b""  # refused before any trial


def test_an_executor_that_is_none_of_the_kinds_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="executor: must be a distributed.Client or a concurrent.futures.Executor"):
        run_trials(CFG, trials=1, executor=object())


@linux_only
def test_run_batch_gives_typed_records_and_run_trials_its_frame(tmp_path):
    store = tmp_path / "s.jsonl"
    batch = run_batch(CFG, trials=3, store=store, progress=False)
    assert isinstance(batch, TrialBatch) and [r.trial for r in batch] == [0, 1, 2]
    assert all(isinstance(r, TrialRecord) and r.outcome is Outcome.OK for r in batch)
    assert batch.counts()[Outcome.OK] == 3 and (batch.ran, batch.resumed) == (3, 0)
    stored = [line for line in store.read_text().splitlines() if '"mpslab.trial"' in line]
    assert len(stored) == 3
    again = run_trials(CFG, trials=4, store=store, progress=False)  # one more trial: the batch resumes
    assert again.attrs["batch"] == batch.batch and again.attrs["resumed"] == 3 and again.attrs["ran"] == 1
    assert list(again.columns) == list(batch.frame().columns)
    assert again["trial"].tolist() == [0, 1, 2, 3] and (again["worker"] == "local").all()


@linux_only
def test_a_process_pool_runs_the_batch_through_the_same_loop_and_store(tmp_path):
    store = tmp_path / "s.jsonl"
    with cf.ProcessPoolExecutor(2) as pool:
        df = run_trials(CFG, trials=4, store=store, executor=pool, progress=False)
        again = run_fleet(CFG, 4, 60.0, store, pool, progress=False)  # the older call, same batch
    assert df["trial"].tolist() == [0, 1, 2, 3] and (df["outcome"] == Outcome.OK).all()
    assert df["worker"].str.contains(":").all()  # host:pid of the pool's worker process
    assert df.attrs["scheduler"] == "ProcessPoolExecutor" and df.attrs["ran"] == 4
    assert again.attrs["batch"] == df.attrs["batch"] and again.attrs["ran"] == 0 and again.attrs["resumed"] == 4
    assert sorted(load_records(store)["trial"]) == [0, 1, 2, 3]
