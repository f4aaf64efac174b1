"""The oracle's fingerprint: planted corruptions it must catch, changes it cannot see, and no false alarms.

Each planted workload corrupts one output of the concurrent run (thread 1,
iteration 3) and never the serial replay (which runs in the main thread), so
exactly one mismatch must be reported, at that place. Every plant is checked in
both ``fingerprint`` and ``full`` modes.
"""

import threading

import numpy as np
import pytest
import torch

from mpslab import ConfigError, StressConfig, run_stress
from mpslab.run.fingerprint import FingerprintLog, FullLog
from mpslab.run.oracle import TOLERANCE, Fingerprinter, K, check_thread, detects, thread_seed
from mpslab.run.workloads import WorkerContext, get_workload

DTYPES = ["float32", "float16", "bfloat16", "float64"]
MODES = ["fingerprint", "full"]
R, C = 12, 16
AT = (1, 3)  # (thread, iteration) of the planted corruption


def _in_worker() -> bool:
    return threading.current_thread() is not threading.main_thread()


def _base(ctx):
    return torch.randn(R, C, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)


def _planted(workload, name, corrupt, base=_base):
    def step(ctx, i):
        x = base(ctx)
        if _in_worker() and (ctx.thread, i) == AT:
            return corrupt(x, ctx, i)
        return x

    return workload(name, step, scale=lambda size: float(R * C) ** 0.5).name


def _run(name, mode="fingerprint", dtype="float32", threads=3, iterations=6):
    return run_stress(
        StressConfig(
            threads=threads,
            iterations=iterations,
            sync_every=2,
            workload=name,
            size=4,
            dtype=dtype,
            device="cpu",
            warmup=0,
            verify=mode,
        )
    )


def _assert_one_mismatch_at_the_plant(r, what=None):
    assert r.error_count == 0, r.summary()
    assert r.outcome == "mismatch" and r.mismatch_count == 1, r.summary()
    m = r.mismatches[0]
    assert (m.thread, m.iteration) == AT
    if what is not None:
        assert m.what == what, m


def _perm(n, seed=7):
    p = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return p if not torch.equal(p, torch.arange(n)) else p.roll(1)


def _swap(x, a, b):
    y = x.clone()
    y[a], y[b] = x[b], x[a]
    return y


PERMUTATIONS = {
    "elements shuffled": lambda x, ctx, i: x.reshape(-1)[_perm(x.numel())].reshape(x.shape),
    "two elements swapped": lambda x, ctx, i: _swap(x.reshape(-1), 5, 77).reshape(x.shape),
    "rows shuffled": lambda x, ctx, i: x[_perm(R)],
    "two rows swapped": lambda x, ctx, i: _swap(x, 2, 9),
    "columns shuffled": lambda x, ctx, i: x[:, _perm(C)],
    "transposed in place": lambda x, ctx, i: x.t().reshape(R, C),
    "rolled by one": lambda x, ctx, i: x.roll(1),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(PERMUTATIONS))
def test_values_moved_without_changing_them_are_caught(workload, kind, mode):
    name = _planted(workload, "t-perm", PERMUTATIONS[kind])
    r = _run(name, mode)
    _assert_one_mismatch_at_the_plant(r, "values")
    m = r.mismatches[0]
    assert m.got == pytest.approx(m.expected, rel=1e-5, abs=1e-4)  # the plain sum (the old checksum) was blind


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["whole output", "one element"])
def test_a_sign_flip_is_caught(workload, kind, dtype, mode):
    def flip(x, ctx, i):
        if kind == "whole output":
            return -x
        y = x.clone()
        k = int(x.abs().reshape(-1).argmax())  # an element of typical-or-larger size
        y.reshape(-1)[k] = -y.reshape(-1)[k]
        return y

    _assert_one_mismatch_at_the_plant(_run(_planted(workload, "t-sign", flip), mode, dtype), "values")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_one_element_changed_by_a_typical_element_is_caught(workload, dtype, mode):
    def nudge(x, ctx, i):
        y = x.clone()
        typical = float(x.float().pow(2).mean().sqrt())
        y[R // 2, C // 3] += typical
        return y

    _assert_one_mismatch_at_the_plant(_run(_planted(workload, "t-nudge", nudge), mode, dtype), "values")


def _same_values_base(ctx):
    """Every output is a permutation of one fixed vector: equal sums, norms and sorted values for all of them."""
    values = torch.randn(R * C, generator=torch.Generator().manual_seed(3)).to(ctx.device, ctx.dtype)
    return values[torch.randperm(R * C, generator=ctx.generator, device=ctx.device)].reshape(R, C)


def _output_of(thread, iteration, ctx):
    g = torch.Generator(device=ctx.device).manual_seed(thread_seed(0, thread))
    other = type(ctx)(thread, ctx.device, ctx.dtype, ctx.size, g, ctx.state)
    for _ in range(iteration + 1):
        out = _same_values_base(other)
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("source", ["an earlier iteration of its own", "another thread's, same iteration"])
def test_a_stale_output_with_the_same_sum_and_norm_is_caught(workload, source, mode):
    def stale(x, ctx, i):
        out = _output_of(ctx.thread, i - 2, ctx) if source.startswith("an earlier") else _output_of(0, i, ctx)
        assert torch.allclose(out.sum(), x.sum(), rtol=1e-5) and torch.allclose(out.norm(), x.norm(), rtol=1e-5)
        return out

    r = _run(_planted(workload, "t-stale", stale, base=_same_values_base), mode)
    _assert_one_mismatch_at_the_plant(r, "values")


def _with_nan_at(x, r, c):
    y = x.clone()
    y[r, c] = float("nan")
    return y


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_or_inf_where_the_replay_had_none_is_caught(workload, value, dtype, mode):
    def poison(x, ctx, i):
        y = x.clone()
        y[4, 5] = float(value)
        return y

    _assert_one_mismatch_at_the_plant(_run(_planted(workload, "t-poison", poison), mode, dtype), "non-finite")


def _nan_base(ctx):
    return _with_nan_at(_base(ctx), 2, 3)  # the replay has a NaN too, always here


@pytest.mark.parametrize("mode", MODES)
def test_nan_on_both_sides_is_accepted_only_at_the_same_positions(workload, mode):
    ok = workload("t-nan-same", lambda ctx, i: _nan_base(ctx)).name
    r = _run(ok, mode)
    assert r.outcome == "ok" and r.verified == 18, r.summary()

    def moved(x, ctx, i):
        y = x.clone()
        y[2, 3], y[3, 2] = 0.5, float("nan")
        return y

    _assert_one_mismatch_at_the_plant(
        _run(_planted(workload, "t-nan-moved", moved, base=_nan_base), mode), "non-finite"
    )

    def other_kind(x, ctx, i):
        y = x.clone()
        y[2, 3] = float("inf")
        return y

    _assert_one_mismatch_at_the_plant(
        _run(_planted(workload, "t-nan-inf", other_kind, base=_nan_base), mode), "non-finite"
    )

    def value_elsewhere(x, ctx, i):  # the NaN where it belongs, a finite value wrong: still seen
        y = x.clone()
        y[0, 0] += 1.0
        return y

    _assert_one_mismatch_at_the_plant(
        _run(_planted(workload, "t-nan-val", value_elsewhere, base=_nan_base), mode), "values"
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kind, what",
    [
        ("flattened", "shape"),
        ("reshaped", "shape"),
        ("one row short", "shape"),
        ("as float64", "dtype"),
        ("as float16", "dtype"),
    ],
)
def test_a_wrong_shape_or_dtype_is_caught(workload, kind, what, mode):
    change = {
        "flattened": lambda x: x.reshape(-1),  # same values, same order
        "reshaped": lambda x: x.reshape(C, R),
        "one row short": lambda x: x[:-1],
        "as float64": lambda x: x.double(),
        "as float16": lambda x: x.half(),
    }[kind]
    _assert_one_mismatch_at_the_plant(_run(_planted(workload, "t-shape", lambda x, c, i: change(x)), mode), what)


def test_a_scalar_step_still_works_and_a_non_tensor_is_one_clear_error(workload):
    name = workload("t-scalar", lambda ctx, i: _base(ctx).sum()).name
    r = _run(name)
    assert r.outcome == "ok" and r.verified == 18
    name = workload("t-float", lambda ctx, i: float(_base(ctx).sum())).name
    r = _run(name)
    assert r.outcome == "error" and r.errors[0].type == "TypeError"
    assert "must return a tensor" in r.errors[0].message
    assert _run(name, "off").outcome == "ok"  # nothing to check without the oracle


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_clean_runs_never_mismatch(dtype, mode):
    for workload in ("seed", "mlp"):
        for seed in range(3):
            r = run_stress(
                StressConfig(
                    threads=6,
                    iterations=20,
                    sync_every=3,
                    workload=workload,
                    size=24,
                    dtype=dtype,
                    device="cpu",
                    seed=seed,
                    verify=mode,
                )
            )
            assert r.outcome == "ok" and r.verified == 120, r.summary()


# --------------------------------------------------------------------------- what it can and cannot see


def _threshold(x, k, dtype):
    """Smallest |change| / ||x||_2 at flat position k that the fingerprint catches (bisection on the change)."""
    norm = float(x.double().norm())
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        y = x.clone()
        y.reshape(-1)[k] += mid * norm
        if detects(x, y, dtype) is None:
            lo = mid
        else:
            hi = mid
    y = x.clone()
    y.reshape(-1)[k] += hi * norm
    return float((y.double() - x.double()).abs().max()) / norm  # the change that survived the dtype's rounding


@pytest.mark.parametrize("dtype", DTYPES)
def test_smallest_single_element_change_caught_is_between_the_bounds(dtype):
    """Guaranteed: any single-element change above 2 * rtol * ||x||_2; never below rtol / 1.5 * ||x||_2."""
    rtol = TOLERANCE[dtype]
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(1)).to(getattr(torch, dtype))
    rng = np.random.default_rng(0)
    found = [_threshold(x, int(k), dtype) for k in rng.choice(x.numel(), 12, replace=False)]
    ulp = float(x.abs().max()) * torch.finfo(x.dtype).eps / float(x.double().norm())  # the dtype's own step
    assert all(rtol / 1.5 * (1 - 1e-6) - ulp <= f <= 2 * rtol * (1 + 1e-6) + 2 * ulp for f in found), found


def test_weights_are_fixed_per_numel_and_bounded_away_from_zero():
    a, b = Fingerprinter(torch.device("cpu")), Fingerprinter(torch.device("cpu"))
    w = a.weights(1000)
    assert torch.equal(w, b.weights(1000)) and not torch.equal(w[:, :999], a.weights(999))
    assert w.shape == (K + 1, 1000) and torch.equal(w[K], torch.ones(1000))
    assert (w[:K].abs() >= 0.5).all() and (w[:K].abs() < 1.5).all()
    assert 0.3 < float((w[:K] > 0).double().mean()) < 0.7  # random signs


# --------------------------------------------------------------------------- modes and the full-mode cap


def test_verify_aliases_and_modes_are_recorded():
    assert StressConfig(device="cpu", verify=True).verify == "fingerprint"
    assert StressConfig(device="cpu", verify=False).verify == "off"
    r = run_stress(StressConfig(threads=2, iterations=3, size=4, device="cpu", verify="full"))
    assert r.to_row()["verify"] == "full" and r.to_dict()["config"]["verify"] == "full"
    assert "verify='full'" in r.summary()


def test_full_mode_is_refused_above_its_cap_in_one_line_before_any_work(workload):
    calls = []

    def counted(ctx, i):
        calls.append(ctx.device.type)
        return _base(ctx)

    name = workload("t-count-cap", counted).name
    with pytest.raises(ConfigError) as info:  # 2 x 1000 x 12*16*4 bytes = 1.5 MiB > 1 MiB
        StressConfig(threads=2, iterations=1000, workload=name, device="cpu", verify="full", full_cap_mb=1)
    msg = str(info.value)
    assert msg.startswith("verify='full': would keep 1.5 MiB") and "full_cap_mb=1" in msg and "\n" not in msg
    assert StressConfig(threads=2, iterations=1000, workload=name, device="cpu", verify="full", full_cap_mb=2)
    with pytest.raises(ConfigError, match="full_cap_mb=0"):
        StressConfig(device="cpu", full_cap_mb=0)
    assert set(calls) == {"meta"}  # sized on the meta device: the workload never ran on the real one


def test_full_mode_sizes_a_step_the_meta_device_cannot_run_before_the_timed_work(workload):
    def data_dependent(ctx, i):
        x = _base(ctx)
        return x[x > -100]  # a data-dependent shape: not on the meta device

    name = workload("t-nonzero", data_dependent).name
    config = StressConfig(threads=2, iterations=1000, workload=name, device="cpu", verify="full", full_cap_mb=1)
    with pytest.raises(ConfigError, match="verify='full': would keep 1.5 MiB"):
        run_stress(config)
    assert run_stress(config.replace(iterations=10)).outcome == "ok"


@pytest.mark.parametrize("mode", MODES)
def test_the_replay_ticks_once_per_replayed_step_in_both_modes(mode):
    config = StressConfig(threads=1, iterations=6, size=8, device="cpu", verify=mode)
    wl = get_workload("seed")
    gen = torch.Generator().manual_seed(thread_seed(config.seed, 0))
    log = FullLog() if mode == "full" else FingerprintLog(6, Fingerprinter(torch.device("cpu")))
    ctx = WorkerContext(0, torch.device("cpu"), config.torch_dtype, config.size, gen)
    for i in range(6):
        log.add(wl.step(ctx, i))
    log.flush()
    ticks, found = [], []
    assert check_thread(wl, None, config, 0, log, found, lambda: ticks.append(1)) == (6, 0)
    assert len(ticks) == 6 and found == []
