"""StressConfig: every refusal names the parameter, the value and what is allowed."""

import dataclasses

import pytest
import torch

from mpslab import ConfigError, StressConfig
from mpslab.run.backends import available_backends


def test_defaults_are_the_seed_round():
    c = StressConfig(device="cpu")
    assert (c.threads, c.iterations, c.sync_every, c.workload) == (64, 200, 20, "seed")
    assert c.ops == 12800


def test_frozen():
    c = StressConfig(device="cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.threads = 2  # type: ignore[misc]


def test_auto_resolves_to_best_available_device():
    c = StressConfig(device="auto")
    assert torch.device(c.device).type == available_backends()[0]
    assert c.device in ("mps", "cpu", "cuda:0")


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("threads", 0, "threads=0: must be an integer >= 1"),
        ("threads", -3, "threads=-3"),
        ("threads", 2.5, "threads=2.5"),
        ("threads", True, "threads=True"),
        ("iterations", 0, "iterations=0: must be an integer >= 1"),
        ("sync_every", -1, "sync_every=-1: must be an integer >= 0"),
        ("size", 0, "size=0"),
        ("seed", -1, "seed=-1"),
        ("warmup", -1, "warmup=-1"),
        ("throttle", 0, "throttle=0"),
        ("throttle", 65, "throttle=65: must be None or between 1 and threads (64)"),
        ("verify", "yes", "verify='yes': must be one of fingerprint, full, off"),
        ("workload", "nope", "workload='nope': unknown; registered:"),
        ("streams", "many", "streams='many': must be one of shared, per-thread"),
        ("dtype", "int8", "dtype='int8': must be one of float32, float16, bfloat16, float64"),
        ("device", "tpu", "device='tpu': must be one of auto, cpu, cuda, cuda:N, mps"),
        ("device", "cpu:1", "device='cpu:1'"),
        ("plugins", ("no_such_module_xyz",), "plugins='no_such_module_xyz': importing it failed"),
    ],
)
def test_each_bad_value_is_refused_in_one_line(field, value, fragment):
    kwargs = {"device": "cpu", field: value}
    with pytest.raises(ConfigError) as info:
        StressConfig(**kwargs)
    msg = str(info.value)
    assert fragment in msg
    assert "\n" not in msg


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_refused():
    with pytest.raises(ConfigError, match=r"device='cuda': not available on this machine \(available: cpu\)"):
        StressConfig(device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_out_of_range_is_refused():
    n = torch.cuda.device_count()
    with pytest.raises(ConfigError, match=f"this machine has {n} CUDA device"):
        StressConfig(device=f"cuda:{n}")


def test_per_thread_streams_refused_on_cpu():
    with pytest.raises(ConfigError, match="streams='per-thread': the cpu backend has no streams"):
        StressConfig(device="cpu", streams="per-thread")


def test_dtype_the_backend_cannot_do_is_refused(monkeypatch):
    # MPS has no float64: pretend MPS is available to reach the dtype check.
    import mpslab.run.backends as b

    monkeypatch.setattr(b.MpsBackend, "is_available", lambda self: True)
    with pytest.raises(ConfigError, match="dtype='float64': not supported on mps; allowed: float32, float16, bfloat16"):
        StressConfig(device="mps", dtype="float64")
    with pytest.raises(ConfigError, match="streams='per-thread': the mps backend has no streams"):
        StressConfig(device="mps", streams="per-thread")


def test_round_trip_through_dict():
    c = StressConfig(threads=3, iterations=7, device="cpu", throttle=2, dtype="float64")
    assert StressConfig.from_dict(c.to_dict()) == c


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(ConfigError, match="thread=4: unknown parameter"):
        StressConfig.from_dict({"thread": 4})


def test_replace_revalidates():
    c = StressConfig(device="cpu")
    assert c.replace(threads=2).threads == 2
    with pytest.raises(ConfigError):
        c.replace(threads=0)


def test_plugin_file_registers_a_workload(tmp_path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "import torch\n"
        "from mpslab import register_workload\n"
        "@register_workload('plugin-add', description='x + 1 summed')\n"
        "def step(ctx, i):\n"
        "    return (torch.randn(ctx.size, generator=ctx.generator, device=ctx.device) + 1).sum()\n"
    )
    c = StressConfig(device="cpu", workload="plugin-add", plugins=(str(plugin),))
    assert c.workload == "plugin-add"
    with pytest.raises(ConfigError, match="no such file"):
        StressConfig(device="cpu", plugins=(str(tmp_path / "missing.py"),))
