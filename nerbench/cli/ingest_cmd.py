"""`nerbench ingest`: load shard files (what cells wrote) and submission folders into the store."""

from pathlib import Path
from typing import Annotated

import typer

from nerbench.cli import submissions_cmd
from nerbench.cli._util import DataDir, Db, line, wide_console
from nerbench.errors import NerbenchError
from nerbench.store import DEFAULT_DB


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Shard files or folders of them (*.shard.json, from eval --launcher), or submission folders."
        ),
    ],
    replace: Annotated[bool, typer.Option(help="Replace a stored submission of the same id that changed.")] = False,
    reproductions_only: Annotated[
        bool,
        typer.Option(
            help="Accept only shards of `nerbench reproduce --shards` (checked against the stored submission and "
            "re-scored): what the site workflow ingests from leaderboard/reproduced."
        ),
    ] = False,
    db: Db = DEFAULT_DB,
    data_dir: DataDir = None,
) -> None:
    """Load cells' shard files and submission folders into the store (one transaction each; idempotent).

    A reproduction shard (`nerbench reproduce --shards`) is stored only after it is checked against \
the stored submission it names (same content), its predictions re-scored and its agreement recomputed.
    """
    from nerbench.shards import ingest_shards, is_shard_path

    shards = [path for path in paths if is_shard_path(path)]
    others = [path for path in paths if path not in shards]
    if reproductions_only and others:
        raise NerbenchError(f"{others[0]}: not a shard file, nor a folder of them (--reproductions-only)")
    if shards:
        console = wide_console()
        outcomes = ingest_shards(shards, db, data_dir=data_dir, reproductions_only=reproductions_only)
        for outcome in outcomes:
            if outcome.status == "failed":
                console.print(line(("✗", "red"), " ", outcome.message), soft_wrap=True)
            else:
                note = f" ({outcome.message})" if outcome.message else ""
                console.print(line(f"{outcome.path}: {outcome.status} run {outcome.run_id}{note}"), soft_wrap=True)
        failed = sum(1 for o in outcomes if o.status == "failed")
        if not others:
            if failed:
                raise NerbenchError(f"{failed} of {len(outcomes)} shard(s) not ingested (see above)")
            return
        if failed:
            submissions_cmd.ingest(others, replace=replace, db=db, data_dir=data_dir)
            raise NerbenchError(f"{failed} of {len(outcomes)} shard(s) not ingested (see above)")
    submissions_cmd.ingest(others, replace=replace, db=db, data_dir=data_dir)
