"""Workload parameters: how a workload declares them, and the frozen mapping a config carries.

A workload declares its parameters (``batch``, ``d_model``, ``heads`` ...) as
``Param`` entries, each with a type, a default and one line of help. A config's
``params`` is a ``Params``: an immutable, hashable mapping that always holds
every declared parameter (defaults filled in), so two configs that run the same
work compare equal and a stored record says exactly what ran.

``resolve(declared, given, workload)`` checks ``given`` against the declaration:
an unknown name or a value of the wrong type or range raises ``ParamError``, one
line naming it. Values are scalars (int, float, bool, str), so records stay
plain JSON. This module is not the config (``mpslab.run.config``) nor the
registry (``mpslab.run.workloads``); it only knows parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Param", "Params", "ParamError", "resolve", "describe"]


class ParamError(ValueError):
    """A workload parameter was refused; the message is one line naming it."""


_TYPES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@dataclass(frozen=True)
class Param:
    """One declared parameter: its type (int, float, bool or str), default, help and bounds."""

    type: type
    default: Any
    help: str
    minimum: float | None = None
    choices: tuple[Any, ...] | None = None

    def check(self, name: str, value: Any, workload: str) -> Any:
        """``value`` converted to this parameter's type, or a ``ParamError``."""
        where = f"param {name}={value!r} (workload {workload!r})"
        t = self.type
        if t is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if t is bool and isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            value = value.lower() in ("true", "yes", "on")
        if t is int and isinstance(value, bool) or not isinstance(value, t):
            raise ParamError(f"{where}: must be {_TYPES[t]}")
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"{where}: must be >= {self.minimum:g}")
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"{where}: must be one of {', '.join(map(str, self.choices))}")
        return value


class Params(Mapping[str, Any]):
    """An immutable, hashable ``name -> value`` mapping (sorted by name)."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._items = tuple(sorted(dict(items or {}).items()))

    def __getitem__(self, key: str) -> Any:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Params({dict(self._items)!r})"

    def __deepcopy__(self, memo: dict) -> Params:  # immutable: dataclasses.asdict may copy it
        return self

    def text(self) -> str:
        """``a=1,b=2`` (one flat cell for a table); empty when there are none."""
        return ",".join(f"{k}={v}" for k, v in self._items)


def resolve(declared: Mapping[str, Param], given: Any, workload: str) -> Params:
    """``given`` (a mapping, ``None`` or ``Params``) checked against ``declared``, defaults filled in."""
    if given is None:
        given = {}
    if isinstance(given, (list, tuple)):
        try:
            given = dict(given)
        except (TypeError, ValueError):
            raise ParamError(f"params={given!r}: must be a mapping of name -> value") from None
    if not isinstance(given, Mapping):
        raise ParamError(f"params={given!r}: must be a mapping of name -> value")
    values: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ParamError(f"param {name}={value!r}: unknown for workload {workload!r}; it takes: {known}")
        values[name] = declared[name].check(name, value, workload)
    for name, spec in declared.items():
        values.setdefault(name, spec.default)
    return Params(values)


def describe(declared: Mapping[str, Param]) -> str:
    """``batch=8 (int): rows per forward; ...`` for listings."""
    return "; ".join(f"{k}={p.default!r} ({p.type.__name__}): {p.help}" for k, p in sorted(declared.items()))
