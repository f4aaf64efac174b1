"""The command line's output and exit codes (0 ok, 1 failures found, 2 bad input)."""

import json
import os
import subprocess
import sys

import pytest

from mpslab.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stress_ok_exits_0_and_prints_seed_block(capsys):
    assert main(["stress", "--threads", "4", "--iterations", "10", "--size", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "Total operations: 40 tensor ops" in out and "Total errors: 0" in out


def test_stress_mismatch_exits_1_and_json_parses(capsys):
    code = main(
        [
            "stress",
            "--threads",
            "8",
            "--iterations",
            "30",
            "--sync-every",
            "0",
            "--size",
            "32",
            "--workload",
            "racy",
            "--device",
            "cpu",
            "--json",
        ]
    )
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"] == "mismatch" and data["mismatch_count"] > 0
    assert data["config"]["workload"] == "racy"


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["stress", "--threads", "0"], "threads=0: must be an integer >= 1"),
        (["stress", "--threads", "x"], "invalid int value: 'x'"),
        (["stress", "--device", "tpu"], "device='tpu'"),
        (["stress", "--workload", "nope"], "workload='nope': unknown"),
        (["stress", "--bogus"], "unrecognized arguments: --bogus"),
        (["nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_workloads_lists_each_with_a_line(capsys):
    assert main(["workloads"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("seed ") and "matmul" in line for line in lines)
    assert any("racy" in line and "[self-test]" in line for line in lines)


def test_python_dash_m_entry_point_runs():
    proc = subprocess.run(
        [sys.executable, "-m", "mpslab", "stress", "--threads", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mpslab: error: --threads=0: must be an integer >= 1"  # worded as the flag typed
