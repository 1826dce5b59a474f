"""Options shared by several commands, declared once."""

from pathlib import Path
from typing import Annotated, Optional

import typer

DataDir = Annotated[
    Optional[Path],
    typer.Option(
        "--data-dir",
        envvar="NERBENCH_DATA_DIR",
        help="Folder holding <dataset>/{train,dev,test}.conll (default: the user cache).",
        show_default=False,
    ),
]
Db = Annotated[
    Path,
    typer.Option("--db", envvar="NERBENCH_DB", help="DuckDB file of stored results."),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def wide_console(stderr: bool = False):
    """A rich console; when output is not a terminal (logs, CI), wide enough that tables do not wrap."""
    from rich.console import Console

    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=160)
