"""The `nerbench` command: one Typer app, one module per command, no logic of its own."""

import sys

import typer
from rich.console import Console

from nerbench.errors import NerbenchError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="A living benchmark of encoders and LLMs for biomedical NER.",
)
_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    _state["debug"] = debug


def _register() -> None:
    # Deferred so that `import nerbench.cli` stays cheap; idempotent for tests that call it too.
    if _state.get("registered"):
        return
    from nerbench.cli import commands

    commands.register(app)
    _state["registered"] = True


def main() -> None:
    _register()
    try:
        app()
    except NerbenchError as err:
        if _state["debug"]:
            raise
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
