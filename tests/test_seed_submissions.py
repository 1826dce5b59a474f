"""Every submission committed under submissions/ passes validation (what the pages workflow ingests)."""

from pathlib import Path

import pytest

from nerbench.submissions import validate

FOLDERS = sorted(p for p in (Path(__file__).resolve().parent.parent / "submissions").iterdir() if p.is_dir())


def test_there_is_at_least_one_seed_submission():
    assert FOLDERS


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_committed_submission_is_valid(folder, data_dir):
    result = validate(folder, data_dir)
    assert result.ok, "\n".join(map(str, result.problems))
    assert result.scores
