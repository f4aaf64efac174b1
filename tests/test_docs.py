"""The documentation site: it builds offline, no link in it is broken, every notebook page shows its figures.

The browser check needs Debian's ``chromium`` (``.ci/run`` installs it and sets MPSLAB_REQUIRE_BROWSER=1, so CI
fails rather than skips when it is missing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key):
                self.refs.append(a[key])


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8", errors="replace"))
    return p


def test_no_broken_link_or_anchor(site: Path) -> None:
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    assert len(pages) >= 15, f"only {len(pages)} pages built"
    broken = []
    for page, parsed in pages.items():
        for ref in parsed.refs:
            parts = urlsplit(ref)
            if parts.scheme or ref.startswith(("//", "mailto:", "data:", "javascript:")):
                continue
            if not parts.path:
                target = page
            elif parts.path.startswith("/"):  # the 404 page links from the site's root
                target = (site / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {ref}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {ref} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken[:40])


def test_nothing_points_outside_the_repository() -> None:
    docs = [p for p in (ROOT / "docs").rglob("*.md")] + [ROOT / "README.md"]
    bad = [str(p.relative_to(ROOT)) for p in docs if re.search(r"(\.\./)+shared/|/work/shared", p.read_text())]
    assert not bad, f"pages pointing outside the repository: {bad}"


def _notebook_pages() -> list[tuple[str, Path]]:
    pages = []
    for nb in sorted((ROOT / "docs" / "results").rglob("*.ipynb")):
        rel = nb.relative_to(ROOT / "docs").with_suffix(".html")
        pages.append((str(rel), nb))
    return pages


def _images_in(nb: Path) -> int:
    cells = json.loads(nb.read_text())["cells"]
    return sum(
        1
        for c in cells
        for o in c.get("outputs", [])
        if any(k in o.get("data", {}) for k in ("image/png", "image/svg+xml", "image/jpeg"))
    )


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.parametrize("rel,source", _notebook_pages(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_notebook_page_shows_its_figures_in_a_browser(site: Path, rel: str, source: Path) -> None:
    browser = _browser()
    if browser is None:
        if os.environ.get("MPSLAB_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (MPSLAB_REQUIRE_BROWSER is set)")
        pytest.skip("chromium is not installed: `apt-get install chromium` (CI installs it)")
    expected = _images_in(source)
    assert expected >= 1, f"{source.name}: an executed notebook on the site without a figure"
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (site / rel).as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    dom = proc.stdout
    assert "</html>" in dom, f"{rel}: the browser rendered nothing: {proc.stderr[-500:]}"
    shown = len(re.findall(r"<img[^>]*src=\"data:image/(?:png|svg\+xml|jpeg)", dom))
    assert shown == expected, f"{rel}: the page shows {shown} figure(s), its notebook holds {expected}"
