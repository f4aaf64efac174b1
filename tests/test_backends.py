"""Backend adapters; the MPS and CUDA adapters are driven through injected fakes."""

import contextlib
import types
from unittest.mock import create_autospec

import pytest
import torch

from mpslab.run.backends import (
    CpuBackend,
    CudaBackend,
    HostEvent,
    MpsBackend,
    available_backends,
    get_backend,
    resolve_device,
)


def _real(module, **returns):
    """An autospecced stand-in for a real torch module: a misspelt name raises AttributeError and a
    call with a signature Python can see is checked against the real function's."""
    mock = create_autospec(module, instance=False)
    for name, value in returns.items():
        getattr(mock, name).return_value = value
    return mock


def test_mps_adapter_calls_exist_in_the_real_torch_mps_and_accelerator_modules():
    api = _real(torch.mps, current_allocated_memory=111, driver_allocated_memory=222)
    accel = _real(torch.accelerator)
    b = MpsBackend(api=api, backends_api=_real(torch.backends.mps, is_available=True), accel=accel)
    assert b.is_available()
    b.synchronize()
    accel.synchronize.assert_called_once_with()
    b.new_event()
    api.event.Event.assert_called_once_with(enable_timing=True)
    mem = b.memory()
    assert (mem.allocated, mem.reserved) == (111, 222)
    assert b.empty_cache() is True
    api.empty_cache.assert_called_once_with()
    assert b.set_memory_fraction(0.5) is True
    api.set_per_process_memory_fraction.assert_called_once_with(0.5)
    assert b.supports_dtype("float32") and not b.supports_dtype("float64")
    assert b.current_stream() is None  # torch.mps has no current_stream in this build: no call made


def test_a_misspelt_or_misused_call_fails_against_the_real_module():
    # what the autospec catches, shown on the very modules the adapters use
    api = _real(torch.mps)
    with pytest.raises(AttributeError):
        api.synchronise  # noqa: B018 (misspelt)
    with pytest.raises(TypeError):
        api.synchronize(0)  # torch.mps.synchronize takes no device
    with pytest.raises(TypeError):
        api.event.Event(timing=True)  # the keyword is enable_timing
    with pytest.raises(TypeError):
        _real(torch.accelerator).memory_allocated(0, 1)


def test_mps_streams_only_when_torch_has_them():
    without = MpsBackend(api=_real(torch.mps), accel=_real(torch.accelerator))
    assert not without.has_streams  # feature detection: the real torch.mps has no Stream in 2.13
    with pytest.raises(NotImplementedError, match="torch.mps.Stream"):
        without.new_stream()
    with pytest.raises(NotImplementedError, match="torch.mps.Stream"):
        with without.use_stream(object()):
            pass
    # a build that exposes torch.mps.Stream / torch.mps.stream (PyTorch main): the adapter uses them
    calls = []

    class Stream:
        pass

    @contextlib.contextmanager
    def stream(s):
        calls.append(("enter", type(s).__name__))
        yield
        calls.append(("exit",))

    future = types.SimpleNamespace(Stream=Stream, stream=stream)
    with_ = MpsBackend(api=future, accel=_real(torch.accelerator))
    assert with_.has_streams
    with with_.use_stream(with_.new_stream()):
        calls.append(("inside",))
    assert calls == [("enter", "Stream"), ("inside",), ("exit",)]


def test_cuda_adapter_calls_exist_in_the_real_modules_with_its_device_index():
    api = _real(torch.cuda, is_available=True, device_count=2)
    accel = _real(torch.accelerator, memory_allocated=11, memory_reserved=21)
    b = CudaBackend(1, api=api, accel=accel)
    assert b.device == torch.device("cuda", 1) and b.device_count() == 2
    b.synchronize()
    accel.synchronize.assert_called_once_with(1)
    assert b.memory().as_dict() == {"allocated": 11, "reserved": 21}
    accel.memory_allocated.assert_called_once_with(1)
    assert b.empty_cache() is True
    accel.empty_cache.assert_called_once_with()
    b.set_memory_fraction(0.25)
    api.set_per_process_memory_fraction.assert_called_once_with(0.25, 1)
    b.new_event(enable_timing=False)
    api.Event.assert_called_once_with(enable_timing=False)
    b.new_stream()
    api.Stream.assert_called_once_with(device=1)
    b.current_stream()
    api.current_stream.assert_called_once_with(1)


def test_without_torch_accelerator_the_adapters_fall_back_to_the_backend_module():
    api = _real(torch.mps)
    MpsBackend(api=api, accel=None).synchronize()
    api.synchronize.assert_called_once_with()
    cuda = _real(torch.cuda, memory_allocated=5, memory_reserved=6)
    b = CudaBackend(0, api=cuda, accel=None)
    b.synchronize()
    cuda.synchronize.assert_called_once_with(0)
    assert b.memory().as_dict() == {"allocated": 5, "reserved": 6}


def test_c_type_event_and_stream_constructors_and_methods_exist_in_the_real_torch():
    # torch.Event / torch.Stream are C types whose method signatures Python cannot see. What can be
    # checked here: the constructors take the keywords used (on the CPU, which builds both objects),
    # and every method the adapters, probes and scenarios call exists on the real type. What cannot:
    # the methods' arguments (record/wait/elapsed_time raise "cpu backend doesn't support events").
    event = torch.Event(device="cpu", enable_timing=True)
    stream = torch.Stream(device="cpu")
    for name in ("record", "wait", "query", "synchronize", "elapsed_time"):
        assert callable(getattr(event, name)), name
    for name in ("synchronize", "wait_event", "wait_stream", "record_event", "query"):
        assert callable(getattr(stream, name)), name


def test_cpu_backend_host_events_and_no_memory_counters():
    b = CpuBackend()
    assert b.is_available() and not b.has_streams and not b.is_async
    start, end = b.new_event(), b.new_event()
    with pytest.raises(RuntimeError, match="recorded first"):
        start.elapsed_time(end)
    start.record()
    end.record()
    assert start.elapsed_time(end) >= 0
    assert isinstance(start, HostEvent)
    assert b.memory().as_dict() == {"allocated": None, "reserved": None}
    assert b.empty_cache() is False
    with pytest.raises(NotImplementedError):
        b.new_stream()


def test_lookup_and_auto_resolution():
    assert isinstance(get_backend("cpu"), CpuBackend)
    assert get_backend("cuda:3").index == 3
    with pytest.raises(ValueError, match="no mpslab backend for 'meta'"):
        get_backend("meta")
    assert available_backends()[-1] == "cpu"
    assert resolve_device("auto") == available_backends()[0]
    assert resolve_device("cpu") == "cpu"
