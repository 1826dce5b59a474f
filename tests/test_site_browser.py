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
from urllib.parse import quote, unquote, urlsplit

import pytest

from nerbench.site import build_site

from _site_store import ENCODER, LLM, XSS_MODEL, ingest_submissions, make_store

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
def submitted_site(tmp_path_factory, data_dir):
    """The site of the submissions committed under submissions/: real model ids, five datasets."""
    folder = tmp_path_factory.mktemp("submitted")
    db = folder / "submissions.duckdb"
    ingest_submissions(db, data_dir)
    out = folder / "_site"
    build_site(db, out, data_dir=data_dir, resamples=200)
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
        "(ths, name) => ths.findIndex(th => th.querySelector('button.sort').textContent.replace('*', '').trim() "
        "=== name)",
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
    # The default order ranks by strict F1: the model run on every dataset first (macro F1).
    assert _column(page, "Model")[0] == ENCODER
    assert page.eval_on_selector_all("#overview tbody tr", "rs => rs.map(r => r.dataset.rank)") == ["0", "1", "2"]
    # The column's name itself sorts (old code: only a small icon beside it did).
    page.click("#overview thead th[data-dataset='ncbi_disease'] >> text=ncbi_disease")
    values = _column(page, "ncbi_disease")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) == 3
    page.click("#overview thead th[data-dataset='ncbi_disease'] >> text=ncbi_disease")
    numbers = [float(v) for v in _column(page, "ncbi_disease") if v]
    assert numbers == sorted(numbers)
    page.click("#overview thead th >> text=Model")
    names = _column(page, "Model")
    assert names == sorted(names, key=lambda s: s.lower()) or names == sorted(names)
    page.click("#overview thead th >> text=Cost, USD / 1k sent.")
    costs = [float(v) for v in _column(page, "Cost, USD / 1k sent.") if v]
    assert costs == sorted(costs, reverse=True)
    assert page.get_attribute("#overview thead th[data-key='cost']", "aria-sort") == "descending"
    # The dataset's page is a separate link beside the name, outside the sort button.
    link = page.locator("#overview thead th[data-dataset='ncbi_disease'] a.dataset-link")
    assert link.get_attribute("href").startswith("datasets/ncbi_disease-")
    assert page.locator("#overview thead button.sort a").count() == 0
    link.click()
    page.wait_for_load_state("load")
    assert page.text_content("h1").startswith("ncbi_disease")
    assert watched.errors == []
    watched.close()


def test_sort_and_filters_live_in_the_url(browser, site):
    watched = Watched(browser)
    page = watched.open(site / "index.html")
    page.click("#overview thead th[data-dataset='ncbi_disease'] >> text=ncbi_disease")
    page.select_option("#filter-family", "encoder")
    url = page.url
    assert url.endswith("#sort=f1%3Ancbi_disease&dir=desc&family=encoder"), url
    # The link opens the same view in a fresh page.
    other = Watched(browser)
    linked = other.page
    linked.goto(url)
    linked.wait_for_load_state("load")
    assert linked.input_value("#filter-family") == "encoder"
    assert linked.get_attribute("#overview thead th[data-dataset='ncbi_disease']", "aria-sort") == "descending"
    shown = _column(linked, "ncbi_disease")
    assert len(shown) == 2 and [float(v) for v in shown] == sorted((float(v) for v in shown), reverse=True)
    # An ascending sort and a dataset filter from a hand-written link; unknown values are ignored.
    linked.goto(url.split("#")[0] + "#sort=macro&dir=asc&dataset=biored&family=nonsense")
    linked.wait_for_load_state("load")
    assert linked.input_value("#filter-family") == "" and linked.input_value("#filter-dataset") == "biored"
    assert linked.get_attribute("#overview thead th[data-key='macro']", "aria-sort") == "ascending"
    assert _column(linked, "Model") == [ENCODER]
    # Track, size and licence filters, in the URL too (a model passes on any of its runs' tracks).
    linked.goto(url.split("#")[0])
    linked.wait_for_load_state("load")
    quick = "quick budget · timed by nerbench · CPU"
    assert linked.eval_on_selector_all("#filter-track option", "os => os.map(o => o.value)")[1:] == sorted(
        [quick, "budget not stated · self-reported timing · other GPU"]
    )
    linked.select_option("#filter-track", quick)
    assert sorted(_column(linked, "Model")) == sorted([ENCODER, LLM])
    assert "track=quick%20budget%20%C2%B7%20timed%20by%20nerbench%20%C2%B7%20CPU" in linked.url
    linked.select_option("#filter-size", "under 100M")  # the test models' 1,000 parameters
    linked.select_option("#filter-licence", "test data")
    assert sorted(_column(linked, "Model")) == sorted([ENCODER, LLM])
    assert linked.text_content("#shown-count") == "2 of 3 models shown"
    linked.goto(url.split("#")[0] + "#track=" + quote("budget not stated · self-reported timing · other GPU"))
    linked.wait_for_load_state("load")
    assert _column(linked, "Model") == [XSS_MODEL]
    assert watched.errors == [] and other.errors == []
    other.close()
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
    model = next((site / "models").glob("test-data-llm-*.html"))
    for width in (1400, 400):
        watched.page.set_viewport_size({"width": width, "height": 900})
        for name, path in (
            ("index", site / "index.html"),
            ("compare", site / "compare.html"),
            ("cost", site / "cost.html"),
            ("model", model),
        ):
            page = watched.open(path)
            shots[f"{name}-{width}"] = folder / f"{name}-{width}.png"
            page.screenshot(path=str(shots[f"{name}-{width}"]), full_page=True)
    watched.close()
    for name, shot in shots.items():
        print(f"screenshot of {name}.html: {shot}")
        assert shot.stat().st_size > 10_000
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# What a page's layout measures: the page's own horizontal overflow, and for the overview, its
# table's (which scrolls inside its own box) and the edges of its first F1 column and last column.
_LAYOUT = """() => {
  const doc = document.documentElement, out = {page: doc.scrollWidth, viewport: doc.clientWidth};
  const table = document.getElementById("overview");
  if (table) {
    const box = table.getBoundingClientRect();
    const first = table.querySelector("thead th[data-dataset]").getBoundingClientRect();
    const last = table.querySelector("thead th:last-child").getBoundingClientRect();
    Object.assign(out, {scroll: table.scrollWidth, client: table.clientWidth, left: box.left, right: box.right,
                        container: table.parentElement.clientWidth, first_left: first.left,
                        first_right: first.right, last_right: last.right});
  }
  return out;
}"""


@pytest.mark.parametrize("width", [1400, 400])
def test_pages_fit_the_screen_and_the_overview_fits_its_container(browser, submitted_site, site, width):
    """Old code, at 1,400 px: the overview 1,382 px wide in a 1,352 px container (its last column
    cut); at 400 px the comparison page 1,049 px and a model page 1,167 px wide (the page itself
    scrolled sideways)."""
    watched = Watched(browser)
    watched.page.set_viewport_size({"width": width, "height": 900})
    for folder in (submitted_site, site):
        for path in sorted(folder.rglob("*.html")):
            page = watched.open(path)
            m = page.evaluate(_LAYOUT)
            assert m["page"] <= m["viewport"], (width, path.name, m)  # never the page: tables scroll in their box
            if path.name != "index.html":
                continue
            assert m["right"] - m["left"] <= m["container"] + 0.5, (width, m)
            if width == 1400:  # every column in view, the last one included, without scrolling
                assert m["scroll"] <= m["client"] and m["last_right"] <= m["right"] + 0.5, m
            else:  # a phone: the model names and the first F1 column in view; the rest scrolls
                assert m["left"] - 0.5 <= m["first_left"] and m["first_right"] <= m["right"] + 0.5, m
    assert watched.errors == []
    watched.close()


def test_the_model_column_stays_in_view_while_the_overview_scrolls(browser, submitted_site):
    watched = Watched(browser)
    watched.page.set_viewport_size({"width": 400, "height": 900})
    page = watched.open(submitted_site / "index.html")
    before = page.eval_on_selector("#overview tbody th", "th => th.getBoundingClientRect().left")
    page.eval_on_selector("#overview", "t => { t.scrollLeft = 400; }")
    assert page.eval_on_selector("#overview", "t => t.scrollLeft") > 0
    assert page.eval_on_selector("#overview tbody th", "th => th.getBoundingClientRect().left") == before
    watched.close()
