"""`nerbench submit`, `nerbench validate` and `nerbench ingest`: submissions in, out and checked."""

from pathlib import Path
from typing import Annotated

import typer

from nerbench.cli._util import DataDir, Db, cell, frac, line, wide_console
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
    wide_console().print(line(f"wrote {folder}; check it with `nerbench validate {folder}`"), soft_wrap=True)


# What `validate` and `ingest` print for a path that is not a submission folder (the README.md
# beside them in `submissions/*`, a folder without submission.toml), passed over rather than refused;
# `nerbench.submissions.submission_folders` decides which.
SKIPPED = "skipped (not a submission folder)"


def validate(
    paths: Annotated[list[Path], typer.Argument(help="Submission folders (other paths are skipped).")],
    summary: Annotated[
        Path | None, typer.Option(help="Also append a Markdown table to this file (a CI job summary).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Check submission folders and re-score their predictions; exit 1 on any problem."""
    from rich.table import Table

    from nerbench.safe_text import markdown_cell
    from nerbench.submissions import validate_all

    def markdown_row(*cells: object) -> str:
        # Every cell escaped: a folder name or problem cannot end the row, add a cell or a link.
        return "| " + " | ".join(markdown_cell(value) for value in cells) + " |"

    console = wide_console()
    table = Table(title="Re-scored submissions")
    for column in ("submission", "dataset", "strict F1 [95% CI]", "long-entity F1", "P", "R"):
        table.add_column(column)
    markdown = ["| submission | dataset | strict F1 [95% CI] | long-entity F1 | problems |", "|---|---|---|---|---|"]
    batch = validate_all(paths, data_dir)
    for skipped in batch.skipped:
        console.print(line(f"{skipped.path}: {SKIPPED}"), soft_wrap=True)
        markdown.append(markdown_row(skipped.path, "", "", "", SKIPPED))
    for result in batch.validations:
        name = result.folder_name  # the folder's own name, also for '.'; escaped by cell and markdown_cell
        for problem in result.problems:
            console.print(line(("✗", "red"), " ", str(problem)), soft_wrap=True)
        for dataset, s in sorted(result.scores.items()):
            low, high = s.ci95["f1"]
            f1 = f"{frac(s.strict.f1)} [{frac(low)}, {frac(high)}]"
            values = (name, dataset, f1, frac(s.long_f1), frac(s.strict.precision), frac(s.strict.recall))
            table.add_row(*(cell(value) for value in values))
            markdown.append(markdown_row(name, dataset, f1, frac(s.long_f1), ""))
        if result.problems:
            markdown.append(markdown_row(name, "", "", "", f"{len(result.problems)} problem(s): see the log"))
        else:
            valid = f"{result.path}: valid ({len(result.scores)} datasets re-scored)"
            console.print(line(("✓", "green"), " ", valid), soft_wrap=True)
    console.print(table)
    if summary is not None:
        with summary.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(markdown) + "\n")
    if not batch.validations:
        raise NerbenchError(f"no submission folder among the {len(paths)} path(s) given")
    if not batch.ok:
        raise typer.Exit(1)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Submission folders (other paths are skipped).")],
    replace: Annotated[bool, typer.Option(help="Replace a stored submission of the same id that changed.")] = False,
    db: Db = DEFAULT_DB,
    data_dir: DataDir = None,
) -> None:
    """Validate submissions and load them into the store (one transaction each; idempotent)."""
    from nerbench.submissions import ingest_all

    console = wide_console()
    report = ingest_all(paths, db, data_dir=data_dir, replace=replace)
    for skipped in report.skipped:
        console.print(line(f"{skipped.path}: {SKIPPED}"), soft_wrap=True)
    for path, outcome in report.outcomes:
        console.print(line(f"{path}: {outcome.status} ({len(outcome.run_ids)} runs)"), soft_wrap=True)
    if not (report.outcomes or report.failures):
        raise NerbenchError(f"no submission folder among the {len(paths)} path(s) given")
    # One line per refused folder (a joined message would be cut where it is long), then the count.
    for _, message in report.failures:
        console.print(line(("✗", "red"), " ", message), soft_wrap=True)
    if report.failures:
        done = len(report.outcomes) + len(report.failures)
        raise NerbenchError(f"{len(report.failures)} of {done} submission folder(s) not ingested (see above)")
