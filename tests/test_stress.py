"""The in-process runner and its serial-replay oracle, on the CPU."""

import threading
import time

import numpy as np
import pytest
import torch

import mpslab.run.runner as stress_mod
from mpslab import StressConfig, register_workload, run_stress
from mpslab.cli import main


def _randn_sum(ctx):
    return torch.randn(ctx.size, generator=ctx.generator, device=ctx.device).sum()


def test_seed_64_threads_200_iterations_is_ok_on_cpu():
    r = run_stress(StressConfig(threads=64, iterations=200, sync_every=20, size=64, device="cpu"))
    assert r.outcome == "ok", r.summary()
    assert (r.error_count, r.mismatch_count) == (0, 0)
    assert r.ops == r.completed == 12800
    assert r.verified == 12800  # every checksum was compared with the serial replay
    assert r.seconds > 0 and r.ops_per_s == pytest.approx(12800 / r.seconds)
    lat = r.latency_ms
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    text = r.summary()
    for line in (
        "Timed region:",
        "Oracle replay:",
        "Total:",
        "Total operations: 12800 tensor ops",
        "Throughput:",
        "Total errors: 0",
        "Mismatches (serial-replay oracle): 0 of 12800",
        "Latency per iteration: p50",
    ):
        assert line in text
    assert "proven" not in text.lower() and "PASS" not in text


def test_a_thread_that_raises_is_reported_while_the_others_finish(workload):
    def step(ctx, i):
        if ctx.thread == 3 and i == 5:
            raise RuntimeError("boom in thread 3")
        return _randn_sum(ctx)

    name = workload("t-raise", step).name
    r = run_stress(StressConfig(threads=6, iterations=12, sync_every=4, workload=name, size=8, device="cpu"))
    assert r.outcome == "error"
    assert r.error_count == 1
    e = r.errors[0]
    assert (e.thread, e.iteration, e.phase, e.type, e.message) == (3, 5, "run", "RuntimeError", "boom in thread 3")
    assert "boom in thread 3" in e.traceback and "Traceback" in e.traceback
    assert r.completed == 5 * 12 + 5  # the other five threads finished; thread 3 did 5
    assert r.verified == r.completed and r.mismatch_count == 0  # finished iterations still checked
    assert "thread 3 iteration 5 (run): RuntimeError: boom in thread 3" in r.summary()


def test_the_clock_covers_the_work_even_when_the_main_thread_wakes_late(workload, monkeypatch):
    """Released from the start barrier, the workers may finish before the main thread runs again (the GIL, a
    busy machine): the timed region must still hold their work. Here the main thread is held back until the
    one worker has done every step, each of which sleeps 20 ms: the run took at least 5 x 20 ms."""
    done = threading.Event()

    def step(ctx, i):
        time.sleep(0.02)
        if i == 4:
            done.set()
        return _randn_sum(ctx)

    made = []

    class LateMainBarrier(threading.Barrier):  # the first barrier run_stress makes is the start barrier
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)

        def wait(self, timeout=None):
            r = super().wait(timeout)
            if self is made[0] and threading.current_thread() is threading.main_thread():
                assert done.wait(30), "the worker never finished"
            return r

    name = workload("t-sleep", step).name
    monkeypatch.setattr(stress_mod.threading, "Barrier", LateMainBarrier)
    r = run_stress(StressConfig(threads=1, iterations=5, sync_every=0, workload=name, size=4, device="cpu"))
    assert r.outcome == "ok", r.summary()
    assert r.seconds >= 5 * 0.02


def test_racy_workload_is_flagged_by_the_oracle():
    r = run_stress(StressConfig(threads=8, iterations=40, sync_every=0, workload="racy", size=32, device="cpu"))
    assert r.error_count == 0
    assert r.outcome == "mismatch"
    assert r.mismatch_count > 0
    m = r.mismatches[0]
    assert m.expected != m.got


def test_one_silently_wrong_answer_is_found_with_its_place(workload):
    seen = set()
    lock = threading.Lock()

    def step(ctx, i):
        out = _randn_sum(ctx)
        with lock:
            first = (ctx.thread, i) not in seen
            seen.add((ctx.thread, i))
        # wrong only the first time (the concurrent run), right in the serial replay
        return out + 1000.0 if (ctx.thread, i, first) == (2, 7, True) else out

    name = workload("t-wrong-once", step).name
    r = run_stress(StressConfig(threads=4, iterations=10, workload=name, size=16, device="cpu", warmup=0))
    assert r.outcome == "mismatch" and r.mismatch_count == 1
    m = r.mismatches[0]
    assert (m.thread, m.iteration) == (2, 7)
    assert m.got - m.expected == pytest.approx(1000.0, rel=1e-4)


def test_verify_off_checks_nothing():
    r = run_stress(StressConfig(threads=4, iterations=10, workload="racy", size=16, device="cpu", verify=False))
    assert r.outcome == "ok" and r.verified == 0
    assert "not checked" in r.summary()


def test_throttle_caps_threads_inside_device_work(workload):
    active, peak, lock = [0], [0], threading.Lock()

    def step(ctx, i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        out = torch.randn(64, 64, generator=ctx.generator).matmul(torch.eye(64)).sum()
        with lock:
            active[0] -= 1
        return out

    name = workload("t-count", step).name
    r = run_stress(StressConfig(threads=8, iterations=20, workload=name, device="cpu", throttle=2))
    assert r.outcome == "ok" and 1 <= peak[0] <= 2


@pytest.mark.parametrize("dtype", ["float64", "bfloat16", "float16"])
def test_dtypes_replay_within_tolerance(dtype):
    r = run_stress(StressConfig(threads=4, iterations=10, size=16, dtype=dtype, device="cpu"))
    assert r.outcome == "ok", r.summary()


def test_sync_only_at_end_and_mlp_setup_shared():
    r = run_stress(StressConfig(threads=4, iterations=10, sync_every=0, workload="mlp", size=16, device="cpu"))
    assert r.outcome == "ok" and r.verified == 40


def test_failures_in_warmup_and_setup_are_captured(workload):
    def bad_setup(ctx):
        raise ValueError("no model")

    name = workload("t-setup", lambda ctx, i: _randn_sum(ctx), setup=bad_setup).name
    r = run_stress(StressConfig(threads=2, iterations=3, workload=name, device="cpu"))
    assert r.outcome == "error" and r.errors[0].phase == "setup" and r.completed == 0

    def fail_warm(ctx, i):
        if ctx.generator.initial_seed() != stress_mod.thread_seed(0, ctx.thread):
            raise OSError("warm-up fails")
        return _randn_sum(ctx)

    name = workload("t-warm", fail_warm).name
    r = run_stress(StressConfig(threads=3, iterations=4, workload=name, device="cpu", warmup=2))
    assert r.error_count == 3 and {e.phase for e in r.errors} == {"warmup"}


def test_latency_storage_is_bounded(monkeypatch):
    monkeypatch.setattr(stress_mod, "LATENCY_CAPACITY", 8)
    workers = []
    real = stress_mod._Worker

    class Spy(real):
        def __init__(self, *a):
            super().__init__(*a)
            workers.append(self)

    monkeypatch.setattr(stress_mod, "_Worker", Spy)
    r = run_stress(StressConfig(threads=2, iterations=50, size=4, device="cpu"))
    assert r.outcome == "ok" and r.completed == 100
    assert all(len(w.latency) == 8 for w in workers)
    assert np.isfinite(r.latency_ms["p99"])


def test_result_row_and_dict_are_flat_and_complete():
    r = run_stress(StressConfig(threads=2, iterations=3, size=4, device="cpu"))
    row = r.to_row()
    for key in ("outcome", "ops_per_s", "latency_p99_ms", "threads", "workload", "env_torch", "env_host"):
        assert key in row
    assert all(not isinstance(v, (dict, list)) for v in row.values())
    d = r.to_dict()
    assert d["config"]["threads"] == 2 and d["outcome"] == "ok"


# --------------------------------------------------------------------------- what the time went to


def _slow_replay_step(ctx, i):
    # 20 ms per step in the serial replay (the main thread) only: the run itself is quick.
    if threading.current_thread() is threading.main_thread():
        time.sleep(0.02)
    return _randn_sum(ctx)


register_workload("slow-replay", _slow_replay_step, description="sleeps 20 ms per step in the replay only (test)")


def test_the_replay_time_is_carried_and_printed_apart_from_the_timed_region():
    r = run_stress(StressConfig(threads=2, iterations=5, workload="slow-replay", size=4, device="cpu", warmup=0))
    assert r.outcome == "ok" and r.verified == 10
    assert r.replay_seconds >= 10 * 0.02  # every replayed step slept
    assert r.total_seconds >= r.seconds + r.replay_seconds  # disjoint parts of the one call
    text = r.summary()
    assert f"Timed region: {r.seconds:.2f}s" in text
    assert f"Oracle replay: {r.replay_seconds:.2f}s (10 outputs recomputed serially, after the run)" in text
    assert f"Total: {r.total_seconds:.2f}s" in text
    d = r.to_dict()
    assert (d["replay_seconds"], d["total_seconds"]) == (r.replay_seconds, r.total_seconds)


def test_no_replay_is_said_as_such():
    r = run_stress(StressConfig(threads=2, iterations=3, size=4, device="cpu", verify="off"))
    assert r.replay_seconds < r.total_seconds
    assert "Oracle replay: not run" in r.summary()


def test_the_replay_progress_bar_counts_every_replayed_step(monkeypatch):
    bars = []
    real = stress_mod.progress_bar

    def spy(total, **kw):
        bar = real(total, **{**kw, "enabled": False})
        bar.seen = 0
        update = bar.update

        def counted(n=1):
            bar.seen += n
            return update(n)

        bar.update = counted
        bars.append((total, kw, bar))
        return bar

    monkeypatch.setattr(stress_mod, "progress_bar", spy)
    r = run_stress(StressConfig(threads=3, iterations=7, size=4, device="cpu"), progress=True)
    assert r.verified == 21
    [(total, kw, bar)] = bars
    assert total == 21 and bar.seen == 21
    assert kw["enabled"] is True and kw["delay"] == stress_mod.REPLAY_PROGRESS_DELAY_S


def test_the_cli_prints_its_header_before_any_work(capsys, monkeypatch):
    seen_before_work = []
    real = stress_mod.run_stress

    def watched(config, **kw):
        seen_before_work.append(capsys.readouterr().out)
        return real(config, **kw)

    monkeypatch.setattr(stress_mod, "run_stress", watched)
    code = main(["stress", "--threads", "2", "--iterations", "3", "--size", "4", "--device", "cpu"])
    assert code == 0
    [head] = seen_before_work
    assert head.startswith("mpslab stress: 2 threads x 3 iterations of 'seed' (size 4, float32) on cpu [")
    assert f"torch {torch.__version__} (" in head and "then the oracle replays every output serially" in head
    rest = capsys.readouterr().out
    assert "mpslab stress:" not in rest  # printed once
    assert rest.startswith("Timed region: ") and "\nOracle replay: " in rest and "\nTotal: " in rest
    assert "Global state: unchanged" in rest


def test_a_run_needs_no_tqdm_when_progress_is_off():
    """A trial's child may be another venv's torch build with only torch, numpy, pandas and pyyaml in it."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['tqdm'] = None\n"  # any import of tqdm now raises ImportError
        "from mpslab import StressConfig, run_stress\n"
        "r = run_stress(StressConfig(threads=2, iterations=3, size=8, device='cpu'))\n"
        "assert r.outcome == 'ok', r.summary()\n"
        "print('ran without tqdm')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "ran without tqdm" in proc.stdout, proc.stderr[-2000:]
