"""What a report folder lists: its ``manifest.json`` and ``index.html``, kept over several runs.

A report folder (``python -m mpslab run --out FOLDER``) often fills in parts: ``--only 03`` today,
``--only 04`` on another machine tomorrow. Writing the manifest therefore *adds to* the one already
there: entries of the notebooks this run executed replace their old entries, the others are kept
(while their executed copy is still in ``notebooks/``), and an executed copy without any entry is
adopted from the parameters and duration papermill recorded in it. ``merge_reports(out, parts)``
does the same for folders written separately (one per remote call, say). Each entry carries its own
profile, device and time, so a folder that mixes them says so.

This module writes the listing; it does not execute notebooks (``pipeline``) nor draw (``plots``).
"""

from __future__ import annotations

import datetime as _dt
import glob
import html
import json
import os
import shutil
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["write_listing", "merge_reports", "load_manifest", "ReportError", "verdict_of", "is_sidecar"]

SUBFOLDERS = ("notebooks", "html", "data", "figures", "logs")
VERDICT_TAG = "verdict"  # a notebook's cell with this tag prints its one-line finding
FIGURE_WIDTH_PX = 880


def is_sidecar(name: str) -> bool:
    """A file that only serves another one (a store's claims or lock, a half-written temporary): not listed."""
    return name.endswith((".lock", ".claims", ".claims-wal", ".claims-shm", ".claims-journal")) or (
        ".tmp" in name or name.startswith(".")
    )


def verdict_of(ipynb: str) -> str | None:
    """The finding an executed notebook states in its cell tagged ``verdict`` (its last line of text)."""
    import nbformat

    try:
        nb = nbformat.read(ipynb, as_version=4)
    except Exception:
        return None
    lines: list[str] = []
    for cell in nb.cells:
        if cell.cell_type != "code" or VERDICT_TAG not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                text = output.get("text", "")
            else:
                data = output.get("data", {})
                text = data.get("text/markdown") or data.get("text/plain") or ""
            lines += [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[-1] if lines else None


class ReportError(ValueError):
    """A folder that cannot be merged; the message is one line."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_manifest(out: str) -> dict[str, Any]:
    """The folder's manifest (``{}`` if none). One that cannot be read is kept aside as
    ``manifest.json.unreadable`` (never overwritten: nothing already recorded is lost)."""
    path = os.path.join(out, "manifest.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("notebooks", []), list):
            raise ValueError("not a manifest")
        return data
    except ValueError:
        shutil.copyfile(path, path + ".unreadable")
        return {}


def _entries_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Entries with their own profile/device (older manifests kept those at the top only)."""
    out = []
    for e in manifest.get("notebooks", []):
        if isinstance(e, dict) and "name" in e:
            out.append({"profile": manifest.get("profile"), "device": manifest.get("device"), **e})
    return out


def _adopt(out: str, name: str) -> dict[str, Any] | None:
    """An entry for an executed copy that no manifest lists, from papermill's metadata in it."""
    import nbformat

    path = os.path.join(out, "notebooks", f"{name}.ipynb")
    try:
        meta = nbformat.read(path, as_version=4).metadata.get("papermill", {})
    except Exception:
        return None
    params = meta.get("parameters") or {}
    html_path = os.path.join("html", f"{name}.html")
    return {
        "name": name,
        "status": "failed" if meta.get("exception") else "ok",
        "seconds": round(float(meta.get("duration") or 0.0), 2),
        "error": None,
        "parameters": params,
        "output": os.path.join("notebooks", f"{name}.ipynb"),
        "html": html_path if os.path.exists(os.path.join(out, html_path)) else None,
        "profile": None,  # papermill does not record the profile
        "device": params.get("device"),
        "written": meta.get("end_time"),
        "verdict": verdict_of(path),
        "adopted": "from the executed copy's papermill metadata (no manifest entry)",
    }


def _common(entries: Iterable[dict[str, Any]], key: str) -> Any:
    values = {e.get(key) for e in entries} - {None}
    return values.pop() if len(values) == 1 else ("mixed" if values else None)


def write_listing(out: str, new_entries: Sequence[dict[str, Any]], environment: dict[str, Any]) -> dict[str, Any]:
    """Add ``new_entries`` to the folder's manifest (replacing entries of the same notebooks),
    keep or adopt the others, and write ``manifest.json`` and ``index.html``; returns the manifest."""
    new_names = {e["name"] for e in new_entries}
    entries = {e["name"]: e for e in _entries_of(load_manifest(out)) if e["name"] not in new_names}
    entries = {n: e for n, e in entries.items() if os.path.exists(os.path.join(out, e.get("output") or ""))}
    entries.update({e["name"]: e for e in new_entries})
    for path in glob.glob(os.path.join(out, "notebooks", "*.ipynb")):
        name = os.path.splitext(os.path.basename(path))[0]
        if name not in entries and (adopted := _adopt(out, name)) is not None:
            entries[name] = adopted
    listed = [entries[n] for n in sorted(entries)]
    ok = sum(e.get("status") == "ok" for e in listed)
    env = {k: v for k, v in environment.items() if k not in ("device", "device_name")}  # per notebook: its cells
    manifest = {
        "profile": _common(listed, "profile"),
        "device": _common(listed, "device"),
        "written": _now(),
        "environment": env,
        "summary": f"{ok}/{len(listed)} notebooks succeeded",
        "notebooks": listed,
    }
    with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, default=str)
    _write_index(out, manifest)
    return manifest


def merge_reports(out: str, parts: Sequence[str]) -> dict[str, Any]:
    """Copy report folders ``parts`` (in order: a later one wins for the same notebook or file)
    into ``out`` and list everything in one manifest and index. Every part is checked first."""
    for p in parts:
        if not os.path.isdir(p) or not any(os.path.isdir(os.path.join(p, s)) for s in SUBFOLDERS):
            raise ReportError(f"part={p!r}: not a report folder (no {'/'.join(SUBFOLDERS)} inside)")
        if os.path.realpath(p) == os.path.realpath(out):
            raise ReportError(f"part={p!r}: the same folder as out")
    os.makedirs(out, exist_ok=True)
    manifest = load_manifest(out)
    environment = manifest.get("environment", {})
    for p in parts:
        for sub in SUBFOLDERS:
            if os.path.isdir(os.path.join(p, sub)):
                shutil.copytree(os.path.join(p, sub), os.path.join(out, sub), dirs_exist_ok=True)
        part = load_manifest(p)
        environment = part.get("environment") or environment
        manifest = write_listing(out, _entries_of(part), environment)
    return manifest


def _caption(path: str) -> str:
    """A figure's title as ``save_figure`` stored it in the PNG, else its file stem."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            title = (getattr(im, "text", None) or {}).get("Title")
    except Exception:
        title = None
    stem = os.path.splitext(os.path.basename(path))[0]
    return " ".join(str(title).split()) if title else stem


def _figure_html(out: str, rel: str) -> str:
    esc = html.escape
    caption = _caption(os.path.join(out, rel))
    stem = os.path.splitext(os.path.basename(rel))[0]
    return (
        f'<figure><a href="{esc(rel)}"><img src="{esc(rel)}" alt="{esc(caption)}" '
        f'style="max-width:100%;width:{FIGURE_WIDTH_PX}px"></a>'
        f"<figcaption>{esc(caption)} <small>({esc(stem)}.png)</small></figcaption></figure>"
    )


def _files_html(rels: Sequence[str]) -> str:
    esc = html.escape
    items = "".join(f'<li><a href="{esc(r)}">{esc(os.path.basename(r))}</a></li>' for r in rels)
    return f"<ul>{items}</ul>" if items else ""


def _write_index(out: str, manifest: dict[str, Any]) -> None:
    esc = html.escape
    rows, sections = [], []
    claimed: set[str] = set()
    for e in manifest["notebooks"]:
        name = e["name"]
        links = [f'<a href="notebooks/{esc(name)}.ipynb">ipynb</a>']
        if e.get("html"):
            links.insert(0, f'<a href="{esc(e["html"])}">HTML</a>')
        ok = e.get("status") == "ok"
        ran = "ran to the end" if ok else str(e.get("status"))
        colour = "#4c9a2a" if ok else "#d7191c"
        verdict = e.get("verdict") or ("" if not ok else "no verdict recorded (no cell tagged 'verdict')")
        if not ok:
            verdict = f"did not finish: {e.get('error') or 'see the executed copy'}"
        rows.append(
            f"<tr><td><a href='#{esc(name)}'>{esc(name)}</a></td><td style='color:{colour}'>{esc(ran)}</td>"
            f"<td><b>{esc(verdict)}</b></td>"
            f"<td>{esc(str(e.get('profile') or '?'))}</td><td>{esc(str(e.get('device') or '?'))}</td>"
            f"<td>{float(e.get('seconds') or 0):.1f} s</td><td>{' · '.join(links)}</td></tr>"
        )
        files = [f for f in e.get("files") or [] if os.path.isfile(os.path.join(out, f))]
        claimed.update(files)
        figures = [f for f in files if f.startswith("figures/") and f.endswith(".png")]
        data = [f for f in files if f.startswith("data/") and not is_sidecar(os.path.basename(f))]
        sections.append(
            f"<section id='{esc(name)}'><h2>{esc(name)}</h2><p class='verdict'><b>{esc(verdict)}</b></p>"
            + "".join(_figure_html(out, f) for f in figures)
            + (f"<h3>Data</h3>{_files_html(data)}" if data else "")
            + "</section>"
        )
    other_figs = [
        f"figures/{os.path.basename(p)}"
        for p in sorted(glob.glob(os.path.join(out, "figures", "*.png")))
        if f"figures/{os.path.basename(p)}" not in claimed
    ]
    other_data = [
        f"data/{os.path.basename(p)}"
        for p in sorted(glob.glob(os.path.join(out, "data", "*")))
        if os.path.isfile(p) and not is_sidecar(os.path.basename(p)) and f"data/{os.path.basename(p)}" not in claimed
    ]
    other = ""
    if other_figs or other_data:
        other = (
            "<section><h2>Files no notebook entry claims</h2>"
            + "".join(_figure_html(out, f) for f in other_figs)
            + _files_html(other_data)
            + "</section>"
        )
    profile, device = esc(str(manifest["profile"])), esc(str(manifest["device"]))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>mpslab report: {profile} on {device}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}} td,th{{padding:4px 10px;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}} figure{{margin:1em 0}} figcaption{{font-size:0.95em;color:#333}}
section{{border-top:1px solid #ccc;margin-top:2em}} .verdict{{font-size:1.1em}}</style></head><body>
<h1>mpslab report</h1>
<p>profile <b>{profile}</b>, device <b>{device}</b>: {esc(manifest["summary"])}. A notebook that ran to the end
can still have found failures: its verdict says what it found.</p>
<table><tr><th>notebook</th><th>ran</th><th>verdict</th><th>profile</th><th>device</th><th>time</th><th>open</th></tr>
{"".join(rows)}</table>
{"".join(sections)}
{other}
<p>Parameters and environment: <a href="manifest.json">manifest.json</a></p>
</body></html>
"""
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as f:
        f.write(page)
