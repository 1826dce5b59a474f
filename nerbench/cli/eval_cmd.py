"""`nerbench eval MODEL`: fine-tune where needed, predict, time, score and store."""

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nerbench.cli.options import DataDir, Db, Json, wide_console
from nerbench.cli.train_cmd import _quiet_transformers
from nerbench.datasets import DEFAULT_SUITE


def eval_model(
    model: Annotated[str, typer.Argument(help="Registry id, checkpoint folder, PEFT adapter folder or Hugging Face id.")],
    dataset: Annotated[
        Optional[list[str]], typer.Option("--dataset", help="Dataset to evaluate on (repeatable; default: the five).")
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Fine-tuning budget for registry models: 'paper' (the recipe) or 'quick' (CPU-sized).")
    ] = "paper",
    seed: Annotated[int, typer.Option(help="Seed of fine-tuning.")] = 0,
    label_policy: Annotated[
        Optional[str], typer.Option(help="'first' sub-token (default) or 'majority' (the paper's).")
    ] = None,
    price_per_hour: Annotated[
        Optional[float], typer.Option(help="USD per device-hour, instead of the price table's.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-train and re-run datasets that are already stored.")] = False,
    allow_modified: Annotated[
        bool, typer.Option(help="Accept test files whose sha256 differs from the registry (recorded).")
    ] = False,
    device: Annotated[Optional[str], typer.Option(help="torch device (default: cuda if present, else cpu).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where fine-tuned checkpoints are kept.")] = Path("runs"),
    name: Annotated[Optional[str], typer.Option(help="Model id to store for a folder or hub model.")] = None,
    head: Annotated[
        Optional[str],
        typer.Option(help="LLMs: 'token' (classification head, default) or 'generative' (token:TAG lines; slow on CPU)."),
    ] = None,
    quantize: Annotated[
        Optional[str], typer.Option(help="LLMs: 'none' or 'nf4' base while training (default: nf4 on CUDA, none on CPU).")
    ] = None,
    revision: Annotated[Optional[str], typer.Option(help="Hub revision.")] = None,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (unsafe).")
    ] = False,
    data_dir: DataDir = None,
    db: Db = Path("nerbench.duckdb"),
    as_json: Json = False,
) -> None:
    """Evaluate MODEL on the test sets and store entity F1, long-entity F1 and cost."""
    from nerbench.evaluate import EvalOptions, evaluate

    _quiet_transformers()
    console = wide_console(stderr=as_json)
    options = EvalOptions(
        datasets=tuple(dataset or DEFAULT_SUITE), profile=profile, seed=seed, label_policy=label_policy,
        data_dir=data_dir, db=db, runs_dir=runs_dir, device=device, price_per_hour=price_per_hour,
        force=force, allow_modified=allow_modified, revision=revision,
        trust_remote_code=trust_remote_code, name=name, head=head, quantize=quantize,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[dev]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[int, int] = {}

        def progress(event) -> None:
            key = event.epoch  # `say` clears the map, so each dataset's training gets its own bars
            if key not in tasks:
                tasks[key] = bar.add_task(f"  training epoch {event.epoch}/{event.max_epochs}",
                                          total=event.steps, loss=0.0, dev="")
            dev = "" if event.dev_f1 is None else f"dev strict F1 {event.dev_f1:.4f}"
            bar.update(tasks[key], completed=event.step, loss=event.loss, dev=dev)
            if event.dev_f1 is not None:  # a line that stays (the bars are transient, and absent in logs)
                bar.console.print(f"  epoch {event.epoch}/{event.max_epochs}: mean loss {event.loss:.4f}, "
                                  f"{dev}", highlight=False)

        def say(message: str) -> None:
            bar.console.print(message, highlight=False)
            tasks.clear()

        outcomes = evaluate(model, options, say=say, training_progress=progress)
    # Generative runs: the parse counts of the stored pass.
    parse = {o.dataset: o.details.get("generation", {}).get("parse") for o in outcomes}
    if as_json:
        typer.echo(json.dumps([{k: v for k, v in vars(o).items() if k != "details"} | {"parse": parse[o.dataset]}
                               for o in outcomes], indent=2))
        return
    profiles = {o.profile for o in outcomes} - {None}
    table = Table(title=f"{model} ({', '.join(sorted(profiles))} profile)" if profiles else model)
    has_parse = any(parse.values())
    columns = ("dataset", "run", "status", "strict F1", "long-entity F1", "sentences/s") + (
        ("missing / extra / renamed / malformed lines",) if has_parse else ())
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "run", "status") else "right")
    for o in outcomes:
        fmt = (lambda x: "" if x is None else f"{100 * x:.2f}")
        p = parse[o.dataset]
        table.add_row(o.dataset, o.run_id, o.status, fmt(o.strict_f1), fmt(o.long_f1),
                      "" if o.sentences_per_second is None else f"{o.sentences_per_second:.2f}",
                      *((f"{p['missing']} / {p['extra']} / {p['renamed']} / {p['malformed']}" if p else "",)
                        if has_parse else ()))
    console.print(table)
    console.print(f"stored in {db}; `nerbench results --db {db}` shows every stored run", highlight=False)
