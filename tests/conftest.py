import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared data folder, named by NERBENCH_DATA_DIR (`.ci/run` and the Makefile set it).

    Missing data fails rather than skips under CI, so a broken set-up cannot pass as green.
    """
    value = os.environ.get("NERBENCH_DATA_DIR")
    if value and (Path(value) / "MANIFEST.json").is_file():
        return Path(value)
    message = f"NERBENCH_DATA_DIR={value!r} does not hold the shared data (MANIFEST.json)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
