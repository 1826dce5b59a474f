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
        console.print(line(f"  made: {split.made}  ", (f"(fetch: build {split.build or 'none'})", "dim")))
        if split.docs is not None:
            console.print(line(f"  sidecar: {split.name}.docs sha256 {split.docs.sha256}"))


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


_ACTION_STYLE = {
    "fetched": "green",
    "present": "green",
    "skipped": "yellow",
    "different": "bold red",
    "failed": "bold red",
}


def _fetch_line(result: datasets.FetchResult) -> Text:
    """One progress line: `<dataset>/<split>.<kind>: <action> (how, seconds)`, or why it was not placed."""
    parts: list[object | tuple[object, str]] = [
        f"{result.file}: ",
        (result.action, _ACTION_STYLE.get(result.action, "")),
    ]
    if result.nearest:
        parts.append((" (the nearest build, not the registered file)", "yellow"))
    if result.action == "fetched":
        if result.build:
            more = f" and {len(result.sources) - 1} more" if len(result.sources) > 1 else ""
            how = f"{result.build} from {result.sources[0]}{more}" if result.sources else result.build
        else:
            how = f"from {result.url}"
        parts.append(f" ({how}, {result.seconds:.1f} s)")
    if result.reason and result.action != "present":
        parts.append(f"; {result.reason}" if result.action == "fetched" else f": {result.reason}")
    return line(*parts)


@app.command("fetch")
def fetch(
    names: Names = None,
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            help="Only this split (train, dev or test); repeat for several (default: all three).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
    mirror: Annotated[
        str | None,
        typer.Option(
            "--mirror",
            envvar=datasets.MIRROR_ENV,
            help="Base URL laid out like the data dir, <name>/<split>.conll and .docs (file:// works); "
            "default: build each file from its pinned public sources.",
            show_default=False,
        ),
    ] = None,
    allow_nearest: Annotated[
        bool,
        typer.Option(
            "--allow-nearest",
            help="Where an exact rebuild is not possible (ChemProt train), place the nearest build anyway; it "
            "differs from the registry's sha256, so `nerbench eval` uses it only with --allow-modified.",
        ),
    ] = False,
    as_json: Json = False,
) -> None:
    """Download or build splits (and their .docs sidecars) into the data dir, verifying each sha256 before it
    lands; every file is reported, and the exit status is 1 if any could not be placed."""
    console = plain_console(stderr=as_json)
    root = datasets.resolve_data_dir(data_dir)

    def report(result: datasets.FetchResult) -> None:
        # One line each, never wrapped (a log keeps it whole; a terminal folds it).
        console.print(_fetch_line(result), soft_wrap=True)

    console.print(line(f"fetching into {root}"), soft_wrap=True)
    with console.status(line("fetching")) as status:

        def started(dataset: str, name: str) -> None:
            status.update(line(f"fetching {dataset} {name}"))

        results = datasets.fetch(
            names or datasets.DEFAULT_SUITE,
            data_dir,
            mirror,
            on_result=report,
            splits=split,
            allow_nearest=allow_nearest,
            on_start=started,
        )
    counts = {action: sum(r.action == action for r in results) for action in _ACTION_STYLE}
    failed = [r for r in results if not r.ok]
    summary = ", ".join(f"{count} {action}" for action, count in counts.items() if count)
    console.print(line(f"{len(results)} files in {root}: {summary or 'nothing to do'}"), soft_wrap=True)
    if failed:
        console.print(line((f"not placed: {', '.join(r.file for r in failed)}", "bold red")), soft_wrap=True)
    if as_json:
        _print_json([result.to_dict() for result in results])
    if failed:
        raise typer.Exit(1)
