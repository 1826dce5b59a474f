"""`nerbench compare RUN_A RUN_B`: paired significance from stored predictions."""

import json

import pytest
from typer.testing import CliRunner

import nerbench.cli as cli
from nerbench import scoring
from nerbench.comparison import compare_runs
from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.store import RunResult, Store, predictions_sha256

from _records import run_record


def _store_run(store, model_id, dataset, split, predictions, sha):
    assert split == "test"  # a run record is of the test split
    return store.save_run(
        RunResult(
            model={"id": model_id, "family": "encoder"},
            record=run_record(model_id, "encoder", dataset, sha),
            predictions=predictions,
            predictions_sha256=predictions_sha256(predictions),
            metrics=[],
        )
    )


@pytest.fixture
def two_runs(tmp_path, data_dir):
    split = load_split("ncbi_disease", "test", data_dir)
    gold = [list(s.tags) for s in split.sentences]
    worse = [["O"] * len(t) if i % 3 == 0 else t for i, t in enumerate(gold)]
    db = tmp_path / "r.duckdb"
    with Store(db) as store:
        a = _store_run(store, "perfect", "ncbi_disease", "test", gold, split.sha256)
        b = _store_run(store, "worse", "ncbi_disease", "test", worse, split.sha256)
        c = _store_run(store, "elsewhere", "bc5cdr", "test", [["O"]], "0" * 64)
    return db, a, b, c, gold, worse


def test_compare_runs_equals_compare_on_the_predictions(two_runs, data_dir):
    db, a, b, _, gold, worse = two_runs
    result, run_a, run_b = compare_runs(db, a, b, data_dir=data_dir, resamples=2000)
    assert result == scoring.compare(gold, gold, worse, resamples=2000)
    assert result.f1_a == 1.0 and result.delta > 0 and result.p_value < 0.01
    assert run_a["model_id"] == "perfect" and run_b["model_id"] == "worse"


def test_runs_on_different_sets_are_refused(two_runs, data_dir):
    db, a, _, c, _, _ = two_runs
    with pytest.raises(NerbenchError, match="not on the same test split"):
        compare_runs(db, a, c, data_dir=data_dir)
    with pytest.raises(NerbenchError, match="run nosuchrun: not in"):
        compare_runs(db, a, "nosuchrun", data_dir=data_dir)


def test_cli_compare_runs(two_runs, data_dir):
    db, a, b, _, _, _ = two_runs
    cli._register()
    result = CliRunner().invoke(
        cli.app, ["compare", a, b, "--db", str(db), "--data-dir", str(data_dir), "--json", "--resamples", "500"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["f1_a"] == 1.0
