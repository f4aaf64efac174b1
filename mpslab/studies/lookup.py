"""Finding a catalogue entry by its name: one lookup and one wording of its error for every catalogue.

The casebook, the scenario library, the edge cases and the probes each keep a tuple of frozen
entries; a user names one (CLI flag, notebook parameter) and a wrong name must say, in one line,
what was asked for and what exists. Not here: the catalogues themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["entry_named"]


def entry_named(entries: Iterable[Any], name: str, what: str, key: str = "name") -> Any:
    """The entry whose ``key`` attribute equals ``name``; else a ``KeyError`` of one line,
    ``{what}={name!r}: unknown; known: ...``, listing every entry's ``key`` in catalogue order."""
    entries = tuple(entries)
    for entry in entries:
        if getattr(entry, key) == name:
            return entry
    raise KeyError(f"{what}={name!r}: unknown; known: {', '.join(getattr(e, key) for e in entries)}")
