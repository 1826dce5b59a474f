"""`nerbench reproduce SUBMISSION`: re-run a submission's named weights under the timing protocol."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nerbench.cli._util import DataDir, Db, Json, cell, frac, line, plain_console, quiet_libraries, wide_console
from nerbench.store import DEFAULT_DB


def reproduce(
    submission: Annotated[Path, typer.Argument(help="A submission folder whose submission.toml names its weights.")],
    device: Annotated[str | None, typer.Option(help="Torch device (default: cuda if available, else cpu).")] = None,
    force: Annotated[bool, typer.Option(help="Measure again a re-run already stored for this submission.")] = False,
    runs_dir: Annotated[Path, typer.Option(help="Folder for eval's working files.")] = Path("runs"),
    shards: Annotated[
        Path | None,
        typer.Option(
            help="Also write each re-run as a shard file into this folder (e.g. leaderboard/reproduced/<id>/), "
            "for a maintainer to commit; the site ingests it after the submissions."
        ),
    ] = None,
    as_json: Json = False,
    data_dir: DataDir = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Re-run a submission's named weights under the timing protocol, compare with its tags, store a linked run.

    The weights are the submission's own weights section (a Hugging Face id at a pinned revision, \
or a local folder inside the submission), loaded from safetensors only, never with the model's own \
code. A dataset counts as reproduced at >= 99.5% identical tags and |delta F1| <= 0.005; exit \
status 1 when one is not (its run is stored all the same).
    """
    from nerbench.pipeline.reproduce import reproduce as run
    from nerbench.shards import REPRODUCED_RULE

    quiet_libraries()
    notes = plain_console(stderr=True)
    done = run(
        submission,
        db=db,
        data_dir=data_dir,
        device=device,
        runs_dir=runs_dir,
        force=force,
        shards=shards,
        say=lambda text: notes.print(line(text), soft_wrap=True),
    )
    if as_json:
        rows = [
            {
                "dataset": r.dataset,
                "run_id": r.run_id,
                "status": r.status,
                "device_name": r.device_name,
                "shard": str(r.shard) if r.shard is not None else None,
            }
            | r.link
            for r in done
        ]
        typer.echo(json.dumps(rows, indent=2, sort_keys=True))
    else:
        table = Table(title=f"Re-run of {submission} (reproduced: {REPRODUCED_RULE})")
        for column in (
            "dataset",
            "run",
            "device",
            "identical tags",
            "submitted F1",
            "re-run F1",
            "delta F1",
            "reproduced",
        ):
            table.add_column(column)
        for r in done:
            link = r.link
            table.add_row(
                *(
                    cell(value)
                    for value in (
                        r.dataset,
                        f"{r.run_id} ({r.status})",
                        r.device_name or "?",
                        f"{link['agreement']:.2%} ({link['differing_tags']:,} of {link['tokens']:,} differ)",
                        frac(link["submitted_f1"]),
                        frac(link["reproduced_f1"]),
                        f"{link['f1_delta']:+.4f}",
                        "yes" if link["reproduced"] else "NO",
                    )
                )
            )
        wide_console().print(table)
        for r in done:
            if r.shard is not None:
                notes.print(line(f"{r.dataset}: shard written to {r.shard}"), soft_wrap=True)
    if not all(r.link["reproduced"] for r in done):
        raise typer.Exit(1)
