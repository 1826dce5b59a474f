"""The `nerbench` command: one Typer app, one module per command, no logic of its own."""

import sys

import typer

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
        # Error messages quote files, submissions and stored text: printed plain, escaped and cut.
        from nerbench.cli._util import line, plain_console

        plain_console(stderr=True).print(line(("error:", "bold red"), " ", str(err)), soft_wrap=True)
        sys.exit(2)
