"""How Python ran a trial: the interpreter's version, whether it is a free-threaded build, whether the GIL was on.

A free-threaded CPython (3.13t and later) runs threads in parallel only while its
GIL is off, and the GIL is not fixed by the build: ``PYTHON_GIL=0`` / ``=1`` (or
``-X gil``) choose it at start-up, and importing an extension module that does not
declare itself free-threading-safe turns it back on, with only a warning. Two sets
of trials of one interpreter can therefore have run very differently, and must not
pool as one environment.

The environment block (``mpslab.run.environment``) records
``sysconfig.get_config_var("Py_GIL_DISABLED")`` (1 on a free-threaded build, 0 on a
standard 3.13+, absent before) and ``sys._is_gil_enabled()`` (absent before 3.13)
when it is taken; each trial child records the latter again when it starts its
request and when it ends it (``mpslab.trials.child``). ``interpreter_label`` turns
the start into the one environment column that pooling reads (``env_interpreter``):
``3.12.3 standard build``, ``3.13.1 free-threaded, GIL off``, ``... GIL on``.

Records written before these fields existed are read as a standard build
(``fill_interpreter``), the only build mpslab ran on until then.
Not here: the rest of the environment block (``mpslab.run.environment``).
"""

from __future__ import annotations

import platform
import sys
import sysconfig
from typing import Any

__all__ = ["gil_disabled_build", "gil_enabled", "interpreter_label", "interpreter_fields", "fill_interpreter"]

FREE_THREADED_GIL_OFF = "free-threaded, GIL off"


def gil_disabled_build() -> int | None:
    """``Py_GIL_DISABLED`` of this interpreter's build: 1 free-threaded, 0 standard, None before 3.13."""
    value = sysconfig.get_config_var("Py_GIL_DISABLED")
    return None if value is None else int(value)


def gil_enabled() -> bool | None:
    """``sys._is_gil_enabled()`` now; None where the interpreter has no such call (before 3.13)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return None if probe is None else bool(probe())


def interpreter_label(python: Any, gil_disabled: Any, enabled: Any) -> str:
    """``3.12.3 standard build``, ``3.13.1 free-threaded, GIL off`` or ``..., GIL on``."""
    version = str(python) if python else "Python ?"
    if not gil_disabled:
        return f"{version} standard build"
    if enabled is None:
        return f"{version} free-threaded, GIL state not recorded"
    return f"{version} free-threaded, GIL {'on' if enabled else 'off'}"


def interpreter_fields(*, when: str) -> dict[str, Any]:
    """The environment fields of this interpreter now; ``when`` is ``start`` or ``end``.

    ``start`` gives the build, the GIL state and the label; ``end`` only the GIL state.
    """
    if when == "end":
        return {"gil_enabled_end": gil_enabled()}
    if when != "start":
        raise ValueError(f"when={when!r}: must be 'start' or 'end'")
    build, enabled = gil_disabled_build(), gil_enabled()
    return {
        "py_gil_disabled": build,
        "gil_enabled_start": enabled,
        "interpreter": interpreter_label(platform.python_version(), build, enabled),
    }


def fill_interpreter(env: dict[str, Any]) -> dict[str, Any]:
    """``env`` with the interpreter fields a record written before them lacks: a standard build."""
    if "interpreter" in env:
        return env
    out = dict(env)
    out.setdefault("py_gil_disabled", None)
    out.setdefault("gil_enabled_start", None)
    out.setdefault("gil_enabled_end", None)
    out["interpreter"] = interpreter_label(env.get("python"), None, None)
    return out
