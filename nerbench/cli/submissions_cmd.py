"""`nerbench submit`, `nerbench validate` and `nerbench ingest`: submissions in, out and checked."""

from pathlib import Path
from typing import Annotated

import typer

from nerbench.cli._util import DataDir, Db, pct, wide_console
from nerbench.errors import NerbenchError
from nerbench.store import DEFAULT_DB


def submit(
    runs: Annotated[list[str], typer.Argument(help="Stored run ids of one model, one per dataset.")],
    out: Annotated[Path, typer.Option("--out", help="The submission folder to write, e.g. submissions/my-model.")],
    submitted_by: Annotated[str, typer.Option(help="Who submits (free text).")] = "",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing folder.")] = False,
    model_id: Annotated[
        str | None,
        typer.Option(
            help="The leaderboard entry's id (default: the stored model's); give each budget of one model its own."
        ),
    ] = None,
    db: Db = DEFAULT_DB,
) -> None:
    """Package stored runs as a submission folder (tags only, never corpus text)."""
    from nerbench.submissions import package

    folder = package(runs, out, db, submitted_by=submitted_by, overwrite=overwrite, model_id=model_id)
    wide_console().print(f"wrote {folder}; check it with `nerbench validate {folder}`", highlight=False)


def validate(
    paths: Annotated[list[Path], typer.Argument(help="Submission folders.")],
    summary: Annotated[
        Path | None, typer.Option(help="Also append a Markdown table to this file (a CI job summary).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check submission folders and re-score their predictions; exit 1 on any problem."""
    from rich.table import Table

    from nerbench.submissions import validate as check

    console = wide_console()
    table = Table(title="Re-scored submissions")
    for column in ("submission", "dataset", "strict F1 [95% CI]", "long-entity F1", "P", "R"):
        table.add_column(column)
    markdown = ["| submission | dataset | strict F1 [95% CI] | long-entity F1 | problems |", "|---|---|---|---|---|"]
    failed = 0
    for path in paths:
        result = check(path, data_dir)
        for problem in result.problems:
            console.print(f"[red]✗[/] {problem}", highlight=False, markup=True)
        failed += bool(result.problems)
        for name, s in sorted(result.scores.items()):
            low, high = s.ci95["f1"]
            f1 = f"{pct(s.strict.f1)} [{pct(low)}, {pct(high)}]"
            table.add_row(path.name, name, f1, pct(s.long_f1), pct(s.strict.precision), pct(s.strict.recall))
            markdown.append(f"| `{path.name}` | {name} | {f1} | {pct(s.long_f1)} | |")
        if result.problems:
            markdown.append(f"| `{path.name}` | | | | {len(result.problems)} problem(s): see the log |")
        else:
            console.print(f"[green]✓[/] {path}: valid ({len(result.scores)} datasets re-scored)", highlight=False)
    console.print(table)
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(markdown) + "\n")
    if failed:
        raise typer.Exit(1)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Submission folders.")],
    replace: Annotated[bool, typer.Option(help="Replace a stored submission of the same id that changed.")] = False,
    db: Db = DEFAULT_DB,
    data_dir: DataDir = None,
) -> None:
    """Validate submissions and load them into the store (one transaction each; idempotent)."""
    from nerbench.submissions import ingest as load

    console = wide_console()
    failures = []
    for path in paths:
        try:
            outcome = load(path, db, data_dir=data_dir, replace=replace)
        except NerbenchError as err:
            failures.append(str(err))
            continue
        console.print(f"{path}: {outcome.status} ({len(outcome.run_ids)} runs)", highlight=False)
    if failures:
        raise NerbenchError(" | ".join(failures))
