"""The coverage walkthrough: CPU rows, absent backends, MPS probe logic over a fake torch.mps,
the runner's ability to fail, and notebook 01 under papermill in the quick profile."""

from __future__ import annotations

import contextlib
import os
import threading
import types

import pandas as pd
import pytest
import torch

from mpslab.run.backends import CpuBackend, MpsBackend, get_backend
from mpslab.studies.probes import (
    COVERED,
    EXERCISED,
    FAILED,
    NOT_APPLICABLE,
    NOT_RUN,
    PROBES,
    SHUTDOWN_SCRIPT,
    STATUSES,
    Evidence,
    Need,
    Plan,
    Probe,
    ProbeFailure,
    ProbeOutcome,
    coverage_matrix,
    coverage_table,
    get_probe,
    probe_catalogue,
    run_child,
    run_probe,
    run_probes,
    run_script,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the CPU column must say: the two concepts that exist on the CPU, with evidence.
CPU_EXPECTED = {p.path: NOT_APPLICABLE for p in PROBES}
CPU_EXPECTED.update(compute_from_threads=COVERED, alloc_free=COVERED)


# --------------------------------------------------------------------------- a fake torch.mps


class FakeEvent:
    def __init__(self, api: FakeMps, enable_timing: bool = False) -> None:
        self.api, self.recorded, self.complete = api, False, False
        api.events.append(self)

    def record(self) -> None:
        self.api.log("record")
        self.recorded, self.complete = True, False

    def wait(self) -> None:
        self.api.log("wait")

    def synchronize(self) -> None:
        self.api.log("event.synchronize")
        self.complete = self.recorded

    def query(self) -> bool:
        self.api.log("query")
        return self.complete

    def elapsed_time(self, end: FakeEvent) -> float:
        self.api.log("elapsed_time")
        return 0.25


class FakeMps:
    """Records calls; ``synchronize`` completes recorded events unless told to be broken."""

    def __init__(self, *, sync_works: bool = True, driver: int = 0, drop_on_empty: bool = False) -> None:
        self.calls: list[str] = []
        self.events: list[FakeEvent] = []
        self.fractions: list[float] = []
        self.sync_works, self.driver, self.drop_on_empty = sync_works, driver, drop_on_empty
        self._lock = threading.Lock()
        self.event = types.SimpleNamespace(Event=lambda enable_timing=False: FakeEvent(self, enable_timing))

    def log(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def synchronize(self) -> None:
        self.log("synchronize")
        if self.sync_works:
            for e in list(self.events):
                e.complete = e.recorded

    def current_allocated_memory(self) -> int:
        return 0

    def driver_allocated_memory(self) -> int:
        return self.driver

    def empty_cache(self) -> None:
        self.log("empty_cache")
        if self.drop_on_empty:
            self.driver = max(0, self.driver - (64 << 20))

    def set_per_process_memory_fraction(self, fraction: float) -> None:
        self.log("set_per_process_memory_fraction")
        self.fractions.append(fraction)

    def recommended_max_memory(self) -> int:
        return 16 << 30


class FakeStream:
    def __init__(self, name: str) -> None:
        self.name = name

    def synchronize(self) -> None:
        return None


class FakeMpsWithStreams(FakeMps):
    """A torch.mps that has streams; ``thread_local=False`` makes the current stream process-wide (a bug)."""

    def __init__(self, thread_local: bool = True, **kw) -> None:
        super().__init__(**kw)
        self._tls = threading.local() if thread_local else types.SimpleNamespace()
        self._default = FakeStream("default")
        self._count = 0

    def Stream(self) -> FakeStream:  # noqa: N802 - mirrors torch's name
        with self._lock:
            self._count += 1
            return FakeStream(f"s{self._count}")

    def current_stream(self) -> FakeStream:
        return getattr(self._tls, "stream", self._default)

    @contextlib.contextmanager
    def stream(self, s: FakeStream):
        prev = self.current_stream()
        self._tls.stream = s
        try:
            yield
        finally:
            self._tls.stream = prev


class HostedMps(MpsBackend):
    """The real MPS adapter over a fake torch.mps; tensors live on the CPU."""

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def device_name(self) -> str:
        return "fake MPS (tensors on the CPU)"


def hosted(api: FakeMps) -> HostedMps:
    # the behavioural fake stands for torch.mps and, for synchronize, for torch.accelerator too
    # (which names are real is checked with autospecs in test_backends.py)
    return HostedMps(api=api, backends_api=types.SimpleNamespace(is_available=lambda: True), accel=api)


# --------------------------------------------------------------------------- CPU, for real


@pytest.fixture(scope="module")
def cpu_matrix() -> pd.DataFrame:
    return coverage_matrix(["cpu"], threads=3, size=16, chunk_mb=1, timeout=60.0)


def test_every_path_has_a_row_per_backend(cpu_matrix):
    assert set(cpu_matrix["status"]) <= set(STATUSES)
    assert len(cpu_matrix) == 3 * len(PROBES)
    assert set(zip(cpu_matrix["path"], cpu_matrix["backend"])) == {
        (p.path, k) for p in PROBES for k in ("cpu", "cuda", "mps")
    }
    table = coverage_table(cpu_matrix)
    assert list(table.index) == [p.path for p in PROBES] and list(table.columns) == ["cpu", "cuda", "mps"]


def test_cpu_column_statuses(cpu_matrix):
    cpu = cpu_matrix[cpu_matrix["backend"] == "cpu"].set_index("path")
    assert cpu["status"].to_dict() == CPU_EXPECTED
    assert (cpu.loc[cpu["status"] == NOT_APPLICABLE, "explanation"].str.startswith("Not applicable on cpu")).all()


def test_cpu_covered_rows_carry_evidence_from_this_run(cpu_matrix):
    cpu = cpu_matrix[cpu_matrix["backend"] == "cpu"].set_index("path")
    ev = cpu.loc["compute_from_threads", "evidence"]
    assert "aten::mm" in ev
    threads_seen = int(ev.split("aten::mm x")[1].split(" on ")[1].split(" ")[0])
    assert threads_seen >= 2  # the alone run's thread and the probe threads (profile_all_threads)
    assert "profiler.memory_alloc_events" in cpu.loc["alloc_free", "evidence"]
    assert "[alone]" in cpu.loc["alloc_free", "check"] and "[threads] 3 thread(s)" in cpu.loc["alloc_free", "check"]


def test_absent_backends_are_not_run_or_not_applicable(cpu_matrix):
    for kind in ("cuda", "mps"):
        rows = cpu_matrix[cpu_matrix["backend"] == kind]
        backend = get_backend(kind)
        for r in rows.itertuples():
            na = get_probe(r.path).plan(kind).not_applicable(backend)
            assert r.status == (NOT_APPLICABLE if na else NOT_RUN), (kind, r.path, r.status)
    cuda = cpu_matrix[cpu_matrix["backend"] == "cuda"].set_index("path")["status"]
    assert cuda["flush_coalescing"] == NOT_APPLICABLE and cuda["completion_handlers"] == NOT_APPLICABLE
    if not torch.cuda.is_available():
        assert cuda["event_record_wait"] == NOT_RUN
        assert (
            "not available on this machine"
            in cpu_matrix.set_index(["path", "backend"]).loc[("event_record_wait", "cuda"), "explanation"]
        )


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS present: its rows run for real")
def test_mps_requested_but_absent_is_not_run():
    df = run_probes("mps", threads=2, size=16)
    assert set(df["status"]) <= {NOT_RUN, NOT_APPLICABLE} and NOT_RUN in set(df["status"])
    assert df["status"].tolist() == [
        NOT_APPLICABLE if p.plan("mps").not_applicable(get_backend("mps")) else NOT_RUN for p in PROBES
    ]


def test_catalogue_names_targets_or_reasons():
    cat = probe_catalogue()
    assert len(cat) == 3 * len(PROBES)
    for r in cat.itertuples():
        assert bool(r.targets) != bool(r.not_applicable), (r.path, r.backend)
    mps = cat[cat["backend"] == "mps"].set_index("path")
    assert "encodeSignalEvent" in mps.loc["event_record_wait", "targets"]
    assert "COMMIT_AND_WAIT" in mps.loc["synchronize", "targets"]


def test_an_absent_plan_is_not_applicable_with_its_reason_and_never_runs():
    plan = Plan.absent("no such queue on this backend")
    assert plan.action is None and plan.targets == "" and plan.need is None
    assert plan.not_applicable(CpuBackend()) == "no such queue on this backend"
    probe = Probe("test_probe", "a test probe", "-", "A probe made up for the test.", {"cpu": plan})
    row = run_probe(probe, CpuBackend(), threads=2, size=16, timeout=30.0)
    assert row["status"] == NOT_APPLICABLE
    assert row["explanation"] == "Not applicable on cpu: no such queue on this backend."
    assert probe.plan("mps").not_applicable(None) == "no probe for the mps backend"


# --------------------------------------------------------------------------- MPS logic over the fake


def test_mps_event_probe_records_waits_then_times():
    api = FakeMps()
    row = run_probe(get_probe("event_record_wait"), hosted(api), threads=2, size=16, timeout=30.0)
    assert row["status"] == COVERED, row
    alone = api.calls[:6]  # the alone run, one thread: the order is exact
    assert alone == ["record", "record", "wait", "event.synchronize", "elapsed_time", "query"]
    assert api.calls.count("record") == 2 * 3 and api.calls.count("elapsed_time") == 3
    assert "elapsed_time between the two events: 0.250..0.250 ms" in row["evidence"]


def test_mps_synchronize_probe_sees_pending_then_complete():
    api = FakeMps()
    row = run_probe(get_probe("synchronize"), hosted(api), threads=2, size=16, timeout=30.0)
    assert row["status"] == COVERED
    assert "saw their work pending" in row["evidence"]
    assert "synchronize" in api.calls


def test_mps_synchronize_probe_fails_when_synchronize_does_not_wait():
    row = run_probe(get_probe("synchronize"), hosted(FakeMps(sync_works=False)), threads=2, size=16, timeout=30.0)
    assert row["status"] == FAILED
    assert "still pending after it" in row["error"]


def test_mps_counter_rows_need_counters_that_move():
    frozen = run_probes(
        backend=hosted(FakeMps(driver=256 << 20)),
        threads=2,
        size=16,
        chunk_mb=1,
        probes=["alloc_free", "empty_cache", "memory_pressure"],
    ).set_index("path")
    assert (frozen["status"] == EXERCISED).all(), frozen["status"]
    assert frozen["explanation"].str.contains("not complete").all()
    api = FakeMps(driver=256 << 20, drop_on_empty=True)
    moving = run_probes(
        backend=hosted(api), threads=2, size=16, chunk_mb=1, probes=["empty_cache", "memory_pressure"]
    ).set_index("path")
    assert moving.loc["empty_cache", "status"] == COVERED
    assert "reserved memory fell from 256.0 MiB" in moving.loc["empty_cache", "evidence"]
    # the pressure probe set a limit, then restored torch's MPS default (1.7) each run
    assert len(api.fractions) == 4 and api.fractions[1] == api.fractions[3] == 1.7
    assert 0 < api.fractions[0] < 1 and 0 < api.fractions[2] < 1


def test_mps_rows_without_evidence_are_exercised_not_covered():
    df = run_probes(
        backend=hosted(FakeMps()),
        threads=2,
        size=16,
        probes=["flush_coalescing", "completion_handlers", "release_on_completion"],
    )
    assert (df["status"] == EXERCISED).all(), df[["path", "status", "error"]]
    assert df["explanation"].str.contains("No evidence available").all()


def test_mps_current_stream_not_applicable_without_a_stream_api():
    row = run_probe(get_probe("current_stream_per_thread"), hosted(FakeMps()), threads=2)
    assert row["status"] == NOT_APPLICABLE and "no torch.mps.Stream" in row["explanation"]


def test_current_stream_probe_covers_a_thread_local_stream_and_fails_a_shared_one():
    good = run_probe(
        get_probe("current_stream_per_thread"), hosted(FakeMpsWithStreams()), threads=4, size=16, timeout=30.0
    )
    assert good["status"] == COVERED, good["error"]
    assert "4 thread(s) each saw its own current stream (4 distinct)" in good["evidence"]
    bad = run_probe(
        get_probe("current_stream_per_thread"),
        hosted(FakeMpsWithStreams(thread_local=False)),
        threads=4,
        size=16,
        timeout=30.0,
    )
    assert bad["status"] == FAILED
    assert "[threads]" in bad["error"]
    assert "not its own stream" in bad["error"] or "not restored" in bad["error"]


# --------------------------------------------------------------------------- the runner can fail


def _probe(action, need=None, reason="") -> Probe:
    return Probe(
        "test_probe",
        "a test probe",
        "-",
        "A probe made up for the test.",
        {"cpu": Plan(action, "nothing", need, reason)},
    )


def test_a_wrong_result_is_failed_with_its_traceback():
    def wrong(ctx):
        def one(i, barrier):
            if i == 1:
                raise ProbeFailure(f"thread {i}: result differs")

        ctx.run_threads(one)
        return ProbeOutcome("never")

    row = run_probe(_probe(wrong, Need()), CpuBackend(), threads=3, timeout=30.0)
    assert row["status"] == FAILED
    assert "[threads]" in row["error"] and "ProbeFailure: thread 1: result differs" in row["error"]
    assert "Traceback" in row["error"]


def test_missing_evidence_is_exercised_and_says_what_is_missing():
    row = run_probe(
        _probe(lambda ctx: ProbeOutcome("ran"), Need(calls=(("cudaNoSuchCall",),), facts=True)),
        CpuBackend(),
        threads=2,
        timeout=30.0,
    )
    assert row["status"] == EXERCISED
    assert "cudaNoSuchCall not recorded" in row["explanation"]
    assert "observed nothing" in row["explanation"]


def test_a_probe_that_hangs_is_failed():
    stop = threading.Event()
    try:
        row = run_probe(
            _probe(lambda ctx: stop.wait(30) and ProbeOutcome("late")),
            CpuBackend(),
            threads=1,
            timeout=0.2,
            profile=False,
        )
    finally:
        stop.set()
    assert row["status"] == FAILED and "hang" in row["error"]


def test_need_logic():
    ev = Evidence(calls={"cudaEventRecord": [2, {1}]}, stats={"num_alloc_retries": 1}, facts=["seen"])
    assert (
        Need(
            calls=(("cudaEventRecordWithFlags", "cudaEventRecord"),), stats=(("num_alloc_retries", 1),), facts=True
        ).missing(ev)
        == []
    )
    assert Need(stats=(("num_alloc_retries", 2),)).missing(ev) == ["num_alloc_retries rose by 1 (needed >= 2)"]
    merged = ev.merge(Evidence(calls={"cudaEventRecord": [1, {2}]}, stats={"num_alloc_retries": 1}))
    assert merged.calls["cudaEventRecord"][0] == 3 and merged.calls["cudaEventRecord"][1] == {1, 2}
    assert merged.stats["num_alloc_retries"] == 2


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"threads": 0}, "threads=0"),
        ({"threads": True}, "threads=True"),
        ({"size": 4}, "size=4"),
        ({"chunk_mb": 0}, "chunk_mb=0"),
        ({"timeout": 0}, "timeout=0"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_refused_parameters(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(")):
        run_probes(**kwargs)


def test_unknown_probe_is_refused():
    with pytest.raises(KeyError, match="no_such_path"):
        run_probes("cpu", probes=["no_such_path"])


# --------------------------------------------------------------------------- child processes


def test_run_child_reports_exit_codes_signals_and_timeouts():
    assert run_child("import sys; sys.exit(3)", []).returncode == 3
    aborted = run_child("import os; os.abort()", [])
    assert aborted.returncode == -6 and "killed by signal 6" in aborted.describe()
    slow = run_child("import time; time.sleep(30)", [], timeout=0.5)
    assert slow.timed_out and "killed" in slow.describe()
    echoed = run_child("import sys; print(sys.argv[1:])", ["a b", 2])
    assert echoed.stdout.strip() == "['a b', '2']"  # arguments passed as a list, no shell


def test_shutdown_script_exits_cleanly_on_the_cpu():
    res = run_script(SHUTDOWN_SCRIPT, ["cpu", 2, 32, 3], timeout=120.0)
    assert res.returncode == 0 and not res.crash_text(), res.stderr
    assert "exiting" in res.stdout and "pending_at_exit" not in res.stdout  # no device events on the CPU


# --------------------------------------------------------------------------- notebook 01 and its figure


@pytest.fixture(scope="module")
def notebook_01(quick_series):
    """Notebook 01 as the quick series ran it (one run per session, shared with test_pipeline)."""
    result, out, _ = quick_series
    run = {r.name: r for r in result.runs}["01_coverage_walkthrough"]
    assert run.status == "ok", run.error
    return out


def test_notebook_01_runs_in_the_quick_profile_and_writes_the_matrix(notebook_01):
    df = pd.read_csv(notebook_01 / "data" / "coverage_matrix.csv")
    cpu = df[df["backend"] == "cpu"].set_index("path")["status"].to_dict()
    assert cpu == CPU_EXPECTED
    assert set(df[df["backend"] != "cpu"]["status"]) <= {NOT_RUN, NOT_APPLICABLE} or torch.cuda.is_available()
    assert (notebook_01 / "figures" / "coverage_matrix.png").stat().st_size > 10_000
    assert (notebook_01 / "data" / "coverage_catalogue.csv").exists()


def test_coverage_figure_draws_one_cell_per_row(cpu_matrix):
    from mpslab.report.plots import plot_coverage_matrix

    fig = plot_coverage_matrix(cpu_matrix)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == len(cpu_matrix)
    assert texts.count(COVERED) == 2 and texts.count(NOT_RUN) == (cpu_matrix["status"] == NOT_RUN).sum()


# --------------------------------------------------------------------------- child scripts and stderr


def test_run_script_runs_a_script_module_by_path_and_refuses_unknown_names():
    res = run_script("queued_work_exit", ["cpu", 1, 8, 1], timeout=120.0)
    assert res.returncode == 0 and res.stdout.strip() == "exiting", res.describe()
    with pytest.raises(ValueError, match=r"script='no_such_script': unknown; known: .*queued_work_exit"):
        run_script("no_such_script", [])


def test_child_scripts_import_torch_and_the_standard_library_only():
    import ast
    import sys

    from mpslab.studies.child import SCRIPTS_DIR

    scripts = sorted(f for f in os.listdir(SCRIPTS_DIR) if f.endswith(".py") and f != "__init__.py")
    assert len(scripts) == 5
    for name in scripts:
        with open(os.path.join(SCRIPTS_DIR, name)) as fh:
            tree = ast.parse(fh.read())
        tops = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        tops |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert tops - {"torch"} <= set(sys.stdlib_module_names), (name, tops)


def test_kineto_quiet_drops_kineto_start_stop_lines_and_keeps_the_rest(capfd):
    from mpslab.studies.probes.quiet import kineto_quiet

    with kineto_quiet():
        os.write(
            2,
            b"USDT:2026-11-24 19:18:11 11333:11336 SyncActivityProfilerHandler.cpp:52] profiler_start\n"
            b"a real warning\n"
            b"STAGE:2026-11-24 19:18:21 11379:11379 SyncActivityProfilerHandler.cpp:51] Completed Stage\n"
            b"ERROR:2026-11-24 19:18:21 11379:11379 CuptiActivityProfiler.cpp:1] kineto's own error\n",
        )
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert (
        err == "a real warning\nERROR:2026-11-24 19:18:21 11379:11379 CuptiActivityProfiler.cpp:1] "
        "kineto's own error\nafter\n"
    )


def test_probes_on_the_cpu_write_nothing_to_stderr():
    """The profiler the collector starts must not leave kineto's start/stop lines (or anything) on stderr."""
    import subprocess
    import sys

    code = (
        "from mpslab.studies.probes import coverage_matrix\n"
        "df = coverage_matrix(['cpu'], threads=2, size=16, chunk_mb=1, timeout=60.0)\n"
        "print(sorted(set(df['status'])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert out.returncode == 0, out.stderr
    assert "covered" in out.stdout
    assert out.stderr == ""
