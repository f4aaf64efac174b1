"""The scenario library on the CPU at small sizes: oracle-clean in process, isolated trials, refusals, params."""

from __future__ import annotations

import json

import pytest

from mpslab import ConfigError, StressConfig, run_stress
from mpslab.cli import main
from mpslab.run.workloads import get_workload
from mpslab.studies.scenarios import SCENARIOS, run_library, scenario_config, scenario_listing, scenario_names
from mpslab.studies.scenarios.lifecycle import empty_cache_while
from mpslab.trials.records import load_records

CPU_NOT_APPLICABLE = {"empty-cache-under-load", "exit-after-work"}
CPU_RUNNABLE = [n for n in scenario_names() if n not in CPU_NOT_APPLICABLE]


def test_every_scenario_is_a_registered_workload_with_a_citation():
    for s in SCENARIOS:
        wl = get_workload(s.name)
        assert s.source and wl.step.__doc__ and wl.step.__doc__.strip().splitlines()[0]


@pytest.mark.parametrize("name", CPU_RUNNABLE)
def test_scenario_in_process_with_oracle_has_no_false_mismatch(name):
    for dtype in ("float32", "float16", "bfloat16", "float64"):
        try:
            config = scenario_config(name, "cpu", dtype=dtype, threads=3, iterations=3)
        except ConfigError as exc:
            assert "not applicable" in str(exc) and "\n" not in str(exc)
            continue
        result = run_stress(config)
        assert result.outcome == "ok", (dtype, result.summary())
        assert result.verified == 9 and result.mismatch_count == 0


@pytest.mark.parametrize("name", sorted(CPU_NOT_APPLICABLE))
def test_not_applicable_on_cpu_is_refused_in_one_line(name):
    with pytest.raises(ConfigError, match="not applicable on cpu") as info:
        StressConfig(workload=name, device="cpu")
    assert "\n" not in str(info.value)


def test_fixed_dtype_scenarios_refuse_other_dtypes():
    with pytest.raises(ConfigError, match=r"workload='cast-sync': not applicable on cpu with float16"):
        StressConfig(workload="cast-sync", device="cpu", dtype="float16")


def test_handoff_is_accepted_every_time():
    for seed in range(20):
        r = run_stress(scenario_config("handoff", "cpu", threads=4, iterations=3, seed=seed))
        assert r.outcome == "ok" and r.verified == 12, r.summary()


def test_library_as_isolated_trials(tmp_path):
    store = tmp_path / "s.jsonl"
    rows, table = run_library(
        None, "cpu", trials=2, threads=2, iterations=2, timeout_s=120.0, store=str(store), progress=False
    )
    assert list(table["scenario"]) == scenario_names()
    ran = table[table["status"] == "ran"]
    assert set(ran["scenario"]) == set(CPU_RUNNABLE)
    assert (ran["ok"] == 2).all() and (ran["failures"] == 0).all()
    na = table[table["status"] != "ran"]
    assert set(na["scenario"]) == CPU_NOT_APPLICABLE and na["status"].str.startswith("not applicable").all()
    assert (ran["rate_high"] > 0).all()  # zero failures in 2 trials still leaves a wide interval
    # params reach the child and are stored in every record
    back = load_records(str(store))
    mlp = back[back["workload"] == "mlp-origin"]
    assert len(mlp) == 2 and (mlp["params"] == "batch=8").all()
    lines = [json.loads(x) for x in store.read_text().splitlines()]
    lines = [x for x in lines if x.get("kind") == "mpslab.trial"]  # the store also holds claim lines
    assert lines and all(isinstance(x["config"]["params"], dict) for x in lines)
    assert any(x["config"]["params"] == {"batch": 8} for x in lines)
    # the same request again with one more trial each: only the missing trials run, the rest are read back
    again, table2 = run_library(
        None, "cpu", trials=3, threads=2, iterations=2, timeout_s=120.0, store=str(store), progress=False
    )
    ran2 = table2[table2["status"] == "ran"]
    assert (ran2["trials"] == 3).all()
    trial_lines = [x for x in map(json.loads, store.read_text().splitlines()) if x.get("kind") == "mpslab.trial"]
    assert len(trial_lines) == 3 * len(CPU_RUNNABLE)  # 2 stored + 1 new per scenario, none run twice


def test_library_bad_input_before_any_work():
    with pytest.raises(ConfigError, match=r"scenario='nope': unknown"):
        run_library(["nope"], "cpu", trials=1)
    with pytest.raises(ConfigError, match="not applicable on cpu"):
        run_library(["exit-after-work"], "cpu", trials=1)


# --------------------------------------------------------------------------- params


def test_params_defaults_filled_and_round_trip():
    c = StressConfig(workload="transformer", device="cpu", params={"seq": 4})
    assert dict(c.params) == {"batch": 2, "d_model": 64, "heads": 4, "seq": 4}
    assert hash(c) == hash(StressConfig.from_dict(json.loads(json.dumps(c.to_dict()))))
    assert StressConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert StressConfig(workload="seed", device="cpu").params == {}


@pytest.mark.parametrize(
    "params, match",
    [
        ({"bogus": 1}, r"param bogus=1: unknown for workload 'mlp-origin'; it takes: batch"),
        ({"batch": "x"}, r"param batch='x' \(workload 'mlp-origin'\): must be an integer"),
        ({"batch": 0}, r"param batch=0 \(workload 'mlp-origin'\): must be >= 1"),
        ({"batch": True}, r"must be an integer"),
    ],
)
def test_bad_params_refused_in_one_line(params, match):
    with pytest.raises(ConfigError, match=match) as info:
        StressConfig(workload="mlp-origin", device="cpu", params=params)
    assert "\n" not in str(info.value)


def test_params_that_do_not_fit_together_are_refused():
    with pytest.raises(ConfigError, match="heads=5 must divide d_model=64"):
        StressConfig(workload="transformer", device="cpu", params={"heads": 5})


def test_params_visible_to_steps():
    r = run_stress(StressConfig(workload="mlp-origin", device="cpu", threads=1, iterations=1, params={"batch": 3}))
    assert r.outcome == "ok" and r.to_row()["params"] == "batch=3"


# --------------------------------------------------------------------------- the empty-cache helper


def test_empty_cache_while_counts_releases_and_reports_problems():
    class Fake:
        calls = 0

        def empty_cache(self):
            Fake.calls += 1
            return True

    def work(i):
        for _ in range(200):
            pass
        if i == 1:
            raise RuntimeError("boom")

    rep = empty_cache_while(Fake(), work, threads=3, timeout_s=30.0)
    assert not rep.still_running and rep.releases == Fake.calls
    assert rep.problems == ["thread 1: RuntimeError: boom"]


# --------------------------------------------------------------------------- CLI


def test_cli_scenarios_listing(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    for s in SCENARIOS:
        assert f"{s.name}: " in out
    assert "cold process" in out and "pytorch/pytorch#167541" in out
    assert main(["scenarios", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [x["name"] for x in listing] == scenario_names()
    by = {x["name"]: x for x in listing}
    assert by["exit-after-work"]["backends"] == "cuda,mps" and by["unary-burst"]["cold"] is True
    assert len(scenario_listing()) == len(SCENARIOS)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["stress", "--device", "cpu", "--workload", "nope"], "workload='nope': unknown"),
        (["stress", "--device", "cpu", "--workload", "exit-after-work"], "not applicable on cpu"),
        (["stress", "--device", "cpu", "--workload", "mlp-origin", "--param", "bogus=1"], "param bogus=1: unknown"),
        (["trials", "--device", "cpu", "--workload", "mlp-origin", "--param", "batch"], "expected NAME=VALUE"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err


def test_cli_param_reaches_the_step(capsys):
    argv = [
        "stress",
        "--device",
        "cpu",
        "--workload",
        "mlp-origin",
        "--param",
        "batch=2",
        "--threads",
        "2",
        "--iterations",
        "2",
        "--json",
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["params"] == {"batch": 2} and out["outcome"] == "ok"
