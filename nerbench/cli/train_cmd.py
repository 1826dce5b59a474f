"""`nerbench train`: fine-tune an encoder, or LoRA-tune an LLM, on a dataset with its registered recipe."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nerbench.cli.options import DataDir, Json


def _quiet_transformers() -> None:
    # Load reports and shard bars would break the progress display; errors still surface.
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def train(
    model: Annotated[str, typer.Argument(help="Registry id, checkpoint folder or Hugging Face id.")],
    dataset: Annotated[str, typer.Option("--dataset", help="A registered dataset name.")],
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs (recipe: 20).")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Peak learning rate (recipes: 2e-5 encoders, 4e-5 LLMs).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Training batch size (recipes: 8 encoders, 4 LLMs).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the head, shuffling and dropout.")] = 0,
    max_train_sentences: Annotated[
        Optional[int], typer.Option(help="Train on the first N train sentences only.")
    ] = None,
    label_policy: Annotated[
        Optional[str], typer.Option(help="'first' sub-token (default) or 'majority' (the paper's).")
    ] = None,
    head: Annotated[
        Optional[str], typer.Option(help="LLMs: 'token' (classification head, default) or 'generative' (token:TAG lines).")
    ] = None,
    quantize: Annotated[
        Optional[str], typer.Option(help="LLMs: 'none' or 'nf4' base weights (default: nf4 on CUDA, none on CPU).")
    ] = None,
    gradient_accumulation_steps: Annotated[
        Optional[int], typer.Option(help="LLMs: micro-batches per optimizer step (recipe: 4).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output folder (default runs/<model>/<dataset>).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a previous run in the output folder.")] = False,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision of the base model.")] = None,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (unsafe).")
    ] = False,
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """Fine-tune MODEL on DATASET's train split; keep the epoch with the best dev strict F1.

    LLMs get LoRA adapters (QLoRA on CUDA); the adapter folder is saved, and `nerbench eval` takes it.
    """
    from nerbench.models.training import train_on_dataset

    _quiet_transformers()
    console = Console(stderr=as_json)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[dev]}"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        tasks: dict[int, int] = {}

        def progress(event) -> None:
            if event.epoch not in tasks:
                tasks[event.epoch] = bar.add_task(f"epoch {event.epoch}/{event.max_epochs}",
                                                  total=event.steps, loss=0.0, dev="")
            dev = "" if event.dev_f1 is None else f"dev strict F1 {event.dev_f1:.4f}"
            bar.update(tasks[event.epoch], completed=event.step, loss=event.loss, dev=dev)

        record, folder = train_on_dataset(
            model, dataset, data_dir=data_dir, out_dir=out, label_policy=label_policy,
            revision=revision, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
            max_train_sentences=max_train_sentences, progress=progress, overwrite=overwrite,
            trust_remote_code=trust_remote_code,
            **{k: v for k, v in {"head": head, "quantize": quantize,
                                 "gradient_accumulation_steps": gradient_accumulation_steps}.items()
               if v is not None},
        )
    if as_json:
        typer.echo(json.dumps(record.to_dict() | {"out": str(folder)}, indent=2))
        return
    console.print(
        f"best epoch {record.best_epoch} of {len(record.dev_f1)} "
        f"(dev strict F1 {record.dev_f1[record.best_epoch - 1]:.4f}"
        f"{', stopped early' if record.stopped_early else ''}); "
        f"{record.wall_seconds:.0f} s; saved to {folder}",
        highlight=False,
    )
