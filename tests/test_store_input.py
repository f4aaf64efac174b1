"""What the trial store does with files it did not write: it refuses a file that holds no mpslab record
(one line, exit 2, the file untouched), reports skipped lines once per kind, and reads every committed store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings

import pytest

from mpslab.cli import main
from mpslab.run.config import ConfigError
from mpslab.trials.records import (
    SCHEMA_VERSION,
    StoreSchemaError,
    TornRecordWarning,
    load_records,
    make_record,
    read_records,
)
from mpslab.trials.store import TrialStore

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

OTHER_FILES = {
    "results.csv": b"trial,outcome,seconds\n0,ok,0.5\n1,crash,0.2\n",
    "blob.bin": bytes(range(256)) + b"\n\x00\xff\xfe{\n" + bytes(range(255, -1, -1)),
    "events.jsonl": b'{"event": "start", "t": 0}\n{"event": "stop", "t": 1}\n[1, 2, 3]\n',
}


def _record(trial: int, schema: int = SCHEMA_VERSION) -> dict:
    row = {"trial": trial, "outcome": "ok", "seconds": 0.5, "threads": 2, "env_host": "a", "env_torch": "2.13.0"}
    record = make_record(row, batch="b1", config={"threads": 2})
    record["schema"] = schema
    return record


def _line(obj) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@pytest.mark.parametrize("name", sorted(OTHER_FILES))
def test_a_file_of_other_data_is_refused_as_a_store_in_one_line_and_left_untouched(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(OTHER_FILES[name])
    before = os.stat(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before its lines are read, so nothing is warned about them
        with pytest.raises(ConfigError, match="holds no mpslab trial record") as info:
            TrialStore(path)
    message = str(info.value)
    assert "\n" not in message and name in message
    assert path.read_bytes() == OTHER_FILES[name]
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert sorted(os.listdir(tmp_path)) == [name]  # no lock file beside it either


@pytest.mark.parametrize("name", sorted(OTHER_FILES))
def test_the_cli_refuses_a_file_of_other_data_with_exit_2_before_any_trial(tmp_path, name, capsys):
    path = tmp_path / name
    path.write_bytes(OTHER_FILES[name])
    argv = ["trials", "--workload", "fault-segfault-random", "--size", "4", "--trials", "2", "--threads", "2"]
    argv += ["--iterations", "2", "--device", "cpu", "--no-progress", "--store", str(path)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and name in lines[0] and "holds no mpslab trial record" in lines[0]
    assert path.read_bytes() == OTHER_FILES[name]


def test_an_empty_file_a_blank_file_and_a_torn_first_write_are_still_stores(tmp_path):
    full = json.dumps(_record(0), separators=(",", ":")).encode()
    cases = {"empty": b"", "blank": b"\n\n  \n", "torn": full[:7], "torn-later": full[: len(full) // 2]}
    for name, data in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TornRecordWarning)
            store = TrialStore(path)
            store.append(_record(1))
            assert [r["trial"] for r in read_records(path)] == [1], name


def test_a_store_with_records_among_other_lines_is_still_a_store(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"a,b\n" + _line(_record(0)) + b'{"x": 1}\n')
    with pytest.warns(TornRecordWarning):
        store = TrialStore(path)
    store.append(_record(1))
    with pytest.warns(TornRecordWarning):
        assert [r["trial"] for r in read_records(path)] == [0, 1]


def _messy_store(path) -> None:
    """One record, then 12 corrupt lines, 3 JSON lines of other data and 2 records of a newer schema."""
    data = _line(_record(0))
    for k in range(12):
        data += b"{torn %d\n" % k if k % 2 else b"x,y,z\n"
    data += b'{"a": 1}\n[2]\n"three"\n'
    data += _line(_record(1, SCHEMA_VERSION + 1)) + _line(_record(2, SCHEMA_VERSION + 2))
    data += b'{"schema":1,"kind":"mpslab.tri'  # a torn last line
    path.write_bytes(data)


def test_skipped_lines_are_reported_in_one_line_per_kind_with_counts_and_line_numbers(tmp_path):
    path = tmp_path / "t.jsonl"
    _messy_store(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [r["trial"] for r in read_records(path)] == [0]
    messages = [str(w.message) for w in caught if issubclass(w.category, TornRecordWarning)]
    assert len(messages) == 3 and all("\n" not in m and m.startswith(f"{path}: ") for m in messages)
    corrupt, other, newer = sorted(messages, key=lambda m: ("corrupt" not in m, "other data" not in m))
    assert "13 corrupt lines skipped: lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 3 more" in corrupt
    assert "3 lines of other data skipped: lines 14, 15, 16 " in other
    assert "2 records of a newer schema skipped: lines 17, 18 " in newer
    assert f"schema {SCHEMA_VERSION + 1}, {SCHEMA_VERSION + 2}" in newer


def test_a_torn_last_line_alone_is_named_as_the_last_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(_line(_record(0)) + b"{not json\n" + _line(_record(1)) + b'{"sche')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [r["trial"] for r in read_records(path)] == [0, 1]
    assert [str(w.message) for w in caught] == [
        f"{path}: 2 corrupt lines skipped: lines 2 and the last line, 4 (not JSON: a torn write?)"
    ]


def test_a_refused_schema_comes_after_one_warning_per_kind_not_one_per_line(tmp_path):
    path = tmp_path / "t.jsonl"
    _messy_store(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(StoreSchemaError, match="holds records of schema"):
            TrialStore(path)
    assert len(caught) == 3 and all(issubclass(w.category, TornRecordWarning) for w in caught)


def test_the_cli_prints_each_kind_of_skipped_line_once_in_one_line(tmp_path, capsys):
    path = tmp_path / "t.jsonl"
    _messy_store(path)
    argv = ["trials", "--workload", "fault-segfault-random", "--trials", "1", "--device", "cpu", "--store", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 4, err  # three kinds of skipped line, then the refusal
    assert sum(line.startswith("mpslab: warning: ") for line in err) == 3
    assert err[-1].startswith("mpslab: error: ") and "holds records of schema" in err[-1]


def _committed_jsonl() -> list[str]:
    git = shutil.which("git")
    proc = subprocess.run([git or "git", "ls-files", "-z", "*.jsonl"], cwd=ROOT, capture_output=True) if git else None
    if proc is None or proc.returncode != 0:
        pytest.skip("not applicable: not a git checkout (or no git)")
    return [os.path.join(ROOT, p) for p in proc.stdout.decode().split("\0") if p]


def test_every_committed_trial_store_loads_without_a_warning_and_holds_records(tmp_path):
    files = _committed_jsonl()
    assert files, "git ls-files found no *.jsonl"
    stores = [f for f in files if os.path.basename(f) != "throughput.jsonl"]
    assert stores
    for f in stores:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TornRecordWarning)
            df = load_records(f)
        assert len(df) > 0, f
        assert df["outcome"].notna().all(), f
    # The advisor's throughput rows are its own file, not trial stores: the store refuses them untouched.
    for f in files:
        if os.path.basename(f) == "throughput.jsonl":
            copy = tmp_path / "throughput.jsonl"
            shutil.copyfile(f, copy)
            with pytest.raises(ConfigError, match="holds no mpslab trial record"):
                TrialStore(copy)


# --------------------------------------------------------------------------- the advisor's throughput rows


def _throughput_row(key: str, repeat: int) -> dict:
    return {"key": key, "repeat": repeat, "label": "1 thread", "requests_per_s": float("nan"), "seconds": 0.5}


def test_every_committed_throughput_file_loads_untouched_through_the_shared_reader(tmp_path):
    from mpslab.studies.advisor.measure import ThroughputStore, read_throughput

    files = [f for f in _committed_jsonl() if os.path.basename(f) == "throughput.jsonl"]
    assert files
    for f in files:
        data = open(f, "rb").read()
        keys = {(r["key"], r["repeat"]) for r in map(json.loads, data.splitlines())}
        with warnings.catch_warnings():
            warnings.simplefilter("error", TornRecordWarning)
            rows = read_throughput(f)
            copy = tmp_path / "throughput.jsonl"
            shutil.copyfile(f, copy)
            store = ThroughputStore(str(copy))
        assert set(rows) == keys and store.rows == rows, f
        assert all("kind" not in r and r["requests_per_s"] > 0 for r in rows.values()), f
        assert copy.read_bytes() == data  # reading adopts the rows as they are; nothing is rewritten


def test_throughput_rows_append_as_records_of_their_kind_and_survive_a_torn_line(tmp_path):
    from mpslab.studies.advisor.measure import THROUGHPUT_LINES, ThroughputStore, read_throughput

    path = tmp_path / "throughput.jsonl"
    store = ThroughputStore(str(path))
    store.append(_throughput_row("k1", 0))
    with open(path, "ab") as fh:
        fh.write(b'{"schema":1,"kind":"mpslab.thr')  # a write torn by kill -9
    store = ThroughputStore(str(path))  # reads whole lines only: the torn one may still be being written
    store.append(_throughput_row("k1", 1))
    first = json.loads(path.read_bytes().splitlines()[0])
    assert first["kind"] == THROUGHPUT_LINES.name and first["schema"] == THROUGHPUT_LINES.schema
    assert first["requests_per_s"] is None  # NaN is stored as null
    with pytest.warns(TornRecordWarning, match="line 2 "):
        assert sorted(read_throughput(str(path))) == [("k1", 0), ("k1", 1)]


def test_a_throughput_file_of_other_data_is_refused_untouched(tmp_path):
    from mpslab.studies.advisor.measure import ThroughputStore

    path = tmp_path / "throughput.jsonl"
    path.write_bytes(OTHER_FILES["results.csv"])
    with pytest.raises(ConfigError, match="holds no mpslab throughput row") as info:
        ThroughputStore(str(path))
    assert "\n" not in str(info.value) and path.read_bytes() == OTHER_FILES["results.csv"]
