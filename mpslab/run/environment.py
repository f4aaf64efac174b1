"""The environment block every result carries: what ran, where, when."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import sys
from functools import lru_cache
from typing import Any

import torch

from mpslab.run.backends import get_backend
from mpslab.run.interpreter import interpreter_fields
from mpslab.version import __version__

__all__ = ["environment", "git_commit"]


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the mpslab checkout this code runs from, if it is one."""
    sha = _git("rev-parse", "--short=12", "HEAD")
    if not sha:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return sha + ("-dirty" if dirty else "")


def _git(*args: str) -> str | None:
    """``git args`` in this checkout: its output, stripped, or ``None`` where git or the checkout is missing
    or the command fails (an installed mpslab has no commit to report)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "-C", here, *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _torch_build() -> str:
    if getattr(torch.version, "hip", None):
        return f"rocm {torch.version.hip}"
    if getattr(torch.version, "cuda", None):
        return f"cuda {torch.version.cuda}"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_built():
        return "mps"
    return "cpu"


def environment(device: str = "cpu") -> dict[str, Any]:
    """A flat, JSON-able description of this process's machine, build and device."""
    backend = get_backend(device)
    try:
        name = backend.device_name() if backend.is_available() else None
    except Exception:  # a device that fails to describe itself still gets a record
        name = None
    return {
        "torch": torch.__version__,
        "torch_build": _torch_build(),
        "torch_git": getattr(torch.version, "git_version", None),
        "device": device,
        "device_name": name,
        "python": platform.python_version(),
        **interpreter_fields(when="start"),  # free-threaded build? GIL on? (when the block is taken)
        "executable": sys.executable,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "mpslab": __version__,
        "mpslab_commit": git_commit(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
