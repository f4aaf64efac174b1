"""Backend adapters; the MPS and CUDA adapters are driven through injected fakes."""

import contextlib
import types

import pytest
import torch

from mpslab.run.backends import CpuBackend, CudaBackend, HostEvent, MpsBackend, available_backends, get_backend, resolve_device


class Recorder:
    """A fake backend module: records every call made on it."""

    def __init__(self, with_stream=False):
        self.calls = []
        rec = self

        class Event:
            def __init__(self, enable_timing=False):
                rec.calls.append(("Event", enable_timing))

            def record(self):
                rec.calls.append(("record",))

            def wait(self):
                rec.calls.append(("wait",))

            def elapsed_time(self, other):
                rec.calls.append(("elapsed_time",))
                return 1.5

        self.event = types.SimpleNamespace(Event=Event)
        if with_stream:
            class Stream:
                def __init__(self):
                    rec.calls.append(("Stream",))

            self.Stream = Stream

            @contextlib.contextmanager
            def stream(s):
                rec.calls.append(("enter", type(s).__name__))
                yield
                rec.calls.append(("exit",))

            self.stream = stream

    FUNCTIONS = {"synchronize", "current_allocated_memory", "driver_allocated_memory", "empty_cache",
                 "set_per_process_memory_fraction", "memory_allocated", "memory_reserved"}

    def __getattr__(self, name):
        if name not in self.FUNCTIONS:  # like the real module: no Stream unless given one
            raise AttributeError(name)
        values = {"current_allocated_memory": 111, "driver_allocated_memory": 222}

        def call(*args):
            self.calls.append((name,) + args)
            return values.get(name)

        return call


def test_mps_adapter_forwards_to_torch_mps_api():
    api = Recorder()
    b = MpsBackend(api=api, backends_api=types.SimpleNamespace(is_available=lambda: True))
    assert b.is_available()
    b.synchronize()
    ev = b.new_event()
    ev.record()
    ev.wait()
    assert ev.elapsed_time(ev) == 1.5
    mem = b.memory()
    assert (mem.allocated, mem.reserved) == (111, 222)
    assert b.empty_cache() is True
    assert b.set_memory_fraction(0.5) is True
    assert api.calls == [("synchronize",), ("Event", True), ("record",), ("wait",), ("elapsed_time",),
                         ("current_allocated_memory",), ("driver_allocated_memory",), ("empty_cache",),
                         ("set_per_process_memory_fraction", 0.5)]
    assert b.supports_dtype("float32") and not b.supports_dtype("float64")


def test_mps_streams_only_when_torch_has_them():
    without = MpsBackend(api=Recorder(with_stream=False))
    assert not without.has_streams
    with pytest.raises(NotImplementedError, match="torch.mps.Stream"):
        without.new_stream()
    api = Recorder(with_stream=True)
    with_ = MpsBackend(api=api)
    assert with_.has_streams
    s = with_.new_stream()
    with with_.use_stream(s):
        api.calls.append(("inside",))
    assert api.calls == [("Stream",), ("enter", "Stream"), ("inside",), ("exit",)]


def test_cuda_adapter_forwards_with_its_device_index():
    api = Recorder()
    api.is_available = lambda: True
    api.device_count = lambda: 2
    api.memory_allocated = lambda i: 10 + i
    api.memory_reserved = lambda i: 20 + i
    b = CudaBackend(1, api=api)
    assert b.device == torch.device("cuda", 1) and b.device_count() == 2
    b.synchronize()
    assert api.calls[-1] == ("synchronize", 1)
    assert b.memory().as_dict() == {"allocated": 11, "reserved": 21}
    b.set_memory_fraction(0.25)
    assert api.calls[-1] == ("set_per_process_memory_fraction", 0.25, 1)


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
