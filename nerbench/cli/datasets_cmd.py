"""`nerbench datasets`: list, show, verify and fetch the registered datasets."""

from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from nerbench import datasets
from nerbench.cli._util import DataDir, Json, cell, fitted, line, plain_console
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


_NUMBERS = ("sentences", "tokens", "mentions", ">=3 tokens", "share")


def _split_cells(row: datasets.SplitOverview, per_type: bool) -> list[Text]:
    """dataset, split, status and the counts of one split; `per_type`: mentions per type, else their total."""
    stats = row.statistics
    cells = [cell(row.status.dataset), cell(row.status.split), _status(row.status.status)]
    if stats is None:
        return cells + [cell("")] * 5
    mentions = (
        ", ".join(f"{name} {count:,}" for name, count in stats.mentions_per_type.items())
        if per_type
        else f"{stats.mentions:,}"
    )
    values = (
        f"{stats.sentences:,}",
        f"{stats.tokens:,}",
        mentions,
        f"{stats.long_entities:,}",
        f"{stats.long_share:.1%}",
    )
    return cells + [cell(value) for value in values]


def _splits_table(title: Text, rows: list[datasets.SplitOverview], per_type: bool) -> Table:
    # Without the per-type list (the narrow layout) rows fit 80 columns: no rules between columns or at the edges.
    table = (
        Table(title=title)
        if per_type
        else Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
    )
    mentions = "mentions per type" if per_type else "mentions"
    columns = ("dataset", "split", "status", "sentences", "tokens", mentions, ">=3 tokens", "share")
    for column in columns:
        per_type_column = column == "mentions per type"
        table.add_column(
            ">=3\ntokens" if column == ">=3 tokens" else column,  # two header lines: the counts are narrower
            justify="right" if column in _NUMBERS else "left",
            no_wrap=not per_type_column,  # names and counts are never cut; the per-type list folds
            overflow="fold",
        )
    for row in rows:
        table.add_row(*_split_cells(row, per_type))
    return table


def _per_type_table(rows: list[datasets.SplitOverview]) -> Table:
    """Mentions per entity type, one line per dataset and type, a column per split."""
    splits = list(dict.fromkeys(row.status.split for row in rows))
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in rows:
        for name, count in (row.statistics.mentions_per_type if row.statistics else {}).items():
            counts.setdefault((row.status.dataset, name), {})[row.status.split] = count
    table = Table(title="Entity mentions per type")
    table.add_column("dataset", no_wrap=True)
    table.add_column("type", overflow="fold")
    for split in splits:
        table.add_column(split, justify="right", no_wrap=True)
    shown_before = ""
    for (dataset, name), by_split in counts.items():
        first = dataset != shown_before
        shown_before = dataset
        by = [cell(f"{by_split[split]:,}" if split in by_split else "") for split in splits]
        table.add_row(cell(dataset if first else ""), cell(name), *by)
    return table


@app.command("list")
def list_(data_dir: DataDir = None, as_json: Json = False) -> None:
    """Every registered dataset and split with its statistics (missing files shown as missing)."""
    rows = datasets.overview(datasets.REGISTRY, data_dir)
    if as_json:
        _print_json([row.to_dict() for row in rows])
        return
    title = cell(f"Datasets in {datasets.resolve_data_dir(data_dir)}", limit=None)
    console = plain_console()
    wide = _splits_table(title, rows, per_type=True)
    narrow = _splits_table(title, rows, per_type=False)
    chosen = fitted(console, wide, narrow)
    console.print(chosen)
    if chosen is narrow:  # mentions per type in a table of their own, instead of a column that wraps
        console.print(_per_type_table(rows))


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
