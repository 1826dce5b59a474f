"""`nerbench models list` at any width: ids whole, every field there, the recipe column the README promises."""

import json

import pytest
from typer.testing import CliRunner

import nerbench.cli
from nerbench.cli.models_cmd import recipe_text
from nerbench.models.catalogue import REGISTRY


@pytest.fixture(scope="module")
def app():
    nerbench.cli._register()
    return nerbench.cli.app


def _list(app, columns: int) -> str:
    result = CliRunner().invoke(app, ["models", "list"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("columns", [80, 120, 300])
def test_every_id_is_whole_and_every_line_fits(app, columns):
    """Old code cut ids to 'bert-la…' at 80 columns and had no recipe column."""
    out = _list(app, columns)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in out
    words = set(out.split())
    for meta in REGISTRY.values():
        assert meta.id in words, (columns, meta.id)
        assert meta.hf_id in out.replace("│", " ").replace("\n", " "), (columns, meta.hf_id)
        assert recipe_text(meta) in " ".join(" ".join(line.strip("│ ") for line in lines).split()), meta.id
        assert meta.licence in words


def test_recipe_text():
    assert recipe_text(REGISTRY["minilm-l6"]) == ("full fine-tuning, lr 2e-05, batch 8, up to 20 epochs (patience 3)")
    assert recipe_text(REGISTRY["smollm2-135m"]) == (
        "QLoRA r=128, token head, lr 4e-05, batch 4x4, up to 20 epochs (patience 3)"
    )


def test_narrow_layout_keeps_three_lines_per_model_at_80_columns(app):
    out = _list(app, 80)
    lines = [line.strip("│ ") for line in out.splitlines()]
    first = next(i for i, line in enumerate(lines) if line.startswith("bert-large-uncased "))
    assert lines[first].split()[:4] == ["bert-large-uncased", "encoder,", "334.1M", "parameters,"]
    assert lines[first + 1].startswith("google-bert/bert-large-uncased (hub@main; id as in the paper's code)")
    assert lines[first + 2].startswith("recipe: full fine-tuning")


def test_json_is_unchanged_by_the_layout(app):
    result = CliRunner().invoke(app, ["models", "list", "--json"], env={"COLUMNS": "80"})
    assert [row["id"] for row in json.loads(result.output)] == list(REGISTRY)
