"""Typed errors for refused input, worded for whoever called.

A lower layer names the Python parameter it was given (``max_failure=0.5: must be ...``):
that is what a notebook or script user typed. The command line rewords the same error
with the flag the user typed there (``--max-failure=0.5: must be ...``), using its
parser's own dest -> option mapping (``ConfigError.worded``), so no layer below the CLI
needs to know a flag's spelling.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["ConfigError"]

_NO_VALUE = object()
_LEADING_PARAM = re.compile(r"([a-z_][a-z0-9_]*)(?==|:)")


class ConfigError(ValueError):
    """A parameter was refused; the message is one line naming it.

    Raise it either structured, ``ConfigError(param="threads", value=0, why="must be an
    integer >= 1")`` (message ``threads=0: must be an integer >= 1``; with no ``value``,
    ``threads: why``), or with a ready message. A message that begins ``name=`` or
    ``name:`` names ``name`` as its parameter, so both kinds can be reworded.
    ``param``, ``value`` and ``why`` are None where unknown.
    """

    def __init__(self, message: str = "", *, param: str | None = None, value: Any = _NO_VALUE, why: str = "") -> None:
        if param is not None:
            message = f"{param}={value!r}: {why}" if value is not _NO_VALUE else f"{param}: {why}"
        else:
            match = _LEADING_PARAM.match(message)
            param = match.group(1) if match else None
        super().__init__(message)
        self.param = param
        self.value = None if value is _NO_VALUE else value
        self.why = why or None

    def worded(self, flags: Mapping[str, str]) -> str:
        """The first line of the message, its parameter replaced by ``flags[param]`` when it has one there."""
        first = (str(self).splitlines() or [""])[0]
        flag = flags.get(self.param) if self.param else None
        if flag is None or not first.startswith(self.param or ""):
            return first
        return flag + first[len(self.param or "") :]
