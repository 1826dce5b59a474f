"""`nerbench eval` only parses and formats: the library call is replaced by a fake that reports."""

import json
import re

import pytest
from typer.testing import CliRunner

import nerbench.cli
import nerbench.pipeline.evaluate as pipeline
import nerbench.pipeline.preflight as preflight
from nerbench.models.training import TrainingProgress
from nerbench.pipeline.evaluate import EvalOutcome

nerbench.cli._register()

PARSE = {"sentences": 4, "missing": 1, "extra": 2, "renamed": 0, "malformed": 3}


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def fake_evaluate(model, options, *, say, training_progress, prediction_progress):
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
    monkeypatch.setattr(preflight, "check_names", lambda *args: None)  # "tiny" is no registered model
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


# --------------------------------------------------------------------------- progress you can see


class _AllO:
    """A predictor of the timing protocol's surface: every word O, batches of two."""

    labels, batch_size, device = ("O",), 2, "cpu"

    def batches(self, sentences):
        return [list(range(i, min(i + 2, len(sentences)))) for i in range(0, len(sentences), 2)]

    def predict_batch(self, sentences):
        return [["O"] * len(s) for s in sentences]

    def synchronize(self):
        pass


@pytest.fixture
def timed_eval(monkeypatch):
    """An eval that trains one epoch of two steps and predicts four sentences under the real protocol."""
    from nerbench.timing import run_timed

    def fake_evaluate(model, options, *, say, training_progress, prediction_progress):
        say("bc5cdr: training")
        for step in (1, 2):
            if training_progress:
                training_progress(TrainingProgress(epoch=1, max_epochs=1, step=step, steps=2, loss=0.5))
        if training_progress:
            training_progress(TrainingProgress(epoch=1, max_epochs=1, step=2, steps=2, loss=0.5, dev_f1=0.5))
        say("bc5cdr: predicting 4 test sentences")
        sentences = [["a", "b"], ["c"], ["d", "e", "f"], ["g"]]
        _, timing = run_timed(_AllO(), sentences, progress=prediction_progress)
        return [EvalOutcome("bc5cdr", "stored", "abc123", 0.5, 0.5, timing.sentences_per_second, profile="quick")]

    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    monkeypatch.setattr(preflight, "check_names", lambda *args: None)


PHASES = ("warm-up", "timed pass 1/3", "timed pass 2/3", "timed pass 3/3")
PHASE_LINES = tuple(f"  {phase}: 4 sentences in " for phase in PHASES)


def test_a_terminal_shows_bars_with_counts_and_rates_of_training_and_every_prediction_phase(timed_eval, tmp_path):
    terminal = {"FORCE_COLOR": "1", "TERM": "xterm", "COLUMNS": "200"}
    result = CliRunner().invoke(nerbench.cli.app, ["eval", "tiny", "--db", str(tmp_path / "r.duckdb")], env=terminal)
    assert result.exit_code == 0, result.output
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", result.output)  # the text of every frame drawn
    # the bars (drawn as they start and as lines print above them, then cleared) and the lines that stay
    assert "training epoch 1/1" in out and "/2 steps" in out
    assert "timed pass 3/3" in out and re.search(r"4/4 sentences +[\d.]+/s", out)
    assert all(phase in out for phase in PHASE_LINES) and "epoch 1/1: mean loss 0.5000" in out


def test_a_log_gets_one_line_per_epoch_and_phase_and_no_bars(timed_eval, tmp_path):
    result = CliRunner().invoke(
        nerbench.cli.app, ["eval", "tiny", "--db", str(tmp_path / "r.duckdb")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:3] == [
        "bc5cdr: training",
        "  epoch 1/1: mean loss 0.5000, dev strict F1 0.5000",
        "bc5cdr: predicting 4 test sentences",
    ]
    assert [line.startswith(phase) for line, phase in zip(lines[3:7], PHASE_LINES)] == [True] * 4
    assert lines[7].strip() == "tiny (quick profile)" and "\x1b" not in result.output  # the table, no escapes
    assert "4/4 sentences" not in result.output and "steps" not in result.output


@pytest.mark.parametrize("terminal", [False, True], ids=["log", "terminal"])
def test_quiet_shows_no_progress(timed_eval, tmp_path, terminal):
    env = {"COLUMNS": "200"} | ({"FORCE_COLOR": "1", "TERM": "xterm"} if terminal else {})
    result = CliRunner().invoke(
        nerbench.cli.app, ["eval", "tiny", "--db", str(tmp_path / "r.duckdb"), "--quiet"], env=env
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()  # the steps' messages, then the table: nothing between them
    assert lines[:2] == ["bc5cdr: training", "bc5cdr: predicting 4 test sentences"] and "abc123" in result.output
    assert lines[2].strip() == "tiny (quick profile)" and "\x1b[?25l" not in result.output  # no live display


# --------------------------------------------------------------------------- a newcomer's first hour


def _outcome(dataset, f1, dev=None, profile="paper"):
    training = {"dev_f1": [dev], "best_epoch": 1} if dev is not None else None
    return EvalOutcome(
        dataset,
        "stored",
        f"run-{dataset}",
        f1,
        0.0,
        10.0,
        trained=True,
        profile=profile,
        details={"training": training},
    )


@pytest.fixture
def fake(monkeypatch):
    """Replace the library: `fake.outcomes` is returned, `fake.raised` raised (after `fake.before`)."""

    class Fake:
        outcomes: list = []
        raised: BaseException | None = None
        before = staticmethod(lambda options: None)

    def fake_evaluate(model, options, *, say, training_progress, prediction_progress):
        Fake.before(options)
        if Fake.raised is not None:
            raise Fake.raised
        return Fake.outcomes

    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    return Fake


def test_the_paper_profile_on_a_cpu_says_what_it_will_cost_and_how_to_choose_quick(
    fake, tmp_path, monkeypatch, data_dir
):
    from nerbench.cli import _runs

    monkeypatch.setattr(_runs, "on_cpu", lambda device: True)
    fake.outcomes = [_outcome("ncbi_disease", 0.5)]
    args = [
        "eval",
        "minilm-l6",
        "--dataset",
        "ncbi_disease",
        "--db",
        str(tmp_path / "r.duckdb"),
        "--data-dir",
        str(data_dir),
    ]
    result = CliRunner().invoke(nerbench.cli.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "No GPU here (device cpu): the paper profile fine-tunes minilm-l6" in err
    assert (
        "  ncbi_disease: 5,424 train + 923 dev sentences x 20 epochs + 940 test sentences x 3 timed passes: up to about"
        in err
    )
    assert "For a CPU-sized budget add --profile quick" in err and "ENVIRONMENT.md" in err
    assert "No GPU here" not in result.stdout  # the notice goes to stderr, the results to stdout
    quick = CliRunner().invoke(nerbench.cli.app, [*args, "--profile", "quick"], env={"COLUMNS": "200"})
    assert quick.exit_code == 0 and "No GPU here" not in quick.output
    monkeypatch.setattr(_runs, "on_cpu", lambda device: False)
    gpu = CliRunner().invoke(nerbench.cli.app, args, env={"COLUMNS": "200"})
    assert gpu.exit_code == 0 and "No GPU here" not in gpu.output


def test_a_near_zero_f1_is_stored_with_a_warning(fake, tmp_path, monkeypatch):
    from nerbench.cli import _runs

    monkeypatch.setattr(_runs, "on_cpu", lambda device: False)
    fake.outcomes = [_outcome("ncbi_disease", 0.0, dev=0.0), _outcome("bc5cdr", 0.62, dev=0.6)]
    args = ["eval", "minilm-l6", "--dataset", "ncbi_disease", "--dataset", "bc5cdr", "--db", str(tmp_path / "r.duckdb")]
    result = CliRunner().invoke(nerbench.cli.app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: ncbi_disease: run run-ncbi_disease was stored with strict F1 0.0000 (below 0.01): the model "
        "found next to none of the test set's entities; its fine-tuning kept an epoch of dev strict F1 0.0000; on "
        "a small budget the recipe's learning rate leaves every word tagged O; --profile quick uses a learning "
        "rate chosen for a small budget"
    ]


def test_unknown_names_are_refused_before_the_model_libraries_load(tmp_path):
    """Old code imported transformers and torch first: 4.5 s to refuse a typo."""
    import subprocess
    import sys

    code = (
        "import sys, nerbench.cli as cli\n"
        "sys.argv = ['nerbench', *sys.argv[1:]]\n"
        "try:\n    cli.main()\n"
        "except SystemExit as exit:\n"
        "    print('exit', exit.code, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    db = str(tmp_path / "r.duckdb")
    cases = [
        (["eval", "minilm-l6", "--dataset", "nosuch", "--db", db], "error: unknown dataset 'nosuch'"),
        (["eval", "minilm-l7", "--dataset", "ncbi_disease", "--db", db], "error: unknown model 'minilm-l7'"),
        (["eval", "minilm-l6", "--profile", "fast", "--db", db], "error: --profile: unknown profile 'fast'"),
        (["train", "minilm-l6", "--dataset", "nosuch"], "error: unknown dataset 'nosuch'"),
        (["train", "minilm-l7", "--dataset", "ncbi_disease"], "error: unknown model 'minilm-l7'"),
        (["train", "minilm-l6", "--dataset", "ncbi_disease", "--profile", "fast"], "error: --profile: unknown"),
    ]
    for args, error in cases:
        done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip() == "exit 2 False False", (args, done.stdout, done.stderr)
        assert done.stderr.startswith(error), (args, done.stderr)  # no blank line before the error
    assert not (tmp_path / "r.duckdb").exists()


def test_ctrl_c_says_what_was_kept_and_how_to_resume(fake, tmp_path, monkeypatch, data_dir):
    """Old code printed nothing (click's 'Aborted!') and exited 1."""
    from nerbench.cli import _runs
    from nerbench.store import RunResult, Store, predictions_sha256

    from _records import run_record

    monkeypatch.setattr(_runs, "on_cpu", lambda device: False)
    db = tmp_path / "r.duckdb"
    with Store(db) as store:  # a run stored by an earlier eval: not this eval's
        store.save_run(
            RunResult(
                model={"id": "old", "family": "encoder"},
                record=run_record("old"),
                predictions=[["O"]],
                predictions_sha256=predictions_sha256([["O"]]),
                metrics=[],
            )
        )

    def store_one_then_stop(options):
        with Store(options.db) as store:
            return store.save_run(
                RunResult(
                    model={"id": "minilm-l6", "family": "encoder"},
                    record=run_record("minilm-l6", dataset="ncbi_disease"),
                    predictions=[["O"]],
                    predictions_sha256=predictions_sha256([["O"]]),
                    metrics=[],
                )
            )

    fake.before = staticmethod(store_one_then_stop)
    fake.raised = KeyboardInterrupt()
    argv = ["eval", "minilm-l6", "--dataset", "ncbi_disease", "--dataset", "bc5cdr", "--force", "--db", str(db)]
    monkeypatch.setattr("sys.argv", ["/somewhere/bin/nerbench", *argv])
    result = CliRunner().invoke(nerbench.cli.app, argv, env={"COLUMNS": "300"})
    assert result.exit_code == 130, (result.exception, result.output)
    with Store(db) as store:
        (new,) = [row["run_id"] for row in store.summary() if row["model_id"] == "minilm-l6"]
    lines = result.stderr.splitlines()
    assert lines[0] == "interrupted (Ctrl-C)."
    assert lines[1] == f"Kept: the 1 run(s) this eval stored in {db}: ncbi_disease (run {new})."
    assert lines[2] == (
        "Fine-tuned checkpoints finished before the interrupt stay in runs and are reused; a training cut short "
        "starts again."
    )
    assert lines[3] == (
        f"To resume: nerbench eval minilm-l6 --dataset ncbi_disease --dataset bc5cdr --db {db} "
        "(stored datasets are skipped)"
    )

    fake.before = staticmethod(lambda options: None)
    result = CliRunner().invoke(nerbench.cli.app, argv, env={"COLUMNS": "300"})
    assert result.exit_code == 130 and f"No run of this eval was stored in {db} yet." in result.stderr
