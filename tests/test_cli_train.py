"""`nerbench train`: --profile, the CPU estimate, the near-zero dev F1 warning and Ctrl-C (the
library call replaced by a fake); and the profile's budget in the library itself (a tiny training)."""

import json
import shutil
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import nerbench.cli
import nerbench.pipeline.train as train_module
from nerbench.cli import _runs
from nerbench.conll import read_conll, write_conll
from nerbench.pipeline import profiles
from nerbench.pipeline.train import budget_with
from nerbench.record import Budget

nerbench.cli._register()


def _record(dev_f1):
    data = {"dev_f1": dev_f1, "best_epoch": 1 + dev_f1.index(max(dev_f1)), "stopped_early": False, "wall_seconds": 3.0}
    return SimpleNamespace(**data, to_dict=lambda: dict(data))


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen = []
    state = SimpleNamespace(dev_f1=[0.5], raised=None)

    def fake_train(model, dataset, **kwargs):
        seen.append((model, dataset, kwargs))
        kwargs["started"](tmp_path / "runs" / "minilm-l6" / dataset / "token-paper-0123456789")
        if state.raised is not None:
            raise state.raised
        return _record(state.dev_f1), tmp_path / "out"

    monkeypatch.setattr(train_module, "train_on_dataset", fake_train)
    monkeypatch.setattr(_runs, "on_cpu", lambda device: False)
    return seen, state


def _train(*args, env=None):
    return CliRunner().invoke(
        nerbench.cli.app,
        ["train", "minilm-l6", "--dataset", "ncbi_disease", *args],
        env={"COLUMNS": "300", **(env or {})},
    )


def test_profile_reaches_the_library(calls):
    seen, _ = calls
    assert _train().exit_code == 0 and seen[-1][2]["profile"] == "paper"
    result = _train("--profile", "quick", "--json")
    assert result.exit_code == 0, result.output
    assert seen[-1][2]["profile"] == "quick" and json.loads(result.stdout)["out"].endswith("out")


def test_quiet_trains_without_progress_bars(calls):
    seen, _ = calls
    assert _train().exit_code == 0 and callable(seen[-1][2]["progress"])
    result = _train("--quiet")
    assert result.exit_code == 0, result.output
    assert seen[-1][2]["progress"] is None and result.output.startswith("best epoch 1 of 1")


def test_a_near_zero_best_dev_f1_is_a_warning(calls):
    """Old code printed 'dev strict F1 0.0000' and nothing else."""
    _, state = calls
    state.dev_f1 = [0.0, 0.004]
    result = _train("--max-train-sentences", "200")
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warning == (
        "warning: the best dev strict F1 of this training is 0.0040 (below 0.01): the model learnt next to nothing; "
        "on a small budget the recipe's learning rate leaves every word tagged O; --profile quick uses a learning "
        "rate chosen for a small budget"
    )
    given = _train("--profile", "quick", "--lr", "1e-3").stderr
    assert "the learning rate given (0.001) may not suit this budget; try another --lr" in given
    state.dev_f1 = [0.3]
    assert "warning" not in _train().stderr


def test_ctrl_c_says_nothing_finished_was_kept(calls, monkeypatch, tmp_path):
    _, state = calls
    state.raised = KeyboardInterrupt()
    argv = ["train", "minilm-l6", "--dataset", "ncbi_disease"]
    monkeypatch.setattr("sys.argv", ["nerbench", *argv])
    result = _train()
    assert result.exit_code == 130, (result.exception, result.output)
    folder = tmp_path / "runs" / "minilm-l6" / "ncbi_disease" / "token-paper-0123456789"
    assert result.stderr.splitlines() == [
        "interrupted (Ctrl-C).",
        f"The training was cut short: {folder} holds no finished checkpoint (eval does not use it).",
        "To start it again: nerbench train minilm-l6 --dataset ncbi_disease --overwrite",
    ]


def test_the_paper_profile_on_a_cpu_prints_the_estimate(calls, monkeypatch, data_dir):
    monkeypatch.setattr(_runs, "on_cpu", lambda device: True)
    result = _train("--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    assert "  ncbi_disease: 5,424 train + 923 dev sentences x 20 epochs: up to about" in result.stderr
    assert "--profile quick" in result.stderr
    for chosen in (["--profile", "quick"], ["--epochs", "2"]):  # a budget chosen: no notice
        assert "No GPU here" not in _train("--data-dir", str(data_dir), *chosen).stderr


def test_budget_with():
    quick = profiles.PROFILES["quick"]
    assert budget_with(quick, {"lr": None}) is quick
    custom = budget_with(quick, {"epochs": 2, "learning_rate": None})
    assert custom.name == "custom" and custom.epochs == 2 and custom.learning_rate == quick.learning_rate
    assert custom.max_train_sentences == quick.max_train_sentences
    # The paper profile with settings by hand is the budget `train` always made of them.
    assert budget_with(Budget(name="paper"), {"epochs": 1, "max_train_sentences": 8}) == Budget(
        name="custom", epochs=1, max_train_sentences=8
    )


def test_train_with_a_profile_uses_its_learning_rate_and_eval_finds_the_checkpoint(tmp_path, data_dir, monkeypatch):
    """Old `train` had no profile: a small budget got the recipe's 2e-5 and dev F1 0.0000."""
    from nerbench.pipeline import evaluate as ev
    from nerbench.pipeline.train import train_on_dataset

    tiny = Budget(name="tiny", epochs=1, learning_rate=4e-4, max_train_sentences=8, max_dev_sentences=4)
    monkeypatch.setitem(profiles.PROFILES, "tiny", tiny)
    started = []
    record, folder = train_on_dataset(
        "minilm-l6",
        "ncbi_disease",
        profile="tiny",
        data_dir=data_dir,
        runs_dir=tmp_path / "runs",
        started=started.append,
    )
    assert started == [folder] and folder.name.startswith("token-tiny-")
    assert record.recipe["learning_rate"] == 4e-4 and record.recipe["max_epochs"] == 1
    assert record.sentences["train"] == 8
    # eval predicts only the first test sentences (a modified copy: allowed, and no part of the training identity)
    small = tmp_path / "data" / "ncbi_disease"
    small.mkdir(parents=True)
    for split in ("train", "dev"):
        shutil.copyfile(data_dir / "ncbi_disease" / f"{split}.conll", small / f"{split}.conll")
    write_conll(small / "test.conll", read_conll(data_dir / "ncbi_disease" / "test.conll")[:20])
    options = ev.EvalOptions(
        datasets=("ncbi_disease",),
        profile="tiny",
        data_dir=small.parent,
        allow_modified=True,
        db=tmp_path / "r.duckdb",
        runs_dir=tmp_path / "runs",
    )
    messages = []
    (outcome,) = ev.evaluate("minilm-l6", options, say=messages.append)
    assert not outcome.trained and any(f"using the fine-tuned checkpoint in {folder}" in m for m in messages)
