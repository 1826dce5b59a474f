"""`nerbench site build`: render the static leaderboard from the results database."""

import os
import sys
from pathlib import Path
from typing import Annotated

# The build forks its own worker, whose paired tests multiply tall, thin matrices (10,000 resamples
# by five columns): OpenBLAS's second thread doubled their CPU time without making them faster (4.9 s
# against 3.0 s at 10,000 submissions) and took the CPU the other process writes pages on. So where
# this command is the first to load numpy (a `nerbench site build` process), numpy gets one thread,
# unless the user chose.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402

from nerbench.cli._util import DataDir, Db, plain_console  # noqa: E402
from nerbench.safe_text import shown  # noqa: E402
from nerbench.site import DEFAULT_OUT, build_site  # noqa: E402
from nerbench.site_compare import RESAMPLES  # noqa: E402
from nerbench.store import DEFAULT_DB  # noqa: E402

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
