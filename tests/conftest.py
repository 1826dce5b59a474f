"""Shared fixtures, and the Hypothesis profiles the property and fuzz tests run under.

Profiles (chosen by the HYPOTHESIS_PROFILE environment variable; "ci" when unset):

- "ci" (the default: CI, `make test`, a plain pytest run): derandomized, so every run tries the same
  examples and a property test can fail only when the code (or Hypothesis) changed, never by luck;
  no example database is read or written, and no timing-based health check.
- "explore": random examples, many more of them (tests that do not fix max_examples run 2,000; the
  fuzz tests scale theirs from it), failures saved to the local .hypothesis database and printed
  with a @reproduce_failure blob. Run it now and then, and before a release, to look for new failing
  inputs; it takes minutes:

      HYPOTHESIS_PROFILE=explore HF_HUB_OFFLINE=1 NERBENCH_DATA_DIR=../shared/data \\
          .venv/bin/python -m pytest -q tests/test_conll.py tests/test_fuzz.py

  A failing input it finds becomes an explicit test (or an @example) so that CI keeps checking it.
"""

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", derandomize=False, max_examples=2000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The data folder, named by NERBENCH_DATA_DIR (`.ci/run` and the Makefile set it): the shared
    data, or a folder `nerbench datasets fetch` filled from the public sources (as on GitHub).

    Missing data fails rather than skips under CI, so a broken set-up cannot pass as green.
    """
    value = os.environ.get("NERBENCH_DATA_DIR")
    if value and (Path(value) / "ncbi_disease" / "test.conll").is_file():
        return Path(value)
    message = f"NERBENCH_DATA_DIR={value!r} does not hold the data (no ncbi_disease/test.conll)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_manifest(data_dir: Path) -> dict:
    """The shared data's MANIFEST.json, for tests that cross-check the registry against it; a folder
    that `datasets fetch` filled has none, so those cross-checks are skipped there."""
    path = data_dir / "MANIFEST.json"
    if not path.is_file():
        pytest.skip(f"{path}: no MANIFEST.json (data fetched from the sources): cross-check skipped")
    return json.loads(path.read_text("utf-8"))
