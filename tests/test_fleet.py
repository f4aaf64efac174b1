"""Fleet runs on a two-worker Dask LocalCluster: a batch, a worker killed mid-trial, plugins by content."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

distributed = pytest.importorskip("distributed", reason="not applicable: dask distributed is not installed")

from mpslab.trials.executors import LOST  # noqa: E402
from mpslab.trials.isolate import run_trials  # noqa: E402
from mpslab.trials.records import load_records  # noqa: E402

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses the fork server")

SLOW_PLUGIN = """
import time
import torch
from mpslab import register_workload

@register_workload("fleet-slow", description="sleeps 50 ms per step (fleet test)")
def _slow(ctx, i):
    time.sleep(0.05)
    return torch.randn(4, 4, generator=ctx.generator, device=ctx.device).sum()
"""


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "fleet_slow_plugin.py"
    path.write_text(SLOW_PLUGIN)
    return path


@linux_only
def test_a_batch_runs_on_two_workers_with_host_and_worker_in_every_record(client, tmp_path, plugin):
    store = tmp_path / "trials.jsonl"
    # a dict config is validated by the workers; the plugin travels by content (loaded there)
    cfg = dict(
        threads=1,
        iterations=4,
        workload="fleet-slow",
        size=4,
        device="cpu",
        warmup=0,
        verify=False,
        plugins=[str(plugin)],
    )
    df = run_trials(cfg, trials=6, timeout_s=120, store=store, client=client, progress=False)
    assert df["trial"].tolist() == list(range(6)) and (df["outcome"] == "ok").all()
    assert df["worker"].isin(list(client.scheduler_info(n_workers=-1)["workers"])).all()
    assert df["env_host"].notna().all()
    stored = load_records(store)
    assert sorted(stored["trial"]) == list(range(6))
    again = run_trials(cfg, trials=6, timeout_s=120, store=store, client=client, progress=False)
    assert again.attrs["ran"] == 0 and again.attrs["resumed"] == 6  # resumed from the store


@linux_only
def test_a_worker_killed_mid_trial_neither_duplicates_nor_silently_drops_its_trial(client, tmp_path, plugin):
    store = tmp_path / "trials.jsonl"
    cfg = dict(
        threads=1,
        iterations=30,
        workload="fleet-slow",
        size=4,
        device="cpu",
        warmup=0,
        verify=False,
        plugins=[str(plugin)],
    )
    n = 4
    fut = client.submit(lambda: None)  # warm
    fut.result()
    import threading

    killed: list[str] = []

    def killer() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            busy = [w for w, keys in client.processing().items() if any("mpslab-trial" in str(k) for k in keys)]
            if busy:
                time.sleep(0.5)  # its trial has started
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(busy[0])
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    df = run_trials(cfg, trials=n, timeout_s=120, store=store, client=client, progress=False)
    t.join()
    assert killed, "no worker was seen running a trial"
    stored = load_records(store)
    assert sorted(stored["trial"]) == list(range(n))  # each trial exactly once
    assert df["trial"].tolist() == list(range(n))
    assert df["outcome"].isin(["ok", LOST]).all()
    lost = df[df["outcome"] == LOST]
    assert lost["first_error"].str.len().gt(0).all()  # a lost trial says why
