import csv
import io
import json

import pytest

from nerbench.scoring import MetricRow
from typer.testing import CliRunner

import nerbench.cli
from nerbench.errors import NerbenchError
from nerbench.store import RunRecord, Store, predictions_sha256

nerbench.cli._register()
runner = CliRunner()


Row = MetricRow  # the scorer's own row type, so the store is tested with what it receives


def _record(model_id, family, dataset, f1, long_f1, timing, source="local"):
    predictions = [["O", "B-Chemical"], ["O"]]
    return RunRecord(
        model={"id": model_id, "family": family},
        dataset=dataset,
        split="test",
        config={"seed": 0},
        dataset_sha256="a" * 64,
        modified=False,
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
        store.save_run(_record("minilm", "encoder", "bc5cdr", 0.812, 0.55, {
            "sentences_per_second": 250.0, "cost_usd": None, "device_name": "CPU: AMD EPYC (2 threads)",
            "reference_hardware": False,
        }))
        store.save_run(_record("llama-8b", "llm", "bc5cdr", 0.861, 0.70, {
            "sentences_per_second": 41.5, "cost_usd": 0.0123, "device_name": "NVIDIA H100 80GB HBM3",
            "reference_hardware": True,
        }, source="submission"))
        store.save_run(_record("minilm", "encoder", "ncbi_disease", 0.7, 0.4, None))
    return path


def test_json_rows(db):
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["model_id"], r["dataset"]) for r in rows] == [
        ("llama-8b", "bc5cdr"), ("minilm", "bc5cdr"), ("minilm", "ncbi_disease")]
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
    assert "$0.0123" in result.output


def test_missing_database_is_a_clear_error(tmp_path):
    missing = tmp_path / "none.duckdb"
    result = runner.invoke(nerbench.cli.app, ["results", "--db", str(missing)])
    assert result.exit_code != 0
    assert isinstance(result.exception, NerbenchError)
    assert "no results database" in str(result.exception)
    assert not missing.exists()  # a read command never creates a database
