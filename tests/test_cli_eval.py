"""`nerbench eval` only parses and formats: the library call is replaced by a fake that reports."""

import json

import pytest
from typer.testing import CliRunner

import nerbench.cli
import nerbench.pipeline.evaluate as pipeline
from nerbench.models.training import TrainingProgress
from nerbench.pipeline.evaluate import EvalOutcome

nerbench.cli._register()

PARSE = {"sentences": 4, "missing": 1, "extra": 2, "renamed": 0, "malformed": 3}


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake_evaluate(model, options, *, say, training_progress):
        seen.append((model, options))
        say("bc5cdr: fine-tuning")
        training_progress(TrainingProgress(epoch=1, max_epochs=1, step=1, steps=1, loss=0.5))
        training_progress(TrainingProgress(epoch=1, max_epochs=1, step=1, steps=1, loss=0.5, dev_f1=0.625))
        return [
            EvalOutcome(
                "bc5cdr",
                "stored",
                "abc123",
                0.81234,
                0.5,
                12.345,
                trained=True,
                profile="quick",
                details={"generation": {"parse": PARSE}},
            ),
            EvalOutcome("ncbi_disease", "skipped", "def456", None, None, profile="quick"),
        ]

    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    return seen


def test_options_reach_the_library_as_given(calls, tmp_path):
    args = [
        "eval",
        "tiny",
        "--dataset",
        "bc5cdr",
        "--dataset",
        "ncbi_disease",
        "--profile",
        "quick",
        "--seed",
        "3",
        "--label-policy",
        "majority",
        "--head",
        "generative",
        "--quantize",
        "none",
        "--revision",
        "v1",
        "--trust-remote-code",
        "--db",
        str(tmp_path / "r.duckdb"),
        "--json",
    ]
    result = CliRunner().invoke(nerbench.cli.app, args)
    assert result.exit_code == 0, result.output
    ((model, options),) = calls
    assert model == "tiny" and options.datasets == ("bc5cdr", "ncbi_disease") and options.profile == "quick"
    assert (options.seed, options.label_policy, options.head, options.quantize, options.revision) == (
        3,
        "majority",
        "generative",
        "none",
        "v1",
    )
    assert options.trust_remote_code is True and options.db == tmp_path / "r.duckdb"


def test_json_carries_the_parse_counts_and_not_the_details(calls, tmp_path):
    result = CliRunner().invoke(nerbench.cli.app, ["eval", "tiny", "--db", str(tmp_path / "r.duckdb"), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)  # progress lines go to stderr with --json
    assert [(r["dataset"], r["parse"]) for r in rows] == [("bc5cdr", PARSE), ("ncbi_disease", None)]
    assert all("details" not in r for r in rows)


def test_table_shows_progress_lines_scores_and_parse_counts(calls, tmp_path):
    result = CliRunner().invoke(
        nerbench.cli.app, ["eval", "tiny", "--db", str(tmp_path / "r.duckdb")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "bc5cdr: fine-tuning" in out and "epoch 1/1: mean loss 0.5000, dev strict F1 0.6250" in out
    assert "tiny (quick profile)" in out and "0.8123" in out and "12.35" in out and "81.23" not in out
    assert "1 / 2 / 0 / 3" in out
