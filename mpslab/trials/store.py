"""The trial store on disk: a JSON-lines file of trial records, resume by batch, claims for many writers.

``TrialStore(path)`` appends one record per trial (``jsonlines.append_line``: one
``os.write`` of a complete line, then ``fsync``), answers which trials of a batch are
already recorded, and hands out ``Claimant``s (``claims``: a SQLite sidecar
``<store>.claims``, created when the first claimant opens) so that several writers on
one machine never run a trial twice. The records file holds records only; lines of
other kinds are skipped as ``records.TRIAL_LINES`` says. ``drop_claim_lines`` rewrites
an older store without the claim lines it holds. Not here: the record format, schema
migrations and loading stores into pandas (``records``).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from typing import Any

from mpslab.trials.claims import Claimant, claims_path
from mpslab.trials.jsonlines import JsonLinesFile, fsync_dir
from mpslab.trials.records import (
    SCHEMA_VERSION,
    TRIAL_LINES,
    StoreSchemaError,
    is_claim_line,
    is_record,
    read_records,
)

__all__ = ["TrialStore", "Claimant", "drop_claim_lines"]


class TrialStore(JsonLinesFile):
    """An append-only JSON-lines file of trial records.

    The path is checked at construction (its directory must exist, it must not
    be a directory, it must be writable, a non-empty file must hold an mpslab
    record, its records must be of this schema); a missing file is created empty.
    A file of other data is refused untouched (``ConfigError``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, TRIAL_LINES)
        self.claims_path = claims_path(self.path)
        self._done: dict[str, dict[int, dict[str, Any]]] = {}
        self._reading = threading.Lock()  # claimants in several threads share this store's read position
        self._refresh()
        self.check_schema()

    def _refresh(self) -> None:
        with self._reading:
            for record in self.read_new():
                self._done.setdefault(record["batch"], {}).setdefault(record["trial"], record)

    def check_schema(self) -> None:
        """Refuse a store that holds records of another schema than this mpslab writes (one line)."""
        other = sorted(v for v in self.schemas if v != SCHEMA_VERSION)
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

    def claimant(self, batch: str, trials: int) -> Claimant:
        """A writer's share of ``batch`` (trials ``0 .. trials-1``) in this store."""
        return Claimant(self, batch, trials)

    def append(self, record: Any) -> None:
        """Append one record (a dict, or an object whose ``to_json()`` gives one) as one line."""
        if not isinstance(record, dict) and callable(getattr(record, "to_json", None)):
            record = record.to_json()
            if isinstance(record, str):
                record = json.loads(record)
        if not is_record(record):
            raise ValueError("TrialStore.append: not an mpslab trial record")
        if record["schema"] != SCHEMA_VERSION:
            raise StoreSchemaError(
                f"TrialStore.append: record of schema {record['schema']}, this mpslab writes schema {SCHEMA_VERSION}"
            )
        self.append_row(record)

    def __repr__(self) -> str:
        return f"TrialStore({self.path!r})"


def drop_claim_lines(path: str | os.PathLike[str]) -> int:
    """Rewrite the store at ``path`` without its claim lines; returns how many were dropped.

    Every other line (records, and any damage, a torn last line included) is kept
    byte for byte, in order. The new file replaces the old one atomically, with the
    same permissions; a file without claim lines is not touched. Run it on a store
    that no writer is appending to: an append during the rewrite would be lost.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    kept: list[bytes] = []
    dropped = 0
    pieces = data.split(b"\n")
    for n, piece in enumerate(pieces):
        line = piece if n == len(pieces) - 1 else piece + b"\n"  # only "\n" ends a line of a store
        if _is_claim(piece):
            dropped += 1
        else:
            kept.append(line)
    if not dropped:
        return 0
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(b"".join(kept))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)
    return dropped


def _is_claim(line: bytes) -> bool:
    if b'"mpslab.claim"' not in line:  # most lines: no JSON parse needed
        return False
    try:
        return is_claim_line(json.loads(line.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        return False
