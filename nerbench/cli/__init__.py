"""The `nerbench` command: one Typer app, one module per command, no logic of its own.

Commands load lazily (nerbench.cli.commands): a command's module is imported when it runs or
shows its own help, so `nerbench --help` and `nerbench score` pay only for what they use.
"""

import sys

import typer

from nerbench.cli.commands import LazyGroup
from nerbench.errors import NerbenchError

app = typer.Typer(
    cls=LazyGroup,
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
    """Attach every command to `app` now, for code that looks into the whole click group (the
    command line itself never needs it); idempotent."""
    if _state.get("registered"):
        return
    from nerbench.cli import commands

    commands.register(app)
    _state["registered"] = True


def main() -> None:
    try:
        app()
    except NerbenchError as err:
        if _state["debug"]:
            raise
        # Error messages quote files, submissions and stored text: printed plain, escaped and cut.
        from nerbench.cli._util import line, plain_console

        plain_console(stderr=True).print(line(("error:", "bold red"), " ", str(err)), soft_wrap=True)
        sys.exit(2)
