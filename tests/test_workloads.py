"""The workload registry."""

import pytest
import torch

from mpslab import get_workload, list_workloads, register_workload
from mpslab.run.workloads import WorkerContext, unregister_workload


def _ctx(seed=0, size=4):
    return WorkerContext(0, torch.device("cpu"), torch.float32, size, torch.Generator().manual_seed(seed))


def test_builtins_listed_with_descriptions():
    names = {w.name: w for w in list_workloads()}
    assert {"seed", "mlp", "racy"} <= set(names)
    assert all(w.description for w in names.values())
    assert names["racy"].kind == "fault"
    assert "racy" not in {w.name for w in list_workloads(kind="workload")}


def test_seed_workload_is_randn_matmul():
    wl = get_workload("seed")
    got = wl(_ctx(seed=3, size=5), 0)
    a = torch.randn(5, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(got, a @ a)  # the output itself: the runner fingerprints it


def test_same_generator_seed_same_answers_different_seed_different():
    wl = get_workload("seed")
    assert torch.equal(wl(_ctx(1), 0), wl(_ctx(1), 0))
    assert not torch.equal(wl(_ctx(1), 0), wl(_ctx(2), 0))


def test_decorator_and_setup_registration():
    @register_workload("t-scale", description="multiply by a shared factor")
    def t_scale(ctx, i):
        return torch.full((2,), float(i), device=ctx.device) * ctx.state

    @t_scale.setup
    def _build(ctx):
        return torch.tensor(3.0)

    try:
        wl = get_workload("t-scale")
        assert wl.setup_fn is _build
        ctx = _ctx()
        ctx.state = wl.setup_fn(ctx)
        assert wl(ctx, 2).tolist() == [6.0, 6.0]
    finally:
        unregister_workload("t-scale")


def test_call_registration_and_refusals():
    register_workload("t-call", lambda ctx, i: torch.zeros(()), description="zeros")
    try:
        assert get_workload("t-call").description == "zeros"
        with pytest.raises(ValueError, match="already registered"):
            register_workload("t-call", lambda ctx, i: None, description="again", replace=False)
    finally:
        unregister_workload("t-call")
    with pytest.raises(ValueError, match="without spaces"):
        register_workload("two words", lambda c, i: None, description="d")
    with pytest.raises(ValueError, match="description"):
        register_workload("nodesc", lambda c, i: None, description="")
    with pytest.raises(KeyError, match="unknown; registered"):
        get_workload("missing")
