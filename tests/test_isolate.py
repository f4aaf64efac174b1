"""Isolated trials: the row contract, bad input, another interpreter, resume, Ctrl-C, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import warnings

import pandas as pd
import pytest
from proc_helpers import children_map, descendants, running

from mpslab import StressConfig, run_stress
from mpslab.cli import main
from mpslab.run.config import ConfigError
from mpslab.trials.isolate import classify, run_trials, shutdown_server
from mpslab.trials.records import TornRecordWarning, load_records

LINUX = sys.platform.startswith("linux")
MODES = ["spawn"] + (["forkserver"] if LINUX else [])
FAST = MODES[-1]  # the quickest mode here
linux_only = pytest.mark.skipif(not LINUX, reason="uses /proc")

CONTRACT = [
    "trial",
    "outcome",
    "exit_code",
    "signal",
    "seconds",
    "ops_per_s",
    "error_count",
    "mismatch_count",
    "latency_p50_ms",
    "latency_p99_ms",
    "first_error",
    "stderr_tail",
    "hang_stacks",
]


def _cfg(workload: str = "seed", **kw) -> StressConfig:
    base = dict(threads=2, iterations=3, sync_every=0, workload=workload, size=4, device="cpu")
    base.update(kw)
    return StressConfig(**base)


def _wait_gone(pids: set[int], seconds: float = 10.0) -> list[int]:
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(running(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if running(p)]


@pytest.mark.parametrize(
    "code, timed_out, result, expected",
    [
        (0, False, "ok", "ok"),
        (0, False, "error", "error"),
        (0, False, "mismatch", "mismatch"),
        (0, False, None, "crash"),  # exited 0 but wrote nothing
        (3, False, None, "crash"),
        (-11, False, None, "crash"),
        (-6, False, "ok", "crash"),  # died after writing its result (at teardown)
        (None, True, None, "hang"),
        (None, True, "ok", "hang"),  # wrote its result, then never exited
    ],
)
def test_classify(code, timed_out, result, expected):
    assert classify(code, timed_out, result) == expected


@pytest.mark.parametrize("mode", MODES)
def test_an_ok_trial_has_the_contract_columns_and_every_to_row_column(mode):
    cfg = _cfg()
    df = run_trials(cfg, trials=2, timeout_s=300, mode=mode, progress=False)
    in_process = run_stress(cfg).to_row()
    for col in CONTRACT + list(in_process):
        assert col in df.columns, col
    assert df["trial"].tolist() == [0, 1] and (df["outcome"] == "ok").all()
    assert df["exit_code"].tolist() == [0, 0] and df["signal"].isna().all()
    assert (df["ops_per_s"] > 0).all() and (df["completed"] == cfg.ops).all() and (df["verified"] == cfg.ops).all()
    assert df["env_torch"].iloc[0] == in_process["env_torch"] and df["env_executable"].iloc[0] == sys.executable
    assert df["threads"].iloc[0] == 2 and df["plugins"].iloc[0] == "" and (df["launch"] == mode).all()
    assert df["env_id"].nunique() == 1 and df["batch"].nunique() == 1
    assert df.attrs["ran"] == 2 and df.attrs["resumed"] == 0


def test_a_config_dict_is_accepted():
    df = run_trials(_cfg().to_dict(), trials=1, timeout_s=300, mode=FAST, progress=False)
    assert df["outcome"].tolist() == ["ok"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(trials=0), "trials=0"),
        (dict(trials=2.5), "trials=2.5"),
        (dict(timeout_s=0), "timeout_s=0"),
        (dict(timeout_s=float("nan")), "timeout_s=nan"),
        (dict(python="/nonexistent/python"), "no such file"),
        (dict(mode="threads"), "mode='threads'"),
        (dict(batch=""), "batch=''"),
    ],
)
def test_bad_input_is_one_config_error_before_anything_runs(tmp_path, kwargs, match):
    store = tmp_path / "t.jsonl"
    with pytest.raises(ConfigError, match=match) as info:
        run_trials(_cfg(), store=store, progress=False, **kwargs)
    assert "\n" not in str(info.value)
    assert not store.exists()


def test_a_store_in_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        run_trials(_cfg(), store=tmp_path / "nope" / "t.jsonl", progress=False)


def test_a_non_executable_python_is_refused(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("")
    with pytest.raises(ConfigError, match="not executable"):
        run_trials(_cfg(), python=str(fake), progress=False)


METAL_LIKE_PLUGIN = """
import os, sys
import torch
from mpslab import register_workload

@register_workload("metal-like-abort", description="prints an assertion like Metal's, then aborts (test)")
def _step(ctx, i):
    sys.stderr.write("-[MTLDebugCommandBuffer renderCommandEncoderWithDescriptor:]:1049: failed assertion "
                     "`A command encoder is already encoding to this command buffer'\\n")
    sys.stderr.flush()
    os.abort()
"""


@pytest.mark.parametrize("mode", MODES)
def test_an_assertion_printed_before_an_abort_is_kept_and_named(tmp_path, mode):
    plugin = tmp_path / "metal_like.py"
    plugin.write_text(METAL_LIKE_PLUGIN)
    cfg = _cfg("metal-like-abort", threads=1, iterations=1, warmup=0, plugins=(str(plugin),))
    row = run_trials(cfg, trials=1, timeout_s=300, mode=mode, progress=False).iloc[0]
    assert (row["outcome"], row["signal"], row["signal_number"]) == ("crash", "SIGABRT", 6)
    assert "A command encoder is already encoding to this command buffer" in row["stderr_tail"]
    assert "Fatal Python error: Aborted" in row["stderr_tail"]
    assert row["first_error"].startswith("killed by SIGABRT (signal 6) without a result; stderr: -[MTLDebug")
    assert row["plugins"] == str(plugin)


# --------------------------------------------------------------------------- another interpreter


@pytest.fixture(scope="module")
def other_python(tmp_path_factory):
    """A second venv that sees this one's torch (through a .pth) but cannot import mpslab."""
    root = tmp_path_factory.mktemp("other-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "v")], check=True)
    python = str(root / "v" / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with open(os.path.join(purelib, "see_main_venv.pth"), "w") as fh:
        fh.write(sysconfig.get_paths()["purelib"] + "\n")
    bare = root / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    return python, str(bare / "bin" / "python"), str(root)


def test_the_other_interpreter_cannot_import_mpslab_by_itself(other_python):
    python, _, cwd = other_python
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a PYTHONPATH could point at mpslab
    out = subprocess.run([python, "-c", "import torch, mpslab"], cwd=cwd, capture_output=True, text=True, env=env)
    assert out.returncode != 0 and "No module named 'mpslab'" in out.stderr


@pytest.mark.parametrize("mode", MODES)
def test_trials_run_under_another_interpreter_that_lacks_mpslab(other_python, mode, monkeypatch):
    python, _, cwd = other_python
    monkeypatch.chdir(cwd)  # so the child cannot find mpslab through its working directory either
    df = run_trials(_cfg(), trials=1, timeout_s=300, python=python, mode=mode, progress=False)
    assert df["outcome"].tolist() == ["ok"], df["stderr_tail"].tolist()
    assert (df["env_executable"] == python).all()
    crashed = run_trials(_cfg("fault-exit", size=1), trials=1, timeout_s=300, python=python, mode=mode, progress=False)
    assert crashed["outcome"].tolist() == ["crash"]
    assert crashed["env_executable"].iloc[0] == python  # the parent's knowledge comes from the probe
    if mode == "forkserver":
        shutdown_server()


@pytest.mark.parametrize("mode", MODES)
def test_an_interpreter_without_torch_is_refused_in_one_line(other_python, mode):
    _, bare, _ = other_python
    with pytest.raises(ConfigError, match="torch") as info:
        run_trials(_cfg(), trials=1, timeout_s=300, python=bare, mode=mode, progress=False)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- nothing left behind


@pytest.fixture
def ctrl_c():
    """Python's own SIGINT handler for the test: a suite started in the background (`make test &` in a
    script) inherits SIGINT ignored, and then a Ctrl-C would never arrive as KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@linux_only
@pytest.mark.parametrize("mode", MODES)
def test_keyboard_interrupt_kills_the_trial_and_propagates(mode, ctrl_c):
    before = descendants(os.getpid())
    seen: set[int] = set()
    in_call = threading.Event()
    done = threading.Event()

    def trial_child(new: set[int]) -> bool:
        # spawn: a direct child; forkserver: a child of the (new or old) server
        kids = children_map()
        parents = {os.getpid()} if mode == "spawn" else (new | before)
        return any(running(c) and c not in before for p in parents for c in kids.get(p, []))

    def interrupt() -> None:
        while not done.is_set():  # no deadline: however slow the start, it presses Ctrl-C once a child runs
            new = descendants(os.getpid()) - before
            if in_call.is_set() and trial_child(new):
                time.sleep(0.5)  # let it get into its hang, then press Ctrl-C
                seen.update(descendants(os.getpid()) - before)
                if not done.is_set():
                    os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=interrupt, daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):  # interrupted: a timed-out trial would not raise it
        in_call.set()
        try:
            run_trials(_cfg("fault-hang", size=1), trials=3, timeout_s=120, mode=mode, progress=False)
        finally:
            done.set()
    watcher.join(5)
    assert seen, "no child process was seen"
    assert _wait_gone(seen) == []
    assert _wait_gone(descendants(os.getpid()) - before) == []  # the fork server went too


@linux_only
def test_keyboard_interrupt_while_the_fork_server_starts_takes_it_down(ctrl_c):
    shutdown_server()
    before = descendants(os.getpid())
    done = threading.Event()

    def interrupt() -> None:
        while not done.is_set():
            if descendants(os.getpid()) - before:
                # usually still importing torch; if the server were up already, the Ctrl-C lands in the
                # trial instead, and everything must be gone all the same
                time.sleep(0.3)
                if not done.is_set():
                    os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        try:
            run_trials(_cfg("fault-hang", size=1), trials=1, timeout_s=120, mode="forkserver", progress=False)
        finally:
            done.set()
    assert _wait_gone(descendants(os.getpid()) - before) == []


@linux_only
def test_a_spawn_batch_leaves_no_process_behind():
    before = descendants(os.getpid())
    df = run_trials(_cfg("fault-segfault", size=1), trials=2, timeout_s=300, mode="spawn", progress=False)
    assert df["outcome"].tolist() == ["crash", "crash"]
    assert _wait_gone(descendants(os.getpid()) - before) == []


@linux_only
def test_after_a_forkserver_batch_only_the_idle_server_remains_and_shutdown_stops_it():
    before = descendants(os.getpid())
    run_trials(_cfg("fault-abort", size=1), trials=2, timeout_s=300, mode="forkserver", progress=False)
    left = {p for p in descendants(os.getpid()) - before if running(p)}
    assert len(left) <= 1  # the server (unless it was already up before)
    shutdown_server()
    assert _wait_gone(descendants(os.getpid()) - before) == []


# --------------------------------------------------------------------------- store and resume


def test_resume_runs_only_the_missing_trials_and_returns_the_same_rows_as_the_loader(tmp_path):
    store = tmp_path / "t.jsonl"
    cfg = _cfg()
    first = run_trials(cfg, trials=3, timeout_s=300, store=store, mode=FAST, progress=False)
    assert first.attrs == {"batch": first["batch"].iloc[0], "resumed": 0, "ran": 3}
    more = run_trials(cfg, trials=5, timeout_s=300, store=store, mode=FAST, progress=False)
    assert more.attrs["resumed"] == 3 and more.attrs["ran"] == 2
    assert more["trial"].tolist() == list(range(5))
    assert more["env_time"].head(3).tolist() == first["env_time"].tolist()  # read back, not re-run
    assert more["seconds"].head(3).tolist() == first["seconds"].tolist()
    again = run_trials(cfg, trials=5, timeout_s=300, store=store, mode=FAST, progress=False)
    assert again.attrs["ran"] == 0
    loaded = load_records(store)
    assert len(loaded) == 5 and sorted(loaded["trial"]) == list(range(5))
    pd.testing.assert_frame_equal(loaded.drop(columns=["source"]), more)

    # another label, another timeout or another config: another batch
    labelled = run_trials(cfg, trials=1, timeout_s=300, store=store, mode=FAST, batch="round-2", progress=False)
    other = run_trials(cfg, trials=1, timeout_s=299, store=store, mode=FAST, progress=False)
    assert labelled.attrs["ran"] == 1 and other.attrs["ran"] == 1
    assert load_records(store)["batch"].nunique() == 3


# --------------------------------------------------------------------------- the CLI


def test_cli_trials_prints_outcomes_and_the_failure_rate_and_exits_1_on_failures(capsys, tmp_path):
    store = tmp_path / "t.jsonl"
    code = main(
        [
            "trials",
            "--trials",
            "3",
            "--timeout",
            "300",
            "--workload",
            "fault-exit",
            "--size",
            "1",
            "--threads",
            "2",
            "--iterations",
            "3",
            "--device",
            "cpu",
            "--mode",
            FAST,
            "--store",
            str(store),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "crash          3" in out
    assert "exit 3" in out
    assert out.strip().splitlines()[-1] == (
        "3 of 3 trials failed: failure rate above 36% (95% one-sided lower bound, Clopper-Pearson)"
    )
    assert len(load_records(store)) == 3


def test_cli_trials_exits_0_when_all_ok(capsys):
    code = main(
        [
            "trials",
            "--trials",
            "2",
            "--timeout",
            "300",
            "--threads",
            "2",
            "--iterations",
            "3",
            "--size",
            "4",
            "--device",
            "cpu",
            "--mode",
            FAST,
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "0 of 2 trials failed: failure rate below 78% (95% one-sided upper bound, Clopper-Pearson)"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--trials", "0"],
        ["--timeout", "-1"],
        ["--python", "/nonexistent/python"],
        ["--trials", "x"],
        ["--mode", "threads"],
    ],
)
def test_cli_trials_bad_input_exits_2_with_one_line(capsys, argv):
    assert main(["trials", "--device", "cpu", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1


def test_no_warnings_leak_from_a_clean_store(tmp_path):
    store = tmp_path / "t.jsonl"
    run_trials(_cfg(), trials=1, timeout_s=300, store=store, mode=FAST, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornRecordWarning)
        assert len(load_records(store)) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux only")
def test_one_fork_server_per_interpreter_stays_up_side_by_side(tmp_path):
    from mpslab.trials.forkserver import running_servers

    other = tmp_path / "python-b"  # a second interpreter path (a wrapper around this one)
    other.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    other.chmod(0o755)
    a, b = os.path.abspath(sys.executable), str(other)
    cfg = _cfg(threads=1, iterations=2, size=8)
    try:
        for python in (None, b):
            df = run_trials(cfg, trials=1, timeout_s=120, python=python, mode="forkserver", progress=False)
            assert df["outcome"].tolist() == ["ok"]
        first = running_servers()
        assert {a, b} <= set(first)
        for python in (None, b):  # interleaved again: the same two servers serve it, none restarted
            run_trials(cfg, trials=1, timeout_s=120, python=python, mode="forkserver", progress=False)
        again = running_servers()
        assert again[a] == first[a] and again[b] == first[b]
    finally:
        shutdown_server()
    assert running_servers() == {}


# --------------------------------------------------------------------------- issue 19: what a trial row says


PLUGINS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins")


def _same(got, want) -> bool:
    """``got`` (a frame cell: None may read back as NaN) is ``want``."""
    return pd.isna(got) if want is None else got == want


def test_a_trial_child_records_how_python_ran_at_its_start_and_end():
    import platform

    from mpslab.run.interpreter import gil_disabled_build, gil_enabled, interpreter_label

    df = run_trials(_cfg(), trials=1, timeout_s=300, mode=FAST, progress=False)
    row = df.iloc[0]
    assert _same(row["env_py_gil_disabled"], gil_disabled_build())
    assert _same(row["env_gil_enabled_start"], gil_enabled()) and _same(row["env_gil_enabled_end"], gil_enabled())
    assert row["env_interpreter"] == interpreter_label(platform.python_version(), gil_disabled_build(), gil_enabled())
    assert row["env_python"] == platform.python_version()


def test_a_child_whose_gil_turns_on_during_the_run_says_so(tmp_path, monkeypatch):
    from mpslab.run import interpreter, runner
    from mpslab.studies.summary import trial_notes
    from mpslab.trials.child import _handle_request

    gil = {"on": False}  # off when the request starts, on once the run is over (as an import can do)
    real_run = runner.run_stress

    def run_then_turn_the_gil_on(config):
        result = real_run(config)
        gil["on"] = True
        return result

    monkeypatch.setattr(interpreter, "gil_disabled_build", lambda: 1)
    monkeypatch.setattr(interpreter, "gil_enabled", lambda: gil["on"])
    monkeypatch.setattr(runner, "run_stress", run_then_turn_the_gil_on)
    out = tmp_path / "result.json"
    assert _handle_request({"config": _cfg(threads=1, iterations=1).to_dict(), "result": str(out)}) == 0
    import json

    row = json.loads(out.read_text())["row"]
    assert (row["env_py_gil_disabled"], row["env_gil_enabled_start"], row["env_gil_enabled_end"]) == (1, False, True)
    assert row["env_interpreter"].endswith("free-threaded, GIL off")
    notes = trial_notes(pd.DataFrame([row]))
    assert any(n.endswith("free-threaded, GIL off (1 of 1 trials)") for n in notes), notes
    assert "the GIL was off at the start and on at the end of 1 of 1 trials" in notes


def test_a_mismatch_row_says_what_the_replay_found():
    from mpslab.report.tables import trials_table

    df = run_trials(_cfg("fault-wrong", size=1, warmup=0), trials=1, timeout_s=300, mode=FAST, progress=False)
    first = df["first_error"].iloc[0]
    assert df["outcome"].iloc[0] == "mismatch"
    assert first.startswith("mismatch: 3 of 6 outputs differ from the serial replay; first: thread 0 iteration 0")
    assert trials_table(df)["first error"].iloc[0] == first


def test_an_error_with_an_empty_message_says_where_it_was_raised():
    from mpslab.report.tables import trials_table

    plugin = os.path.join(PLUGINS_DIR, "empty_message.py")
    cfg = _cfg("empty-message", threads=1, iterations=1, plugins=(plugin,))
    df = run_trials(cfg, trials=1, timeout_s=300, mode=FAST, progress=False)
    first = df["first_error"].iloc[0]
    assert df["outcome"].iloc[0] == "error"
    assert first.startswith("AssertionError (empty message) raised at plugins/empty_message.py:"), first
    assert " in _check <- plugins/empty_message.py:" in first and " in _inner <- " in first
    assert trials_table(df)["first error"].iloc[0] == first
