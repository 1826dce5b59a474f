"""`nerbench site build`: render the static leaderboard from the results database."""

from pathlib import Path
from typing import Annotated

import typer

import nerbench.blas_threads  # noqa: F401  (first: it must run before numpy loads)
from nerbench.cli._util import DataDir, Db, plain_console
from nerbench.safe_text import shown
from nerbench.site import DEFAULT_OUT, build_site
from nerbench.site_compare import RESAMPLES
from nerbench.store import DEFAULT_DB

app = typer.Typer(no_args_is_help=True, help="The static leaderboard site.")


@app.command("build")
def build(
    db: Db = DEFAULT_DB,
    out: Annotated[
        Path, typer.Option("--out", help="Folder to write the site into: new, empty, or an earlier build (replaced).")
    ] = DEFAULT_OUT,
    data_dir: DataDir = None,
    resamples: Annotated[
        int,
        typer.Option("--resamples", min=1, help="Rounds of the paired LLM-vs-encoder tests (as compare)."),
    ] = RESAMPLES,
) -> None:
    """Render HTML pages, downloads and charts from the store into OUT; prints the index page's path."""
    report = build_site(Path(db), out, data_dir=data_dir, resamples=resamples)
    console = plain_console(stderr=True)
    console.print(f"{report.pages} pages, {report.models} models, {report.runs} runs")
    typer.echo(shown(report.index.resolve(), limit=None))
