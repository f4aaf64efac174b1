"""The typed trial: ``TrialRecord`` (one trial, versioned, JSON in and out) and ``TrialBatch`` (records + key).

A ``TrialRecord`` is what a store line holds, as a frozen value: ``to_json()`` gives exactly
the dict the store writes (schema, kind, batch, trial, result, config, environment), so
stores stay byte-compatible and resume; ``from_json`` reads one back. Accessors give the
parts typed (``outcome`` is an ``Outcome``; ``config`` a plain dict, ``stress_config()`` a
``StressConfig`` on demand). A ``TrialBatch`` collects the records of one batch key, refuses a
record of another environment (one clear line), counts by ``Outcome`` and gives pandas only at
the edge (``frame()``), as torch.utils.benchmark's ``Measurement`` feeds ``Compare``.
Not here: running trials (``isolate``), the store on disk (``store``), the row layout (``records``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mpslab.run.config import StressConfig
from mpslab.trials.outcomes import Outcome
from mpslab.trials.records import (
    RECORD_KIND,
    SCHEMA_VERSION,
    batch_environment,
    environment_id,
    records_frame,
)

__all__ = ["TrialRecord", "TrialBatch", "MixedEnvironmentError"]

_PARTS = ("result", "config", "environment")


class MixedEnvironmentError(ValueError):
    """A record of another environment was added to a batch of one environment."""


@dataclass(frozen=True)
class TrialRecord:
    """One trial as the store holds it: schema, batch key, trial number, result, config, environment.

    Frozen: the parts are deep-copied in and out, so neither a caller nor a store can change
    a record after it is made. ``from_json`` checks the shape (one ``ValueError`` line naming
    the part that is wrong); records of an older schema are migrated by the store before they
    get here.
    """

    batch: str
    trial: int
    result: Mapping[str, Any]
    config: Mapping[str, Any]
    environment: Mapping[str, Any]
    schema: int = SCHEMA_VERSION
    kind: str = field(default=RECORD_KIND, repr=False)

    __hash__ = None  # type: ignore[assignment]  # its parts are dicts: equal records compare equal, none hashes

    def __post_init__(self) -> None:
        for name in _PARTS:
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise ValueError(f"TrialRecord.{name}: must be a dict, got {type(value).__name__}")
            object.__setattr__(self, name, copy.deepcopy(dict(value)))
        if isinstance(self.trial, bool) or not isinstance(self.trial, int) or self.trial < 0:
            raise ValueError(f"TrialRecord.trial={self.trial!r}: must be an integer >= 0")
        if not isinstance(self.batch, str) or not self.batch:
            raise ValueError(f"TrialRecord.batch={self.batch!r}: must be a non-empty string")
        if self.kind != RECORD_KIND:
            raise ValueError(f"TrialRecord.kind={self.kind!r}: must be {RECORD_KIND!r}")
        if isinstance(self.schema, bool) or not isinstance(self.schema, int):
            raise ValueError(f"TrialRecord.schema={self.schema!r}: must be an integer")
        Outcome.parse(self.result.get("outcome"))

    # ------------------------------------------------------------------ JSON in and out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TrialRecord:
        """A record from the dict a store line holds (``to_json()``'s inverse)."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"TrialRecord.from_json: must be a dict, got {type(obj).__name__}")
        missing = [k for k in ("batch", "trial", *_PARTS) if k not in obj]
        if missing:
            raise ValueError(f"TrialRecord.from_json: missing {', '.join(missing)}")
        given = {k: obj[k] for k in ("batch", "trial", *_PARTS)}
        return cls(**given, schema=obj.get("schema", SCHEMA_VERSION), kind=obj.get("kind", RECORD_KIND))

    def to_json(self) -> dict[str, Any]:
        """The dict a store writes for this record, keys in the store's order; plain JSON."""
        head = {"schema": self.schema, "kind": self.kind, "batch": self.batch, "trial": self.trial}
        return {**head, **{part: copy.deepcopy(dict(getattr(self, part))) for part in _PARTS}}

    # ------------------------------------------------------------------ typed accessors

    @property
    def outcome(self) -> Outcome:
        """How the trial ended."""
        return Outcome.parse(self.result["outcome"])

    def stress_config(self) -> StressConfig:
        """The trial's config as a ``StressConfig`` (validated here: its device must exist on this machine)."""
        return StressConfig.from_dict(copy.deepcopy(dict(self.config)))

    def _number(self, key: str) -> float:
        value = self.result.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan

    @property
    def seconds(self) -> float:
        """The stress run's own duration (NaN for a trial that left no result)."""
        return self._number("seconds")

    @property
    def wall_s(self) -> float:
        """The child's lifetime as the parent saw it (NaN for a lost trial)."""
        return self._number("wall_s")

    @property
    def ops_per_s(self) -> float:
        """Throughput of the stress run (NaN for a trial that left no result)."""
        return self._number("ops_per_s")

    @property
    def exit_code(self) -> int | None:
        """The child's exit code when it exited (``None`` when killed by a signal, hung or lost)."""
        return self.result.get("exit_code")

    @property
    def signal(self) -> str | None:
        """The name of the signal that killed the child (``SIGSEGV``), or ``None``."""
        return self.result.get("signal")

    @property
    def first_error(self) -> str | None:
        """The first error, mismatch, crash or hang description, or ``None`` for a clean trial."""
        return self.result.get("first_error")

    @property
    def environment_key(self) -> str | None:
        """The identity of the environment this trial ran in (what names a batch: no time, no commit);
        ``None`` for a record without an environment (a lost trial ran nowhere to the end)."""
        if not self.environment:
            return None
        return environment_id(batch_environment(dict(self.environment)))


@dataclass
class TrialBatch:
    """The records of one batch key, at most one per trial number, of one environment.

    ``add`` refuses a record of another batch key, or (unless ``mixed``) of another
    environment, with one line naming both; a record without an environment (``lost``)
    joins any batch. ``mixed=True`` is a fleet batch: its key leaves the environment out,
    so its records keep their workers' environments; ``by_environment()`` splits it into
    batches of one environment each. ``resumed`` and ``ran`` count the records read back
    from a store and run by this call.
    """

    batch: str
    records: list[TrialRecord] = field(default_factory=list)
    resumed: int = 0
    ran: int = 0
    mixed: bool = False
    # The environment key of the first record that had one: computed once, not per added record.
    _environment: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given, self.records = list(self.records), []
        for rec in given:
            self.add(rec)

    def add(self, record: TrialRecord) -> None:
        """Add ``record`` (replacing one of the same trial number)."""
        if not isinstance(record, TrialRecord):
            raise TypeError(f"TrialBatch.add: a TrialRecord, got {type(record).__name__}")
        if record.batch != self.batch:
            raise ValueError(f"TrialBatch {self.batch}: trial {record.trial} is of batch {record.batch}")
        theirs = None if self.mixed else record.environment_key
        if theirs is not None:
            mine = self._environment
            if mine is not None and theirs != mine:
                raise MixedEnvironmentError(
                    f"TrialBatch {self.batch}: trial {record.trial} ran in environment {theirs}, "
                    f"the batch in {mine} (host {record.environment.get('host')!r}, torch "
                    f"{record.environment.get('torch')!r}): records of two environments are not pooled"
                )
            self._environment = theirs
        if self.records and record.trial <= self.records[-1].trial:  # a replacement, or out of order
            self.records = [r for r in self.records if r.trial != record.trial] + [record]
            self.records.sort(key=lambda r: r.trial)
        else:  # trials mostly come in order: no copy, no sort
            self.records.append(record)

    @property
    def environment_key(self) -> str | None:
        """The environment of the batch's records (the first that has one), ``None`` if none has."""
        for rec in self.records:
            key = rec.environment_key
            if key is not None:
                return key
        return None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[TrialRecord]:
        return iter(self.records)

    def counts(self) -> dict[Outcome, int]:
        """Trials per ``Outcome``, every outcome present (zeros included), in ``Outcome``'s order."""
        out = {o: 0 for o in Outcome}
        for rec in self.records:
            out[rec.outcome] += 1
        return out

    def by_environment(self) -> dict[str | None, TrialBatch]:
        """One batch of one environment per environment key (``None``: records without one)."""
        groups: dict[str | None, TrialBatch] = {}
        for rec in self.records:
            key = rec.environment_key
            groups.setdefault(key, TrialBatch(self.batch)).add(rec)
        return groups

    def frame(self):
        """A pandas DataFrame, one row per record (``records.records_frame``'s columns), with
        ``attrs`` batch, resumed and ran."""
        df = records_frame(rec.to_json() for rec in self.records)
        df.attrs.update(batch=self.batch, resumed=self.resumed, ran=self.ran)
        return df
