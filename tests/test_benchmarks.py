"""The benchmark scripts run at their tiny size and print their headline (no speed is asserted).

Each script is run as a child process, as a reader would run it; only that it exits 0
and prints its verdict line is checked, never a figure (figures depend on the machine).
"""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_runner_overhead_tiny():
    out = run("runner_overhead.py", "--tiny")
    assert "decision (oracle off)" in out
    rows = [line for line in out.splitlines() if line.split()[:2] in (["1", "off"], ["2", "off"], ["2", "on"])]
    assert len(rows) == 3, out
    assert any(v in rows[0] for v in ("KEPT", "MISSED", "not resolved")), out


def test_runner_overhead_bad_input_one_line():
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "runner_overhead.py"), "--ops", "7", "--threads", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--ops=7" in proc.stderr


def test_timer_agreement_tiny():
    out = run("timer_agreement.py", "--tiny")
    assert "same block size agrees within 5%" in out
    assert "seed step, size 16" in out and "matmul 32" in out


def test_soak_tiny(tmp_path):
    fig, csv = tmp_path / "soak.png", tmp_path / "soak.csv"
    out = run("soak.py", "--tiny", "--figure", str(fig), "--csv", str(csv))
    assert "growth after warm-up within 5%" in out
    assert "0 harness errors" in out
    assert fig.stat().st_size > 0
    assert csv.read_text().startswith("t,rss_mb,runs")


def test_load_tiny():
    out = run("load.py", "--tiny")
    assert "harness errors: 0" in out
    assert "peak RSS" in out and "wall time" in out


def test_trial_rate_small():
    out = run("trial_rate.py", "--repeats", "1", "--trials", "2", "--spawn-trials", "1", "--spawn-repeats", "1")
    assert "trials/s" in out


@pytest.mark.skipif(importlib.util.find_spec("papermill") is None, reason="not applicable: papermill not installed")
def test_pipeline_time_tiny():
    out = run("pipeline_time.py", "--tiny", timeout=600)
    assert "pipeline time (quick, 01): median" in out
