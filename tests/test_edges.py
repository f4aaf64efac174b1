"""The edge-case catalogue: every case on the CPU (through notebook 02 in the quick profile),
per-backend expectations, and a runner that can fail (wrong expectation, unhealthy, not
isolated, hang)."""

from __future__ import annotations

import os
import threading

import pandas as pd
import pytest
import torch

from mpslab.run.backends import CpuBackend, get_backend
from mpslab.run.config import ConfigError
from mpslab.run.workloads import list_workloads
from mpslab.studies.edges import (
    CASES,
    FAIL,
    NOT_APPLICABLE,
    NOT_RUN,
    PASS,
    EdgeCase,
    completes,
    edge_catalogue,
    edge_failures,
    get_case,
    raises,
    run_case,
    run_edges,
)
from mpslab.studies.edges.health import Background

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CPU_NOT_APPLICABLE = {
    "tensors_on_two_devices",
    "elapsed_time_before_record",
    "empty_cache_race",
    "synchronize_nothing_pending",
    "exit_with_device_work_queued",
}
# Interpreter exit while daemon threads are inside torch ops: measured to abort (signal 6) with
# torch 2.13 on CPython 3.11; documented in notebook 02 as a known failure. Either outcome is
# accepted here, but a failure must be the crash, reported as such.
MAY_FAIL = {"exit_while_threads_in_ops"}


@pytest.fixture(scope="module")
def notebook_02(quick_series):
    """Notebook 02 as the quick series ran it (one run per session, shared with test_pipeline)."""
    result, out, _ = quick_series
    run = {r.name: r for r in result.runs}["02_edge_cases"]
    assert run.status == "ok", run.error
    return out


@pytest.fixture(scope="module")
def cpu_edges(notebook_02) -> pd.DataFrame:
    """Every case on the CPU, as notebook 02 ran and wrote them."""
    return pd.read_csv(notebook_02 / "data" / "edge_cases.csv", keep_default_na=False)


def test_every_case_ran_once_on_the_cpu(cpu_edges):
    assert cpu_edges["case"].tolist() == [c.name for c in CASES]
    assert set(cpu_edges["backend"]) == {"cpu"}


def test_cpu_statuses(cpu_edges):
    by_case = cpu_edges.set_index("case")
    assert set(by_case.index[by_case["status"] == NOT_APPLICABLE]) == CPU_NOT_APPLICABLE
    for case, r in by_case.iterrows():
        if case in CPU_NOT_APPLICABLE:
            assert r["detail"], case  # the reason is written down
        elif case in MAY_FAIL:
            assert r["status"] in (PASS, FAIL)
            if r["status"] == FAIL:
                assert "ChildCrashed" in r["observed"] and "expected exit 0" in r["observed"]
        else:
            assert r["status"] == PASS, (case, r["observed"], r["traceback"])
            assert str(r["isolated"]) == "True" and str(r["healthy"]) == "True"
            assert "background thread(s) finished" in r["detail"]


def test_cpu_cases_raise_the_expected_exception_types(cpu_edges):
    observed = cpu_edges.set_index("case")["observed"]
    assert observed["matmul_shape_mismatch"].startswith("raised RuntimeError: mat1 and mat2 shapes cannot be")
    assert observed["negative_size"].startswith("raised RuntimeError: Trying to create tensor with negative")
    assert observed["bad_view_size"].startswith("raised RuntimeError: shape '[7]' is invalid")
    assert (
        observed["oom_then_recovery"].startswith("raised RuntimeError:")
        and "allocate memory" in observed["oom_then_recovery"]
    )
    assert observed["float64_on_device"].startswith("completed:")
    assert observed["keyboard_interrupt_main_mid_run"].startswith("completed: child exit 130")
    assert observed["keyboard_interrupt_in_worker"].startswith("completed: child exit 0")
    for name in ("config threads=0", "config device='tpu'", "config throttle > threads"):
        assert observed[name].startswith("raised ConfigError:"), name
    assert observed["run_stress(dict)"].startswith("raised TypeError")
    assert observed["config streams='per-thread'"].startswith("raised ConfigError")  # no streams on the CPU


def test_notebook_02_wrote_its_figure_and_failure_list(notebook_02, cpu_edges):
    assert (notebook_02 / "figures" / "edge_matrix.png").stat().st_size > 10_000
    failures = pd.read_csv(notebook_02 / "data" / "edge_failures.csv")
    assert set(failures["case"]) == set(cpu_edges.loc[cpu_edges["status"] == FAIL, "case"])
    assert set(failures["case"]) <= MAY_FAIL


def test_worker_exception_case_leaves_no_workload_behind(cpu_edges):
    assert not any(w.name.startswith("mpslab-edge") for w in list_workloads())


# --------------------------------------------------------------------------- expectations per backend


def test_expectations_differ_by_backend():
    f64 = get_case("float64_on_device")
    assert f64.expectation("mps").exception is TypeError and f64.expectation("cpu").outcome == "completes"
    assert f64.expectation("cuda").outcome == "completes"
    two = get_case("tensors_on_two_devices")
    assert two.expectation("cpu").outcome == "not applicable"
    assert two.expectation("cuda").fragment == "same device"
    assert get_case("oom_then_recovery").expectation("cuda").exception is torch.OutOfMemoryError
    cat = edge_catalogue()
    assert len(cat) == len(CASES) and (cat[["cpu", "cuda", "mps"]] != "").all().all()
    assert cat.set_index("case").loc["config dtype='float64'", "mps"].startswith("raises ConfigError")


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_absent_backend_rows_are_not_run(kind):
    if get_backend(kind).is_available():
        pytest.skip(f"{kind} is present here: its rows run for real")
    df = run_edges(kind)
    assert set(df["status"]) <= {NOT_RUN, NOT_APPLICABLE}
    for r in df.itertuples():
        na = get_case(r.case).expectation(kind).outcome == "not applicable"
        assert r.status == (NOT_APPLICABLE if na else NOT_RUN), r.case
    assert df["observed"].isna().all()  # nothing ran


# --------------------------------------------------------------------------- the runner can fail


def _mismatch(ctx):
    return str(torch.ones(3, 4) @ torch.ones(5, 6))


def test_a_wrong_exception_type_is_a_fail():
    row = run_case(
        EdgeCase("t", "test", "mismatch", _mismatch, {"*": raises(ValueError, "cannot be multiplied")}),
        CpuBackend(),
        threads=2,
        size=16,
        timeout=30.0,
    )
    assert row["status"] == FAIL and row["expected_met_alone"] is False
    assert row["isolated"] is True and row["healthy"] is True
    assert "RuntimeError" in row["traceback"] and "Traceback" in row["traceback"]
    assert len(edge_failures(pd.DataFrame([row]))) == 1


def test_a_wrong_message_fragment_is_a_fail():
    row = run_case(
        EdgeCase("t", "test", "mismatch", _mismatch, {"*": raises(RuntimeError, "no such words")}),
        CpuBackend(),
        threads=2,
        size=16,
        timeout=30.0,
    )
    assert row["status"] == FAIL


def test_an_exception_where_completion_was_expected_is_a_fail():
    row = run_case(
        EdgeCase("t", "test", "mismatch", _mismatch, {"*": completes()}), CpuBackend(), threads=2, size=16, timeout=30.0
    )
    assert row["status"] == FAIL and row["observed"].startswith("raised RuntimeError")


def test_the_right_exception_is_a_pass():
    row = run_case(
        EdgeCase("t", "test", "mismatch", _mismatch, {"*": raises(RuntimeError, "CANNOT BE")}),
        CpuBackend(),
        threads=2,
        size=16,
        timeout=30.0,
    )
    assert row["status"] == PASS and row["traceback"] == ""


class _PoisonableCpu(CpuBackend):
    poisoned = False

    def synchronize(self) -> None:
        if self.poisoned:
            raise RuntimeError("device lost")


def test_a_case_that_leaves_the_backend_broken_is_unhealthy():
    backend = _PoisonableCpu()

    def poison(ctx):
        ctx.backend.poisoned = True
        return "done"

    row = run_case(
        EdgeCase("t", "test", "poison", poison, {"*": completes()}), backend, threads=2, size=16, timeout=30.0
    )
    assert row["expected_met_alone"] is True and row["healthy"] is False and row["status"] == FAIL
    assert "canary raised RuntimeError: device lost" in row["traceback"]


class _MetaBackend(CpuBackend):
    @property
    def device(self) -> torch.device:
        return torch.device("meta")


def test_background_threads_that_cannot_compute_are_not_isolated():
    row = run_case(
        EdgeCase("t", "test", "nothing", lambda ctx: "done", {"*": completes()}),
        _MetaBackend(),
        threads=2,
        size=16,
        timeout=10.0,
    )
    assert row["isolated"] is False and row["status"] == FAIL
    assert "isolation: worker" in row["traceback"]


def test_background_detects_nothing_wrong_on_a_healthy_cpu():
    with Background(CpuBackend(), 2, 16, 30.0) as bg:
        pass
    assert bg.ok and all(i > 0 for i in bg.iterations)


def test_a_case_that_hangs_is_a_fail():
    stop = threading.Event()
    try:
        row = run_case(
            EdgeCase("t", "test", "hang", lambda ctx: str(stop.wait(20)), {"*": completes()}),
            CpuBackend(),
            threads=1,
            size=16,
            timeout=0.2,
        )
    finally:
        stop.set()
    assert row["status"] == FAIL and row["observed"].startswith("hang: no answer within")


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"threads": 0}, "threads=0"),
        ({"size": 2}, "size=2"),
        ({"timeout": -1}, "timeout=-1"),
        ({"pause": 5}, "pause=5"),
        ({"device": "tpu"}, "device='tpu'"),
    ],
)
def test_refused_parameters(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        run_edges(**kwargs)


def test_unknown_case_is_refused():
    with pytest.raises(KeyError, match="no_such_case"):
        run_edges("cpu", cases=["no_such_case"])


def test_config_refusals_name_their_parameter():
    df = run_edges("cpu", threads=1, size=16, cases=["config size=0", "config verify='yes'"], pause=0.001)
    assert (df["status"] == PASS).all()
    assert df["observed"].str.startswith("raised ConfigError: ").all()
    with pytest.raises(ConfigError):  # the same refusal, straight
        get_case("config size=0").action(type("C", (), {"device": torch.device("cpu")})())


def test_edge_cases_on_the_cpu_write_nothing_to_stderr():
    """What a child prints to its stderr is captured by its case, never passed on."""
    import subprocess
    import sys

    code = (
        "from mpslab.studies.edges import CASES, run_edges\n"
        # the memory and threads cases, and the child-process case whose child writes to stderr (it aborts
        # with "terminate called ..."); every child case goes through the same capture (run_script)
        "names = [c.name for c in CASES if c.group in ('memory', 'threads')] + ['exit_while_threads_in_ops']\n"
        "df = run_edges('cpu', threads=2, size=32, timeout=60.0, pause=0.002, cases=names)\n"
        "print(len(df), sorted(set(df['status'])))\n"
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
    assert out.stdout.startswith("5 ")  # 1 process, 2 memory, 2 threads cases
    assert out.stderr == ""


def test_empty_cache_race_body_is_the_scenario_release_loop_and_reports_problems():
    # the case body runs on any backend object; on CPU empty_cache is a no-op, so the buffers must hold
    from mpslab.run.backends import get_backend
    from mpslab.studies.edges.cases import empty_cache_race
    from mpslab.studies.edges.expect import WrongResult

    cpu = get_backend("cpu")
    text = empty_cache_race(cpu, threads=2, timeout=60, rounds=3, elems=1024)
    assert text.startswith("2 thread(s) x 3 fresh") and "empty_cache() ran" in text

    class Broken:
        device = cpu.device

        def empty_cache(self):
            raise RuntimeError("release failed")

    with pytest.raises(WrongResult, match="empty_cache: RuntimeError: release failed"):
        empty_cache_race(Broken(), threads=2, timeout=60, rounds=1, elems=16)
