"""The site in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

tests/setup_browser.sh installs what is missing (chromium, chromium-driver, playwright); these
tests run it when needed. The store is TEST DATA (tests/_site_store.py). Screenshots of the
overview and the comparison page are written to NERBENCH_SCREENSHOTS (or a temporary folder) and
their paths printed.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from nerbench.site import build_site

from _site_store import ENCODER, LLM, XSS_MODEL, make_store

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


def _ensure_browser() -> None:
    try:
        importlib.import_module("playwright.sync_api")
        ready = CHROMIUM.exists()
    except ImportError:
        ready = False
    if ready:
        return
    env = dict(os.environ, PYTHON=sys.executable)
    subprocess.run(["sh", str(ROOT / "tests" / "setup_browser.sh")], check=True, env=env)
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("browser")
    db = folder / "test-data.duckdb"
    make_store(db, data_dir)
    out = folder / "_site"
    build_site(db, out, data_dir=data_dir, resamples=500)
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _ensure_browser()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user data dir
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


class Watched:
    """A page whose console errors, script errors, dialogs and requests are recorded."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed request: {r.url} {r.failure}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

        def dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        self.page.on("dialog", dialog)

    def open(self, path: Path):
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")
        return self.page

    def close(self):
        self.page.close()


def _column(page, header: str) -> list[str]:
    index = page.eval_on_selector_all(
        "#overview thead th",
        "(ths, name) => ths.findIndex(th => th.textContent.replace('\u21c5', '').trim() === name)",
        header,
    )
    assert index >= 0, header
    return page.eval_on_selector_all(
        "#overview tbody tr:not([hidden])",
        "(rows, i) => rows.map(r => r.cells[i].getAttribute('data-sort') ?? r.cells[i].textContent.trim())",
        index,
    )


def test_every_page_loads_without_errors_and_requests_only_local_files(browser, site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 14  # 13 pages and the LLM-vs-encoder view of the second track
    for path in pages:
        watched = Watched(browser)
        watched.open(path)
        assert watched.errors == [], (path.name, watched.errors)
        assert watched.dialogs == []
        outside = [u for u in watched.requests if not u.startswith("file://")]
        assert outside == [], (path.name, outside)
        # The stylesheet was applied (it is a local file next to the pages).
        assert watched.page.eval_on_selector("body", "b => getComputedStyle(b).marginTop") == "0px"
        watched.close()


def test_every_internal_link_resolves_to_an_existing_file(browser, site):
    for path in sorted(site.rglob("*.html")):
        watched = Watched(browser)
        page = watched.open(path)
        # getAttribute, resolved against the page: SVG links have no plain string .href
        hrefs = page.eval_on_selector_all(
            "a[href]", "as => as.map(a => new URL(a.getAttribute('href'), document.baseURI).href)"
        )
        assert len(hrefs) >= 5
        for href in hrefs:
            parts = urlsplit(href)
            if parts.scheme in ("http", "https"):
                continue
            assert parts.scheme == "file", (path.name, href)
            assert Path(unquote(parts.path)).is_file(), (path.name, href)
        watched.close()


def test_sorting_by_clicking_a_column_header(browser, site):
    watched = Watched(browser)
    page = watched.open(site / "index.html")
    page.click("#overview thead th:has-text('ncbi_disease') button.sort")
    values = _column(page, "ncbi_disease")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 3
    page.click("#overview thead th:has-text('ncbi_disease') button.sort")
    numbers = [float(v) for v in _column(page, "ncbi_disease") if v]
    assert numbers == sorted(numbers)
    page.click("#overview thead th:has-text('Model') button.sort")
    names = _column(page, "Model")
    assert names == sorted(names, key=lambda s: s.lower()) or names == sorted(names)
    page.click("#overview thead th:has-text('Cost / 1k sent.') button.sort")
    costs = [float(v) for v in _column(page, "Cost / 1k sent.") if v]
    assert costs == sorted(costs, reverse=True)
    assert page.get_attribute("#overview thead th:has-text('Cost / 1k sent.')", "aria-sort") == "descending"
    assert watched.errors == []
    watched.close()


def test_filtering_by_family_and_dataset(browser, site):
    watched = Watched(browser)
    page = watched.open(site / "index.html")
    assert page.is_visible("#filters")
    page.select_option("#filter-family", "llm")
    assert _column(page, "Model") == [LLM]
    page.select_option("#filter-family", "encoder")
    assert sorted(_column(page, "Model")) == sorted([ENCODER, XSS_MODEL])
    page.select_option("#filter-family", "")
    page.select_option("#filter-dataset", "biored")
    assert _column(page, "Model") == [ENCODER]
    assert not page.is_visible("#overview thead th[data-dataset='ncbi_disease']")
    assert page.is_visible("#overview thead th[data-dataset='biored']")
    assert page.text_content("#shown-count") == "1 of 3 models shown"
    page.select_option("#filter-dataset", "")
    assert len(_column(page, "Model")) == 3
    assert watched.errors == []
    watched.close()


def test_html_in_a_model_name_is_text_and_runs_nothing(browser, site):
    watched = Watched(browser)
    page = watched.open(site / "index.html")
    names = page.eval_on_selector_all("#overview tbody th a", "as => as.map(a => a.textContent)")
    assert XSS_MODEL in names
    assert page.eval_on_selector_all("#overview tbody b", "bs => bs.length") == 0
    link = page.locator("#overview tbody th a", has_text="alert(1)")
    link.click()
    page.wait_for_load_state("load")
    assert page.text_content("h1").startswith(XSS_MODEL)
    assert watched.dialogs == [] and watched.errors == []
    watched.close()


def test_screenshots_of_the_overview_and_the_comparison_page(browser, site, tmp_path_factory):
    folder = Path(os.environ.get("NERBENCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    watched = Watched(browser)
    shots = {}
    for name in ("index", "compare", "cost"):
        page = watched.open(site / f"{name}.html")
        shots[name] = folder / f"{name}.png"
        page.screenshot(path=str(shots[name]), full_page=True)
    watched.close()
    for name, shot in shots.items():
        print(f"screenshot of {name}.html: {shot}")
        assert shot.stat().st_size > 10_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
