"""The static site, without a browser: determinism, numbers equal to the store's, escaping, links.

Every store here is TEST DATA (tests/_site_store.py): made-up runs, never published.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest
from typer.testing import CliRunner

from nerbench.cli import _register, app
from nerbench.errors import NerbenchError
from nerbench.site import build_site, paper_results
from nerbench.site_data import slug
from nerbench.site_svg import Point, pareto
from nerbench.store import Store

from _site_store import ENCODER, LLM, XSS_MODEL, make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir):
    path = tmp_path_factory.mktemp("site") / "test-data.duckdb"
    expected = make_store(path, data_dir)
    return path, expected


@pytest.fixture(scope="module")
def site(store, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("site-out") / "_site"
    build_site(store[0], out, data_dir=data_dir)
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append(attrs[name])


def test_two_builds_are_byte_identical(store, site, data_dir, tmp_path):
    again = tmp_path / "again"  # and built in one process, without the forked worker
    build_site(store[0], again, data_dir=data_dir, parallel=False)
    first, second = _files(site), _files(again)
    assert list(first) == list(second)
    assert "data/results.parquet" in first and "index.html" in first
    for name in first:
        assert first[name] == second[name], name


def test_every_internal_link_resolves_and_nothing_is_fetched_from_elsewhere(site):
    pages = sorted(site.rglob("*.html"))
    # top pages, five datasets, three models, downloads, and the LLM-vs-encoder view of the second track
    assert len(pages) == 4 + 5 + 3 + 1 + 1
    for page in pages:
        parser = _Links()
        parser.feed(page.read_text("utf-8"))
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https"):
                # Only plain links to other sites are allowed, never a fetched resource.
                assert 'src="' + link not in page.read_text("utf-8")
                continue
            assert not parts.scheme and not parts.netloc, f"{page}: {link}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            assert target.is_file(), f"{page.name}: {link} -> {target}"
            if parts.fragment:
                other = _Links()
                other.feed(target.read_text("utf-8"))
                assert parts.fragment in other.ids, f"{page.name}: {link}"
        assert "javascript:" not in " ".join(parser.links)
        assert '<link rel="stylesheet" href="' in page.read_text("utf-8")


def test_overview_numbers_equal_the_stores(store, site):
    path, expected = store
    html = (site / "index.html").read_text("utf-8")
    with Store(path, create=False) as db:
        summary = {(r["model_id"], r["dataset"]): r for r in db.summary()}
    for key, scores in expected.items():
        assert summary[key]["f1"] == scores.strict.f1
        # The exact stored value is the sort key; the shown text is it rounded to 3 places.
        assert (
            f'data-sort="{scores.strict.f1!r}" title="95% CI [{scores.ci95["f1"][0]:.3f}, '
            f'{scores.ci95["f1"][1]:.3f}]">{scores.strict.f1:.3f}</td>' in html
        )
    # The encoder ran on both datasets of the table: macro and long F1 are means over them.
    a, b = expected[(ENCODER, "biored")], expected[(ENCODER, "ncbi_disease")]
    assert f'data-sort="{(a.strict.f1 + b.strict.f1) / 2!r}"' in html
    assert f'data-sort="{(a.long_f1 + b.long_f1) / 2!r}"' in html
    rows = json.loads((site / "data" / "results.json").read_text("utf-8"))
    assert {(r["model_id"], r["dataset"]): r["f1"] for r in rows} == {k: v["f1"] for k, v in summary.items()}
    parquet = duckdb.sql(f"SELECT model_id, dataset, f1, reference_hardware FROM '{site / 'data' / 'results.parquet'}'")
    assert {(m, d): f for m, d, f, _ in parquet.fetchall()} == {k: v["f1"] for k, v in summary.items()}


def test_comparison_page_shows_the_paired_test_of_the_stored_predictions(store, site, data_dir):
    """The page's numbers are those of `nerbench compare LLM_RUN ENCODER_RUN` with its defaults."""
    path, expected = store
    with Store(path, create=False) as db:
        runs = {(r["model_id"], r["dataset"]): r["run_id"] for r in db.runs()}
    _register()
    results = {}
    for flag in ([], ["--long"]):
        cli = CliRunner().invoke(
            app,
            ["compare", runs[(LLM, "ncbi_disease")], runs[(ENCODER, "ncbi_disease")], "--json", "--db", str(path)]
            + ["--data-dir", str(data_dir)]
            + flag,
        )
        assert cli.exit_code == 0, cli.output
        results[bool(flag)] = json.loads(cli.output)
    result, long = results[False], results[True]
    assert result["resamples"] == 10000 and result["unit"] == "document" and result["units"] == 100
    html = (site / "compare.html").read_text("utf-8")
    llm_f1, encoder_f1 = expected[(LLM, "ncbi_disease")].strict.f1, expected[(ENCODER, "ncbi_disease")].strict.f1
    assert result["delta"] == pytest.approx(llm_f1 - encoder_f1)
    low, high = result["ci95"]
    assert f'{result["delta"] * 100:+.1f} <span class="ci">[{low * 100:+.1f}, {high * 100:+.1f}]</span>' in html
    # One dataset tested on this page: Holm leaves p as it is; no round as extreme gives a bound.
    shown_p = "&lt; 1/10001" if result["p_value"] == 1 / 10001 else f"{result['p_value']:.3g}"
    assert f'<td class="num pvalue">{shown_p}</td>' in html
    low, high = long["ci95"]
    assert f'{long["delta"] * 100:+.1f} <span class="ci">[{low * 100:+.1f}, {high * 100:+.1f}]</span>' in html
    assert "over 100 documents" in html and "10,000 rounds" in html
    assert f"{60.0 / 20.0:.3g}×" in html  # same CPU price: the cost ratio is the ratio of wall seconds
    assert "significantly better than the best encoder" in html
    assert "[quick budget · timed by nerbench · CPU]" in html
    assert "No LLM in this track on biored, so no verdict" in html
    assert "No runs on jnlpba in this track." in html


def test_html_in_a_model_name_is_shown_as_text(site):
    raw = XSS_MODEL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    for page in site.rglob("*.html"):
        text = page.read_text("utf-8")
        assert "<script>alert" not in text and "<b>bold" not in text, page
    assert raw in (site / "index.html").read_text("utf-8")
    assert (site / "models" / f"{slug(XSS_MODEL)}.html").is_file()
    assert "/" not in slug("a/b") and slug("a/b") != slug("a-b")


def test_marks_for_hardware_and_self_reported_timing(site):
    html = (site / "index.html").read_text("utf-8")
    row = re.search(r'<tr data-family="encoder">\s*<th scope="row" data-sort="test-data-encoder">.*?</tr>', html, re.S)
    assert row and "not ref · CPU" in row.group(0) and "self-reported" not in row.group(0)
    xss_row = html[html.index("&lt;script&gt;alert(1)") :]
    xss_row = xss_row[: xss_row.index("</tr>")]
    # Its submission claims the reference GPU, but nerbench never timed it: not reference.
    assert '<span class="mark ref">' not in xss_row and "not ref · GPU" in xss_row and "self-reported" in xss_row
    compare = (site / "compare.html").read_text("utf-8")
    assert "both timed by nerbench on CPU, not on the reference hardware" in compare


def test_dataset_and_model_pages(store, site, data_dir):
    _, expected = store
    page = (site / "datasets" / f"{slug('ncbi_disease')}.html").read_text("utf-8")
    scores = expected[(LLM, "ncbi_disease")]
    assert f"{scores.per_length['3+'].f1:.3f}" in page and f"{scores.per_type['Disease'].f1:.3f}" in page
    assert "940</td>" in page  # sentences of the test split, from nerbench.datasets.statistics
    model = (site / "models" / f"{slug(LLM)}.html").read_text("utf-8")
    assert "CPU: Test CPU (2 threads)" in model and "&#34;test_data&#34;: true" in model and "generative" in model
    assert 'href="https://example.org/test-model"' in model and 'href="javascript:' not in model


def test_build_without_local_test_files_says_what_is_missing(store, tmp_path):
    out = tmp_path / "site"
    build_site(store[0], out, data_dir=tmp_path / "no-data")
    compare = (out / "compare.html").read_text("utf-8")
    assert "No paired test: the test split of ncbi_disease is not available locally" in compare
    assert "(no paired test)" in compare
    dataset = (out / "datasets" / f"{slug('ncbi_disease')}.html").read_text("utf-8")
    assert "Statistics not shown: the test split is not available" in dataset


def test_an_empty_store_builds_a_site_that_says_so(tmp_path):
    db = tmp_path / "empty.duckdb"
    Store(db).close()
    report = build_site(db, tmp_path / "site", data_dir=tmp_path / "no-data")
    assert "No runs are stored yet" in report.index.read_text("utf-8")
    assert (tmp_path / "site" / "data" / "results.parquet").is_file()


def test_reference_rows_need_a_source_and_are_labelled(store, tmp_path, data_dir):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": [{"model": "x", "family": "llm", "dataset": "ncbi_disease", "f1": 0.5}]}))
    with pytest.raises(NerbenchError, match=r"rows\[0\]\.source: missing"):
        paper_results(bad)
    good = tmp_path / "good.json"  # TEST DATA: not the paper's numbers
    good.write_text(
        json.dumps(
            {
                "citation": "a test citation",
                "status": "",
                "rows": [
                    {
                        "model": "Test-LLM (test data)",
                        "family": "llm",
                        "dataset": "ncbi_disease",
                        "f1": 0.5,
                        "source": "Table T",
                    }
                ],
            }
        )
    )
    out = tmp_path / "site"
    build_site(store[0], out, data_dir=data_dir, paper_file=good)
    html = (out / "index.html").read_text("utf-8")
    assert 'Test-LLM (test data) <span class="mark paper">paper</span>' in html and "Table T" in html
    assert paper_results()["rows"] == [] and "never shows a number it cannot cite" in paper_results()["status"]


def test_pareto_frontier_keeps_only_unbeaten_points():
    points = [
        Point(1.0, 0.8, "a", "", "encoder", True),
        Point(2.0, 0.7, "b", "", "llm", True),
        Point(3.0, 0.9, "c", "", "llm", True),
        Point(0.5, 0.6, "d", "", "encoder", False),
    ]
    assert [p.label for p in pareto(points)] == ["d", "a", "c"]


def test_cli_builds_and_prints_the_index_path(store, tmp_path, data_dir):
    _register()
    out = tmp_path / "cli-site"
    result = CliRunner().invoke(
        app,
        ["site", "build", "--db", str(store[0]), "--out", str(out), "--data-dir", str(data_dir), "--resamples", "200"],
    )
    assert result.exit_code == 0, result.output
    assert str((out / "index.html").resolve()) in result.output
    assert (out / "index.html").is_file()


def test_cli_missing_database_is_a_clear_error(tmp_path):
    _register()
    result = CliRunner().invoke(
        app, ["site", "build", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "s")]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, NerbenchError) and "no results database here" in str(result.exception)


def test_out_folder_that_is_not_a_site_is_never_deleted(store, tmp_path, data_dir):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("not a site")
    with pytest.raises(NerbenchError, match="not a site written by `nerbench site build`"):
        build_site(store[0], precious, data_dir=data_dir)
    assert (precious / "thesis.tex").read_text() == "not a site"
    out = tmp_path / "site"
    build_site(store[0], out, data_dir=data_dir)
    (out / "stale.html").write_text("from an older build")
    build_site(store[0], out, data_dir=data_dir)  # an earlier build is replaced, stale pages go
    assert not (out / "stale.html").exists() and (out / "index.html").is_file()
