"""Source notebooks follow the series' conventions and are committed without outputs."""

import ast
import glob
import os

import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.ipynb")))


def test_the_series_exists():
    names = [os.path.basename(p) for p in NOTEBOOKS]
    assert names[:3] == ["01_coverage_walkthrough.ipynb", "02_edge_cases.ipynb", "03_ultimate_stress.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path}: strip outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_title_then_one_typed_and_documented_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    tree = ast.parse(tagged[0].source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign), f"untyped parameter line {ast.unparse(node)!r}"
        names.append(node.target.id)
    for line in tagged[0].source.splitlines():
        assert "  # " in line, f"parameter without a help comment: {line!r}"
    assert {"device", "data_dir", "figures_dir", "progress"} <= set(names)  # the pipeline always passes these
    progress = next(n for n in tree.body if n.target.id == "progress")
    assert ast.unparse(progress.annotation) == "bool", "progress: bool (the pipeline passes False)"
    # papermill must parse every line, or the pipeline would refuse the parameter as unknown
    import papermill

    assert list(papermill.inspect_notebook(path)) == names
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_reports_its_environment(path):
    nb = nbformat.read(path, as_version=4)
    assert any("environment(" in c.source for c in nb.cells if c.cell_type == "code")


# --------------------------------------------------------------------------- jupytext pairs


def _cells(nb):
    return [(c.cell_type, c.source.strip(), sorted(c.metadata.get("tags", []))) for c in nb.cells]


def test_jupytext_pairs_every_notebook_with_a_percent_script():
    import tomllib

    with open(os.path.join(ROOT, "notebooks", "jupytext.toml"), "rb") as f:
        config = tomllib.load(f)
    assert config["formats"] == "ipynb,py:percent"
    ipynb = {os.path.splitext(os.path.basename(p))[0] for p in NOTEBOOKS}
    scripts = {
        os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(ROOT, "notebooks", "[0-9][0-9]_*.py"))
    }
    assert ipynb == scripts, f"unpaired: {sorted(ipynb ^ scripts)}; run jupytext --sync notebooks/NN_topic.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_jupytext_pair_is_in_sync(path):
    import jupytext

    script = os.path.splitext(path)[0] + ".py"
    if not os.path.exists(script):
        pytest.fail(f"{script} missing: run jupytext --sync {os.path.relpath(path, ROOT)}")
    with open(script, encoding="utf-8") as f:
        paired = jupytext.reads(f.read(), fmt="py:percent")
    nb = nbformat.read(path, as_version=4)
    assert _cells(paired) == _cells(nb), f"{os.path.basename(script)} and its .ipynb differ: jupytext --sync {path}"
