"""`nerbench eval --launcher local|slurm`, `--suite paper` and `--dry-run`: the cells of an eval, planned
and submitted through submitit, their shards ingested (nerbench.pipeline.cells, .launchers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nerbench.cli._util import line, plain_console, wide_console

Launcher = Annotated[
    str | None,
    typer.Option(
        "--launcher",
        help="Run the cells elsewhere: 'slurm' (a Slurm job array through submitit) or 'local' (submitit's local "
        "processes); default: in this process, one dataset after another.",
    ),
]
Suite = Annotated[
    str | None,
    typer.Option(
        "--suite",
        help="'paper': the paper's matrix (4 encoders, 2 LLMs x generative and token heads, the five sets); "
        "no MODEL then.",
    ),
]
Partition = Annotated[str | None, typer.Option("--partition", help="Slurm partition (default: the cluster's).")]
GpusPerCell = Annotated[int, typer.Option("--gpus-per-cell", min=0, help="GPUs per cell (0: the cells run on CPU).")]
TimeLimit = Annotated[str, typer.Option("--time", help="Time limit per cell's job: minutes, HH:MM:SS or D-HH:MM:SS.")]
MaxParallel = Annotated[
    int | None, typer.Option("--max-parallel", min=1, help="At most this many cells running at once.")
]
Account = Annotated[str | None, typer.Option("--account", help="Slurm account to charge.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print the cell plan and its estimated GPU-hours; submit nothing.")
]
CellsDir = Annotated[
    Path,
    typer.Option(
        "--cells-dir",
        help="Shards (cells-dir/shards) and job logs (cells-dir/logs); on a cluster, a folder every node sees.",
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for the jobs and ingest their shards (default), or only submit.")
]


def launch_eval(
    model: str | None,
    *,
    suite: str | None,
    launcher: str | None,
    dry_run: bool,
    datasets: list[str] | None,
    heads: list[str | None],
    profile: str,
    seed: int,
    seeds: int,
    servings: tuple[str, ...],
    device: str | None,
    data_dir: Path | None,
    runs_dir: Path,
    db: Path,
    cells_dir: Path,
    allow_modified: bool,
    revision: str | None,
    name: str | None,
    label_policy: str | None,
    quantize: str | None,
    word_position: str | None,
    price_per_hour: float | None,
    partition: str | None,
    gpus_per_cell: int,
    time: str,
    max_parallel: int | None,
    account: str | None,
    wait: bool,
) -> None:
    from nerbench.datasets import DEFAULT_SUITE
    from nerbench.errors import NerbenchError
    from nerbench.pipeline import cells as cl
    from nerbench.pipeline import launchers as ln

    if suite is not None and model is not None:
        raise NerbenchError(f"--suite {suite}: names its models; give no MODEL ({model}) with it")
    if suite is None and model is None:
        raise NerbenchError("MODEL: missing (or --suite paper)")
    if launcher is not None and launcher not in ln.LAUNCHERS:
        raise NerbenchError(f"--launcher: unknown launcher {launcher!r} (known: {', '.join(ln.LAUNCHERS)})")
    settings = ln.ClusterSettings(partition, gpus_per_cell, time, max_parallel, account)
    ln.minutes(time)  # a bad --time is refused before anything is planned
    on = launcher or "in-process"
    if device is None and on != "in-process":
        device = "cuda" if gpus_per_cell > 0 else "cpu"
    how = dict(
        device=device,
        data_dir=cl.absolute_data_dir(data_dir),
        runs_dir=str(runs_dir.expanduser().absolute()),
        allow_modified=allow_modified,
        revision=revision,
        name=name,
        label_policy=label_policy,
        quantize=quantize,
        word_position=word_position,
        price_per_hour=price_per_hour,
    )
    seed_list = range(seed, seed + seeds)
    if suite is not None:
        cells = cl.suite_cells(
            suite,
            datasets=datasets,
            data_dir=data_dir,
            profile=profile,
            seeds=seed_list,
            servings=servings,
            **{k: v for k, v in how.items() if k != "data_dir"},
        )
    else:
        assert model is not None
        cells = cl.matrix(
            [(model, head) for head in heads],
            datasets or DEFAULT_SUITE,
            profile=profile,
            seeds=seed_list,
            servings=servings,
            **how,
        )
    shards = ln.shard_dir(cells_dir)
    plan = cl.plan(cells, shards, db, gpus_per_cell=gpus_per_cell, running=ln.running(cells_dir))
    out = wide_console()
    for text in ln.describe_plan(plan, on, settings):
        out.print(line(text), soft_wrap=True)
    if dry_run:
        out.print(line("dry run: nothing submitted"), soft_wrap=True)
        return
    if launcher is None:
        raise NerbenchError("--suite without --launcher: the matrix runs as cells; add --launcher slurm or local")
    notes = plain_console(stderr=True)
    say = lambda text: notes.print(line(text), soft_wrap=True)  # noqa: E731
    report = ln.launch(plan, launcher, cells_dir, settings, db, wait=False, say=say)
    for entry in report.submitted:
        out.print(line(f"submitted job {entry.job_id}: {', '.join(c.describe() for c in entry.cells)}"), soft_wrap=True)
    if wait and report.submitted:
        out.print(line(f"waiting for {len(report.submitted)} job(s); logs in {ln.log_dir(cells_dir)}"), soft_wrap=True)
        ln.collect(report, db, say=say)
    stored = [i for i in report.ingested if i.status == "stored"]
    out.print(line(f"ingested {len(stored)} shard(s) into {db}"), soft_wrap=True)
    if not wait and report.submitted:
        out.print(
            line(
                f"not waiting: when the jobs end, `nerbench ingest {shards}` loads their shards, or run this "
                "command again (it ingests what is there and resubmits only what is missing)"
            ),
            soft_wrap=True,
        )
    if plan.running:
        jobs = ", ".join(sorted({str(p.job) for p in plan.running}))
        out.print(
            line(
                f"{len(plan.running)} cell(s) still run in an earlier launch's job(s) ({jobs}), not submitted again: "
                "run this command again when they end to ingest their shards"
            ),
            soft_wrap=True,
        )
    failed = [i for i in report.ingested if i.status == "failed"]
    for item in failed:
        out.print(line(f"shard not ingested: {item.message}"), soft_wrap=True)
    if report.failed:
        out.print(
            line(f"{len(report.failed)} job(s) failed; run the same command again to resubmit only them:"),
            soft_wrap=True,
        )
        for text in ln.describe_failures(report.failed):
            out.print(line(text), soft_wrap=True)
    if report.failed or failed:
        raise typer.Exit(1)
