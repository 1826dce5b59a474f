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


def _store_run(store, model_id, dataset, split, predictions, sha, **record):
    assert split == "test"  # a run record is of the test split
    return store.save_run(
        RunResult(
            model={"id": model_id, "family": "encoder"},
            record=run_record(model_id, "encoder", dataset, sha, **record),
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
    documents = load_split("ncbi_disease", "test", data_dir).documents
    assert documents is not None  # the split's sidecar: documents are resampled, not sentences
    assert result == scoring.compare(gold, gold, worse, resamples=2000, units=documents)
    assert (result.unit, result.units, result.seeds_a, result.seeds_b) == ("document", 100, 1, 1)
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
    out = json.loads(result.output)
    assert out["f1_a"] == 1.0 and out["names"] == {"A": "perfect on ncbi_disease", "B": "worse on ncbi_disease"}
    text = CliRunner().invoke(
        cli.app, ["compare", a, b, "--db", str(db), "--data-dir", str(data_dir), "--resamples", "200"]
    )
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    # The runs are named (model, dataset, track), the scores are fractions; no anonymous "A" and "B".
    assert lines[0] == "strict F1 on ncbi_disease (test):"
    assert lines[1] == "  perfect on ncbi_disease: 1.0000 [budget not stated · no timing · no hardware]"
    assert lines[2].startswith("  worse on ncbi_disease: 0.")
    assert lines[3].startswith(
        f"  difference perfect on ncbi_disease − worse on ncbi_disease: {out['delta']:.4f} (95% CI"
    )
    assert " A " not in text.output and "A − B" not in text.output


@pytest.fixture
def seed_runs(two_runs, data_dir):
    db, a, b, c, gold, worse = two_runs
    other = [["O"] * len(t) if i % 5 == 1 else t for i, t in enumerate(gold)]
    sha = load_split("ncbi_disease", "test", data_dir).sha256
    with Store(db) as store:
        a2 = _store_run(store, "perfect", "ncbi_disease", "test", other, sha, profile="quick", seed=1)
        b2 = _store_run(store, "worse", "ncbi_disease", "test", other, sha, profile="quick", seed=2)
    return db, (a, a2), (b, b2), c, gold, worse, other


def test_seed_runs_are_pooled(seed_runs, data_dir):
    db, (a, a2), (b, b2), _, gold, worse, other = seed_runs
    result, run_a, run_b = compare_runs(db, [a, a2], [b, b2, a2], data_dir=data_dir, resamples=500)
    documents = load_split("ncbi_disease", "test", data_dir).documents
    expected = scoring.compare_seeds(gold, [gold, other], [worse, other, other], resamples=500, units=documents)
    assert result == expected and (result.seeds_a, result.seeds_b, result.units) == (2, 3, 100)
    assert run_a["run_id"] == a and run_b["run_id"] == b
    one, _, _ = compare_runs(db, a, [b], data_dir=data_dir, resamples=500)
    assert one == compare_runs(db, a, b, data_dir=data_dir, resamples=500)[0]


def test_every_seed_run_is_checked(seed_runs, data_dir):
    db, (a, a2), (b, _), c, _, _, _ = seed_runs
    with pytest.raises(NerbenchError, match=f"runs {a} .* and {c} .* are not on the same test split"):
        compare_runs(db, [a, a2], [b, c], data_dir=data_dir)
    with pytest.raises(NerbenchError, match=f"run A: {a2} given more than once"):
        compare_runs(db, [a, a2, a2], b, data_dir=data_dir)
    with pytest.raises(NerbenchError, match="run B: no run id given"):
        compare_runs(db, a, [], data_dir=data_dir)


def test_cli_compare_seed_runs(seed_runs, data_dir):
    db, (a, a2), (b, b2), _, _, _, _ = seed_runs
    cli._register()
    args = ["compare", f"{a},{a2}", f"{b},{b2}", "--db", str(db), "--data-dir", str(data_dir), "--resamples", "300"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "(approximate randomization over 100 documents, 300 rounds)" in result.output
    assert "seeds: 2 vs 2" in result.output
    result = CliRunner().invoke(cli.app, args + ["--json"])
    out = json.loads(result.stdout)  # a warning about tracks goes to stderr
    assert out["seeds_a"] == 2 and out["unit"] == "document"


def test_compare_warns_when_the_runs_are_on_different_tracks(two_runs, data_dir, tmp_path):
    """Old code compared a paper-recipe run with a quick-budget run without a word."""
    db, a, _, _, gold, worse = two_runs
    sha = load_split("ncbi_disease", "test", data_dir).sha256
    with Store(db) as store:
        quick = _store_run(store, "quick-model", "ncbi_disease", "test", worse, sha, profile="quick")
        paper = _store_run(store, "paper-model", "ncbi_disease", "test", gold, sha, profile="paper")
    cli._register()
    args = ["--db", str(db), "--data-dir", str(data_dir), "--resamples", "200"]
    mixed = CliRunner().invoke(cli.app, ["compare", paper, quick, *args])
    assert mixed.exit_code == 0, mixed.output
    assert (
        "warning: paper-model on ncbi_disease is on track 'paper budget · no timing · no hardware', "
        "quick-model on ncbi_disease on 'quick budget" in mixed.output
    )
    same = CliRunner().invoke(cli.app, ["compare", a, _store_two(db, sha, worse), *args])
    assert same.exit_code == 0 and "warning" not in same.output


def _store_two(db, sha, predictions):
    with Store(db) as store:
        return _store_run(store, "another", "ncbi_disease", "test", predictions, sha)
