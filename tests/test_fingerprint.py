"""The staged fingerprint log: one copy per step, fingerprinted in batches, the same fingerprints as one by one.

Every test compares with a reference computed independently in numpy (float64) from the weights, or runs
planted corruptions through ``run_stress`` with a staging ring far smaller than the run.
"""

import threading

import numpy as np
import pytest
import torch

from mpslab import StressConfig, run_stress
from mpslab.run.fingerprint import Fingerprinter, FingerprintLog, K

CPU = torch.device("cpu")
CODES = {"nan": 1.0, "inf": 2.0, "-inf": 3.0}


def _reference(fp, out):
    """The fingerprint by its definition: weighted sums of the finite values, then of the codes (numpy)."""
    x = out.detach().reshape(-1).to(torch.float64).numpy()
    w = fp.weights(x.size).numpy()
    code = np.select([np.isnan(x), np.isposinf(x), np.isneginf(x)], [1.0, 2.0, 3.0], 0.0)
    z = np.where(np.isfinite(x), x, 0.0)
    return np.concatenate([w @ z, w @ code])


def _assert_rows(fp, got, outs):
    exp = np.stack([_reference(fp, o) for o in outs])
    assert got.shape == exp.shape
    np.testing.assert_allclose(got[:, : K + 1], exp[:, : K + 1], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got[:, K + 1 :], exp[:, K + 1 :], rtol=1e-12, atol=1e-12)


def _outputs():
    """Outputs of changing shapes and dtypes, some non-finite, one non-contiguous, one requiring grad."""
    g = torch.Generator().manual_seed(5)
    outs = [torch.randn(6, 7, generator=g) for _ in range(9)]
    outs[2][1, 3] = float("nan")
    outs[4][0, 0], outs[4][5, 6] = float("inf"), float("-inf")
    outs[6] = torch.randn(7, 6, generator=g).t()  # same shape, not contiguous
    outs[7] = torch.randn(6, 7, generator=g).requires_grad_()
    outs += [torch.randn(42, generator=g).double() for _ in range(3)]  # same numel, other shape and dtype
    outs += [torch.randn(3, 4, generator=g).half() for _ in range(4)]
    outs += [torch.tensor(2.5), torch.tensor(float("nan"))]  # scalars
    outs += [torch.arange(12).reshape(3, 4) for _ in range(2)]  # integers
    return outs


@pytest.mark.parametrize("ring", [1, 2, 3, 1000])
def test_staged_rows_are_each_outputs_fingerprint_whatever_the_ring_size(ring):
    outs = _outputs()
    fp = Fingerprinter(CPU)
    log = FingerprintLog(len(outs), fp, stage_bytes=ring * 6 * 7 * 4)
    for o in outs:
        log.add(o)
    assert log.count == len(outs)
    log.flush()
    assert log.count == log.start == len(outs)
    _assert_rows(fp, log.host(), outs)
    firsts = [(s[0], s[1], s[2]) for s in log.sigs]
    assert firsts == [
        (0, (6, 7), torch.float32),
        (9, (42,), torch.float64),
        (12, (3, 4), torch.float16),
        (16, (), torch.float32),
        (18, (3, 4), torch.int64),
    ]


def test_the_ring_is_fingerprinted_when_full_and_sized_by_the_budget():
    fp = Fingerprinter(CPU)
    x = torch.ones(4, 4)
    log = FingerprintLog(10, fp, stage_bytes=3 * x.numel() * 4 + 5)  # room for three outputs
    seen = []
    for i in range(10):
        log.add(x * i)
        seen.append(log.start)
    assert seen == [0, 0, 0, 3, 3, 3, 6, 6, 6, 9]  # an output that finds the ring full has it fingerprinted
    log.flush()
    _assert_rows(fp, log.host(), [x * i for i in range(10)])


def test_a_ring_that_holds_the_whole_run_is_fingerprinted_only_at_flush():
    fp = Fingerprinter(CPU)
    outs = [torch.full((4, 4), float(i)) for i in range(6)]
    log = FingerprintLog(6, fp)
    for o in outs:
        log.add(o)
    assert log.start == 0 and log.count == 6  # nothing fingerprinted during the run
    log.flush()
    assert log.start == 6
    _assert_rows(fp, log.host(), outs)


def test_an_output_changed_in_place_after_it_was_added_keeps_the_fingerprint_it_had():
    fp = Fingerprinter(CPU)
    buf = torch.zeros(5, 5)
    log = FingerprintLog(4, fp)
    kept = []
    for i in range(4):
        buf.fill_(float(i)).reshape(-1)[i] = -7.0
        kept.append(buf.clone())
        log.add(buf)  # the same tensor every step, overwritten by the next
    log.flush()
    _assert_rows(fp, log.host(), kept)


@pytest.mark.parametrize("ring", [2, 1000])
def test_truncate_keeps_the_iterations_that_finished(ring):
    fp = Fingerprinter(CPU)
    outs = [torch.full((3, 3), float(i)) for i in range(9)]
    log = FingerprintLog(9, fp, stage_bytes=ring * 36)
    for o in outs:
        log.add(o)
    log.truncate(7)
    assert log.count == 7
    log.flush()
    _assert_rows(fp, log.host(), outs[:7])


def test_batched_rows_match_the_definition_with_non_finite_rows_among_finite_ones():
    fp = Fingerprinter(CPU)
    x = torch.randn(8, 50, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    x[3, 7] = float("nan")
    x[5, 0], x[5, 49] = float("inf"), float("-inf")
    got = fp.rows(x).numpy()
    _assert_rows(fp, got, list(x))
    assert got[3, K + 1 :] == pytest.approx(fp.weights(50)[:, 7].numpy() * CODES["nan"])
    assert np.all(got[[0, 1, 2, 4, 6, 7], K + 1 :] == 0.0)
    assert np.all(np.isfinite(got))  # non-finite values go to the codes, not into the value sums


# --------------------------------------------------------------------------- through run_stress, a small ring

R, C, AT = 12, 16, (1, 5)


def _step(corrupt=None, reuse=False):
    bufs = {}

    def step(ctx, i):
        x = torch.randn(R, C, generator=ctx.generator, device=ctx.device, dtype=ctx.dtype)
        if corrupt and threading.current_thread() is not threading.main_thread() and (ctx.thread, i) == AT:
            x = corrupt(x)
        if reuse:  # one output tensor per thread, overwritten every step
            out = bufs.setdefault((threading.get_ident(), ctx.thread), torch.empty(R, C, dtype=ctx.dtype))
            return out.copy_(x)
        return x

    return step


def _run(name, cap_mb):
    return run_stress(
        StressConfig(
            threads=3, iterations=11, sync_every=4, workload=name, size=4, device="cpu", warmup=0, full_cap_mb=cap_mb
        )
    )


# full_cap_mb / threads is each thread's staging budget: 2.2e-3 MiB / 3 threads = 768 bytes = one output
CAPS = {"one slot": 2.2e-3, "two slots": 4.4e-3, "whole run": 256}


@pytest.mark.parametrize("cap", list(CAPS))
def test_clean_runs_pass_with_any_ring_even_when_the_step_reuses_its_output(workload, cap):
    for reuse in (False, True):
        name = workload(f"t-fp-clean-{reuse}", _step(reuse=reuse)).name
        r = _run(name, CAPS[cap])
        assert r.outcome == "ok" and r.verified == 33, r.summary()


PLANTS = {
    "two elements swapped": (lambda x: x.reshape(-1)[torch.arange(R * C).roll(1)].reshape(R, C), "values"),
    "a NaN": (lambda x: x.index_put((torch.tensor([2]), torch.tensor([3])), torch.tensor(float("nan"))), "non-finite"),
    "transposed shape": (lambda x: x.reshape(C, R), "shape"),
    "as float64": (lambda x: x.double(), "dtype"),
}


@pytest.mark.parametrize("cap", list(CAPS))
@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_plant_is_found_at_its_place_with_any_ring(workload, plant, cap):
    corrupt, what = PLANTS[plant]
    name = workload("t-fp-plant", _step(corrupt)).name
    r = _run(name, CAPS[cap])
    assert r.error_count == 0 and r.mismatch_count == 1, r.summary()
    m = r.mismatches[0]
    assert (m.thread, m.iteration, m.what) == (*AT, what)


def test_a_recycled_ring_of_another_dtype_and_shape_gives_the_right_fingerprints():
    fp = Fingerprinter(CPU)
    first = [torch.full((8, 8), float(i)) for i in range(5)]
    second = [torch.randn(3, 5, generator=torch.Generator().manual_seed(i), dtype=torch.float64) for i in range(7)]
    second[4][1, 1] = float("-inf")
    for outs in (first, second):  # the second log may stage into the first one's memory
        log = FingerprintLog(len(outs), fp)
        for o in outs:
            log.add(o)
        log.flush()
        _assert_rows(fp, log.host(), outs)
