"""compare: refusals before any trial, an A/A run (no significant difference), a planted one-sided fault."""

from __future__ import annotations

import os
import stat
import sys

import pytest

from mpslab.cli import main
from mpslab.run.config import ConfigError, StressConfig
from mpslab.studies.compare import compare_builds, failure_test, throughput_ratio

PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "planted.py")


def _wrapper(tmp_path, name, *flags):
    """An "interpreter" that is this python started with extra flags (a second interpreter for the tests)."""
    path = tmp_path / name
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" {" ".join(flags)} "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_missing_interpreter_is_one_line_exit_2(capsys):
    assert main(["compare", "--a", "/no/such/python", "--b", sys.executable]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such interpreter" in err[0]


def test_interpreter_without_torch_is_one_line_exit_2(tmp_path, capsys):
    no_torch = _wrapper(tmp_path, "python-no-site", "-S", "-I")  # no site-packages: torch cannot be imported
    assert main(["compare", "--a", sys.executable, "--b", no_torch]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch" in err[0]


def test_refusals_name_the_python_parameter_and_the_cli_its_flag(capsys):
    with pytest.raises(ConfigError, match=r"^python_b='/no/such/python': no such interpreter") as info:
        compare_builds(sys.executable, "/no/such/python")
    assert info.value.param == "python_b"
    assert main(["compare", "--a", sys.executable, "--b", "/no/such/python"]) == 2
    assert capsys.readouterr().err.startswith("mpslab: error: --b='/no/such/python': no such interpreter")
    with pytest.raises(ConfigError, match=r"^same_build_ok: both interpreters report the same torch build"):
        compare_builds(sys.executable, sys.executable, "nonzero")


def test_device_auto_meaning_different_devices_is_refused_naming_device(monkeypatch, capsys):
    import mpslab.studies.compare as compare_module

    def probe(python, label="a", param="python"):
        return compare_module.Interpreter(
            label, python, {"torch": label, "auto_device": {"a": "cpu", "b": "mps"}[label]}
        )

    monkeypatch.setattr(compare_module, "probe_interpreter", probe)
    with pytest.raises(ConfigError, match=r"^device='auto': means cpu under a but mps under b"):
        compare_module.check_interpreters("pa", "pb")
    assert main(["compare", "--a", "pa", "--b", "pb"]) == 2
    assert capsys.readouterr().err.startswith("mpslab: error: --device='auto': means cpu under a but mps under b")


def test_same_build_is_refused_without_same_build_ok(capsys):
    assert main(["compare", "--a", sys.executable, "--b", sys.executable, "--scenarios", "nonzero"]) == 2
    assert "--same-build-ok" in capsys.readouterr().err


def test_a_a_run_reports_no_significant_difference(tmp_path, capsys):
    store = tmp_path / "aa.jsonl"
    code = main(
        [
            "compare",
            "--a",
            sys.executable,
            "--b",
            sys.executable,
            "--same-build-ok",
            "--device",
            "cpu",
            "--scenarios",
            "nonzero",
            "--trials",
            "4",
            "--block",
            "2",
            "--threads",
            "2",
            "--iterations",
            "2",
            "--store",
            str(store),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "torch" in out and out.count(sys.executable) >= 2  # both environment blocks
    assert "failures: no significant difference" in out
    assert "a 0/4 failed" in out and "b 0/4 failed" in out
    assert store.exists() and len(store.read_text().splitlines()) >= 8


def test_planted_fault_under_b_only_is_found(tmp_path):
    python_b = _wrapper(tmp_path, "python-b", "-X", "mpslab_planted")
    cfg = StressConfig(workload="planted-under-b", threads=2, iterations=2, size=8, device="cpu", plugins=(PLUGIN,))
    result = compare_builds(
        sys.executable,
        python_b,
        configs={"planted": cfg},
        trials=5,
        block=5,
        same_build_ok=True,
        store=str(tmp_path / "s.jsonl"),
    )
    row = result.table.iloc[0]
    assert (row["a_failures"], row["b_failures"], row["b_trials"]) == (0, 5, 5)
    assert row["significant"] and row["verdict"].startswith("b fails more: 5/5 vs 0/5")
    assert set(result.rows.loc[result.rows["side"] == "b", "signal"]) == {"SIGABRT"}


def test_failure_test_and_throughput_words():
    assert failure_test(0, 20, 0, 20) == 1.0
    assert failure_test(0, 200, 37, 200) < 0.001
    assert failure_test(3, 200, 5, 200) > 0.05
    rounds = [i // 2 for i in range(20)]  # blocks of 2: 10 rounds
    _, lo, hi, words = throughput_ratio([100.0, 101, 99, 100, 102] * 4, [200.0, 202, 198, 201, 199] * 4, rounds, rounds)
    assert words.startswith("b is 1.99x faster") and lo <= 2.0 <= hi
    assert throughput_ratio([1.0], [2.0], [0], [0])[3].startswith("n/a")


def test_bad_trials_refused_before_any_trial():
    with pytest.raises(ConfigError):
        compare_builds(sys.executable, sys.executable, trials=0, same_build_ok=True)
