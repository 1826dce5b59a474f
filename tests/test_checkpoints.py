"""Where `train` and `eval` keep a fine-tuned checkpoint: one place per whole training identity."""

from pathlib import Path

from nerbench.pipeline.checkpoints import IDENTITY_FILE, checkpoint_dir, clear_identity, is_trained, write_identity
from nerbench.recipes import EncoderRecipe
from nerbench.record import Budget, Training, Weights


def training(**kw) -> Training:
    base = dict(
        base=Weights(name="minilm-l6", source="registry", registry_id="minilm-l6"),
        dataset="bc5cdr",
        head="token",
        quantization="none",
        budget=Budget(name="quick", epochs=1),
        recipe=EncoderRecipe(),
        seed=0,
    )
    return Training(**(base | kw))


def test_the_folder_names_model_dataset_head_budget_and_identity():
    folder = checkpoint_dir(Path("runs"), "minilm-l6", training())
    assert folder.parent == Path("runs/minilm-l6/bc5cdr") and folder.name.startswith("token-quick-")
    assert checkpoint_dir(Path("runs"), "org/some-model", training()).parts[1] == "org--some-model"


def test_every_part_of_the_training_identity_gives_another_folder():
    one = checkpoint_dir(Path("runs"), "m", training())
    others = [
        training(seed=1),
        training(recipe=EncoderRecipe(label_policy="majority")),
        training(recipe=EncoderRecipe(learning_rate=1e-4)),
        training(budget=Budget(name="quick", epochs=2)),
        training(base=Weights(name="x", source="folder", sha256="0" * 64)),
    ]
    folders = {checkpoint_dir(Path("runs"), "m", t) for t in others}
    assert one not in folders and len(folders) == len(others)


def test_a_folder_counts_as_trained_only_for_its_own_identity(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    assert not is_trained(folder, training())  # weights without an identity: an unfinished training
    write_identity(folder, training())
    assert is_trained(folder, training())
    assert not is_trained(folder, training(seed=7))
    (folder / IDENTITY_FILE).write_text("{not json")
    assert not is_trained(folder, training())
    clear_identity(folder)
    assert not (folder / IDENTITY_FILE).exists()
