"""Two real tiny cells (MiniLM-L6, a budget carried by the cells) submitted through submitit as a
job array to a real one-node Slurm cluster on this machine, their shards ingested into the store.

tests/setup_slurm.sh installs and starts the cluster where it is missing (`make test` runs it, and
so does the fixture here); the test is skipped, with the reason, only where it cannot be started."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from nerbench.pipeline import cells as cl
from nerbench.pipeline import launchers as ln
from nerbench.store import Store

from _cells import TINY, tiny_cells, write_tiny_data

SETUP = Path(__file__).with_name("setup_slurm.sh")


def _answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=60)
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="module")
def tiny_data(data_dir, tmp_path_factory):
    return write_tiny_data(data_dir, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def slurm():
    if not _answers():
        done = subprocess.run(
            ["sh", str(SETUP)],
            capture_output=True,
            text=True,
            timeout=600,
            env={"PYTHON": sys.executable, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )
        if done.returncode != 0 or not _answers():
            pytest.skip(f"no Slurm cluster could be started here ({SETUP.name}: {(done.stderr or done.stdout)[-300:]})")


def test_two_tiny_cells_as_a_slurm_job_array(slurm, tmp_path, tiny_data):
    folder, db = tmp_path / "cells", tmp_path / "r.duckdb"
    cells = tiny_cells(tiny_data, tmp_path / "runs")
    plan = cl.plan(cells, ln.shard_dir(folder), db, gpus_per_cell=0)
    settings = ln.ClusterSettings(gpus_per_cell=0, time="20", max_parallel=2)
    report = ln.launch(plan, "slurm", folder, settings, db, poll_seconds=2, say=lambda _: None)
    assert not report.failed, ln.describe_failures(report.failed)
    ids = [entry.job_id for entry in report.submitted]
    array = {job_id.split("_")[0] for job_id in ids}
    assert len(ids) == 2 and len(array) == 1 and sorted(i.split("_")[1] for i in ids) == ["0", "1"]  # one array
    assert [i.status for i in report.ingested] == ["stored", "stored"]
    with Store(db) as store:
        runs = store.runs()
        assert sorted(r["dataset"] for r in runs) == ["bc5cdr", "ncbi_disease"]
        for run in runs:
            scheduler = run["details"]["scheduler"]
            assert scheduler["scheduler"] == "slurm" and scheduler["job_id"] in ids
            assert scheduler["slurm_array_job_id"] in array
            assert run["record"].training.budget == TINY
            assert len(store.predictions(run["run_id"])) == 30
    # a rerun submits nothing: every cell is stored
    again = ln.launch(cl.plan(cells, ln.shard_dir(folder), db), "slurm", folder, settings, db)
    assert again.submitted == [] and [i.status for i in again.ingested] == []
