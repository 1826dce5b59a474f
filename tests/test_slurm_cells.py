"""Two real tiny cells (MiniLM-L6, a budget carried by the cells) submitted through submitit as a
job array to a real one-node Slurm cluster on this machine, their shards ingested into the store.

tests/setup_slurm.sh installs and starts the cluster where it is missing (`make test` runs it, and
so does the fixture here); the test is skipped, with the reason, only where it cannot be started."""

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerbench.pipeline import cells as cl
from nerbench.pipeline import launchers as ln
from nerbench.store import Store

from _cells import TINY, cli, tiny_cells, write_tiny_data

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


def test_the_eval_command_on_slurm_never_submits_a_running_cell_twice(slurm, tmp_path, tiny_data):
    """`nerbench eval --launcher slurm` end to end: submitted without waiting, a rerun while the job
    runs plans it as running and submits nothing; once it ends, a rerun ingests its shard."""
    folder, db = tmp_path / "cells", tmp_path / "r.duckdb"
    args = ["eval", "minilm-l6", "--launcher", "slurm", "--dataset", "ncbi_disease", "--profile", "quick",
            "--gpus-per-cell", "0", "--time", "20", "--data-dir", str(tiny_data), "--allow-modified",
            "--runs-dir", str(tmp_path / "runs"), "--db", str(db), "--cells-dir", str(folder)]  # fmt: skip
    first = cli(*args, "--no-wait")
    assert first.exit_code == 0, first.output
    (job,) = [text.split()[2].rstrip(":") for text in first.output.splitlines() if text.startswith("submitted job")]
    again = cli(*args, "--no-wait")
    assert again.exit_code == 0, again.output
    assert "submitted job" not in again.output
    # the job still runs (planned as running) or has just written its shard (ingested now)
    assert f"running in job {job}" in again.output or "ingested 1 shard(s)" in again.output, again.output
    for _ in range(300):
        if job not in (ln._slurm_queue() or set()):
            break
        time.sleep(1)
    last = cli(*args)
    assert last.exit_code == 0 and "submitted job" not in last.output, last.output
    with Store(db) as store:
        (run,) = store.runs()
        assert run["details"]["scheduler"]["job_id"] == job and run["record"].training.budget.name == "quick"
