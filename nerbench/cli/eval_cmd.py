"""`nerbench eval MODEL`: fine-tune where needed, predict, time, score and store."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nerbench.cli import _runs
from nerbench.cli._util import (
    DataDir,
    Db,
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
    cell,
    frac,
    line,
    plain_console,
    quiet_libraries,
    warn,
    wide_console,
)
from nerbench.cli.cells_cmd import (
    Account,
    CellsDir,
    DryRun,
    GpusPerCell,
    Launcher,
    MaxParallel,
    Partition,
    Suite,
    TimeLimit,
    Wait,
)
from nerbench.datasets import DEFAULT_SUITE
from nerbench.store import DEFAULT_DB


def eval_model(
    model: Annotated[
        str | None,
        typer.Argument(help="Registry id, checkpoint folder, PEFT adapter folder or Hugging Face id (none: --suite)."),
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Dataset to evaluate on (repeatable; default: the five).")
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Fine-tuning budget for registry models: 'paper' (the recipe) or 'quick' (CPU-sized).")
    ] = "paper",
    seed: TrainSeed = 0,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            min=1,
            help="Train and store this many seeds (--seed, --seed + 1, ...); the site shows their spread.",
        ),
    ] = 1,
    label_policy: LabelPolicy = None,
    price_per_hour: Annotated[
        float | None, typer.Option(help="USD per device-hour, instead of the price table's.")
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-train and re-run datasets that are already stored.")] = False,
    allow_modified: Annotated[
        bool, typer.Option(help="Accept test files whose sha256 differs from the registry (recorded).")
    ] = False,
    device: Annotated[str | None, typer.Option(help="torch device (default: cuda if present, else cpu).")] = None,
    runs_dir: Annotated[Path, typer.Option(help="Where fine-tuned checkpoints are kept.")] = Path("runs"),
    name: Annotated[str | None, typer.Option(help="Model id to store for a folder or hub model.")] = None,
    head: Head = None,
    quantize: Quantize = None,
    word_position: WordPosition = None,
    serving: Annotated[
        list[str] | None,
        typer.Option(
            "--serving",
            help="LLMs: 'as-trained' (the paper's: base quantized as trained, adapter unmerged, batch 8) or "
            "'as-deployed' (adapter merged into a 16-bit base, throughput batch); repeatable, each its own run.",
        ),
    ] = None,
    revision: Revision = None,
    trust_remote_code: TrustRemoteCode = False,
    suite: Suite = None,
    launcher: Launcher = None,
    dry_run: DryRun = False,
    partition: Partition = None,
    gpus_per_cell: GpusPerCell = 1,
    time: TimeLimit = "24:00:00",
    max_parallel: MaxParallel = None,
    account: Account = None,
    cells_dir: CellsDir = Path("cells"),
    wait: Wait = True,
    data_dir: DataDir = None,
    db: Db = DEFAULT_DB,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Evaluate MODEL on the test sets and store entity F1, long-entity F1 and cost."""
    if launcher is not None or suite is not None or dry_run or model is None:
        # Cells: planned here, run by submitit's workers into shards, ingested here (cli/cells_cmd.py).
        from nerbench.cli.cells_cmd import launch_eval

        launch_eval(
            model,
            suite=suite,
            launcher=launcher,
            dry_run=dry_run,
            datasets=dataset,
            heads=[head],
            profile=profile,
            seed=seed,
            seeds=seeds,
            servings=tuple(serving or ("as-trained",)),
            device=device,
            data_dir=data_dir,
            runs_dir=runs_dir,
            db=db,
            cells_dir=cells_dir,
            allow_modified=allow_modified,
            revision=revision,
            name=name,
            label_policy=label_policy,
            quantize=quantize,
            word_position=word_position,
            price_per_hour=price_per_hour,
            partition=partition,
            gpus_per_cell=gpus_per_cell,
            time=time,
            max_parallel=max_parallel,
            account=account,
            wait=wait,
        )
        return
    from nerbench.pipeline.preflight import check_names

    # A typo in a name is refused before the model libraries load (seconds) and before any work.
    check_names(model, dataset or DEFAULT_SUITE, profile, revision)
    from nerbench.pipeline.evaluate import EvalOptions, evaluate

    quiet_libraries()
    console = wide_console(stderr=as_json)
    notes = plain_console(stderr=True)  # the estimate, warnings and what an interrupt kept
    options = EvalOptions(
        datasets=tuple(dataset or DEFAULT_SUITE),
        profile=profile,
        seed=seed,
        seeds=seeds,
        label_policy=label_policy,
        data_dir=data_dir,
        db=db,
        runs_dir=runs_dir,
        device=device,
        price_per_hour=price_per_hour,
        force=force,
        allow_modified=allow_modified,
        revision=revision,
        trust_remote_code=trust_remote_code,
        name=name,
        head=head,
        quantize=quantize,
        word_position=word_position,
        servings=tuple(serving or ("as-trained",)),
    )
    if profile == "paper" and _runs.on_cpu(device):
        _runs.print_cpu_notice(
            notes,
            model,
            options.datasets,
            head=head,
            data_dir=data_dir,
            allow_modified=allow_modified,
            test=True,
            seeds=seeds,
        )
    before = _runs.stored_runs(db)
    try:
        with TrainingBars(console, label="  training epoch", transient=True) as bars:
            outcomes = evaluate(
                model,
                options,
                say=bars.say,
                training_progress=None if quiet else bars,
                prediction_progress=None if quiet else bars.prediction,
            )
    except KeyboardInterrupt:
        _runs.interrupted_eval(notes, db, before, runs_dir)
        raise typer.Exit(_runs.INTERRUPTED) from None
    for warning in _runs.eval_warnings(outcomes):
        warn(notes, warning)
    # Generative runs: the parse counts of the stored pass.
    parse = {o.dataset: o.details.get("generation", {}).get("parse") for o in outcomes}
    if as_json:
        typer.echo(
            json.dumps(
                [{k: v for k, v in vars(o).items() if k != "details"} | {"parse": parse[o.dataset]} for o in outcomes],
                indent=2,
            )
        )
        return
    profiles = {o.profile for o in outcomes if o.profile is not None}
    table = Table(title=cell(f"{model} ({', '.join(sorted(profiles))} profile)" if profiles else model))
    has_parse = any(parse.values())
    seeded = seeds > 1
    served = len({o.serving for o in outcomes}) > 1
    columns = (
        ("dataset",)
        + (("seed",) if seeded else ())
        + (("serving",) if served else ())
        + ("run", "status", "strict F1", "long-entity F1", "sentences/s")
        + (("missing / extra / renamed / malformed lines",) if has_parse else ())
    )
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("dataset", "seed", "serving", "run", "status") else "right"
        )
    for o in outcomes:
        p = parse[o.dataset]
        values = (
            o.dataset,
            *((str(o.seed),) if seeded else ()),
            *((o.serving,) if served else ()),
            o.run_id,
            o.status,
            frac(o.strict_f1),
            frac(o.long_f1),
            "" if o.sentences_per_second is None else f"{o.sentences_per_second:.2f}",
            *(
                (f"{p['missing']} / {p['extra']} / {p['renamed']} / {p['malformed']}" if p else "",)
                if has_parse
                else ()
            ),
        )
        table.add_row(*(cell(value) for value in values))
    console.print(table)
    console.print(line(f"stored in {db}; `nerbench results --db {db}` shows every stored run"))
