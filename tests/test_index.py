"""A report folder's manifest and index over several runs, and merging folders written apart."""

import json

import nbformat
import pytest

from mpslab.cli import main
from mpslab.report.index import ReportError, load_manifest, merge_reports, write_listing

ENV = {"torch": "2.13.0+cpu", "device": "cpu", "device_name": "x86_64", "host": "here"}


def _executed(out, name, *, duration=1.5, exception=False, device="cpu", html=True):
    """An executed copy as papermill leaves it (its metadata), plus its HTML copy."""
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "parameters": {"device": device, "threads": 2},
        "duration": duration,
        "exception": exception,
        "end_time": "2026-11-24T22:00:00+00:00",
    }
    nbformat.write(nb, out / "notebooks" / f"{name}.ipynb")
    if html:
        (out / "html").mkdir(exist_ok=True)
        (out / "html" / f"{name}.html").write_text("<html></html>")


def _entry(name, profile="quick", device="cpu", status="ok"):
    return {
        "name": name,
        "status": status,
        "seconds": 2.0,
        "error": None,
        "parameters": {"device": device},
        "output": f"notebooks/{name}.ipynb",
        "html": f"html/{name}.html",
        "profile": profile,
        "device": device,
    }


def test_a_later_run_adds_to_the_listing_and_replaces_only_its_own_notebooks(tmp_path):
    _executed(tmp_path, "01_a")
    _executed(tmp_path, "02_b")
    write_listing(str(tmp_path), [_entry("01_a"), _entry("02_b", status="failed")], ENV)
    m = write_listing(str(tmp_path), [_entry("02_b")], ENV)  # --only 02 again, now ok
    assert [(e["name"], e["status"]) for e in m["notebooks"]] == [("01_a", "ok"), ("02_b", "ok")]
    assert m["summary"] == "2/2 notebooks succeeded" and m["profile"] == "quick"
    assert "device" not in m["environment"] and m["environment"]["torch"] == "2.13.0+cpu"
    index = (tmp_path / "index.html").read_text()
    assert "01_a" in index and "02_b" in index and "2/2 notebooks succeeded" in index
    assert json.loads((tmp_path / "manifest.json").read_text()) == m


def test_an_entry_whose_executed_copy_is_gone_is_dropped(tmp_path):
    _executed(tmp_path, "01_a")
    _executed(tmp_path, "02_b")
    write_listing(str(tmp_path), [_entry("01_a"), _entry("02_b")], ENV)
    (tmp_path / "notebooks" / "01_a.ipynb").unlink()
    m = write_listing(str(tmp_path), [_entry("02_b")], ENV)
    assert [e["name"] for e in m["notebooks"]] == ["02_b"]


def test_an_executed_copy_without_an_entry_is_adopted_from_its_papermill_metadata(tmp_path):
    _executed(tmp_path, "01_a", duration=38.3164, device="cuda", html=False)
    _executed(tmp_path, "03_c", exception=True)
    m = write_listing(str(tmp_path), [], ENV)
    by = {e["name"]: e for e in m["notebooks"]}
    assert by["01_a"]["status"] == "ok" and by["01_a"]["seconds"] == 38.32 and by["01_a"]["device"] == "cuda"
    assert by["01_a"]["html"] is None and by["01_a"]["profile"] is None and "adopted" in by["01_a"]
    assert by["03_c"]["status"] == "failed" and by["03_c"]["html"] == "html/03_c.html"
    assert m["device"] == "mixed" and m["summary"] == "1/2 notebooks succeeded"


def test_an_unreadable_manifest_is_kept_aside_not_lost(tmp_path):
    (tmp_path / "manifest.json").write_text("{ torn")
    assert load_manifest(str(tmp_path)) == {}
    assert (tmp_path / "manifest.json.unreadable").read_text() == "{ torn"
    _executed(tmp_path, "01_a")
    write_listing(str(tmp_path), [_entry("01_a")], ENV)
    assert (tmp_path / "manifest.json.unreadable").read_text() == "{ torn"


def test_merge_reports_lists_every_part_and_a_later_part_wins(tmp_path):
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    _executed(a, "01_a")
    _executed(a, "02_b")
    write_listing(str(a), [_entry("01_a", "full", "cuda"), _entry("02_b", "full", "cuda", status="failed")], ENV)
    (a / "data").mkdir()
    (a / "data" / "x.csv").write_text("from a")
    _executed(b, "02_b")
    _executed(b, "04_d")
    write_listing(str(b), [_entry("02_b", "full", "cuda"), _entry("04_d", "full", "cuda")], ENV)
    (b / "data").mkdir()
    (b / "data" / "x.csv").write_text("from b")
    m = merge_reports(str(out), [str(a), str(b)])
    assert [(e["name"], e["status"]) for e in m["notebooks"]] == [("01_a", "ok"), ("02_b", "ok"), ("04_d", "ok")]
    assert m["profile"] == "full" and m["device"] == "cuda"
    assert (out / "data" / "x.csv").read_text() == "from b"
    assert (out / "html" / "04_d.html").exists() and "04_d" in (out / "index.html").read_text()


def test_merge_refuses_a_folder_that_is_not_a_report_before_copying_anything(tmp_path):
    good = tmp_path / "good"
    _executed(good, "01_a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="not a report folder"):
        merge_reports(str(tmp_path / "out"), [str(good), str(tmp_path / "empty")])
    assert not (tmp_path / "out").exists()


def test_merge_command_exit_codes(tmp_path, capsys):
    good = tmp_path / "good"
    _executed(good, "01_a")
    write_listing(str(good), [_entry("01_a")], ENV)
    assert main(["merge", str(tmp_path / "out"), str(good)]) == 0
    assert "1/1 notebooks succeeded" in capsys.readouterr().out
    assert main(["merge", str(tmp_path / "out2"), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a report folder" in err and "\n" not in err
