"""The release matrix: Holm's correction, the first failing build, bad input, and an A/A run on two interpreters."""

from __future__ import annotations

import os
import stat
import sys

import pandas as pd
import pytest

from mpslab.cli import main
from mpslab.run.config import ConfigError
from mpslab.studies.compare import failure_test
from mpslab.studies.matrix import check_pythons, holm, transitions

CASE = "mstar167-dynamo-config-ignored"  # fails every trial on torch >= 2.12 (thread affinity)
CONTROL = "pt115917-default-device-thread"


def _wrapper(tmp_path, name, *flags):
    """A second "interpreter": this python behind a shell script (an A/A matrix without a second venv)."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" {" ".join(flags)} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert holm([0.3, 0.2]) == pytest.approx([0.4, 0.4])
    assert holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])


def _table(rows):
    return pd.DataFrame(
        [{"case": c, "build": b, "failures": f, "trials": n} for c, b, f, n in rows],
    )


def test_first_failing_build_is_the_later_build_of_the_first_significant_worse_pair():
    builds = ["1:2.11", "2:2.12", "3:2.13"]
    t = _table(
        [("regress", "1:2.11", 0, 20), ("regress", "2:2.12", 20, 20), ("regress", "3:2.13", 20, 20)]
        + [("flat", b, 0, 20) for b in builds]
        + [("fixed", "1:2.11", 20, 20), ("fixed", "2:2.12", 0, 20), ("fixed", "3:2.13", 0, 20)]
    )
    df = transitions(t, builds)
    assert len(df) == 6  # 3 cases x 2 adjacent pairs, one family
    assert df["p_holm"].tolist() == pytest.approx(holm(df["p_value"].tolist()))
    first = dict(zip(df["case"], df["first_failing_build"]))
    assert first == {"regress": "2:2.12", "flat": "", "fixed": ""}
    assert df.loc[df["case"] == "regress", "p_value"].iloc[0] == failure_test(0, 20, 20, 20)


def test_correction_can_take_away_a_difference_one_test_alone_would_call():
    builds = ["a", "b"]
    rows = [("edge", "a", 0, 12), ("edge", "b", 5, 12)] + [(f"flat{k}", b, 0, 12) for k in range(9) for b in builds]
    df = transitions(_table(rows), builds)
    edge = df[df["case"] == "edge"].iloc[0]
    assert edge["p_value"] < 0.05 <= edge["p_holm"]
    assert edge["first_failing_build"] == ""


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--pythons", "/no/such/python"], "no such interpreter"),
        (["--pythons", sys.executable, "--cases", "no-such-case"], "unknown"),
        (["--pythons", sys.executable, "--cases", "pt90613-inverse-first-call-threads"], "not applicable"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_any_trial(tmp_path, capsys, argv, words):
    out = tmp_path / "m"
    assert main(["matrix", *argv, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not (out / "matrix.jsonl").exists()


def test_refusals_name_the_python_parameter():
    with pytest.raises(ConfigError, match=r"^pythons: name at least one interpreter"):
        check_pythons([])
    with pytest.raises(ConfigError, match=r"^pythons='/no/such/python': no such interpreter"):
        check_pythons([sys.executable, "/no/such/python"])


def test_interpreter_without_torch_is_refused(tmp_path, capsys):
    no_torch = _wrapper(tmp_path, "python-no-site", "-S", "-I")
    assert main(["matrix", "--pythons", sys.executable, no_torch, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch" in err[0]


def _trial_records(path):
    return path.read_text().count('"kind":"mpslab.trial"')


def test_a_a_matrix_on_two_interpreters_resumes_and_writes_table_and_figure(tmp_path, capsys):
    second = _wrapper(tmp_path, "python-b")
    out = tmp_path / "matrix"
    argv = ["matrix", "--pythons", sys.executable, second, "--cases", CASE, CONTROL, "--block", "1", "--out", str(out)]
    assert main([*argv, "--trials", "1", "--quiet"]) == 0
    assert _trial_records(out / "matrix.jsonl") == 4  # 2 cases x 2 builds x 1 trial
    capsys.readouterr()
    assert main([*argv, "--trials", "2", "--quiet"]) == 0  # resumes: one more trial per (case, build)
    assert _trial_records(out / "matrix.jsonl") == 8
    text = capsys.readouterr().out
    assert "Holm correction over 2 tests" in text and "first failing build" not in text
    table = pd.read_csv(out / "matrix_table.csv")
    assert len(table) == 4 and set(table["trials"]) == {2}
    assert set(table.loc[table["case"] == CONTROL, "failures"]) == {0}
    fails = table.loc[table["case"] == CASE, "failures"].tolist()
    assert fails[0] == fails[1]  # the same build twice: the deterministic case fails alike under both
    assert len(pd.read_csv(out / "matrix_tests.csv")) == 2
    assert (out / "matrix.png").stat().st_size > 0


def test_compare_takes_any_workload(tmp_path, capsys):
    second = _wrapper(tmp_path, "python-b")
    base = ["compare", "--a", sys.executable, "--b", second, "--same-build-ok", "--device", "cpu", "--quiet"]
    assert main([*base, "--plugin", "mpslab.studies.casebook"]) == 2  # --plugin without --workload
    assert "--workload" in capsys.readouterr().err
    assert main([*base, "--workload", "no-such-workload"]) == 2
    capsys.readouterr()
    code = main(
        [*base, "--workload", CONTROL, "--plugin", "mpslab.studies.casebook", "--trials", "2", "--block", "2"]
        + ["--threads", "2", "--iterations", "2", "--size", "8", "--store", os.fspath(tmp_path / "c.jsonl")]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert CONTROL in text and "a 0/2 failed" in text and "b 0/2 failed" in text
