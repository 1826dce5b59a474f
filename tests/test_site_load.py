"""The site marks a run timed on a busy machine (nerbench.timing.MachineLoad, stored as
`timings.load`): run cards, the overview and dataset tables, the cost charts and the downloads. A run
whose load was not measured (stored before it was, or a submission) is "not measured", never idle."""

from __future__ import annotations

import csv
import json
import re

import duckdb
import pytest

from nerbench.site import build_site
from nerbench.site_data import slug
from nerbench.site_svg import Point, chart, pareto
from nerbench.store import Store

from _site_store import CPU_NAME, H100, XSS_MODEL, record, timing

BUSY, IDLE, OLD = "test-data-busy-encoder", "test-data-idle-llm", "test-data-old-encoder"


def _load(others: float, steal: float = 0.0) -> dict:
    """A MachineLoad report of three timed passes on a 2-CPU machine; busy above a quarter of it."""
    passes = [{"others_share": share, "steal_share": steal, "loadavg_1m": 1.5} for share in (0.01, others, 0.02)]
    return {"cpus": 2, "busy_share": 0.25, "busy": others > 0.25 or steal > 0.25, "passes": passes}


@pytest.fixture(scope="module")
def site(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("load")
    db = folder / "r.duckdb"
    busy = timing(CPU_NAME, False, 940, 60.0, 0.1) | {"load": _load(0.47)}
    idle = timing(CPU_NAME, False, 940, 20.0, 0.1) | {"load": _load(0.03)}
    runs = [
        (BUSY, "encoder", "ncbi_disease", 5, 0, "token", busy, "local"),
        (IDLE, "llm", "ncbi_disease", 11, 3, "generative", idle, "local"),
        (OLD, "encoder", "ncbi_disease", 6, 2, "token", timing(CPU_NAME, False, 940, 30.0, 0.1), "local"),
        (XSS_MODEL, "encoder", "ncbi_disease", 4, 1, "token", timing(H100, True, 940, 5.0, 3.2), "submission"),
    ]
    ids = {}
    with Store(db) as store:
        for model_id, family, dataset, every, offset, head, timed, source in runs:
            rec, _ = record(
                model_id, family, dataset, data_dir, every=every, offset=offset, head=head, timing_=timed, source=source
            )
            ids[model_id] = store.save_run(rec)
    out = folder / "_site"
    build_site(db, out, data_dir=data_dir, resamples=200, parallel=False)
    return out, ids


def _row(html: str, model_id: str) -> str:
    """The overview row of a model (from its link to the row's end)."""
    start = html.index(f'href="models/{slug(model_id)}.html"')
    return html[start : html.index("</tr>", start)]


def test_downloads_say_busy_idle_or_not_measured(site):
    out, ids = site
    with open(out / "data" / "results.csv", encoding="utf-8") as handle:
        csv_rows = {row["run_id"]: row["timed_busy"] for row in csv.DictReader(handle)}
    assert csv_rows == {ids[BUSY]: "True", ids[IDLE]: "False", ids[OLD]: "", ids[XSS_MODEL]: ""}
    json_rows = {row["run_id"]: row["timed_busy"] for row in json.loads((out / "data" / "results.json").read_text())}
    assert json_rows == {ids[BUSY]: True, ids[IDLE]: False, ids[OLD]: None, ids[XSS_MODEL]: None}
    parquet = str(out / "data" / "results.parquet")
    rows = duckdb.sql(f"SELECT run_id, timed_busy FROM read_parquet('{parquet}')").fetchall()
    assert dict(rows) == json_rows
    kinds = duckdb.sql(f"SELECT DISTINCT typeof(timed_busy) FROM read_parquet('{parquet}')").fetchall()
    assert kinds == [("BOOLEAN",)]
    assert "timed_busy" in (out / "downloads.html").read_text()


def test_overview_and_dataset_tables_mark_only_the_busy_run(site):
    out, _ = site
    index = (out / "index.html").read_text()
    busy_row = _row(index, BUSY)
    mark = re.search(r'<span class="mark busy" title="([^"]*)">busy</span>', busy_row)
    assert mark and mark.group(1).startswith("ncbi_disease: timed on a busy machine: other processes used up to 47%")
    assert "of its 2 CPUs" in mark.group(1) and "understate the hardware" in mark.group(1)
    for model_id in (IDLE, OLD):
        assert "mark busy" not in _row(index, model_id)
    dataset = (out / "datasets" / f"{slug('ncbi_disease')}.html").read_text()
    rows = [row for row in dataset.split("<tr>") if '<span class="mark busy" title="timed on a busy machine' in row]
    assert len(rows) == 1 and f"{slug(BUSY)}.html" in rows[0]


def test_run_cards_state_the_load_and_never_take_not_measured_for_idle(site):
    out, _ = site
    busy = (out / "models" / f"{slug(BUSY)}.html").read_text()
    assert '<th scope="row">Machine load</th><td>timed on a busy machine: other processes used up to 47%' in busy
    idle = (out / "models" / f"{slug(IDLE)}.html").read_text()
    assert "<td>timed on a machine that was not busy: other processes used at most 3% of its 2 CPUs" in idle
    assert 'class="mark busy" title' not in idle  # the footer's legend names the mark, untitled
    old = (out / "models" / f"{slug(OLD)}.html").read_text()
    assert "<td>machine load not measured (stored before nerbench measured it)</td>" in old
    submitted = (out / "models" / f"{slug(XSS_MODEL)}.html").read_text()
    assert "machine load not measured (a submission&#39;s own timing)" in submitted


def test_cost_charts_ring_the_busy_point_and_keep_it_off_the_frontier(site):
    out, _ = site
    cost = (out / "cost.html").read_text()
    assert "dashed ring was timed on a busy machine" in cost
    rings = re.findall(r"<a href=\"[^\"]*\"><title>([^<]*)</title><circle[^>]*stroke-dasharray", cost)
    assert rings and all(tip.startswith(BUSY) and "timed on a busy machine" in tip for tip in rings)


def test_a_busy_point_is_never_on_the_frontier():
    cheap_busy = Point(0.001, 0.9, "busy", "b.html", "encoder", False, busy=True)
    idle = Point(0.01, 0.8, "idle", "i.html", "encoder", False)
    assert pareto([cheap_busy, idle]) == [idle]
    svg = str(chart([cheap_busy, idle], title="t"))
    assert svg.count("stroke-dasharray") == 1 and "kept off the frontier" in svg
