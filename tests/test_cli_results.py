import csv
import io
import json

import pytest
from typer.testing import CliRunner

import nerbench.cli
from nerbench.errors import NerbenchError
from nerbench.scoring import MetricRow
from nerbench.store import RunResult, Store, predictions_sha256

from _records import run_record

nerbench.cli._register()
runner = CliRunner()


Row = MetricRow  # the scorer's own row type, so the store is tested with what it receives


def _record(model_id, family, dataset, f1, long_f1, timing, source="local", head="token", details=None):
    predictions = [["O", "B-Chemical"], ["O"]]
    return RunResult(
        model={"id": model_id, "family": family},
        record=run_record(
            model_id, family, dataset, "a" * 64, head=head, submission=model_id if source == "submission" else None
        ),
        details=details,
        predictions=predictions,
        predictions_sha256=predictions_sha256(predictions),
        metrics=[
            Row("strict", "*", "*", 1.0, 1, 1, 0.75, 0.5, f1, f1 - 0.05, f1 + 0.05),
            Row("strict", "*", "3+", 0.0, 0, 1, 0.0, 0.0, long_f1, None, None),
        ],
        timing=timing,
        source=source,
        self_reported=source == "submission",
    )


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "results.duckdb"
    with Store(path) as store:
        store.save_run(
            _record(
                "minilm",
                "encoder",
                "bc5cdr",
                0.812,
                0.55,
                {
                    "sentences_per_second": 250.0,
                    "cost_usd": None,
                    "device_name": "CPU: AMD EPYC (2 threads)",
                    "reference_hardware": False,
                },
            )
        )
        store.save_run(
            _record(
                "llama-8b",
                "llm",
                "bc5cdr",
                0.861,
                0.70,
                {
                    "sentences_per_second": 41.5,
                    "cost_usd": 0.0123,
                    "cost_per_1k_sentences_usd": 0.00256,
                    "device_name": "NVIDIA H100 80GB HBM3",
                    "reference_hardware": True,
                },
                source="submission",
            )
        )
        store.save_run(_record("minilm", "encoder", "ncbi_disease", 0.7, 0.4, None))
    return path


def test_json_rows(db):
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["model_id"], r["dataset"]) for r in rows] == [
        ("llama-8b", "bc5cdr"),
        ("minilm", "bc5cdr"),
        ("minilm", "ncbi_disease"),
    ]
    top = rows[0]
    assert top["family"] == "llm" and top["f1"] == 0.861 and top["long_f1"] == 0.70
    assert top["f1_ci_low"] == pytest.approx(0.811) and top["reference_hardware"] is True
    assert top["self_reported"] is True and top["cost_usd"] == 0.0123
    assert rows[1]["cost_usd"] is None and rows[2]["sentences_per_second"] is None


def test_dataset_filter_and_csv(db):
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(db), "--csv", "--dataset", "ncbi_disease"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 1 and rows[0]["model_id"] == "minilm" and float(rows[0]["f1"]) == 0.7


def test_table(db):
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(db)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "llama-8b" in result.output and "minilm" in result.output
    assert "0.861 [0.811, 0.911]" in result.output
    assert "unknown" in result.output  # a CPU run without a price has no cost, not $0
    # The cost column is per 1,000 sentences, as on the site and in the README, and its header says so.
    assert "$0.00256" in result.output and "$0.0123" not in result.output
    assert "USD/1k sent." in result.output


def test_missing_database_is_a_clear_error(tmp_path):
    missing = tmp_path / "none.duckdb"
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(missing)])
    assert result.exit_code != 0
    assert isinstance(result.exception, NerbenchError)
    assert "no results database" in str(result.exception)
    assert not missing.exists()  # a read command never creates a database


# --------------------------------------------------------------------------- one query, whatever the number of runs

PARSE = {"sentences": 2, "missing": 1, "extra": 0, "renamed": 3, "malformed": 0}


def _llm_runs(path, datasets):
    with Store(path) as store:
        for dataset in datasets:
            store.save_run(
                _record(
                    "tiny-llm",
                    "llm",
                    dataset,
                    0.5,
                    0.2,
                    None,
                    head="generative",
                    details={"generation": {"parse": PARSE}},
                )
            )
            store.save_run(_record("tiny-llm", "llm", dataset, 0.6, 0.3, None, head="token"))


class _CountingConnection:
    """A DuckDB connection that records each statement it is given."""

    def __init__(self, conn, statements):
        self._conn, self._statements = conn, statements

    def execute(self, sql, *args):
        self._statements.append(sql)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def _statements_of_results(monkeypatch, path) -> list[str]:
    import nerbench.store

    statements: list[str] = []
    connect = nerbench.store.duckdb.connect
    monkeypatch.setattr(
        nerbench.store.duckdb, "connect", lambda *a, **k: _CountingConnection(connect(*a, **k), statements)
    )
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(path), "--json"])
    monkeypatch.setattr(nerbench.store.duckdb, "connect", connect)
    assert result.exit_code == 0, result.output
    return statements


def test_results_run_one_query_whatever_the_number_of_runs(tmp_path, monkeypatch):
    def no_run(self, run_id):
        raise AssertionError(f"results read run {run_id} on its own")

    monkeypatch.setattr(Store, "run", no_run)
    path = tmp_path / "r.duckdb"
    _llm_runs(path, ["bc5cdr"])
    two = _statements_of_results(monkeypatch, path)
    _llm_runs(path, ["ncbi_disease", "biored", "linnaeus"])
    eight = _statements_of_results(monkeypatch, path)
    assert len(eight) == len(two)  # opening the store, then one summary query
    assert sum("FROM runs r" in sql for sql in eight) == 1


def test_head_and_parse_in_json_csv_and_table(tmp_path):
    path = tmp_path / "r.duckdb"
    _llm_runs(path, ["bc5cdr"])
    rows = json.loads(runner.invoke(nerbench.cli.app, ["results", "--db", str(path), "--json"]).output)
    assert [(r["head"], r["parse"]) for r in rows] == [("token", None), ("generative", PARSE)]
    out = runner.invoke(nerbench.cli.app, ["results", "--db", str(path), "--csv"]).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["head"], json.loads(r["parse"]) if r["parse"] else None) for r in rows] == [
        ("token", None),
        ("generative", PARSE),
    ]
    table = runner.invoke(nerbench.cli.app, ["results", "--db", str(path)], env={"COLUMNS": "250"}).output
    assert "llm token" in table and "llm generative" in table and "1/0/3/0" in table


def test_encoder_runs_have_the_token_head_and_no_parse(db):
    rows = json.loads(runner.invoke(nerbench.cli.app, ["results", "--db", str(db), "--json"]).output)
    # Every run record names a head now: an encoder's (and these runs') is the token head; no parse counts.
    assert [(r["model_id"], r["family"], r["head"], r["parse"]) for r in rows] == [
        ("llama-8b", "llm", "token", None),
        ("minilm", "encoder", "token", None),
        ("minilm", "encoder", "token", None),
    ]


# --------------------------------------------------------------------------- stored text is never markup or control

# What a submission can put into the store (model ids, device names): rich markup that would raise
# or vanish, terminal controls, bidi overrides, spreadsheet formulas.
HOSTILE = [
    "[/x]",
    "[bold]x[/bold]",
    "[red]fake[/]",
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example\x1b\\link",
    "\x9b31m C1 CSI\x7f",
    "name\u202egnp.exe",
    "\u2066isolate\u2069 \u2028sep\u2029",
    "two\nlines\r\tand tab",
    ":thumbs_up: emoji code",
    '=HYPERLINK("http://evil.example","x")',
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1)",
]


@pytest.fixture(params=range(len(HOSTILE)), ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def hostile_db(request, tmp_path):
    value = HOSTILE[request.param]
    path = tmp_path / "hostile.duckdb"
    timing = {"sentences_per_second": 1.0, "cost_usd": None, "device_name": value, "reference_hardware": False}
    with Store(path) as store:
        store.save_run(_record(value, "encoder", "bc5cdr", 0.5, 0.2, timing))
    return path, value


def _no_raw_controls(text):
    from nerbench.safe_text import UNSAFE_RE

    # Newlines lay the output out; no other unsafe character may be printed raw.
    assert not UNSAFE_RE.search(text.replace("\n", "")), ascii(text)


def test_results_table_shows_stored_text_escaped_and_never_as_markup(hostile_db):
    from nerbench.safe_text import shown

    path, value = hostile_db
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(path)])
    assert result.exit_code == 0, (result.exception, result.output)
    _no_raw_controls(result.output)
    # The one run's row, which the table may wrap over lines (at spaces): each column's text, unwrapped.
    lines = result.output.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1 :]
    cells = [line.split("│")[1:-1] for line in body if line.startswith("│")]
    model, device = ("".join(row[i] for row in cells).replace(" ", "") for i in (1, 7))
    assert model == device == shown(value).replace(" ", "")


def test_results_csv_escapes_formulas_and_controls(hostile_db):
    from nerbench.safe_text import csv_cell

    path, value = hostile_db
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(path), "--csv"])
    assert result.exit_code == 0, (result.exception, result.output)
    _no_raw_controls(result.output)
    (row,) = list(csv.DictReader(io.StringIO(result.output)))
    assert row["model_id"] == csv_cell(value) and row["device_name"] == csv_cell(value)
    formulas = [cell for cell in row.values() if cell.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert formulas == [] and float(row["f1"]) == 0.5


def test_results_json_keeps_stored_text_exact_and_prints_no_control(hostile_db):
    path, value = hostile_db
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(path), "--json"])
    assert result.exit_code == 0, (result.exception, result.output)
    _no_raw_controls(result.output)
    (row,) = json.loads(result.output)
    assert row["model_id"] == value and row["device_name"] == value
