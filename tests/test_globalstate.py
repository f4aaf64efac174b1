"""A worker thread that changes one of torch's process-wide settings: a finding of its own, set back for the replay.

Each planted workload changes one setting from its worker thread (never from the main thread, where the
replay runs: like a library that configures torch in its thread pool), at the thread's last iteration,
after its output is made, so the run's outputs are all computed under the settings the run started with.
The replay must compute under those same settings; the run's change is reported, and the process leaves
``run_stress`` with the settings it brought.
"""

import threading

import pytest
import torch

from mpslab import StressConfig, run_stress
from mpslab.run import globalstate
from mpslab.run.workloads import register_workload

ITERATIONS = 4


def _off_main_thread() -> bool:
    return threading.current_thread() is not threading.main_thread()


def _leaker(change):
    def step(ctx, i):
        out = torch.randn(ctx.size, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype) * 2
        if i == ITERATIONS - 1 and _off_main_thread():
            change()
        return out

    return step


def _default_dtype_leak(ctx, i):
    # Made in the default dtype: a replay under float16 would give float16 where the run gave float32.
    out = torch.randn(ctx.size, generator=ctx.generator, device=ctx.device)
    if i == ITERATIONS - 1 and _off_main_thread():
        torch.set_default_dtype(torch.float16)
    return out


# (setting as reported, planted change, what the report says)
LEAKS = {
    "deterministic": (
        lambda: torch.use_deterministic_algorithms(True),
        "deterministic algorithms off -> on",
    ),
    "deterministic-warn-only": (
        lambda: torch.use_deterministic_algorithms(False, warn_only=True),
        "deterministic algorithms warn_only off -> on",
    ),
    "matmul-precision": (
        lambda: torch.set_float32_matmul_precision("medium"),
        "float32 matmul precision highest -> medium",
    ),
    "cudnn-benchmark": (
        lambda: setattr(torch.backends.cudnn, "benchmark", True),
        "torch.backends.cudnn.benchmark off -> on",
    ),
    "mkldnn-enabled": (
        lambda: setattr(torch.backends.mkldnn, "enabled", False),
        "torch.backends.mkldnn.enabled on -> off",
    ),
    "flash-sdp": (
        lambda: torch.backends.cuda.enable_flash_sdp(False),
        "torch.backends.cuda.flash_sdp_enabled on -> off",
    ),
    "fill-uninitialized": (
        lambda: setattr(torch.utils.deterministic, "fill_uninitialized_memory", False),
        "torch.utils.deterministic.fill_uninitialized_memory on -> off",
    ),
    "anomaly": (
        lambda: torch.autograd.set_detect_anomaly(True),
        "anomaly detection off -> on",
    ),
    "warn-always": (
        lambda: torch.set_warn_always(True),
        "warn always off -> on",
    ),
}

register_workload(
    "leak-default-dtype",
    _default_dtype_leak,
    description="sets the default dtype to float16 from its worker thread (global-state test)",
)
for _key, (_change, _said) in LEAKS.items():
    register_workload(f"leak-{_key}", _leaker(_change), description=f"leaks {_said} (global-state test)")


def _torch_settings():
    """The settings these tests change, read with torch's own calls (not through the module under test)."""
    return {
        "dtype": torch.get_default_dtype(),
        "det": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "matmul": torch.get_float32_matmul_precision(),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "mkldnn": torch.backends.mkldnn.enabled,
        "flash": torch.backends.cuda.flash_sdp_enabled(),
        "fill": torch.utils.deterministic.fill_uninitialized_memory,
        "anomaly": torch.is_anomaly_enabled(),
        "warn_always": torch.is_warn_always_enabled(),
    }


@pytest.fixture
def clean_settings():
    """Whatever the code under test does, the next test starts with the settings this one found."""
    before = _torch_settings()
    fp32 = {
        name: mod.fp32_precision
        for name, mod in (
            ("backends", torch.backends),
            ("cuda.matmul", torch.backends.cuda.matmul),
            ("mkldnn", torch.backends.mkldnn),
            ("mkldnn.matmul", torch.backends.mkldnn.matmul),
        )
        if hasattr(mod, "fp32_precision")
    }
    yield before
    torch.set_default_dtype(before["dtype"])
    torch.use_deterministic_algorithms(before["det"], warn_only=before["warn_only"])
    torch.set_float32_matmul_precision(before["matmul"])
    for name, value in fp32.items():
        mod = torch.backends
        for part in name.split(".") if name != "backends" else ():
            mod = getattr(mod, part)
        mod.fp32_precision = value
    torch.backends.cudnn.benchmark = before["cudnn_benchmark"]
    torch.backends.mkldnn.enabled = before["mkldnn"]
    torch.backends.cuda.enable_flash_sdp(before["flash"])
    torch.utils.deterministic.fill_uninitialized_memory = before["fill"]
    torch.autograd.set_detect_anomaly(before["anomaly"])
    torch.set_warn_always(before["warn_always"])


def _run(name, threads=2):
    return run_stress(
        StressConfig(threads=threads, iterations=ITERATIONS, workload=name, size=16, device="cpu", warmup=0)
    )


def test_a_default_dtype_left_by_a_worker_is_reported_and_the_replay_computes_as_the_run_did(clean_settings):
    # One worker: its change comes after its last output, so every output of the run is float32.
    r = _run("leak-default-dtype", threads=1)
    assert r.global_state_changes == ["default dtype float32 -> float16"]
    assert r.outcome == "ok" and r.mismatch_count == 0 and r.verified == ITERATIONS, r.summary()
    assert "Global state changed during the run: default dtype float32 -> float16" in r.summary()
    assert "where the replay gave" not in r.summary()
    assert torch.get_default_dtype() == torch.float32  # the process leaves run_stress as it came
    assert r.to_dict()["global_state_changes"] == ["default dtype float32 -> float16"]


@pytest.mark.parametrize("key", sorted(LEAKS))
def test_each_process_wide_setting_a_worker_changes_is_a_finding_and_is_set_back(key, clean_settings):
    said = LEAKS[key][1]
    r = _run(f"leak-{key}")
    assert said in r.global_state_changes, r.global_state_changes
    assert r.outcome == "ok" and r.verified == 2 * ITERATIONS, r.summary()
    assert said in r.summary()
    assert _torch_settings() == clean_settings


def test_a_run_that_changes_nothing_says_so(clean_settings):
    r = _run("seed")
    assert r.global_state_changes == []
    assert r.global_state_checked == len(globalstate.SETTINGS) >= 10
    assert f"Global state: unchanged ({r.global_state_checked} process-wide torch settings compared)" in r.summary()
    assert r.to_dict()["global_state_changes"] == []


def test_a_setting_that_cannot_be_set_back_says_so(clean_settings, monkeypatch):
    value = ["before"]

    def refuse(v):
        raise RuntimeError("read-only")

    stubborn = globalstate.Setting("stubborn setting", lambda: value[0], refuse)
    monkeypatch.setattr(globalstate, "SETTINGS", (*globalstate.SETTINGS, stubborn))

    def step(ctx, i):
        if _off_main_thread():
            value[0] = "after"
        return torch.randn(4, generator=ctx.generator)

    register_workload("leak-stubborn", step, description="changes a setting that refuses to be set back")
    try:
        r = _run("leak-stubborn", threads=1)
    finally:
        from mpslab.run.workloads import unregister_workload

        unregister_workload("leak-stubborn")
    assert r.global_state_changes == ["stubborn setting before -> after (could not be set back)"]


def test_snapshot_changes_restore_round_trip(clean_settings):
    before = globalstate.snapshot()
    t = threading.Thread(target=lambda: torch.set_default_dtype(torch.float64))
    t.start()
    t.join()
    after = globalstate.snapshot()
    assert globalstate.changes(before, after) == ["default dtype float32 -> float64"]
    assert globalstate.restore(before) == []
    assert torch.get_default_dtype() == torch.float32
    assert globalstate.changes(before, globalstate.snapshot()) == []
