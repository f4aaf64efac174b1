"""The trial store on disk: append-only JSON lines, resume by batch, claims shared by many writers.

``TrialStore(path)`` appends one record per trial (one ``os.write`` on an ``O_APPEND``
descriptor, then ``fsync``), answers which trials of a batch are already recorded, and
hands out ``Claimant``s that claim trial numbers under a ``lockf`` lock on
``<store>.lock`` so that several writers on one machine never run a trial twice (the
design is described in ``records``). Not here: the record format, schema migrations and
loading stores into pandas (``records``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from mpslab.run.config import ConfigError
from mpslab.trials.records import (
    CLAIM_KIND,
    OWNER_BASE,
    SCHEMA_VERSION,
    StoreSchemaError,
    _jsonable,
    _migrate,
    _parse_lines,
    _valid,
    _valid_claim,
    read_records,
)

__all__ = ["TrialStore", "Claimant"]


_LOCK_FDS: dict[str, tuple[int, int, threading.Lock]] = {}  # path -> (fd, pid that opened it, thread mutex)
_LOCK_GUARD = threading.Lock()
_ACTIVE_RUNS: set[str] = set()  # claimant run ids alive in this process
_HOST = socket.gethostname()


def _lock_fd(path: str) -> tuple[int, threading.Lock]:
    """This process's descriptor of lock file ``path`` (owner byte held) and its thread mutex."""
    with _LOCK_GUARD:
        entry = _LOCK_FDS.get(path)
        if entry is None or entry[1] != os.getpid():  # a forked child holds none of its parent's locks
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, OWNER_BASE + os.getpid())
            entry = _LOCK_FDS[path] = (fd, os.getpid(), threading.Lock())
        return entry[0], entry[2]


class TrialStore:
    """An append-only JSON-lines file of trial records (and the claims of its writers).

    The path is checked at construction (its directory must exist, it must not
    be a directory, it must be writable, a non-empty file must hold an mpslab
    record or claim, its records must be of this schema); a missing file is
    created empty. A file of other data is refused untouched (``ConfigError``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.lock_path = self.path + ".lock"
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            raise ConfigError(f"store={os.fspath(path)!r}: directory {parent!r} does not exist")
        if os.path.isdir(self.path):
            raise ConfigError(f"store={os.fspath(path)!r}: is a directory, not a file")
        try:
            existed = os.path.exists(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.close(fd)
        except OSError as exc:
            raise ConfigError(f"store={os.fspath(path)!r}: cannot be written: {exc.strerror}") from None
        if not stat.S_ISREG(os.stat(self.path).st_mode):
            raise ConfigError(f"store={os.fspath(path)!r}: not a regular file")
        if not existed:
            _fsync_dir(parent)
        else:
            reason = _not_a_store(self.path)
            if reason:
                raise ConfigError(f"store={os.fspath(path)!r}: {reason}; not a trial store, so left untouched")
        self._offset = 0  # bytes of the file read so far (whole lines only)
        self._lineno = 1
        self._schemas: set[int] = set()
        self._done: dict[str, dict[int, dict[str, Any]]] = {}
        self._claims: dict[str, dict[int, dict[str, Any]]] = {}
        self._refresh()
        self._check_schema()

    # ---------------------------------------------------------------- reading

    def _refresh(self) -> None:
        """Read the lines appended since the last read (complete lines only; the file only grows)."""
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return
        chunk = data[:end]
        for kind, obj in _parse_lines(
            self.path, chunk, self._lineno, final=False, migrate=False, schemas=self._schemas
        ):
            if kind == CLAIM_KIND:
                self._claims.setdefault(obj["batch"], {})[obj["trial"]] = obj["owner"]
                continue
            done = self._done.setdefault(obj["batch"], {})
            if obj["trial"] not in done:
                done[obj["trial"]] = _migrate(obj)
        self._offset += end + 1
        self._lineno += chunk.count(b"\n") + 1

    def _check_schema(self) -> None:
        other = sorted(v for v in self._schemas if v != SCHEMA_VERSION)
        if other:
            raise StoreSchemaError(
                f"store={self.path!r}: holds records of schema {', '.join(map(str, other))}; this mpslab "
                f"writes schema {SCHEMA_VERSION}: append to a new file (older files keep loading)"
            )

    def records(self) -> list[dict[str, Any]]:
        return read_records(self.path)

    def finished(self, batch: str) -> dict[int, dict[str, Any]]:
        """Trial number -> record, for the trials of ``batch`` already stored (first record wins)."""
        self._refresh()
        return dict(self._done.get(batch, {}))

    # ---------------------------------------------------------------- claims

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The store's claim mutex: other processes (``lockf`` on byte 0) and threads excluded."""
        fd, mutex = _lock_fd(self.lock_path)
        with mutex:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, 0)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, 0)

    def _owner_alive(self, owner: dict[str, Any]) -> bool:
        if owner.get("run") in _ACTIVE_RUNS:
            return True
        pid = owner.get("pid")
        if owner.get("host") != _HOST:
            return True  # another machine's process: its locks are not ours to see, so it counts as live
        if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
            return False  # a run of this process that has ended
        fd, _ = _lock_fd(self.lock_path)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, OWNER_BASE + pid)
        except OSError:
            return True  # its owner byte is held: that process is alive
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, OWNER_BASE + pid)
        return False

    def claimant(self, batch: str, trials: int) -> Claimant:
        """A writer's share of ``batch`` (trials ``0 .. trials-1``) in this store."""
        return Claimant(self, batch, trials)

    # ---------------------------------------------------------------- writing

    def append(self, record: dict[str, Any]) -> None:
        """Append one record as one line: a single ``write`` on an ``O_APPEND`` fd, then ``fsync``."""
        if not _valid(record):
            raise ValueError("TrialStore.append: not an mpslab trial record")
        if record["schema"] != SCHEMA_VERSION:
            raise StoreSchemaError(
                f"TrialStore.append: record of schema {record['schema']}, this mpslab writes schema {SCHEMA_VERSION}"
            )
        self._append_line(record)

    def _append_line(self, obj: dict[str, Any]) -> None:
        line = (
            json.dumps(_jsonable(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            + b"\n"
        )
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
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

    def __repr__(self) -> str:
        return f"TrialStore({self.path!r})"


class Claimant:
    """One writer's share of a batch: claims free trial numbers, tells what others still hold.

    Use as a context manager (or call ``close``): while open, its claims are
    live to every other writer in this process and, through the process's owner
    byte, to every other process on this machine.
    """

    def __init__(self, store: TrialStore, batch: str, trials: int) -> None:
        self.store, self.batch, self.trials = store, batch, trials
        self.run = uuid.uuid4().hex
        self.owner = {"host": _HOST, "pid": os.getpid(), "run": self.run}
        self.mine: set[int] = set()
        _ACTIVE_RUNS.add(self.run)

    def take(self, limit: int) -> list[int]:
        """Claim up to ``limit`` trial numbers that have no record and no live claim, lowest first."""
        if limit <= 0:
            return []
        store = self.store
        with store.locked():
            store._refresh()
            store._check_schema()
            done = store._done.get(self.batch, {})
            claims = store._claims.get(self.batch, {})
            alive: dict[str, bool] = {}
            out: list[int] = []
            for k in range(self.trials):
                if len(out) >= limit:
                    break
                if k in done or k in self.mine:
                    continue
                owner = claims.get(k)
                if owner is not None:
                    key = f"{owner.get('host')}\0{owner.get('pid')}\0{owner.get('run')}"
                    if key not in alive:
                        alive[key] = store._owner_alive(owner)
                    if alive[key]:
                        continue
                store._append_line(
                    {"kind": CLAIM_KIND, "schema": SCHEMA_VERSION, "batch": self.batch, "trial": k, "owner": self.owner}
                )
                claims[k] = self.owner
                out.append(k)
        self.mine.update(out)
        return out

    def done(self, k: int) -> None:
        """Trial ``k`` has its record (or was given up by this writer)."""
        self.mine.discard(k)

    def finished(self) -> dict[int, dict[str, Any]]:
        return {k: r for k, r in self.store.finished(self.batch).items() if k < self.trials}

    def held_by_others(self) -> list[int]:
        """Trial numbers without a record whose claim belongs to another live writer."""
        store = self.store
        with store.locked():
            store._refresh()
            done = store._done.get(self.batch, {})
            claims = store._claims.get(self.batch, {})
            return [
                k
                for k in range(self.trials)
                if k not in done
                and k not in self.mine
                and k in claims
                and claims[k].get("run") != self.run
                and store._owner_alive(claims[k])
            ]

    def close(self) -> None:
        _ACTIVE_RUNS.discard(self.run)

    def __enter__(self) -> Claimant:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# How every line this module writes begins (``json.dumps`` keeps the key order of the dict it is given).
_LINE_STARTS = (b'{"schema":', b'{"kind":"mpslab.')


def _not_a_store(path: str) -> str | None:
    """Why the file at ``path`` is not a trial store, or None: it is empty, holds a record or a claim,
    or holds only the torn start of this module's first write (``kill -9`` before its first line ended)."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
    if not lines:
        return None
    for _, line in lines:
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if _valid(obj) or _valid_claim(obj):
            return None
    if len(lines) == 1 and not data.endswith(b"\n"):
        torn = lines[0][1]
        if any(torn.startswith(p) or p.startswith(torn) for p in _LINE_STARTS):
            return None
    n, first = lines[0]
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        return f"holds no mpslab trial record ({len(data)} bytes; line {n} is not UTF-8 text: binary data?)"
    try:
        json.loads(text)
    except ValueError:
        return f"holds no mpslab trial record ({len(lines)} lines; line {n} is not JSON)"
    return f"holds no mpslab trial record ({len(lines)} lines of JSON, none an mpslab trial record or claim)"


def _fsync_dir(path: str) -> None:
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
