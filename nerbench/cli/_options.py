"""The command-line options several commands take, declared once so that a flag reads the same in
every command that takes it.

Kept apart from nerbench.cli._util (the output: rich consoles, tables, progress bars) so that a
command that prints no table, such as `nerbench score --json`, does not import rich.
"""

import shlex
from pathlib import Path
from typing import Annotated

import typer

from nerbench.errors import NerbenchError

# --------------------------------------------------------------------------- options of several commands

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="NERBENCH_DATA_DIR",
        help="Folder holding <dataset>/{train,dev,test}.conll (default: the user cache).",
        show_default=False,
    ),
]


def check_db_folder(db: Path) -> Path:
    """`--db`'s folder must exist: a typo in a path would otherwise create folders (and an empty
    store) where nobody looks for them."""
    folder = Path(db).parent
    if not folder.exists():
        raise NerbenchError(
            f"--db {db}: the folder {folder} does not exist; create it first (mkdir -p {shlex.quote(str(folder))}) "
            "or give a --db in an existing folder"
        )
    if not folder.is_dir():
        raise NerbenchError(f"--db {db}: {folder} is not a folder")
    return db


Db = Annotated[
    Path,
    typer.Option("--db", envvar="NERBENCH_DB", help="DuckDB file of stored results.", callback=check_db_folder),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

# --------------------------------------------------------------------------- options of `train` and `eval`

TrainSeed = Annotated[int, typer.Option("--seed", help="Seed of fine-tuning: the head, shuffling and dropout.")]
LabelPolicy = Annotated[
    str | None, typer.Option("--label-policy", help="'first' sub-token (default) or 'majority' (the paper's).")
]
Head = Annotated[
    str | None,
    typer.Option(
        "--head", help="LLMs: 'token' (classification head, default) or 'generative' (token:TAG lines; slow on CPU)."
    ),
]
Quantize = Annotated[
    str | None,
    typer.Option(
        "--quantize", help="LLMs: 'none' or 'nf4' base weights while training (default: nf4 on CUDA, none on CPU)."
    ),
]
WordPosition = Annotated[
    str | None,
    typer.Option(
        "--word-position",
        help="LLM token head: read each word at its 'first' sub-token (default), its 'last', or its last in a "
        "second copy of the sentence ('sentence-twice'). Part of the training identity.",
    ),
]
Revision = Annotated[
    str | None, typer.Option("--revision", help="Hub revision of the model (or of an adapter's base model).")
]
TrustRemoteCode = Annotated[
    bool, typer.Option("--trust-remote-code", help="Run the model repository's own code (unsafe).")
]
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet",
        help="No progress bars or progress lines (training steps and epochs, warm-up, timed passes); the "
        "steps' messages, warnings and results still print.",
    ),
]
