"""Claims: which writer runs which trial of a batch, kept in a SQLite sidecar beside the store.

Before a writer runs trial *k* of a batch it claims it. In one ``BEGIN IMMEDIATE``
transaction on ``<store>.claims`` (SQLite, WAL journal) it reads what the store holds
for the batch, picks trial numbers that have neither a record nor a live claim, and
writes one claim row per number (owner: host, pid, the process's start time, a run
id). Writers that come together wait on SQLite's busy timeout rather than fail, so two
never take the same number. A claim is live while its owner is: on this host, while
its pid exists and (where ``/proc`` tells) was started at the recorded time, so a
reused pid is not mistaken for the owner; on another host, always (its processes are
not ours to see); a run of this process that has closed, never. The trials of a dead
owner (``kill -9`` included) are claimed again by the next writer, which also drops
that owner's claims on trials already recorded. Closing a ``Claimant`` deletes its
claims; records are never rewritten.

SQLite's locks need one machine's kernel (or a filesystem that keeps them: not NFS);
a fleet of machines writes through its one submitting process
(``mpslab.trials.executors``). Not here: the records file (``store``, ``records``).
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

from mpslab.run.config import ConfigError

__all__ = ["Claimant", "claims_path", "process_start", "owner_alive"]

BUSY_TIMEOUT_S = 600.0  # how long a writer waits for another's transaction before it gives up
ACTIVE_RUNS: set[str] = set()  # the run ids of this process's open claimants
HOST = socket.gethostname()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    batch TEXT NOT NULL,
    trial INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT,
    run TEXT NOT NULL,
    PRIMARY KEY (batch, trial)
)
"""


class ClaimedStore(Protocol):
    """What a claimant needs of its store: where it is, and what it holds (read afresh)."""

    path: str

    def finished(self, batch: str) -> dict[int, dict[str, Any]]: ...

    def check_schema(self) -> None: ...


def claims_path(store_path: str) -> str:
    """The SQLite sidecar that holds the claims of the store at ``store_path``."""
    return store_path + ".claims"


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22, clock ticks since boot), or None where
    there is no ``/proc`` or no such process; a zombie (dead, not yet reaped) counts as none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # the name in parentheses may hold spaces
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def owner_alive(host: str, pid: int, started: str | None, run: str) -> bool:
    """Whether the writer that made a claim may still be running it (see the module docstring)."""
    if run in ACTIVE_RUNS:
        return True
    if host != HOST:
        return True
    if pid <= 0 or pid == os.getpid():
        return False  # a run of this process that has closed
    if os.path.isdir("/proc"):
        now = process_start(pid)
        return now is not None and (started is None or now == started)
    return _pid_exists(pid)


class Claimant:
    """One writer's share of a batch: claims free trial numbers, tells what others still hold.

    Use as a context manager (or call ``close``): while open, its claims are live to
    every other writer; closing it deletes them.
    """

    def __init__(self, store: ClaimedStore, batch: str, trials: int) -> None:
        self.store, self.batch, self.trials = store, batch, trials
        self.run = uuid.uuid4().hex
        self.owner = {"host": HOST, "pid": os.getpid(), "started": process_start(os.getpid()), "run": self.run}
        self.mine: set[int] = set()
        self._mutex = threading.Lock()  # one connection, used by one thread at a time
        self._db = _connect(claims_path(store.path))
        ACTIVE_RUNS.add(self.run)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _claims(self, db: sqlite3.Connection) -> tuple[dict[int, str], list[int]]:
        """(trial number -> run id of each live claim on this batch, the trial numbers of dead owners' claims)."""
        rows = db.execute("SELECT trial, host, pid, started, run FROM claims WHERE batch = ?", (self.batch,))
        alive: dict[tuple[Any, ...], bool] = {}
        live: dict[int, str] = {}
        dead: list[int] = []
        for trial, *owner in rows.fetchall():
            key = tuple(owner)
            if key not in alive:
                alive[key] = owner_alive(*owner)
            if alive[key]:
                live[trial] = owner[-1]
            else:
                dead.append(trial)
        return live, dead

    def take(self, limit: int) -> list[int]:
        """Claim up to ``limit`` trial numbers that have no record and no live claim, lowest first."""
        if limit <= 0:
            return []
        out: list[int] = []
        with self._transaction(write=True) as db:
            self.store.check_schema()
            done = self.store.finished(self.batch)
            live, dead = self._claims(db)
            gone = [(self.batch, k) for k in dead if k in done]  # a killed writer's claims of recorded trials
            db.executemany("DELETE FROM claims WHERE batch = ? AND trial = ?", gone)
            for k in range(self.trials):
                if len(out) >= limit:
                    break
                if k not in done and k not in self.mine and k not in live:
                    out.append(k)
            o = self.owner
            db.executemany(
                "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                [(self.batch, k, o["host"], o["pid"], o["started"], o["run"]) for k in out],
            )
        self.mine.update(out)
        return out

    def done(self, k: int) -> None:
        """Trial ``k`` has its record (or was given up by this writer)."""
        self.mine.discard(k)

    def finished(self) -> dict[int, dict[str, Any]]:
        return {k: r for k, r in self.store.finished(self.batch).items() if k < self.trials}

    def held_by_others(self) -> list[int]:
        """Trial numbers without a record whose claim belongs to another live writer."""
        with self._transaction(write=False) as db:
            done = self.store.finished(self.batch)
            live, _ = self._claims(db)
        return sorted(k for k, run in live.items() if k < self.trials and k not in done and run != self.run)

    def close(self) -> None:
        """Give up this writer's claims (its recorded trials stay recorded) and close the sidecar."""
        if self.run not in ACTIVE_RUNS:
            return
        ACTIVE_RUNS.discard(self.run)
        try:
            with self._transaction(write=True) as db:
                db.execute("DELETE FROM claims WHERE run = ?", (self.run,))
        finally:
            self._db.close()

    def __enter__(self) -> Claimant:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _connect(path: str) -> sqlite3.Connection:
    """A connection to the claims sidecar at ``path`` (created if missing), in WAL mode, that waits for other
    writers' transactions for up to ``BUSY_TIMEOUT_S`` instead of failing."""
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigError(f"store claims {path!r}: cannot be opened: {exc}") from None
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(_SCHEMA)
            return db
        except sqlite3.OperationalError as exc:
            # Switching a new file to WAL takes a lock that SQLite does not wait for (its busy
            # handler is not called there): writers opening one fresh sidecar together try again.
            if _busy(exc) and time.monotonic() < deadline:
                time.sleep(random.uniform(0.005, 0.05))
                continue
            db.close()
            raise ConfigError(f"store claims {path!r}: not a usable SQLite claims file: {exc}") from None
        except sqlite3.DatabaseError as exc:
            db.close()
            raise ConfigError(f"store claims {path!r}: not a usable SQLite claims file: {exc}") from None
        except BaseException:
            db.close()
            raise


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (not because the file is bad)."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text
