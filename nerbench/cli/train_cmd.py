"""`nerbench train`: fine-tune an encoder, or LoRA-tune an LLM, on a dataset with its registered recipe."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nerbench.cli import _runs
from nerbench.cli._util import (
    DataDir,
    Head,
    Json,
    LabelPolicy,
    Quantize,
    Quiet,
    Revision,
    TrainingBars,
    TrainSeed,
    TrustRemoteCode,
    WordPosition,
    line,
    plain_console,
    quiet_libraries,
    warn,
)


def train(
    model: Annotated[str, typer.Argument(help="Registry id, checkpoint folder or Hugging Face id.")],
    dataset: Annotated[str, typer.Option("--dataset", help="A registered dataset name.")],
    profile: Annotated[
        str,
        typer.Option(
            help="Fine-tuning budget: 'paper' (the recipe) or 'quick' (CPU-sized: one epoch on the first train "
            "sentences, at a learning rate chosen for it; the checkpoint `eval --profile quick` uses). "
            "--epochs, --lr and the like override it."
        ),
    ] = "paper",
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (recipe: 20).")] = None,
    lr: Annotated[
        float | None, typer.Option("--lr", help="Peak learning rate (recipes: 2e-5 encoders, 4e-5 LLMs).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Training batch size (recipes: 8 encoders, 4 LLMs).")] = None,
    seed: TrainSeed = 0,
    max_train_sentences: Annotated[int | None, typer.Option(help="Train on the first N train sentences only.")] = None,
    label_policy: LabelPolicy = None,
    head: Head = None,
    quantize: Quantize = None,
    word_position: WordPosition = None,
    gradient_accumulation_steps: Annotated[
        int | None, typer.Option(help="LLMs: micro-batches per optimizer step (recipe: 4).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default runs/<model>/<dataset>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous run in the output folder.")] = False,
    revision: Revision = None,
    trust_remote_code: TrustRemoteCode = False,
    data_dir: DataDir = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Fine-tune MODEL on DATASET's train split; keep the epoch with the best dev strict F1.

    LLMs get LoRA adapters (QLoRA on CUDA); the adapter folder is saved, and `nerbench eval` takes it.
    """
    from nerbench.pipeline.preflight import check_names

    # A typo in a name is refused before the model libraries load (seconds) and before any work.
    check_names(model, [dataset], profile, revision)
    from nerbench.pipeline.train import train_on_dataset

    quiet_libraries()
    console = plain_console(stderr=as_json)
    notes = plain_console(stderr=True)  # the estimate, warnings and what an interrupt kept
    by_hand = (epochs, lr, batch_size, max_train_sentences, gradient_accumulation_steps)
    if profile == "paper" and all(value is None for value in by_hand) and _runs.on_cpu(None):
        _runs.print_cpu_notice(notes, model, [dataset], head=head, data_dir=data_dir, allow_modified=False, test=False)
    # Given only when set, so that the library's defaults (the recipe's, or the adapter's) apply.
    optional: dict[str, Any] = {
        k: v
        for k, v in {
            "head": head,
            "quantize": quantize,
            "word_position": word_position,
            "gradient_accumulation_steps": gradient_accumulation_steps,
        }.items()
        if v is not None
    }
    started: list[Path] = []
    try:
        with TrainingBars(console) as progress:
            record, folder = train_on_dataset(
                model,
                dataset,
                profile=profile,
                data_dir=data_dir,
                out_dir=out,
                label_policy=label_policy,
                revision=revision,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                max_train_sentences=max_train_sentences,
                progress=None if quiet else progress,
                overwrite=overwrite,
                trust_remote_code=trust_remote_code,
                started=started.append,
                **optional,
            )
    except KeyboardInterrupt:
        _runs.interrupted_train(notes, started[0] if started else None)
        raise typer.Exit(_runs.INTERRUPTED) from None
    best = _runs.best_dev_f1(record.to_dict())
    warning = None if best is None else _runs.training_warning(best, profile, lr)
    if warning:
        warn(notes, warning)
    if as_json:
        typer.echo(json.dumps(record.to_dict() | {"out": str(folder)}, indent=2))
        return
    console.print(
        line(
            f"best epoch {record.best_epoch} of {len(record.dev_f1)} "
            f"(dev strict F1 {record.dev_f1[record.best_epoch - 1]:.4f}"
            f"{', stopped early' if record.stopped_early else ''}); "
            f"{record.wall_seconds:.0f} s; saved to {folder}"
        )
    )
