"""`nerbench train`: fine-tune one model on one dataset with its recipe, into the folder where
`nerbench eval` looks for a checkpoint of the same training identity."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nerbench import datasets
from nerbench.pipeline.checkpoints import checkpoint_dir, clear_identity, write_identity
from nerbench.pipeline.evaluate import default_device, model_id_of, training_identity, weights_of
from nerbench.pipeline.profiles import check_profile, profile_for
from nerbench.pipeline.taggers import Request, select_tagger
from nerbench.record import Budget


def budget_with(profile: Budget, overrides: dict) -> Budget:
    """The profile's budget, or with settings given by hand a 'custom' one: the profile's settings
    with the given ones over them (a run of the plain profile keeps its name, so that `eval` of the
    same profile finds the checkpoint)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if not given:
        return profile
    return Budget(**(profile.model_dump(exclude={"name"}) | given), name="custom")


def train_on_dataset(
    model: str,
    dataset: str,
    *,
    profile: str = "paper",
    data_dir: Path | None = None,
    out_dir: Path | None = None,
    runs_dir: Path = Path("runs"),
    label_policy: str | None = None,
    revision: str | None = None,
    head: str | None = None,
    quantize: str | None = None,
    word_position: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
    max_train_sentences: int | None = None,
    seed: int = 0,
    device: str | None = None,
    progress=None,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    started: Callable[[Path], None] | None = None,
):
    """The registered recipe (the paper's for unregistered models) under a profile ("paper": the
    recipe itself; "quick": the CPU-sized budget `eval --profile quick` uses, learning rate
    included), with the given overrides, on a dataset's train and dev splits; returns the training
    record and the output folder. `started` is told the output folder before training begins."""
    from nerbench.errors import NerbenchError
    from nerbench.models.registry import resolve_model
    from nerbench.models.training import prepare_out_dir

    info = datasets.get_dataset(dataset)
    check_profile(profile)
    ref = resolve_model(model, revision)
    request = Request(
        device=device or default_device(),
        head=head,
        quantize=quantize,
        label_policy=label_policy,
        trust_remote_code=trust_remote_code,
        word_position=word_position,
    )
    tagger = select_tagger(ref, request, fine_tune=True)
    if tagger.family == "encoder" and gradient_accumulation_steps is not None:
        raise NerbenchError(f"--gradient-accumulation-steps: applies to LLMs only; {model!r} is an encoder")
    overrides = {
        "epochs": epochs,
        "learning_rate": lr,
        "batch_size": batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "max_train_sentences": max_train_sentences,
    }
    budget = budget_with(profile_for(profile, tagger.family, tagger.head), overrides)
    training = training_identity(tagger, weights_of(ref), dataset, budget, seed)
    out = Path(out_dir) if out_dir is not None else checkpoint_dir(runs_dir, model_id_of(ref), training)
    prepare_out_dir(out, overwrite)  # refuse a non-empty folder before any work
    clear_identity(out)
    train, dev = datasets.load_split(dataset, "train", data_dir), datasets.load_split(dataset, "dev", data_dir)
    if started is not None:
        started(out)
    record = tagger.train(out, budget, seed, info, train, dev, progress)
    write_identity(out, training)
    return record, out
