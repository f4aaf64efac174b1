"""TrialRecord and TrialBatch: JSON in and out as the store writes it, frozen, typed; one environment per batch."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from mpslab.run.config import StressConfig
from mpslab.trials.outcomes import Outcome
from mpslab.trials.records import make_record, records_frame
from mpslab.trials.trial import MixedEnvironmentError, TrialBatch, TrialRecord

_CONFIG = StressConfig(threads=2, iterations=3, workload="mlp", size=16, device="cpu").to_dict()


def _json(trial: int, outcome: str = "ok", host: str = "a", torch: str = "2.13.0", **result) -> dict:
    row = {
        "trial": trial,
        "outcome": outcome,
        "exit_code": 0 if outcome != "crash" else None,
        "signal": "SIGSEGV" if outcome == "crash" else None,
        "seconds": 0.25 if outcome != "crash" else math.nan,
        "ops_per_s": 48.0,
        "first_error": None,
        **result,
        **{k: v for k, v in _CONFIG.items()},
        "env_host": host,
        "env_torch": torch,
        "env_device": "cpu",
        "env_time": f"2026-01-01T00:00:0{trial % 10}+00:00",
        "env_mpslab_commit": f"c{trial}",
    }
    return make_record(row, batch="b1", config=dict(_CONFIG))


def test_a_record_reads_back_to_exactly_the_dict_and_bytes_the_store_writes():
    for outcome in ("ok", "crash"):
        obj = _json(3, outcome)
        rec = TrialRecord.from_json(json.loads(json.dumps(obj)))
        assert rec.to_json() == obj
        assert json.dumps(rec.to_json(), separators=(",", ":")) == json.dumps(obj, separators=(",", ":"))
        assert list(rec.to_json()) == ["schema", "kind", "batch", "trial", "result", "config", "environment"]


def test_a_record_is_frozen_inside_and_out():
    obj = _json(1)
    rec = TrialRecord.from_json(obj)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.trial = 2  # type: ignore[misc]
    obj["result"]["outcome"] = "crash"  # the dict it was made from
    rec.to_json()["config"]["threads"] = 99  # a dict it gave out
    assert rec.outcome is Outcome.OK and rec.config["threads"] == 2


def test_typed_accessors():
    rec = TrialRecord.from_json(_json(2, "crash"))
    assert rec.outcome is Outcome.CRASH and rec.outcome.is_failure
    assert rec.trial == 2 and rec.batch == "b1" and rec.signal == "SIGSEGV" and rec.exit_code is None
    assert math.isnan(rec.seconds) and rec.ops_per_s == 48.0 and math.isnan(rec.wall_s)
    assert rec.environment["host"] == "a"
    assert rec.stress_config() == StressConfig.from_dict(_CONFIG)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda o: o.pop("result"), "missing result"),
        (lambda o: o.update(trial=-1), "trial=-1"),
        (lambda o: o["result"].update(outcome="fine"), "outcome='fine'"),
        (lambda o: o.update(config=[1]), "config: must be a dict"),
        (lambda o: o.update(kind="mpslab.claim"), "kind='mpslab.claim'"),
    ],
)
def test_a_malformed_record_is_refused_in_one_line_naming_the_part(change, named):
    obj = _json(0)
    change(obj)
    with pytest.raises(ValueError, match=named) as info:
        TrialRecord.from_json(obj)
    assert "\n" not in str(info.value)


def test_a_batch_counts_by_outcome_and_gives_the_frame_records_frame_gives():
    objs = [_json(k, o) for k, o in enumerate(["ok", "crash", "ok"])]
    lost = make_record({"trial": 3, "outcome": "lost", "first_error": "KilledWorker"}, batch="b1", config=_CONFIG)
    batch = TrialBatch("b1", [TrialRecord.from_json(o) for o in [*objs, lost]], resumed=1, ran=3)
    counts = batch.counts()
    assert list(counts) == list(Outcome)
    assert counts[Outcome.OK] == 2 and counts[Outcome.CRASH] == 1 and counts[Outcome.LOST] == 1
    assert counts[Outcome.HANG] == 0
    df = batch.frame()
    expected = records_frame([*objs, lost])
    assert list(df.columns) == list(expected.columns) and df["outcome"].tolist() == expected["outcome"].tolist()
    assert df.attrs == {"batch": "b1", "resumed": 1, "ran": 3}


def test_a_batch_refuses_a_record_of_another_environment_in_one_line():
    batch = TrialBatch("b1", [TrialRecord.from_json(_json(0))])
    batch.add(TrialRecord.from_json(_json(1)))  # another time and commit: the same environment
    with pytest.raises(MixedEnvironmentError, match="trial 2 ran in environment") as info:
        batch.add(TrialRecord.from_json(_json(2, torch="2.12.0")))
    assert "\n" not in str(info.value)
    with pytest.raises(MixedEnvironmentError):
        batch.add(TrialRecord.from_json(_json(3, host="b")))
    assert [r.trial for r in batch] == [0, 1]  # nothing refused was kept
    with pytest.raises(ValueError, match="of batch b2"):
        batch.add(TrialRecord.from_json({**_json(4), "batch": "b2"}))


def test_a_fleet_batch_keeps_its_workers_environments_and_splits_by_them():
    recs = [TrialRecord.from_json(_json(k, host="ab"[k % 2])) for k in range(4)]
    fleet = TrialBatch("b1", recs, mixed=True)
    parts = fleet.by_environment()
    assert len(parts) == 2 and sorted(len(p) for p in parts.values()) == [2, 2]
    assert all(len({r.environment["host"] for r in p}) == 1 for p in parts.values())
