"""Copies fit for review: one image per figure cell, tables for readers, and an index that shows findings.

The series checks read the quick profile's executed copies (the session's ``quick_series``); the
others build small inputs of their own.
"""

import json
import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from bs4 import BeautifulSoup  # noqa: E402

from mpslab.report.index import is_sidecar, verdict_of, write_listing  # noqa: E402
from mpslab.report.pipeline import NOTEBOOKS_DIR, discover  # noqa: E402
from mpslab.report.plots import plot_compare, save_figure  # noqa: E402
from mpslab.report.reader import compare_reader_table, interval_text, scenario_reader_table, sig3  # noqa: E402
from mpslab.trials.stats import format_percent  # noqa: E402

IMAGE = re.compile(r"^image/")
NUMBER = re.compile(r"^-?[\d,]*\.?\d+$")


@pytest.fixture(scope="module")
def series(quick_series):
    result, out, _ = quick_series
    return result, out


def _images(cell) -> int:
    return sum(1 for o in cell.get("outputs", []) if any(IMAGE.match(k) for k in o.get("data", {})))


def _significant(token: str) -> int:
    digits = token.replace(",", "").replace("-", "").replace(".", "").lstrip("0")
    if "." not in token:
        digits = digits.rstrip("0") or "0"  # 1,790: the trailing zero is not significant
    return len(digits)


# --------------------------------------------------------------------------- the executed copies


def test_no_executed_cell_carries_two_images(series):
    result, out = series
    total = 0
    for r in result.runs:
        nb = nbformat.read(out / "notebooks" / f"{r.name}.ipynb", as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                n = _images(cell)
                total += n
                assert n <= 1, f"{r.name}, cell {i}: {n} images\n{cell.source}"
    # every figure the series saves is shown once (a figure shown nowhere would also pass the check above)
    saved = len(list((out / "figures").glob("*.png")))
    assert total >= saved > 0


def _reader_tables(out, name):
    """The HTML tables a notebook's reader-table cells (those calling a ``report.reader`` function) showed."""
    nb = nbformat.read(out / "notebooks" / f"{name}.ipynb", as_version=4)
    tables = []
    for cell in nb.cells:
        if cell.cell_type == "code" and re.search(r"\b(scenario|compare)_reader_table\(", cell.source):
            for o in cell.get("outputs", []):
                if "text/html" in o.get("data", {}):
                    tables.append(BeautifulSoup(o["data"]["text/html"], "html.parser").find("table"))
    return tables


def _cells(table):
    header = [th.get_text(" ", strip=True) for th in table.find("thead").find_all("th")]
    rows = [
        [td.get_text(" ", strip=True) for td in tr.find_all(["th", "td"])] for tr in table.find("tbody").find_all("tr")
    ]
    return header, rows


def test_scenario_table_of_notebook_04_is_for_readers(series):
    _, out = series
    tables = _reader_tables(out, "04_scenarios")
    assert len(tables) == 1
    header, rows = _cells(tables[0])
    assert "failure rate (%)" in header and "95% interval (exact, %)" in header
    assert "throughput (ops/s, median)" in header
    raw = pd.read_csv(out / "data" / "scenario_table.csv")
    assert len(rows) == len(raw)
    text = tables[0].get_text(" ")
    assert "<NA>" not in text and "NaN" not in text and "nan" not in text
    by_name = {row[0]: row for row in rows}
    cols = {h: i for i, h in enumerate(header)}
    for r in raw.itertuples():
        row = by_name[r.scenario]
        if r.status != "ran":  # one line with its reason, nothing else filled in
            assert row[cols["result"]] == r.status and r.status.startswith("not applicable")
            assert all(cell == "" for j, cell in enumerate(row[1:], 1) if j != cols["result"])
            continue
        shown = row[cols["95% interval (exact, %)"]]
        assert shown == f"{format_percent(r.rate_low, 'down')}–{format_percent(r.rate_high, 'up')}"
        assert row[cols["failure rate (%)"]] == format_percent(r.failure_rate)
        ops = row[cols["throughput (ops/s, median)"]]
        assert NUMBER.match(ops) and _significant(ops) <= 3
        assert math.isclose(float(ops.replace(",", "")), r.ops_per_s, rel_tol=0.005)


def test_compare_table_of_notebook_06_is_for_readers(series):
    result, out = series
    if "06_compare_builds" not in {r.name for r in result.runs}:
        pytest.skip("the quick profile has no notebook 06")
    tables = _reader_tables(out, "06_compare_builds")
    assert len(tables) == 1
    header, rows = _cells(tables[0])
    assert any("(exact, %)" in h for h in header) and any("ops/s" in h for h in header)
    raw = pd.read_csv(out / "data" / "compare_table.csv")
    cols = {h: i for i, h in enumerate(header)}
    for r, row in zip(raw.itertuples(), rows):
        assert row[cols["a: 95% interval (exact, %)"]] == interval_text(r.a_low, r.a_high)
        assert row[cols["b: 95% interval (exact, %)"]] == interval_text(r.b_low, r.b_high)
        for token in re.findall(r"[\d,]*\.?\d+", row[cols["throughput b / a (median ops/s per round, ×)"]]):
            assert _significant(token) <= 3, row


def test_index_shows_each_notebooks_verdict_and_groups_its_figures(series):
    result, out = series
    manifest = json.loads((out / "manifest.json").read_text())
    index = BeautifulSoup((out / "index.html").read_text(), "html.parser")
    tagged = {
        r.name
        for r in result.runs
        if any("verdict" in c.metadata.get("tags", []) for c in nbformat.read(r.source, as_version=4).cells)
    }
    assert {
        "01_coverage_walkthrough",
        "02_edge_cases",
        "03_ultimate_stress",
        "04_scenarios",
        "05_what_to_run",
    } <= tagged
    for e in manifest["notebooks"]:
        section = index.find("section", id=e["name"])
        assert section is not None, e["name"]
        if e["name"] in tagged:
            assert e["verdict"] and e["verdict"] in section.get_text(" "), e
        for f in e["files"]:
            assert not is_sidecar(f.rsplit("/", 1)[-1])
            if f.endswith(".png"):
                img = section.find("img", src=f)
                assert img is not None and img.find_parent("figure").find("figcaption").get_text(strip=True)
    edges = next(e for e in manifest["notebooks"] if e["name"] == "02_edge_cases")
    assert re.match(r"^\d+ of \d+ edge cases failed", edges["verdict"]), edges["verdict"]
    assert "figures/edge_matrix.png" in edges["files"]
    assert not any(a["href"].endswith(".lock") for a in index.find_all("a"))


# --------------------------------------------------------------------------- the pieces, on small inputs


def test_sig3_three_significant_digits():
    assert [sig3(x) for x in (1793.477481, 0.631597, 999.6, 0.0012345, 12.34, 142857.1, -3.456, 0)] == [
        "1,790",
        "0.632",
        "1,000",
        "0.00123",
        "12.3",
        "143,000",
        "-3.46",
        "0",
    ]
    assert sig3(float("nan")) == sig3(None) == sig3(pd.NA) == "–"


def test_scenario_reader_table_keeps_a_not_applicable_row_as_its_reason():
    from mpslab.studies.scenarios.run import library_table

    # 1 mismatch in 20 trials of one scenario; another not applicable here (the library's own table)
    outcomes = ["ok"] * 19 + ["mismatch"]
    rows = pd.DataFrame({"scenario": "nonzero", "outcome": outcomes, "ops_per_s": [1793.477] * 20})
    raw = library_table(rows, {"cast-sync": "needs mps"}, order=["nonzero", "cast-sync"])
    t = scenario_reader_table(raw)
    assert t.loc["nonzero", "result"] == "failed: mismatch 1"
    low, high = raw.loc[0, "rate_low"], raw.loc[0, "rate_high"]
    assert t.loc["nonzero", "95% interval (exact, %)"] == f"{format_percent(low, 'down')}–{format_percent(high, 'up')}"
    assert t.loc["nonzero", "failure rate (%)"] == "5.0%"
    assert t.loc["nonzero", "throughput (ops/s, median)"] == "1,790"
    assert t.loc["cast-sync", "result"] == "not applicable: needs mps"
    assert (t.loc["cast-sync"].drop("result") == "").all()
    assert "<NA>" not in t.to_html() and "nan" not in t.to_html()


def test_compare_reader_table_says_which_side_and_rounds():
    raw = pd.DataFrame(
        [dict(scenario="s", a_failures=0, a_trials=10, a_low=0.0, a_high=0.2589, b_failures=2, b_trials=10,
              b_low=0.0252, b_high=0.5561, p_value=0.23456, verdict="not significant", speed_ratio=0.91234,
              speed_low=0.8666, speed_high=1.0444)]
    )  # fmt: skip
    row = compare_reader_table(raw).loc["s"]
    assert row["a: failed / trials"] == "0 / 10" and row["b: 95% interval (exact, %)"] == "2.5%–56%"
    assert row["p (Barnard, two-sided)"] == "0.235"
    assert row["throughput b / a (median ops/s per round, ×)"] == "0.912× (95% 0.867–1.04)"
    # an interval computed at 1 - 0.05/13 is named at that level, rounded down; none at all: the table's words
    raw["speed_confidence"], raw["p_holm"] = 1 - 0.05 / 13, 1.0
    assert compare_reader_table(raw).loc["s"]["throughput b / a (median ops/s per round, ×)"] == (
        "0.912× (99.6% 0.867–1.04)"
    )
    raw["speed_ratio"], raw["throughput"] = float("nan"), "n/a: too few rounds (4; 9 needed)"
    assert compare_reader_table(raw).loc["s"]["throughput b / a (median ops/s per round, ×)"].startswith("n/a: too few")


def test_compare_figure_legend_names_each_side_and_ratio_axis_reads_times():
    table = pd.DataFrame(
        [dict(scenario=f"s{i}", a_rate=0.0, a_low=0.0, a_high=0.3, b_rate=0.1, b_low=0.0, b_high=0.4,
              significant=False, speed_ratio=r, speed_low=r - 0.04, speed_high=r + 0.05)
         for i, r in enumerate((0.92, 1.0, 1.06))]
    )  # fmt: skip
    fig = plot_compare(table, label_a="torch 2.13", label_b="torch 2.13")
    fig.canvas.draw()
    left, right = fig.axes
    labels = [t.get_text() for t in left.get_legend().get_texts()]
    assert labels == ["a: torch 2.13", "b: torch 2.13"]
    ticks = [t.get_text() for t in right.get_xticklabels(minor=True) + right.get_xticklabels() if t.get_text()]
    assert ticks and all(re.fullmatch(r"\d+(\.\d+)?x", t) for t in ticks), ticks
    assert "0.9x" in ticks and "1x" in ticks
    plt.close(fig)


def test_save_figure_closes_the_figure_and_stores_its_title(tmp_path):
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.suptitle("Throughput\nagainst threads")
    paths = save_figure(fig, "f", str(tmp_path))
    assert fig.number not in plt.get_fignums()
    with Image.open(paths[0]) as im:
        assert im.text["Title"] == "Throughput — against threads"


def test_index_lists_no_lock_files_and_groups_by_notebook(tmp_path):
    for sub in ("notebooks", "figures", "data"):
        (tmp_path / sub).mkdir()
    fig, ax = plt.subplots()
    fig.suptitle("A figure")
    save_figure(fig, "fig_a", str(tmp_path / "figures"))
    (tmp_path / "data" / "t.jsonl").write_text("{}\n")
    (tmp_path / "data" / "t.jsonl.lock").write_text("")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('1 of 2 cases failed: x')", metadata={"tags": ["verdict"]})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1 of 2 cases failed: x\n")]
    nb.cells = [cell]
    nbformat.write(nb, tmp_path / "notebooks" / "01_a.ipynb")
    assert verdict_of(str(tmp_path / "notebooks" / "01_a.ipynb")) == "1 of 2 cases failed: x"
    entry = dict(name="01_a", status="ok", output="notebooks/01_a.ipynb", profile="quick", device="cpu")
    entry.update(verdict="1 of 2 cases failed: x", files=["figures/fig_a.png", "figures/fig_a.svg", "data/t.jsonl"])
    write_listing(str(tmp_path), [entry], {})
    page = BeautifulSoup((tmp_path / "index.html").read_text(), "html.parser")
    section = page.find("section", id="01_a")
    assert "1 of 2 cases failed: x" in section.get_text()
    assert (
        section.find("img", src="figures/fig_a.png")
        .find_parent("figure")
        .find("figcaption")
        .get_text()
        .startswith("A figure")
    )
    hrefs = [a["href"] for a in page.find_all("a")]
    assert "data/t.jsonl" in hrefs and not any(h.endswith(".lock") for h in hrefs)


def test_series_notebooks_tag_one_verdict_cell_each():
    tagged = {}
    for path in discover(NOTEBOOKS_DIR):
        nb = nbformat.read(path, as_version=4)
        tagged[path.rsplit("/", 1)[-1]] = sum("verdict" in c.metadata.get("tags", []) for c in nb.cells)
    assert all(n <= 1 for n in tagged.values()), tagged
    mine = ("01_coverage_walkthrough", "02_edge_cases", "03_ultimate_stress", "04_scenarios", "06_compare_builds")
    assert all(tagged[f"{n}.ipynb"] == 1 for n in mine), tagged
