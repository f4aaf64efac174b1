"""The papermill pipeline: the whole series in the quick profile, failures reported, bad input refused."""

import json
import os
import re
import shutil

import nbformat
import pytest

from mpslab.cli import main
from mpslab.report.pipeline import NOTEBOOKS_DIR, PipelineError, discover, plan_series, run_series


@pytest.fixture(scope="module")
def quick(quick_series):
    return quick_series


def test_quick_profile_runs_the_whole_series_on_cpu(quick):
    result, out, lines = quick
    failed = {r.name: r.error for r in result.runs if r.status != "ok"}
    assert not failed, failed
    assert lines[-1].startswith(f"{len(result.runs)}/{len(result.runs)} notebooks succeeded")
    names = [r.name for r in result.runs]
    assert names[:3] == ["01_coverage_walkthrough", "02_edge_cases", "03_ultimate_stress"]


def test_it_leaves_executed_notebooks_html_figures_data_and_an_index(quick):
    result, out, _ = quick
    for r in result.runs:
        nb = nbformat.read(out / "notebooks" / f"{r.name}.ipynb", as_version=4)
        assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert nb.metadata["papermill"]["parameters"]["device"] == "cpu"
        assert (out / "html" / f"{r.name}.html").stat().st_size > 10_000
    for fig in ("throughput_vs_threads", "latency_vs_threads", "outcome_matrix"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 0
        assert (out / "figures" / f"{fig}.svg").stat().st_size > 0
    for table in (
        "throughput_sweep.csv",
        "throughput_summary.csv",
        "ultimate_stress_trials.csv",
        "ultimate_stress_trials.jsonl",
    ):
        assert (out / "data" / table).stat().st_size > 0
    index = (out / "index.html").read_text()
    assert "throughput_vs_threads.png" in index and "html/03_ultimate_stress.html" in index
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["profile"] == "quick" and all(n["status"] == "ok" for n in manifest["notebooks"])


PARAMETERS = 'device: str = "cpu"  # d\ndata_dir: str = "."  # d\nfigures_dir: str = "."  # f'


def _copy_series(tmp_path, extra_source=None):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    shutil.copy(os.path.join(NOTEBOOKS_DIR, "03_ultimate_stress.ipynb"), nbdir)
    (nbdir / "profiles.yml").write_text(
        "quick:\n  _all: {}\n  03_ultimate_stress: {threads: 2, iterations: 2, size: 4, trials: 1, "
        "sweep_threads: [1], sweep_iterations: 2, repeats: 1}\n"
    )
    if extra_source is not None:
        _small_notebook(nbdir / "00_broken.ipynb", "00 broken", extra_source)
    return nbdir


def _small_notebook(path, title, source):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}"), params, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_a_failing_notebook_is_reported_and_the_batch_goes_on(tmp_path, capsys):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "profiles.yml").write_text("quick:\n  _all: {}\n")
    _small_notebook(nbdir / "00_broken.ipynb", "00 broken", "raise RuntimeError('injected failure')")
    _small_notebook(nbdir / "01_fine.ipynb", "01 fine", "print(device, 6 * 7)")
    out = tmp_path / "out"
    result = run_series("quick", "cpu", str(out), notebooks_dir=str(nbdir), log=lambda s: None)
    status = {r.name: r.status for r in result.runs}
    assert status == {"00_broken": "failed", "01_fine": "ok"}  # the one after the failure still ran
    assert result.summary_line() == "1/2 notebooks succeeded" and not result.ok
    assert "RuntimeError: injected failure" in result.runs[0].error
    saved = nbformat.read(out / "notebooks" / "00_broken.ipynb", as_version=4)
    assert any(
        "papermill-error-cell" in str(c.metadata) or "An Exception was encountered" in c.source for c in saved.cells
    )
    assert (out / "html" / "00_broken.html").exists()


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"profile": "nope"}, "profile='nope': unknown"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"only": ["99"]}, "only='99': no such notebook"),
        ({"params": {"threadz": 3}}, "parameter 'threadz': no selected notebook declares it"),
        ({"params": {"threads": "many"}}, "parameter threads='many' has type str, the notebook declares int"),
        ({"params": {"require_ok": 1}}, "parameter require_ok=1 has type int, the notebook declares bool"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(tmp_path, kwargs, fragment):
    args = {"profile": "quick", "device": "cpu", "out": str(tmp_path / "o")} | kwargs
    with pytest.raises(PipelineError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        plan_series(**args)
    assert not (tmp_path / "o").exists()


def test_profile_naming_an_unknown_parameter_is_refused(tmp_path):
    nbdir = _copy_series(tmp_path)
    (nbdir / "profiles.yml").write_text("quick:\n  03_ultimate_stress: {threadz: 2}\n")
    with pytest.raises(PipelineError, match="03_ultimate_stress: unknown parameter 'threadz'"):
        plan_series("quick", "cpu", str(tmp_path / "o"), notebooks_dir=str(nbdir))


def test_every_committed_profile_plans_cleanly(tmp_path):
    for profile in ("quick", "seed", "full"):
        plan = plan_series(profile, "cpu", str(tmp_path))
        assert [r.name for r in plan.runs][:3] == ["01_coverage_walkthrough", "02_edge_cases", "03_ultimate_stress"]
        assert all(r.parameters["progress"] is False for r in plan.runs)  # headless: no progress bars


def test_progress_is_passed_only_to_notebooks_that_declare_it(tmp_path):
    nbdir = _copy_series(tmp_path, extra_source="pass")
    runs = plan_series("quick", "cpu", str(tmp_path / "o"), notebooks_dir=str(nbdir)).runs
    plan = {r.name: r.parameters for r in runs}
    assert plan["03_ultimate_stress"]["progress"] is False
    assert "progress" not in plan["00_broken"]  # declares no progress parameter: nothing forced on it
    interactive = plan_series(
        "quick", "cpu", str(tmp_path / "o"), only=["03"], params={"progress": True}, notebooks_dir=str(nbdir)
    )
    assert interactive.runs[0].parameters["progress"] is True  # -p progress=true still wins


def test_cli_run_refuses_bad_param_in_one_line(capsys):
    assert main(["run", "--param", "threads"]) == 2
    assert capsys.readouterr().err.strip() == "mpslab: error: --param='threads': expected NAME=VALUE"
    assert main(["run", "--only", "03", "--param", "threads=[1"]) == 2


# --------------------------------------------------------------------------- clean review copies

_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_WARNING = re.compile(r"\b\w*Warning\b:")  # "TqdmWarning: ...", "UserWarning: ..." as Python prints them


def _noise(nb) -> list[str]:
    """Outputs a reader has no use for: stderr streams, printed warnings, errors, widget views."""
    found = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            where = f"cell {i} ({cell.source.splitlines()[0][:40] if cell.source else ''!r})"
            if o.output_type == "stream" and o.name == "stderr":
                found.append(f"{where}: stderr {o.text[:160]!r}")
                continue
            if o.output_type == "error":
                found.append(f"{where}: error {o.get('ename')}")
                continue
            data = o.get("data", {})
            if _WIDGET_MIME in data or str(data.get("text/plain", "")).startswith(("HBox(", "FloatProgress(")):
                found.append(f"{where}: a widget ({str(data.get('text/plain', ''))[:60]!r})")
            texts = [o.get("text", "")] + [v for v in data.values() if isinstance(v, str)]
            hit = next((m.group(0) for t in texts for m in [_WARNING.search(t)] if m), None)
            if hit:
                found.append(f"{where}: a warning in the output ({hit})")
    return found


def test_the_noise_check_sees_stderr_warnings_and_widgets():
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output
    cells = {
        "stderr": out("stream", name="stderr", text="USDT: profiler_start\n"),
        "warning": out("stream", name="stdout", text="x.py:3: TqdmWarning: IProgress not found\n"),
        "widget": out(
            "display_data",
            data={"text/plain": "HBox(children=(FloatProgress(value=0.0),))", _WIDGET_MIME: {"model_id": "abc"}},
        ),
        "clean": out("stream", name="stdout", text="0 of 4 trials failed\n"),
    }
    for name, o in cells.items():
        cell = nbformat.v4.new_code_cell(f"# {name}")
        cell.outputs = [o]
        nb.cells.append(cell)
    found = _noise(nb)
    assert [f.split("'# ")[1].split("'")[0] for f in found] == ["stderr", "warning", "widget"], found


@pytest.mark.parametrize("name", [os.path.splitext(os.path.basename(p))[0] for p in discover()])
def test_executed_notebooks_carry_no_stderr_warnings_or_widgets(quick, name):
    """What a reviewer opens (the executed copy and its HTML) shows no library noise."""
    _, out, _ = quick
    nb = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4)
    noise = _noise(nb)
    assert not noise, f"{name}: " + "; ".join(noise)
    assert nb.metadata["papermill"]["parameters"].get("progress") is False
