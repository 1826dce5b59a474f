"""The layers at run time: importing the scorer, the data readers, the store, the submissions or the
site loads neither torch nor the models. pyproject.toml's import-linter contracts (`make lint`) hold
the same layers statically, imports inside functions included; this checks what a fresh interpreter
actually loads."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "nerbench.models")
LIGHT = [
    "nerbench.scoring",
    "nerbench.conll",
    "nerbench.datasets",
    "nerbench.store",
    "nerbench.shards",
    "nerbench.scorefiles",
    "nerbench.submissions",
    "nerbench.site",
    "nerbench.site_data",
    "nerbench.site_compare",
    "nerbench.site_svg",
    "nerbench.site_runs",
    "nerbench.comparison",
]


@pytest.mark.parametrize("module", LIGHT)
def test_importing_loads_neither_torch_nor_the_models(module):
    code = f"import sys\nimport {module}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"import {module} loads {result.stdout.strip()}"


def test_the_check_sees_a_heavy_import():
    code = f"import sys\nimport nerbench.models.encoder\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {"torch", "nerbench.models"} <= set(result.stdout.split())
