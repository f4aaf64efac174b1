"""The one list of outcomes: members, their str behaviour, and the views derived from it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mpslab.trials.outcomes import FAILURES, OUTCOMES, Outcome, classify


def test_members_in_order():
    assert [o.value for o in Outcome] == ["ok", "error", "mismatch", "crash", "hang", "lost"]
    assert OUTCOMES == ("ok", "error", "mismatch", "crash", "hang")
    assert FAILURES == (Outcome.ERROR, Outcome.MISMATCH, Outcome.CRASH, Outcome.HANG)


def test_a_member_behaves_as_its_string():
    assert Outcome.CRASH == "crash" and str(Outcome.CRASH) == "crash" and f"{Outcome.HANG}" == "hang"
    assert {"ok": 1}[Outcome.OK] == 1 and {Outcome.OK: 1}["ok"] == 1
    assert json.dumps({"outcome": Outcome.MISMATCH}) == '{"outcome": "mismatch"}'
    assert repr(Outcome.CRASH) == "'crash'" and str({Outcome.CRASH: 3}) == "{'crash': 3}"
    assert f"outcome {Outcome.HANG!r}" == "outcome 'hang'"
    column = pd.Series(["ok", "crash", "lost", "hang", "error"])
    assert column.isin(FAILURES).tolist() == [False, True, False, True, True]


def test_failure_and_evidence():
    assert [o.value for o in Outcome if o.is_failure] == ["error", "mismatch", "crash", "hang"]
    assert [o.value for o in Outcome if not o.is_evidence] == ["lost"]


def test_parse_names_the_allowed_values():
    assert Outcome.parse("hang") is Outcome.HANG
    with pytest.raises(ValueError, match=r"outcome='boom': must be one of ok, error, mismatch, crash, hang, lost"):
        Outcome.parse("boom")


@pytest.mark.parametrize(
    ("code", "timed_out", "written", "expected"),
    [
        (0, False, "ok", Outcome.OK),
        (0, False, "mismatch", Outcome.MISMATCH),
        (0, False, "error", Outcome.ERROR),
        (0, False, None, Outcome.CRASH),
        (0, False, "lost", Outcome.CRASH),
        (-11, False, "ok", Outcome.CRASH),
        (1, False, None, Outcome.CRASH),
        (None, True, "ok", Outcome.HANG),
    ],
)
def test_classify(code, timed_out, written, expected):
    got = classify(code, timed_out, written)
    assert got is expected
