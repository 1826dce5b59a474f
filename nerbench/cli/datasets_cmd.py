"""`nerbench datasets`: list, show, verify and fetch the registered datasets."""

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from nerbench import datasets
from nerbench.cli._util import DataDir, Json, cell, line, plain_console
from nerbench.safe_text import json_text

app = typer.Typer(no_args_is_help=True, help="The dataset registry: statistics, checksums, downloads.")

Names = Annotated[
    list[str] | None,
    typer.Argument(help="Dataset names (default: the default suite).", show_default=False),
]
_STATUS_STYLE = {"ok": "green", "unpinned": "yellow", "modified": "bold red", "missing": "red"}


def _print_json(value) -> None:
    typer.echo(json_text(value, indent=2))


def _status(status: str) -> Text:
    return cell(status, style=_STATUS_STYLE.get(status, ""))


@app.command("list")
def list_(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Every registered dataset and split with its statistics (missing files shown as missing)."""
    rows = datasets.overview(datasets.REGISTRY, data_dir)
    if as_json:
        _print_json([row.to_dict() for row in rows])
        return
    table = Table(title=cell(f"Datasets in {datasets.resolve_data_dir(data_dir)}", limit=None))
    for column in ("dataset", "split", "status", "sentences", "tokens", "mentions per type", ">=3 tokens", "share"):
        table.add_column(
            column, justify="right" if column in ("sentences", "tokens", ">=3 tokens", "share") else "left"
        )
    for row in rows:
        stats = row.statistics
        cells: list[str | Text] = [row.status.dataset, row.status.split, _status(row.status.status)]
        if stats is None:
            cells += ["", "", "", "", ""]
        else:
            per_type = ", ".join(f"{name} {count:,}" for name, count in stats.mentions_per_type.items())
            cells += [
                f"{stats.sentences:,}",
                f"{stats.tokens:,}",
                per_type,
                f"{stats.long_entities:,}",
                f"{stats.long_share:.1%}",
            ]
        table.add_row(*(value if isinstance(value, Text) else cell(value) for value in cells))
    plain_console().print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="A registered dataset name.")],
    data_dir: DataDir = None,
    as_json: Json = False,
) -> None:
    """What the registry knows about one dataset, and the state of its local files."""
    info = datasets.get_dataset(name)
    rows = datasets.overview([name], data_dir)
    if as_json:
        record = info.to_dict()
        record["local"] = [row.to_dict() for row in rows]
        _print_json(record)
        return
    console = plain_console()
    console.print(line((info.name, "bold"), f": {info.title}"))
    console.print(line(f"entity types: {', '.join(info.entity_types)}"))
    console.print(
        f"suite: {info.suite}; paper set: {'yes' if info.paper_set else 'no'}; public: {'yes' if info.public else 'no'}"
    )
    console.print(line(f"citation: {info.citation}"))
    console.print(line(f"licence: {info.licence}"))
    console.print(line(f"note: {info.note}"))
    for split, row in zip(info.splits, rows):
        console.print()
        status = row.status.status
        console.print(line((split.name, "bold"), " ", (status, _STATUS_STYLE.get(status, "")), f"  {row.status.path}"))
        console.print(line(f"  sha256: {split.sha256 or '(not pinned)'}"))
        if row.statistics:
            stats = row.statistics
            console.print(
                f"  {stats.sentences:,} sentences, {stats.tokens:,} tokens, {stats.mentions:,} mentions, "
                f"{stats.long_entities:,} of >=3 tokens ({stats.long_share:.1%}), "
                f"longest sentence {stats.longest_sentence}",
            )
        for source in split.sources:
            console.print(line(f"  source: {source.repository}@{source.commit[:12]} {source.path}"))
        how = "re-serialised from its source" if split.source_reserialises else "mirror only"
        console.print(line(f"  made: {split.made}  ", (f"(fetch: {how})", "dim")))


@app.command("verify")
def verify(names: Names = None, data_dir: DataDir = None, as_json: Json = False) -> None:
    """Check the sha256 of each split; exit 1 if any is modified or missing."""
    statuses = datasets.verify(names or datasets.DEFAULT_SUITE, data_dir)
    if as_json:
        _print_json([status.to_dict() for status in statuses])
    else:
        table = Table(title=cell(f"sha256 check in {datasets.resolve_data_dir(data_dir)}", limit=None))
        for column in ("dataset", "split", "status", "sha256"):
            table.add_column(column)
        for status in statuses:
            table.add_row(
                cell(status.dataset), cell(status.split), _status(status.status), cell(status.actual_sha256 or "")
            )
        plain_console().print(table)
    if not all(status.ok for status in statuses):
        raise typer.Exit(1)


@app.command("fetch")
def fetch(
    names: Names = None,
    data_dir: DataDir = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar=datasets.MIRROR_ENV,
            help="Base URL laid out as <name>/<split>.conll (file:// works).",
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Download splits into the data dir, verifying each sha256 before it lands."""
    console = plain_console(stderr=as_json)

    def report(result: datasets.FetchResult) -> None:
        where = f" from {result.url}" if result.url else ""
        console.print(line(f"{result.dataset} {result.split}: {result.action}{where} -> {result.path}"))

    with console.status("fetching"):
        results = datasets.fetch(names or datasets.DEFAULT_SUITE, data_dir, mirror, on_result=report)
    if as_json:
        _print_json([result.to_dict() for result in results])
