"""Every command of the app: where it lives and its one-line help (one table), loaded lazily.

`nerbench --help` lists the commands from this table without importing a command module, and
`nerbench score ...` imports the score command's module only: each module pulls in what its
command needs (numpy, duckdb, jinja2, torch), and a command should not pay for another's.
tests/test_cli_lazy.py holds each help line to its command's own docstring.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Entry:
    module: str  # under nerbench.cli
    attribute: str  # a command function, or a sub-app (typer.Typer) for a group of commands
    help: str  # the first paragraph of the command's help, as `nerbench --help` lists it


# In the order `nerbench --help` lists them (commands, then the groups of commands).
COMMANDS: dict[str, Entry] = {
    "score": Entry(
        "score_cmd",
        "score",
        "Score a prediction file against a gold file (entity level, conlleval reading); scores are fractions (0-1).",
    ),
    "compare": Entry(
        "score_cmd",
        "compare",
        "Paired significance of the F1 difference between two predictions of the same test set (scores and their "
        "difference as fractions, 0-1).",
    ),
    "train": Entry(
        "train_cmd", "train", "Fine-tune MODEL on DATASET's train split; keep the epoch with the best dev strict F1."
    ),
    "eval": Entry(
        "eval_cmd", "eval_model", "Evaluate MODEL on the test sets and store entity F1, long-entity F1 and cost."
    ),
    "results": Entry(
        "results_cmd",
        "results",
        "One row per stored run: strict P/R/F1 with 95% CI, long-entity F1, speed, cost, device.",
    ),
    "submit": Entry(
        "submissions_cmd", "submit", "Package stored runs as a submission folder (tags only, never corpus text)."
    ),
    "validate": Entry(
        "submissions_cmd",
        "validate",
        "Check submission folders and re-score their predictions; exit 1 on any problem.",
    ),
    "ingest": Entry(
        "ingest_cmd",
        "ingest",
        "Load cells' shard files and submission folders into the store (one transaction each; idempotent).",
    ),
    "reproduce": Entry(
        "reproduce_cmd",
        "reproduce",
        "Re-run a submission's named weights under the timing protocol, compare with its tags, store a linked run.",
    ),
    "datasets": Entry("datasets_cmd", "app", "The dataset registry: statistics, checksums, downloads."),
    "models": Entry("models_cmd", "app", "The model registry: ids, sources, recipes."),
    "site": Entry("site_cmd", "app", "The static leaderboard site."),
}


def target(name: str) -> Any:
    """The command function or sub-app of command `name` (imports its module)."""
    entry = COMMANDS[name]
    return getattr(importlib.import_module(f"nerbench.cli.{entry.module}"), entry.attribute)


def _attach(app: typer.Typer, name: str) -> None:
    obj = target(name)
    if isinstance(obj, typer.Typer):
        app.add_typer(obj, name=name)
    else:
        app.command(name)(obj)


def register(app: typer.Typer) -> None:
    """Attach every command to `app` now (what tests do to look into the whole click group)."""
    for name in COMMANDS:
        _attach(app, name)


def load(name: str) -> Any:
    """The click command (or group) of `name`, built from its module alone."""
    holder = typer.Typer(add_completion=False)
    holder.callback()(_no_op)  # a callback makes the holder a group, even of one command
    _attach(holder, name)
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _no_op() -> None:
    pass


class LazyGroup(TyperGroup):
    """The root group: a command's module is imported when it is invoked or asked for its own help;
    the root's help lists every command from COMMANDS without importing any."""

    _listing = False

    def list_commands(self, ctx):
        return list(COMMANDS) + [name for name in self.commands if name not in COMMANDS]

    def get_command(self, ctx, cmd_name):
        command = self.commands.get(cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        if self._listing:
            return TyperCommand(cmd_name, short_help=COMMANDS[cmd_name].help)
        command = self.commands[cmd_name] = load(cmd_name)
        return command

    def format_help(self, ctx, formatter):
        # Click's own plain layout: Typer's boxed one imports rich's markdown, syntax and traceback
        # support first, which would double the time `nerbench --help` takes.
        self._listing = True
        try:
            return super(TyperGroup, self).format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(self, ctx, args):
        # TyperGroup suggests a close name among the commands loaded so far (none, here): among all.
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            matches = get_close_matches(name, self.list_commands(ctx))
            if matches:
                ctx.fail(f"No such command {name!r}. Did you mean {', '.join(map(repr, matches))}?")
        return super().resolve_command(ctx, args)
