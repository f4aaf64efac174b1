"""Small helpers the benchmark scripts share: the machine line, load average, memory readings.

Not a benchmark itself, and not part of the package: only the scripts in this folder import it.
"""

from __future__ import annotations

import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages (other work on the machine skews the figures)."""
    if not hasattr(os, "getloadavg"):
        return "n/a"
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_line(device: str = "cpu") -> str:
    """One line naming the machine, the device, python and torch, and the load average now."""
    name = platform.processor() or platform.machine()
    if device.startswith("cuda") and torch.cuda.is_available():
        name = f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    return (
        f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, device {device} = {name}, "
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op threads, load average {load_average()}"
    )


def rss_bytes() -> int:
    """Resident set size of this process, bytes (psutil where present, else /proc)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, bytes (getrusage; Linux reports KiB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def device_memory(device: str) -> dict[str, int]:
    """Device memory in bytes: allocated and reserved by torch's caching allocator, and in use on the card."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        return {
            "allocated": torch.cuda.memory_allocated(),
            "reserved": torch.cuda.memory_reserved(),
            "card_used": total - free,
        }
    if device.startswith("mps") and torch.backends.mps.is_available():
        return {
            "allocated": torch.mps.current_allocated_memory(),
            "reserved": torch.mps.driver_allocated_memory(),
            "card_used": torch.mps.driver_allocated_memory(),
        }
    return {}


def bad_arg(script: str, message: str) -> int:
    """Print one clear line about bad input and return exit status 2."""
    print(f"{script}: {message}", file=sys.stderr)
    return 2
