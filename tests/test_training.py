import json

import pytest
import torch
from safetensors.torch import load_file

from nerbench.conll import Sentence
from nerbench.datasets import get_dataset, load_split
from nerbench.errors import NerbenchError
from nerbench.models import training as training_module
from nerbench.models.catalogue import get_model
from nerbench.models.encoder import EncoderPredictor
from nerbench.models.predictor import predict_all
from nerbench.models.training import TrainingProgress, train_encoder
from nerbench.recipes import EncoderRecipe

from _tiny_models import NCBI_LABELS, save_tiny_bert


@pytest.fixture(scope="module")
def ncbi(data_dir):
    train = load_split("ncbi_disease", "train", data_dir)
    dev = load_split("ncbi_disease", "dev", data_dir)
    return train, dev


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "base")


def scripted(f1s):
    """A dev evaluator that reports the given F1 values epoch after epoch."""
    values = iter(f1s)
    return lambda gold, pred: next(values)


def _train(base, ncbi, out, **kw):
    train, dev = ncbi
    kw.setdefault("epochs", 2)
    return train_encoder(str(base), train.sentences[:24], dev.sentences[:8], NCBI_LABELS, EncoderRecipe(), out, **kw)


def test_dataset_labels_are_the_tiny_models():
    assert get_dataset("ncbi_disease").labels == NCBI_LABELS


def test_saved_weights_are_the_best_epochs_not_the_last(base, ncbi, tmp_path, monkeypatch):
    snapshots = []

    class Spy(EncoderPredictor):  # built once per epoch, on the weights being evaluated
        def __init__(self, model, *args, **kwargs):
            snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(training_module, "EncoderPredictor", Spy)
    record = _train(
        base,
        ncbi,
        tmp_path / "out",
        epochs=8,
        lr=1e-3,
        dev_evaluator=scripted([0.5, 0.9, 0.3, 0.2, 0.1, 0.95, 0.99, 1.0]),
    )
    assert record.dev_f1 == [0.5, 0.9, 0.3, 0.2, 0.1]  # patience 3 after the best epoch
    assert (record.best_epoch, record.stopped_early) == (2, True)
    saved = load_file(tmp_path / "out" / "model.safetensors")
    assert len(snapshots) == 5
    best, last = snapshots[1], snapshots[-1]
    assert saved.keys() <= best.keys()
    assert all(torch.equal(saved[k], best[k]) for k in saved)
    assert not all(torch.equal(saved[k], last[k]) for k in saved)


def test_output_folder_layout_and_record(base, ncbi, tmp_path):
    events = []
    record = _train(
        base,
        ncbi,
        tmp_path / "out",
        seed=3,
        max_train_sentences=16,
        progress=events.append,
        dataset="ncbi_disease",
        data_sha256={"train": ncbi[0].sha256, "dev": ncbi[1].sha256},
    )
    out = tmp_path / "out"
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not list(out.glob("*.bin"))
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(NCBI_LABELS)}
    assert config["label2id"] == {label: i for i, label in enumerate(NCBI_LABELS)}
    saved = json.loads((out / "training.json").read_text())
    assert saved == json.loads(json.dumps(record.to_dict()))
    assert saved["data"]["files"] == {"train": ncbi[0].sha256, "dev": ncbi[1].sha256}
    assert saved["sentences"] == {"train": 16, "dev": 8}
    assert saved["overrides"] == {"max_epochs": 2, "max_train_sentences": 16}
    assert saved["recipe"]["max_epochs"] == 2 and saved["recipe"]["learning_rate"] == 2e-5
    assert saved["seed"] == 3 and len(saved["dev_f1"]) == 2 and saved["best_epoch"] in (1, 2)
    assert {"torch", "transformers", "nerbench"} <= saved["versions"].keys()
    assert saved["wall_seconds"] > 0
    assert "/" not in (saved["model"]["path"] or "")  # no machine paths in the record
    # progress: one event per step (16 sentences / batch 8 = 2) plus one per epoch with dev F1
    assert [(e.epoch, e.step, e.dev_f1 is not None) for e in events] == [
        (1, 1, False),
        (1, 2, False),
        (1, 2, True),
        (2, 1, False),
        (2, 2, False),
        (2, 2, True),
    ]
    assert all(isinstance(e, TrainingProgress) and e.loss > 0 for e in events)


def test_training_is_seeded_and_deterministic_on_cpu(base, ncbi, tmp_path):
    runs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        _train(base, ncbi, tmp_path / name, epochs=1, seed=seed, lr=1e-3)
        runs[name] = load_file(tmp_path / name / "model.safetensors")
    assert all(torch.equal(runs["a"][k], runs["b"][k]) for k in runs["a"])
    assert not all(torch.equal(runs["a"][k], runs["c"][k]) for k in runs["a"])


def test_majority_policy_is_recorded_and_reused(base, ncbi, tmp_path):
    train, dev = ncbi
    recipe = EncoderRecipe(label_policy="majority", max_length=64)
    train_encoder(str(base), train.sentences[:8], dev.sentences[:4], NCBI_LABELS, recipe, tmp_path / "out", epochs=1)
    predictor = EncoderPredictor.load(str(tmp_path / "out"), NCBI_LABELS)
    assert (predictor.label_policy, predictor.max_length) == ("majority", 64)


def test_unknown_tag_names_the_sentence(base, tmp_path):
    bad = [Sentence(("aspirin",), ("B-Chemical",), 7)]
    ok = [Sentence(("fever",), ("O",), 1)]
    with pytest.raises(NerbenchError, match="line 7.*B-Chemical"):
        train_encoder(str(base), bad, ok, NCBI_LABELS, EncoderRecipe(), tmp_path / "out")


def test_non_empty_output_folder_is_refused(base, ncbi, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(NerbenchError, match="not empty"):
        _train(base, ncbi, tmp_path / "out")
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_bad_overrides_are_refused(base, ncbi, tmp_path):
    with pytest.raises(NerbenchError, match="batch_size"):
        _train(base, ncbi, tmp_path / "out", batch_size=0)
    with pytest.raises(NerbenchError, match="max_train_sentences"):
        _train(base, ncbi, tmp_path / "out2", max_train_sentences=0)


def test_minilm_fine_tunes_on_a_real_slice_and_reloads(ncbi, tmp_path):
    """Plumbing on the real encoder: 64 sentences, 1 epoch. Its F1 is not a result."""
    train, dev = ncbi
    seen = []

    def evaluator(gold, pred):
        seen.append(pred)
        return training_module.strict_f1(gold, pred)

    record = train_encoder(
        "minilm-l6",
        train.sentences[:64],
        dev.sentences[:48],
        NCBI_LABELS,
        get_model("minilm-l6").recipe,
        tmp_path / "minilm",
        epochs=1,
        dev_evaluator=evaluator,
    )
    assert record.model["registry_id"] == "minilm-l6" and 0.0 <= record.dev_f1[0] <= 1.0
    reloaded = EncoderPredictor.load(str(tmp_path / "minilm"), NCBI_LABELS)
    assert predict_all(reloaded, [s.tokens for s in dev.sentences[:48]]) == seen[0]


def test_cli_train_writes_the_run(base, data_dir, tmp_path):
    from typer.testing import CliRunner

    import nerbench.cli

    if "train" not in [c.name for c in nerbench.cli.app.registered_commands]:
        nerbench.cli._register()
    out = tmp_path / "run"
    args = [
        "train",
        str(base),
        "--dataset",
        "ncbi_disease",
        "--epochs",
        "1",
        "--max-train-sentences",
        "8",
        "--batch-size",
        "4",
        "--seed",
        "5",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--json",
    ]
    result = CliRunner().invoke(nerbench.cli.app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "training.json").read_text())
    assert record["dataset"] == "ncbi_disease" and record["seed"] == 5
    assert record["sentences"]["train"] == 8 and record["recipe"]["batch_size"] == 4
    assert record["data"]["files"]["train"] == load_split("ncbi_disease", "train", data_dir).sha256
    again = CliRunner().invoke(nerbench.cli.app, args)  # the folder is now taken
    assert isinstance(again.exception, NerbenchError) and "not empty" in str(again.exception)
    replaced = CliRunner().invoke(nerbench.cli.app, [*args[:-1], "--overwrite", "--seed", "6", "--json"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((out / "training.json").read_text())["seed"] == 6
