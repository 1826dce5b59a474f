"""The static site, without a browser: determinism, numbers equal to the store's, escaping, links.

Every store here is TEST DATA (tests/_site_store.py): made-up runs, never published.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pytest
from typer.testing import CliRunner

from nerbench import __version__
from nerbench.cli import _register, app
from nerbench.errors import NerbenchError
from nerbench.safe_text import csv_cell
from nerbench.site import COLUMN_NOTES, RESULT_COLUMNS, build_site, build_time, paper_results, size_class
from nerbench.site_data import read_store, score_cells, slug
from nerbench.site_svg import Point, chart, label_box, pareto, place_labels
from nerbench.store import Store

from _site_store import ENCODER, LLM, XSS_MODEL, ingest_submissions, make_store


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_dir):
    path = tmp_path_factory.mktemp("site") / "test-data.duckdb"
    expected = make_store(path, data_dir)
    return path, expected


BUILT = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)  # the build time the test sites state


@pytest.fixture(scope="module")
def site(store, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("site-out") / "_site"
    build_site(store[0], out, data_dir=data_dir, built_at=BUILT)
    return out


@pytest.fixture(scope="module")
def submitted_site(data_dir, tmp_path_factory):
    """The site of the submissions committed under submissions/, ingested as the pages workflow does."""
    folder = tmp_path_factory.mktemp("submitted")
    db = folder / "submissions.duckdb"
    assert ingest_submissions(db, data_dir)
    build_site(db, folder / "_site", data_dir=data_dir, resamples=200, built_at=BUILT)
    return folder / "_site"


class _Text(HTMLParser):
    """What a reader sees of a page: its text (not scripts or styles) and the attributes shown on
    hover or read aloud (title, aria-label, alt)."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        self.parts.extend(f" {value} " for name, value in attrs if name in ("title", "aria-label", "alt") and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _visible(page: Path) -> str:
    parser = _Text()
    parser.feed(page.read_text("utf-8"))
    return "".join(parser.parts)


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


def test_two_builds_are_byte_identical(store, site, data_dir, tmp_path, monkeypatch):
    again = tmp_path / "again"  # and built in one process, without the forked worker
    # The same build time, from the reproducible-builds variable rather than the argument.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(BUILT.timestamp())))
    build_site(store[0], again, data_dir=data_dir, parallel=False)
    # And with the model pages handed out one at a time to both processes.
    import nerbench.site as site_module

    monkeypatch.setattr(site_module, "MODEL_CHUNK", 1)
    shared = tmp_path / "shared"
    build_site(store[0], shared, data_dir=data_dir)
    first, second, third = _files(site), _files(again), _files(shared)
    assert list(first) == list(second) == list(third)
    assert "data/results.parquet" in first and "index.html" in first
    for name in first:
        assert first[name] == second[name] == third[name], name


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


def test_the_site_reads_the_scores_the_scorer_stored(store):
    """read_store pivots the metrics table in SQL and score_cells has DuckDB format the cells of the
    per-type and per-length tables: every number is the one the scorer computed."""
    path, expected = store
    data = read_store(path)
    assert len(data.runs) == len(expected)
    for run in data.runs:
        scores = expected[(run.model_id, run.dataset)]
        assert (run.precision, run.recall, run.f1) == (scores.strict.precision, scores.strict.recall, scores.strict.f1)
        assert run.f1_ci == tuple(scores.ci95["f1"])
        assert (run.long_f1, run.long_f1_ci) == (scores.long_f1, tuple(scores.ci95_per_length["3+"]))
        assert (run.paper_long_f1, run.paper_long_f1_ci) == (
            scores.paper_long_f1,
            tuple(scores.ci95_paper_buckets["3+"]),
        )
        assert run.schemes == {name: getattr(scores, name).f1 for name in ("strict", "exact", "partial", "type")}

    def cell(prf) -> str:
        return f'<td class="num" title="P {prf.precision:.3f}, R {prf.recall:.3f}, {prf.n_gold} gold">{prf.f1:.3f}</td>'

    runs = [r for r in data.runs if r.dataset == "ncbi_disease"]
    # Disease first, as the registry orders it; a type the registry does not know after it.
    ((types, cells),) = score_cells(path, [(runs, ("Disease",))])
    assert types == ["Disease"]
    for run in runs:
        scores = expected[(run.model_id, run.dataset)]
        assert cells[run.run_id] == [
            "".join(cell(scores.per_type[t]) for t in types),
            "".join(cell(scores.per_length[b]) for b in ("1", "2", "3+")),
            "".join(cell(scores.paper_buckets[b]) for b in ("1", "2", "3+")),
        ]
    # Runs of two datasets: a type absent from a run is a dash; so are the runs of another dataset.
    both = runs + [r for r in data.runs if r.dataset == "biored"]
    ((types, cells),) = score_cells(path, [(both, ("Disease", "ChemicalEntity"))])
    assert types[:2] == ["Disease", "ChemicalEntity"] and len(types) > 3 and types[2:] == sorted(types[2:])
    assert all(row[0].count("<td") == len(types) for row in cells.values())
    assert '<td class="num">—</td>' in cells[runs[0].run_id][0]
    # A run with none of these scores stored (an older run): a dash in every column.
    older = dataclasses.replace(runs[0], run_id="not-stored")
    ((_, cells),) = score_cells(path, [([runs[0], older], ("Disease",))])
    dash = '<td class="num">—</td>'
    assert cells["not-stored"] == [dash, dash * 3, dash * 3]


def test_the_three_downloads_hold_the_same_rows(site, submitted_site):
    """DuckDB writes the downloads from one table: the CSV holds each JSON value as Python's csv
    module writes it (texts made safe, floats as repr, True/False), Parquet the very values."""
    for folder in (site, submitted_site):
        rows = json.loads((folder / "data" / "results.json").read_text("utf-8"))
        with open(folder / "data" / "results.csv", encoding="utf-8", newline="") as handle:
            csv_rows = list(csv.DictReader(handle))
        parquet = duckdb.sql(f"SELECT * FROM '{folder / 'data' / 'results.parquet'}'")
        assert parquet.columns == list(RESULT_COLUMNS) and len(rows) == len(csv_rows) > 1
        for row, text, stored in zip(rows, csv_rows, parquet.fetchall()):
            assert list(row) == list(RESULT_COLUMNS) and list(stored) == list(row.values())
            for name, value in row.items():
                if value is None:
                    assert text[name] == ""
                else:
                    assert text[name] == (csv_cell(value) if isinstance(value, str) else repr(value)), name


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
    assert f'{result["delta"]:+.3f} <span class="ci">[{low:+.3f}, {high:+.3f}]</span>' in html
    # One dataset tested on this page: Holm leaves p as it is; no round as extreme gives a bound.
    shown_p = "&lt; 1/10001" if result["p_value"] == 1 / 10001 else f"{result['p_value']:.3g}"
    assert f'<td class="num pvalue">{shown_p}</td>' in html
    low, high = long["ci95"]
    assert f'{long["delta"]:+.3f} <span class="ci">[{low:+.3f}, {high:+.3f}]</span>' in html
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
    row = re.search(
        r'<tr data-family="encoder" data-rank="\d+"[^>]*>\s*<th scope="row" data-sort="test-data-encoder">.*?</tr>',
        html,
        re.S,
    )
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


def test_a_failed_build_puts_the_previous_site_back(store, tmp_path, data_dir, monkeypatch):
    import nerbench.site as site_module

    out = tmp_path / "site"
    build_site(store[0], out, data_dir=data_dir, resamples=100, parallel=False)
    before = _files(out)

    def broken(data, db, folder, *args, **kwargs):
        (folder / "models").mkdir(parents=True)
        (folder / "models" / "half.html").write_text("half a build")
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(site_module, "_write_site", broken)
    with pytest.raises(RuntimeError, match="the disk is full"):
        build_site(store[0], out, data_dir=data_dir)
    assert _files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # nothing left beside it


def test_the_garbage_collector_is_left_as_it_was_found(store, tmp_path, data_dir):
    """The build turns the collector off while it reads and writes, and back on, errors or not."""
    assert gc.isenabled()
    build_site(store[0], tmp_path / "a", data_dir=data_dir, resamples=100, parallel=False)
    assert gc.isenabled()
    with pytest.raises(NerbenchError):
        build_site(tmp_path / "none.duckdb", tmp_path / "b", data_dir=data_dir)
    assert gc.isenabled()
    gc.disable()
    try:
        build_site(store[0], tmp_path / "c", data_dir=data_dir, resamples=100, parallel=False)
        assert not gc.isenabled()
    finally:
        gc.enable()


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
    (out / "models" / "old").mkdir()
    (out / "models" / "old" / "page.html").write_text("from an older build")
    build_site(store[0], out, data_dir=data_dir)  # an earlier build is replaced, stale pages go
    assert not (out / "stale.html").exists() and not (out / "models" / "old").exists()
    assert (out / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious", "site"]  # nothing of the old build is left


# --------------------------------------------------------------------------- issue 17: what a newcomer reads


def test_no_page_shows_none_for_ingested_submissions_or_local_runs(submitted_site, site):
    """Old code: every submitted run said "over None passes, None warm-up batches"."""
    for folder in (submitted_site, site):
        pages = sorted(folder.rglob("*.html"))
        assert len(pages) > 10
        for page in pages:
            text = _visible(page)
            assert not re.search(r"\bNone\b", text), (page.name, text[max(0, text.find("None") - 80) :][:160])
        csv_text = (folder / "data" / "results.csv").read_text("utf-8")
        assert "None" not in csv_text


def test_model_pages_state_the_training_regime_from_the_run_records(submitted_site, site):
    """Old code: "Training regime: not stated" on every page (it read the model's metadata, which
    never holds it); the regime is in each run's record."""
    lora = _visible(submitted_site / "models" / f"{slug('smollm2-135m')}.html")
    assert "declared by the submitter: LoRA r=128, alpha=256; profile quick" in lora and "1 epoch" in lora
    assert "self-reported (passes and warm-up not stated)" in lora
    full = _visible(submitted_site / "models" / f"{slug('minilm-l6-paper-recipe')}.html")
    assert "declared by the submitter: full fine-tuning; profile paper" in full
    for page in (submitted_site / "models").glob("*.html"):
        assert "Training regime not stated" not in " ".join(_visible(page).split())
    # Runs nerbench trained itself: the record's budget and the training record in the details.
    encoder = _visible(site / "models" / f"{slug(ENCODER)}.html")
    assert "full fine-tuning; profile quick; training sentences 300; 1 epoch; learning rate 2e-05" in encoder
    assert "median of 3 timed passes after 3 warm-up batches" in encoder
    llm = _visible(site / "models" / f"{slug(LLM)}.html")
    assert "LoRA r=128, alpha=256; profile quick" in llm


def test_overview_is_ranked_by_strict_f1_and_shows_size_and_budget(store, site, submitted_site):
    """Old code: rows in name order whenever a model lacked a dataset (no macro F1)."""
    _, expected = store
    html = (site / "index.html").read_text("utf-8")
    order = re.findall(r'<tr data-family="\w+" data-rank="(\d+)"[^>]*>\s*<th scope="row" data-sort="([^"]*)"', html)
    assert [int(rank) for rank, _ in order] == list(range(len(order)))
    ids = [
        model.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"').replace("&amp;", "&")
        for _, model in order
    ]
    # The encoder ran on every dataset of the table (macro F1); the others by their one F1.
    others = sorted([LLM, XSS_MODEL], key=lambda m: -expected[(m, "ncbi_disease")].strict.f1)
    assert ids == [ENCODER, *others]
    real = (submitted_site / "index.html").read_text("utf-8")
    names = re.findall(r'<th scope="row" data-sort="([^"]*)">', real)
    assert names[0] == "minilm-l6"  # the only model run on all five datasets
    assert names[1:] == [
        "minilm-l6-paper-recipe",
        "smollm2-135m",
        "smollm2-135m-generative",
    ]  # mean F1 0.816, 0.607, 0.133
    assert ">22.6M<" in real and ">135M<" in real and "quick · 1 ep." in real
    assert 'title="bc5cdr: paper; ncbi_disease: paper"' in real
    assert "1,000 parameters" in html and "quick · 300 sent. · 1 ep." in html


def test_ncbi_disease_is_said_to_stand_in_for_reddit_impacts(site):
    for page in (site / "index.html", site / "about.html", site / "datasets" / f"{slug('ncbi_disease')}.html"):
        text = " ".join(_visible(page).split())
        assert "Public stand-in for Reddit-Impacts" in text, page.name
    assert "Not one of the paper's datasets" in _visible(site / "datasets" / f"{slug('ncbi_disease')}.html")
    assert "Not one of the paper's datasets" not in _visible(site / "datasets" / f"{slug('biored')}.html")


def test_every_page_states_its_build_time_version_and_results_context(site, submitted_site):
    stamp = f'Built <time datetime="2026-02-03T04:05:06Z">2026-02-03 04:05:06 UTC</time> by nerbench {__version__}.'
    for page in site.rglob("*.html"):
        assert stamp in page.read_text("utf-8"), page.name
    text = " ".join(_visible(submitted_site / "index.html").split())
    assert "The 10 results shown (one per model and dataset): hardware a CPU (10);" in text
    assert "timing self-reported by the submitter (10); training budgets quick (8), paper (2)." in text


def test_build_time_comes_from_the_argument_or_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    assert build_time() == datetime(2026, 1, 1, tzinfo=UTC)
    assert build_time(datetime(2026, 2, 3, 4, 5, 6, 789)) == datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(NerbenchError, match="SOURCE_DATE_EPOCH=yesterday: not a whole number of seconds"):
        build_time()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    before = datetime.now(UTC).replace(microsecond=0)
    assert before <= build_time() <= datetime.now(UTC)


def test_downloads_carry_budget_and_size_and_name_cost_units(store, site, submitted_site):
    assert set(COLUMN_NOTES) == set(RESULT_COLUMNS)
    for folder in (site, submitted_site):
        header = (folder / "data" / "results.csv").read_text("utf-8").splitlines()[0].split(",")
        assert header == list(RESULT_COLUMNS)
        assert "cost_usd" not in header and "cost_per_split_usd" in header
    rows = json.loads((submitted_site / "data" / "results.json").read_text("utf-8"))
    paper = [r for r in rows if r["model_id"] == "minilm-l6-paper-recipe"]
    assert {
        (r["parameters"], r["training_regime"], r["budget_profile"], r["epochs"], r["training_declared"]) for r in paper
    } == {(22565376, "full", "paper", None, True)}
    local = json.loads((site / "data" / "results.json").read_text("utf-8"))
    encoder = next(r for r in local if r["model_id"] == ENCODER)
    assert (encoder["train_sentences"], encoder["epochs"], encoder["budget_profile"]) == (300, 1, "quick")
    parquet = duckdb.sql(
        f"SELECT parameters, train_sentences, cost_per_split_usd FROM '{site / 'data' / 'results.parquet'}'"
    )
    assert [c[1] for c in parquet.description] == ["BIGINT", "INTEGER", "DOUBLE"]
    page = _visible(site / "downloads.html")
    assert "USD for one timed pass over the whole test split" in page and "USD per 1,000 test sentences" in page


def test_scores_are_fractions_and_cost_columns_name_their_unit(site, submitted_site):
    for folder in (site, submitted_site):
        for page in folder.rglob("*.html"):
            text = " ".join(_visible(page).split())
            percents = [m for m in re.findall(r"[\d.–]+\s*%", text) if m.strip() != "95%"]
            if page.name == "about.html":  # the paper's abstract, quoted with its own scale beside ours
                assert "2–8% in F-score (0.02–0.08 on this site's scale of fractions)" in text
                percents.remove("2–8%")
            assert percents == [], (page.name, percents)
            if not page.name.startswith("compare"):  # the comparison pages are another change's
                assert "Cost / 1k" not in text, page.name
    index = _visible(site / "index.html")
    assert "Cost, USD / 1k sent." in index and "USD per 1,000 test sentences" in index


def test_cost_charts_label_every_point_draw_whiskers_and_skip_single_points(site, submitted_site):
    cost = (submitted_site / "cost.html").read_text("utf-8")
    ncbi = cost[cost.index('id="cost-ncbi_disease') :]
    # Every point has its label (old code: only the Pareto frontier's), and an F1 whisker.
    for name in ("minilm-l6", "minilm-l6-paper-recipe", "smollm2-135m", "smollm2-135m-generative"):
        assert f'class="label" text-anchor="start">{name}</text>' in ncbi or f'"end">{name}</text>' in ncbi, name
    assert ncbi[: ncbi.index("</svg>")].count('class="whisker"') == 4
    text = " ".join(_visible(submitted_site / "cost.html").split())
    for dataset in ("jnlpba", "biored", "chemprot"):
        assert (
            f"Only one model has both a score and a known cost on {dataset}, so there is nothing to compare it "
            "with yet and no chart is drawn: minilm-l6, strict F1" in text
        )
    assert cost.count("<svg") == 2  # bc5cdr and ncbi_disease; the macro chart has one point
    biored = _visible(site / "datasets" / f"{slug('biored')}.html")
    assert "Only one model has both a score and a known cost on biored" in " ".join(biored.split())


def test_label_placement_keeps_labels_apart_and_inside_the_plot():
    area = (0.0, 0.0, 600.0, 400.0)
    # Eight points in a tight cluster: the nearest spots collide, so labels move out.
    anchors = [(300.0 + 4 * i, 200.0 + 3 * (i % 3), f"model-{i}") for i in range(8)]
    obstacles = [(x - 6, y - 6, x + 6, y + 6) for x, y, _ in anchors]
    spots = place_labels(anchors, obstacles, area)
    boxes = [label_box(x, y, text, anchor) for (x, y, anchor, _), (_, _, text) in zip(spots, anchors)]
    for i, a in enumerate(boxes):
        assert area[0] <= a[0] and a[2] <= area[2] and area[1] <= a[1] and a[3] <= area[3]
        for b in boxes[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)
        for o in obstacles:
            assert min(a[2], o[2]) <= max(a[0], o[0]) or min(a[3], o[3]) <= max(a[1], o[1]), (a, o)
    assert any(leader for *_, leader in spots)  # some went further out, joined by a leader line
    # A point at the right edge takes a spot to its left; a label is cut to 28 characters.
    ((x, _, anchor, _),) = place_labels([(598.0, 200.0, "right-edge")], [], area)
    assert anchor == "end"
    svg = chart([Point(1e-3, 0.5, "x" * 40, "m.html", "llm", False, (0.45, 0.55))], title="t")
    assert "x" * 27 + "…</text>" in svg and 'class="whisker"' in svg


def test_size_classes_of_the_overview_filter(submitted_site):
    assert [size_class(n) for n in (None, 1000, 99_999_999, 10**8, 22_565_376, 134_515_008, 8 * 10**9, 7 * 10**10)] == [
        "not stated",
        "under 100M",
        "under 100M",
        "100M to 1B",
        "under 100M",
        "100M to 1B",
        "1B to 10B",
        "10B and more",
    ]
    html = (submitted_site / "index.html").read_text("utf-8")
    size = html[html.index('id="filter-size"') : html.index("</select>", html.index('id="filter-size"'))]
    assert re.findall(r'<option value="([^"]*)">', size) == ["", "under 100M", "100M to 1B"]
    assert 'data-size="100M to 1B" data-licence="apache-2.0"' in html


def test_long_lists_are_paged_and_charts_draw_the_frontier_and_the_best(store, data_dir, tmp_path, monkeypatch):
    """Pages stay small at any number of submissions (issue 19): with pages of two, the overview and
    the dataset tables are split, every model and run is on exactly one page, and the cost charts
    draw only the frontier and the best point while cost_points.csv holds them all."""
    import nerbench.site as site_module

    monkeypatch.setattr(site_module, "OVERVIEW_ROWS", 2)
    monkeypatch.setattr(site_module, "DATASET_ROWS", 2)
    monkeypatch.setattr(site_module, "CHART_POINTS", 1)
    out = tmp_path / "_site"
    report = build_site(store[0], out, data_dir=data_dir, built_at=BUILT, parallel=False)
    pages = [out / "index.html", *sorted(out.glob("overview-*.html"), key=lambda p: int(p.stem.split("-")[1]))]
    assert len(pages) == -(-report.models // 2) > 1
    listed = []
    for number, page in enumerate(pages, 1):
        html = page.read_text("utf-8")
        rows = re.findall(r'<tr data-family="[^"]*" data-rank="\d+"', html)
        assert 1 <= len(rows) <= 2
        listed += re.findall(r'<th scope="row" data-sort="([^"]*)">', html)
        assert f'<strong aria-current="page">{number}</strong>' in html and "apply to the models of this page" in html
        assert all(f'href="{other.name}"' in html for other in pages if other != page)
    assert len(listed) == len(set(listed)) == report.models
    name = slug("ncbi_disease")
    first = (out / "datasets" / f"{name}.html").read_text("utf-8")
    more = sorted((out / "datasets").glob(f"{name}-runs-*.html"))
    assert more and f'href="{more[0].name}"' in first and "F1 against cost" in first
    assert "F1 against cost" not in more[0].read_text("utf-8")
    cost = " ".join(_visible(out / "cost.html").split())
    points = (out / "data" / "cost_points.csv").read_text("utf-8").splitlines()
    assert points[0].startswith("chart,model_id,family") and len(points) > 3
    assert re.search(r"\d+ of \d+ points drawn: the Pareto frontier and the best by F1", cost)
    assert 'href="data/cost_points.csv"' in (out / "cost.html").read_text("utf-8")
