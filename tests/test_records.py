"""The records store: atomic lines, torn tails, resume, the loader, and kill -9 in the middle of a batch."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import pytest
from proc_helpers import descendants, running

from mpslab import StressConfig
from mpslab.run.config import ConfigError
from mpslab.trials.isolate import run_trials
from mpslab.trials.records import (
    MIGRATIONS,
    SCHEMA_VERSION,
    StoreSchemaError,
    TornRecordWarning,
    environment_id,
    load_records,
    make_record,
    read_records,
    record_to_row,
)
from mpslab.trials.store import TrialStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and the fork server")


def _row(trial: int, outcome: str = "ok", host: str = "a", seconds: float = 0.5) -> dict:
    return {
        "trial": trial,
        "outcome": outcome,
        "exit_code": 0,
        "signal": None,
        "seconds": seconds,
        "ops_per_s": float("nan"),
        "first_error": None,
        "threads": 2,
        "iterations": 3,
        "workload": "seed",
        "plugins": "",
        "env_host": host,
        "env_torch": "2.13.0",
        "env_time": f"2025-01-01T00:00:0{trial % 10}+00:00",
    }


_CONFIG = {"threads": 2, "iterations": 3, "workload": "seed", "plugins": []}


def _record(trial: int, batch: str = "b1", **kw) -> dict:
    return make_record(_row(trial, **kw), batch=batch, config=dict(_CONFIG))


def _record_lines(path) -> list[bytes]:
    """The trial-record lines of a store (claim lines left out)."""
    return [line for line in path.read_bytes().split(b"\n") if b'"kind":"mpslab.trial"' in line]


def _strict_json(line: bytes) -> dict:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def test_record_holds_schema_config_and_environment_and_round_trips_to_the_row():
    rec = _record(4)
    assert rec["schema"] == SCHEMA_VERSION and rec["batch"] == "b1" and rec["trial"] == 4
    assert rec["config"] == _CONFIG
    assert rec["environment"] == {"host": "a", "torch": "2.13.0", "time": "2025-01-01T00:00:04+00:00"}
    assert rec["result"]["ops_per_s"] is None  # NaN is stored as null
    row = record_to_row(rec)
    assert row["trial"] == 4 and row["outcome"] == "ok" and row["threads"] == 2 and row["plugins"] == ""
    assert row["env_host"] == "a" and row["batch"] == "b1"
    assert row["env_id"] == environment_id(rec["environment"])


def test_environment_id_ignores_time_only():
    a = {"host": "a", "torch": "2.13", "time": "t1"}
    assert environment_id(a) == environment_id({**a, "time": "t2"})
    assert environment_id(a) != environment_id({**a, "torch": "2.12"})


def test_append_writes_one_complete_standard_json_line_per_record(tmp_path):
    store = TrialStore(tmp_path / "t.jsonl")
    for k in range(3):
        store.append(_record(k))
    data = (tmp_path / "t.jsonl").read_bytes()
    lines = data.split(b"\n")
    assert data.endswith(b"\n") and lines[-1] == b"" and len(lines) == 4
    assert [_strict_json(line)["trial"] for line in lines[:-1]] == [0, 1, 2]
    assert sorted(store.finished("b1")) == [0, 1, 2] and store.finished("other") == {}


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_append_survives(tmp_path):
    path = tmp_path / "t.jsonl"
    store = TrialStore(path)
    store.append(_record(0))
    full = json.dumps(_record(1)).encode()
    with open(path, "ab") as fh:
        fh.write(full[: len(full) // 2])  # what kill -9 during a write can leave
    with pytest.warns(TornRecordWarning, match="last line"):
        assert [r["trial"] for r in read_records(path)] == [0]
    store.append(_record(2))
    with pytest.warns(TornRecordWarning):
        assert [r["trial"] for r in read_records(path)] == [0, 2]
    with pytest.warns(TornRecordWarning):
        df = load_records(path)
    assert df["trial"].tolist() == [0, 2]


def test_loader_never_crashes_on_garbage_and_skips_newer_schemas(tmp_path):
    path = tmp_path / "t.jsonl"
    store = TrialStore(path)
    store.append(_record(0))
    newer = _record(1)
    newer["schema"] = SCHEMA_VERSION + 1
    with open(path, "ab") as fh:
        fh.write(b"\xff\xfe not json\n[1, 2]\n" + json.dumps(newer).encode() + b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recs = read_records(path)
    assert [r["trial"] for r in recs] == [0]
    assert len([w for w in caught if issubclass(w.category, TornRecordWarning)]) == 3


def test_load_records_keeps_environments_apart_and_names_the_source(tmp_path):
    a, b = TrialStore(tmp_path / "mac.jsonl"), TrialStore(tmp_path / "linux.jsonl")
    a.append(_record(0, host="mac", outcome="crash", seconds=float("nan")))
    a.append(_record(1, host="mac"))
    b.append(_record(0, host="linux"))
    df = load_records(tmp_path / "mac.jsonl", tmp_path / "linux.jsonl")
    assert len(df) == 3  # nothing merged, nothing de-duplicated
    assert df.groupby("env_id")["trial"].count().sort_values().tolist() == [1, 2]
    assert set(df["env_host"]) == {"mac", "linux"}
    assert df["source"].tolist() == [str(tmp_path / "mac.jsonl")] * 2 + [str(tmp_path / "linux.jsonl")]
    assert math.isnan(df.loc[0, "seconds"]) and df.loc[1, "seconds"] == 0.5
    assert str(df["exit_code"].dtype) == "Int64"
    assert len(load_records(tmp_path)) == 3  # a directory means its *.jsonl files


def test_store_refuses_bad_paths_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        TrialStore(tmp_path / "missing" / "t.jsonl")
    with pytest.raises(ConfigError, match="is a directory"):
        TrialStore(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_records(tmp_path / "nope.jsonl")


def test_store_refuses_to_append_something_that_is_not_a_record(tmp_path):
    with pytest.raises(ValueError):
        TrialStore(tmp_path / "t.jsonl").append({"trial": 1})


# --------------------------------------------------------------------------- kill -9 mid-batch

GATED_PLUGIN = """
import os
import time
import torch
from mpslab import register_workload

STARTED, HOLD = {started!r}, {hold!r}


@register_workload("gated-test", description="the 4th trial and later wait while HOLD exists (records test)")
def _gated(ctx, i):
    if i == 0:
        with open(STARTED, "a") as fh:
            fh.write("x")
        if os.path.getsize(STARTED) > 3:
            while os.path.exists(HOLD):  # the batch is killed here, with exactly 3 trials stored
                time.sleep(0.05)
    return torch.randn(4, 4, generator=ctx.generator, device=ctx.device).sum()
"""


@linux_only
def test_kill_9_mid_batch_leaves_a_loadable_file_and_resume_completes_it_without_duplicates(tmp_path):
    plugin = tmp_path / "gated_plugin.py"
    hold = tmp_path / "hold"
    hold.write_text("")
    plugin.write_text(GATED_PLUGIN.format(started=str(tmp_path / "started"), hold=str(hold)))
    store = tmp_path / "trials.jsonl"
    cfg = dict(
        threads=1,
        iterations=4,
        sync_every=0,
        workload="gated-test",
        size=4,
        device="cpu",
        warmup=0,
        verify=False,
        plugins=(str(plugin),),
    )
    n = 20
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from mpslab import StressConfig, run_trials
        run_trials(StressConfig(**{cfg!r}), trials={n}, timeout_s=120, store={str(store)!r},
                   mode="forkserver", progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=str(tmp_path))
    try:
        deadline = time.monotonic() + 120
        family: set[int] = set()
        while time.monotonic() < deadline:
            family |= descendants(proc.pid)
            if store.exists() and store.read_bytes().count(b'"kind":"mpslab.trial"') >= 3:
                break
            assert proc.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.01)
        else:
            pytest.fail("no records appeared within 120 s")
        family |= descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # the fork server and the running trial die with their parent
    gone_by = time.monotonic() + 15
    while any(running(p) for p in family) and time.monotonic() < gone_by:
        time.sleep(0.05)
    assert family and not [p for p in family if running(p)]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornRecordWarning)  # a torn last line is allowed, not required
        before = load_records(store)
    k = len(before)
    assert k == 3  # the 4th trial was held until the kill
    assert sorted(before["trial"]) == list(range(k))  # trials run in order, each stored once
    first_lines = _record_lines(store)[:k]
    # a parent killed with -9 cannot clean up after itself (unless another run_trials swept them meanwhile)
    leftovers = [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"mpslab-{proc.pid}-")]

    hold.unlink()  # from now on every trial runs through
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TornRecordWarning)
        df = run_trials(StressConfig(**cfg), trials=n, timeout_s=120, store=store, mode="forkserver", progress=False)
        after = load_records(store)
    assert df.attrs["resumed"] == k and df.attrs["ran"] == n - k
    assert df["trial"].tolist() == list(range(n)) and (df["outcome"] == "ok").all()
    assert len(after) == n and sorted(after["trial"]) == list(range(n))  # no duplicates, none missing
    assert after["batch"].nunique() == 1
    kept = _record_lines(store)[:k]
    assert kept == first_lines  # finished trials were not rewritten
    # the killed parent's temporary files were swept by the next run_trials
    assert leftovers is not None and not [
        n for n in os.listdir(tempfile.gettempdir()) if n.startswith(f"mpslab-{proc.pid}-")
    ]


# --------------------------------------------------------------------------- many writers, schemas


def test_appending_to_a_store_of_another_schema_is_refused_in_one_line_naming_both(tmp_path):
    path = tmp_path / "t.jsonl"
    other = _record(0)
    other["schema"] = SCHEMA_VERSION + 1
    path.write_text(json.dumps(other) + "\n")
    with pytest.warns(TornRecordWarning):
        with pytest.raises(StoreSchemaError) as info:
            TrialStore(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert f"schema {SCHEMA_VERSION + 1}" in msg and f"schema {SCHEMA_VERSION}" in msg
    assert isinstance(info.value, ConfigError)


def test_older_schemas_load_through_the_migration_hook(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    old = _record(0)
    old["schema"] = SCHEMA_VERSION - 1
    old["result"].pop("ops_per_s")
    path.write_text(json.dumps(old) + "\n")
    monkeypatch.setitem(
        MIGRATIONS,
        SCHEMA_VERSION - 1,
        lambda r: {**r, "schema": r["schema"] + 1, "result": {**r["result"], "ops_per_s": 1.0}},
    )
    [rec] = read_records(path)
    assert rec["schema"] == SCHEMA_VERSION and rec["result"]["ops_per_s"] == 1.0
    assert load_records(path)["ops_per_s"].tolist() == [1.0]


def test_committed_schema_1_data_still_loads():
    data = os.path.join(ROOT, "data")
    files = [
        os.path.join(d, f) for d, _, fs in os.walk(data) for f in fs if f.endswith(".jsonl") and f != "throughput.jsonl"
    ]  # the advisor's throughput rows are not trials
    if not files:
        pytest.skip("not applicable: no committed records under data/")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornRecordWarning)
        for f in files:
            assert len(load_records(f)) > 0


def test_a_corrupt_line_in_the_middle_is_named_and_the_rest_loads(tmp_path):
    path = tmp_path / "t.jsonl"
    store = TrialStore(path)
    store.append(_record(0))
    with open(path, "ab") as fh:
        fh.write(b"{not json\n")
    store.append(_record(1))
    with pytest.warns(TornRecordWarning, match="line 2 "):
        assert [r["trial"] for r in read_records(path)] == [0, 1]


def test_two_claimants_in_one_store_never_take_the_same_trial(tmp_path):
    store_a, store_b = TrialStore(tmp_path / "t.jsonl"), TrialStore(tmp_path / "t.jsonl")
    with store_a.claimant("b1", 6) as a, store_b.claimant("b1", 6) as b:
        got_a, got_b = a.take(4), b.take(4)
        assert sorted(got_a + got_b) == list(range(6)) and not set(got_a) & set(got_b)
        assert b.held_by_others() == got_a
    with store_b.claimant("b1", 6) as c:  # a and b have ended without records: their trials are free again
        assert c.take(10) == list(range(6))


@linux_only
def test_two_concurrent_run_trials_processes_on_one_store_neither_duplicate_nor_lose_a_trial(tmp_path):
    store = tmp_path / "trials.jsonl"
    n = 12
    cfg = dict(threads=1, iterations=2, workload="seed", size=4, device="cpu", warmup=0, verify=False)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from mpslab import StressConfig, run_trials
        df = run_trials(StressConfig(**{cfg!r}), trials={n}, timeout_s=120, store={str(store)!r},
                        mode="forkserver", progress=False)
        print(sorted(df["trial"].tolist()), df.attrs["ran"])
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=str(tmp_path), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    df = load_records(store)
    assert len(df) == n and sorted(df["trial"]) == list(range(n))  # no duplicate, none missing
    assert b"mpslab.claim" not in store.read_bytes()  # the claims went to the sidecar, not among the records
    ran = []
    for out in outs:  # each process returns the whole batch, its own share run by itself
        trials_text, ran_text = out.strip().rsplit(" ", 1)
        assert trials_text == str(list(range(n)))
        ran.append(int(ran_text))
    assert sum(ran) == n


def test_the_batch_key_does_not_depend_on_the_checkout_commit(monkeypatch):
    # editing the checkout mid-batch (a "-dirty" commit) must not turn a resume into a new batch
    from mpslab.trials import plan as trial_plan

    cfg = StressConfig(threads=1, iterations=2, size=4, device="cpu", warmup=0)
    env = trial_plan.environment_block("cpu")
    keys = []
    for commit in ("abc123", "abc123-dirty"):
        monkeypatch.setattr(trial_plan, "environment_block", lambda device, c=commit: {**env, "mpslab_commit": c})
        keys.append(
            trial_plan.plan_batch(cfg, os.path.abspath(sys.executable), "forkserver", 60.0, None, None, "/tmp").batch
        )
    assert keys[0] == keys[1]
    monkeypatch.setattr(trial_plan, "environment_block", lambda device: {**env, "torch": "0.0.0-other"})
    other = trial_plan.plan_batch(cfg, os.path.abspath(sys.executable), "forkserver", 60.0, None, None, "/tmp").batch
    assert other != keys[0]  # a different build is still a different batch


# --------------------------------------------------------------------------- how Python ran (issue 19, point 4)


def test_a_record_written_before_the_interpreter_fields_loads_as_a_standard_build(tmp_path):
    path = tmp_path / "old.jsonl"
    old = _record(0)
    old["environment"]["python"] = "3.12.3"
    assert "interpreter" not in old["environment"]  # what mpslab wrote before these fields existed
    path.write_text(json.dumps(old) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornRecordWarning)
        [rec] = read_records(path)
        df = load_records(path)
    assert rec["environment"]["interpreter"] == "3.12.3 standard build"
    assert df["env_interpreter"].tolist() == ["3.12.3 standard build"]
    assert df["env_py_gil_disabled"].isna().all() and df["env_gil_enabled_start"].isna().all()
    store = TrialStore(path)  # the same schema: an old store still takes new records
    store.append(_record(1))
    assert load_records(path)["trial"].tolist() == [0, 1]


def test_gil_on_and_gil_off_are_two_environments_and_the_gil_at_the_end_is_not_the_environment():
    base = {"host": "a", "torch": "2.13.0", "python": "3.13.1", "py_gil_disabled": 1}
    off = {**base, "gil_enabled_start": False, "interpreter": "3.13.1 free-threaded, GIL off"}
    on = {**base, "gil_enabled_start": True, "interpreter": "3.13.1 free-threaded, GIL on"}
    assert environment_id(off) != environment_id(on)
    # a trial that ended with the GIL turned on (or died before it could say) ran in the same environment
    assert environment_id({**off, "gil_enabled_end": True}) == environment_id({**off, "gil_enabled_end": None})
    rows = [
        record_to_row(make_record({**_row(k), **{f"env_{n}": v for n, v in e.items()}}, batch="b", config=_CONFIG))
        for k, e in enumerate((off, on))
    ]
    assert [r["env_interpreter"] for r in rows] == [off["interpreter"], on["interpreter"]]


def test_interpreter_fields_of_a_free_threaded_build_with_the_gil_off_and_on(monkeypatch):
    import platform
    import sysconfig

    from mpslab.run import interpreter

    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else real(name))
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)
    start = interpreter.interpreter_fields(when="start")
    assert start == {
        "py_gil_disabled": 1,
        "gil_enabled_start": False,
        "interpreter": f"{platform.python_version()} free-threaded, GIL off",
    }
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: True, raising=False)
    assert interpreter.interpreter_fields(when="end") == {"gil_enabled_end": True}
    assert interpreter.interpreter_label("3.13.1", 1, True) == "3.13.1 free-threaded, GIL on"
    assert interpreter.interpreter_label("3.13.1", 0, True) == "3.13.1 standard build"


def test_a_standard_build_keeps_the_batch_key_stores_had_before_the_interpreter_fields():
    from mpslab.trials.records import batch_environment, batch_key

    before = {"python": "3.11.7", "torch": "2.13.0+cpu", "device": "cpu", "time": "t1", "mpslab_commit": "a"}
    after = dict(before, time="t2", mpslab_commit="b", py_gil_disabled=None, gil_enabled_start=None,
                 interpreter="3.11.7 standard build")  # fmt: skip
    assert batch_key(environment=batch_environment(after)) == batch_key(environment=batch_environment(before))
    off = dict(after, py_gil_disabled=True, gil_enabled_start=False, interpreter="3.13.1 free-threaded, GIL off")
    on = dict(off, gil_enabled_start=True, interpreter="3.13.1 free-threaded, GIL on")
    assert batch_key(environment=batch_environment(off)) != batch_key(environment=batch_environment(on))
