"""Append-only JSON-lines files of one kind of row: the one write, read and torn-line path of every store.

A ``LineKind`` says what a row of a file is (its check, its schema version, how an
older row is brought up to date); trial records (``records.TRIAL_LINES``) and the
advisor's throughput rows are two kinds. ``JsonLinesFile`` checks a path before any
work (a file of other data is refused untouched), reads what was appended since its
last read, and appends one row as one ``os.write`` of a complete line on an
``O_APPEND`` descriptor, followed by ``fsync``: a writer killed at any moment
(``kill -9`` included) leaves a file whose complete lines are all valid rows. A torn
last line is skipped on read with a ``TornRecordWarning``, and the next append starts
on a fresh line, so a torn line never swallows a later row. Skipped lines are reported
in one warning per kind of problem, with the count and the line numbers.
Only JSON is read and written here; nothing is unpickled or evaluated.
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mpslab.run.config import ConfigError

__all__ = ["TornRecordWarning", "LineKind", "JsonLinesFile", "jsonable", "append_line", "parse_lines", "read_lines"]


class TornRecordWarning(UserWarning):
    """A line of a records file could not be read (a torn write) and was skipped."""


def _same(obj: Any) -> Any:
    return obj


@dataclass(frozen=True, eq=False)
class LineKind:
    """What one kind of row is: its fields, the schema this mpslab writes, how older rows read.

    A row is a JSON object whose ``kind`` is ``name``, whose ``schema`` is an integer and
    whose ``fields`` have their types (``valid``). ``adopt`` runs first on every JSON value
    read: it returns the value as a row of this kind (a row written before rows carried
    their kind and schema, say), or ``None`` for a line that is neither a row nor damage
    and is skipped silently. ``upgrade`` brings a valid row of this schema or older up to date.
    """

    name: str  # the "kind" field of its rows: "mpslab.trial"
    noun: str  # in messages: "mpslab trial record"
    file_noun: str  # in messages: "trial store"
    schema: int
    fields: dict[str, type]
    adopt: Callable[[Any], Any] = _same
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] = _same

    def valid(self, obj: Any) -> bool:
        """Whether ``obj`` has the shape of a row of this kind (of any schema)."""
        return (
            isinstance(obj, dict)
            and obj.get("kind") == self.name
            and isinstance(obj.get("schema"), int)
            and all(isinstance(obj.get(k), t) for k, t in self.fields.items())
        )


def jsonable(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    return str(value)


def append_line(path: str, obj: dict[str, Any]) -> None:
    """Append ``obj`` as one line: a single ``write`` on an ``O_APPEND`` fd, then ``fsync``."""
    line = json.dumps(jsonable(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    line += b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a torn line before us: start on a fresh line
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_lines(
    path: str, data: bytes, first_lineno: int, kind: LineKind, *, final: bool, schemas: set[int] | None = None
) -> Iterator[dict[str, Any]]:
    """Each row of ``kind`` in ``data`` (whole lines), brought up to date; the other lines skipped.

    Skipped lines are reported once ``data`` is read, in one ``TornRecordWarning`` per kind
    of problem with its count and line numbers (a file of thousands of bad lines gives a few
    lines of warning, not thousands). ``final``: ``data`` runs to the end of the file, so a
    bad last line is named as such. ``schemas`` collects every row's schema version, a
    skipped newer one included.
    """
    lines = data.split(b"\n")
    skipped: dict[str, list[int]] = {}
    newer: set[int] = set()
    last = first_lineno + len(lines) - 1 if final else None
    for index, line in enumerate(lines):
        lineno = first_lineno + index
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            skipped.setdefault("corrupt", []).append(lineno)
            continue
        obj = kind.adopt(obj)
        if obj is None:
            continue
        if not kind.valid(obj):
            skipped.setdefault("foreign", []).append(lineno)
            continue
        if schemas is not None:
            schemas.add(obj["schema"])
        if obj["schema"] > kind.schema:
            skipped.setdefault("newer", []).append(lineno)
            newer.add(obj["schema"])
            continue
        yield kind.upgrade(obj)
    for problem, numbers in skipped.items():
        message = _skipped_message(path, kind, problem, numbers, last, newer)
        warnings.warn(message, TornRecordWarning, stacklevel=3)


def read_lines(path: str | os.PathLike[str], kind: LineKind) -> list[dict[str, Any]]:
    """Every complete, valid row of ``kind`` in one file, in file order (see ``parse_lines``)."""
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    return list(parse_lines(path, data, 1, kind, final=True))


# Each kind of skipped line: (singular, plural, why).
_SKIPPED = {
    "corrupt": ("corrupt line", "corrupt lines", "not JSON: a torn write?"),
    "foreign": ("line of other data", "lines of other data", "JSON, but not an {noun}"),
    "newer": ("record of a newer schema", "records of a newer schema", "schema {newer}; mpslab reads schema {ours}"),
}
_LINES_SHOWN = 10


def _skipped_message(
    path: str, kind: LineKind, problem: str, numbers: list[int], last: int | None, newer: set[int]
) -> str:
    """One line: how many lines of ``problem`` were skipped, which ones (the first few), and why."""
    one, many, why = _SKIPPED[problem]
    why = why.format(noun=kind.noun, newer=", ".join(map(str, sorted(newer))), ours=kind.schema)
    shown = [str(n) for n in numbers[:_LINES_SHOWN]]
    ends_last = numbers[-1] == last and len(numbers) <= _LINES_SHOWN
    if ends_last:
        shown[-1] = f"the last line, {last}"
    if len(numbers) == 1:
        where = shown[0] if ends_last else f"line {shown[0]}"
        return f"{path}: 1 {one} skipped: {where} ({why})"
    where = ", ".join(shown[:-1]) + (" and " if ends_last else ", ") + shown[-1]
    if len(numbers) > _LINES_SHOWN:
        where += f" and {len(numbers) - _LINES_SHOWN} more"
    return f"{path}: {len(numbers)} {many} skipped: lines {where} ({why})"


# How every line ``append_line`` writes of a row begins (``json.dumps`` keeps the key order it is given).
_LINE_STARTS = (b'{"schema":', b'{"kind":"mpslab.')


class JsonLinesFile:
    """An append-only JSON-lines file of rows of one ``LineKind``, read incrementally.

    The path is checked at construction (its directory must exist, it must not be a
    directory, it must be writable, a non-empty file must hold a row of this kind);
    a missing file is created empty. A file of other data is refused untouched
    (``ConfigError``, one line).
    """

    kind: LineKind

    def __init__(self, path: str | os.PathLike[str], kind: LineKind) -> None:
        self.kind = kind
        self.path = os.path.abspath(os.fspath(path))
        given = os.fspath(path)
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise ConfigError(f"store={given!r}: directory {parent!r} does not exist")
        if os.path.isdir(self.path):
            raise ConfigError(f"store={given!r}: is a directory, not a file")
        try:
            existed = os.path.exists(self.path)
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))
        except OSError as exc:
            raise ConfigError(f"store={given!r}: cannot be written: {exc.strerror}") from None
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise ConfigError(f"store={given!r}: not a regular file")
        if not existed:
            fsync_dir(parent)
        else:
            reason = self._not_mine()
            if reason:
                raise ConfigError(f"store={given!r}: {reason}; not a {kind.file_noun}, so left untouched")
        self._offset = 0  # bytes of the file read so far (whole lines only)
        self._lineno = 1
        self.schemas: set[int] = set()  # the schema of every row read, a skipped newer one included

    def read_new(self) -> list[dict[str, Any]]:
        """The rows appended since the last read (complete lines only; the file only grows)."""
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        chunk = data[:end]
        rows = list(parse_lines(self.path, chunk, self._lineno, self.kind, final=False, schemas=self.schemas))
        self._offset += end + 1
        self._lineno += chunk.count(b"\n") + 1
        return rows

    def append_row(self, row: dict[str, Any]) -> None:
        """Append one row of this file's kind (``valid``, of the schema this mpslab writes)."""
        if not self.kind.valid(row):
            raise ValueError(f"{type(self).__name__}.append: not an {self.kind.noun}")
        if row["schema"] != self.kind.schema:
            raise ValueError(
                f"{type(self).__name__}.append: {self.kind.noun} of schema {row['schema']}, "
                f"this mpslab writes schema {self.kind.schema}"
            )
        append_line(self.path, row)

    def _not_mine(self) -> str | None:
        """Why the file is not of this kind, or None: it is empty, holds a row (or a line ``adopt`` skips),
        or holds only the torn start of a first write (``kill -9`` before its first line ended)."""
        with open(self.path, "rb") as fh:
            data = fh.read()
        lines = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        if not lines:
            return None
        for _, line in lines:
            try:
                obj = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            adopted = self.kind.adopt(obj)
            if adopted is None or self.kind.valid(adopted):
                return None
        if len(lines) == 1 and not data.endswith(b"\n"):
            torn = lines[0][1]
            if any(torn.startswith(p) or p.startswith(torn) for p in _LINE_STARTS):
                return None
        n, first = lines[0]
        noun = self.kind.noun
        try:
            text = first.decode("utf-8")
        except UnicodeDecodeError:
            return f"holds no {noun} ({len(data)} bytes; line {n} is not UTF-8 text: binary data?)"
        try:
            json.loads(text)
        except ValueError:
            return f"holds no {noun} ({len(lines)} lines; line {n} is not JSON)"
        return f"holds no {noun} ({len(lines)} lines of JSON, none an {noun})"


def fsync_dir(path: str) -> None:
    """Make a directory entry just created durable (best effort: some filesystems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
