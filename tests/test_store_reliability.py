"""The results store under real-world failures, with real processes on one file: two writers at once,
a writer killed with SIGKILL inside its transaction or at any moment of a run of saves, a truncated or
damaged file, a disk that fills while a run is saved. Nothing stored is lost or half-written, every
failure is one NerbenchError naming the file, and a rerun resumes."""

import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from nerbench.errors import NerbenchError
from nerbench.scoring import MetricRow
from nerbench.store import RunResult, Store, StoreFileError, predictions_sha256

from _records import run_record

TESTS = Path(__file__).resolve().parent
# Many labels drawn at random: predictions that compress little, so that a run of many sentences
# still takes a lot of room in the file (the store packs its tags; see the full-disk tests).
_TAGS = ("O", *(f"{prefix}-Type{i}" for i in range(100) for prefix in "BI"))


def result(seed: int, sentences: int = 2000, model: str = "writer") -> RunResult:
    """A made-up run (test data, no model): its seed makes its identity and its predictions."""
    rng = random.Random(seed)
    predictions = [[rng.choice(_TAGS) for _ in range(rng.randint(1, 8))] for _ in range(sentences)]
    return RunResult(
        model={"id": model, "family": "encoder"},
        record=run_record(model, "encoder", "bc5cdr", profile="quick", epochs=1, seed=seed),
        predictions=predictions,
        predictions_sha256=predictions_sha256(predictions),
        metrics=[
            MetricRow("strict", "*", "*", 2.0, 3, 2, 2 / 3, 1.0, 0.8, 0.5, 0.95),
            MetricRow("strict", "*", "3+", 1.0, 1, 1, 1.0, 1.0, 1.0, None, None),
        ],
        timing={"wall_seconds": 1.0 + seed, "sentences": sentences},
        environment={"test": True},
    )


def _python(code: str, *args: object, **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def _finish(process: subprocess.Popen, timeout: float = 120) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"the process did not finish in {timeout} s: {out}\n{err}")
    return process.returncode, out, err


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the process ended first: {process.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def assert_whole(db: Path) -> dict[str, int]:
    """Every stored run is whole (all its rows, its predictions as hashed), no row belongs to no run;
    returns the stored runs' seeds by run id."""
    with Store(db) as store:
        runs = store.runs()
        seeds = {}
        for run in runs:
            seed = run["record"].training.seed
            expected = result(seed, len(store.predictions(run["run_id"])), run["model_id"])
            assert run["run_id"] == expected.record.run_id
            assert store.predictions(run["run_id"]) == expected.predictions, run["run_id"]
            assert predictions_sha256(store.predictions(run["run_id"])) == run["predictions_sha256"]
            assert len(store.metrics(run["run_id"])) == len(expected.metrics)
            assert store.timing(run["run_id"])["wall_seconds"] == 1.0 + seed
            assert store.environment(run["run_id"]) == {"test": True}
            seeds[run["run_id"]] = seed
        for table in ("metrics", "timings", "environments", "predictions"):
            orphans = store._conn.execute(
                f"SELECT count(*) FROM {table} WHERE run_id NOT IN (SELECT run_id FROM runs)"
            ).fetchone()[0]
            assert orphans == 0, table
    return seeds


def _store_with_runs(db: Path, seeds=(0, 1, 2), sentences: int = 20_000) -> dict[str, int]:
    with Store(db) as store:
        for seed in seeds:
            store.save_run(result(seed, sentences))
    return assert_whole(db)


# --------------------------------------------------------------------------- two processes at once

_WRITER = """
    import sys, time
    from pathlib import Path
    from nerbench.store import Store
    from test_store_reliability import result

    db, model, seeds, go = sys.argv[1], sys.argv[2], range(int(sys.argv[3])), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.005)
    for seed in seeds:
        with Store(db) as store:  # as an eval does: the file is opened for each save only
            store.save_run(result(seed, 3000, model))
            time.sleep(0.2)  # still holding the file: the other writer has to wait for it
    print("done", flush=True)
"""


def test_two_writer_processes_at_once_store_every_run_whole(tmp_path):
    db, go = tmp_path / "shared.duckdb", tmp_path / "go"
    Store(db).close()
    writers = [_python(_WRITER, db, model, 4, go) for model in ("writer-a", "writer-b")]
    go.touch()
    for writer in writers:
        code, out, err = _finish(writer)
        assert code == 0 and out.strip() == "done", err
        assert "Traceback" not in err
    seeds = assert_whole(db)
    assert sorted(seeds.values()) == sorted(list(range(4)) * 2)


_HOLDER = """
    import sys, time
    from pathlib import Path
    from nerbench.store import Store

    with Store(sys.argv[1]) as store:
        Path(sys.argv[2]).touch()
        time.sleep(float(sys.argv[3]))
"""


def test_a_second_process_waits_for_the_lock_then_fails_naming_it(tmp_path):
    db, held = tmp_path / "busy.duckdb", tmp_path / "held"
    _store_with_runs(db, seeds=(0,), sentences=100)
    holder = _python(_HOLDER, db, held, 60)
    try:
        _wait_for(held, holder)
        started = time.monotonic()
        with pytest.raises(NerbenchError) as info:
            Store(db, lock_wait=0.5)
        assert time.monotonic() - started >= 0.5
        message = str(info.value)
        assert message.startswith(f"{db}: the results database is in use by another process (waited 0.5 s)")
        assert "lock" in message.lower() and "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    assert len(assert_whole(db)) == 1  # the holder's file is untouched


def test_a_second_process_gets_the_file_when_the_holder_lets_go_within_the_wait(tmp_path):
    db, held = tmp_path / "brief.duckdb", tmp_path / "held"
    Store(db).close()
    holder = _python(_HOLDER, db, held, 1.0)
    try:
        _wait_for(held, holder)
        with Store(db, lock_wait=30) as store:  # waits about a second, not thirty
            store.save_run(result(0, 100))
    finally:
        _finish(holder)
    assert list(assert_whole(db).values()) == [0]


def _package(data_dir: Path, tmp_path: Path, model_id: str) -> Path:
    from nerbench import scoring, submissions
    from nerbench.datasets import load_split

    split = load_split("ncbi_disease", "test", data_dir)
    gold = [list(s.tags) for s in split.sentences]
    pred = [["O"] * len(t) if i % 3 == 0 else t for i, t in enumerate(gold)]
    source = tmp_path / f"{model_id}.duckdb"
    with Store(source) as store:
        run_id = store.save_run(
            RunResult(
                model={
                    "id": model_id,
                    "family": "encoder",
                    "hf_id": f"org/{model_id}",
                    "parameters": 10,
                    "licence": "mit",
                },
                record=run_record(model_id, "encoder", "ncbi_disease", split.sha256, profile="quick", epochs=1),
                predictions=pred,
                predictions_sha256=predictions_sha256(pred),
                metrics=scoring.score(gold, pred, bootstrap=10).metric_rows(),
            )
        )
    return submissions.package([run_id], tmp_path / "subs" / model_id, source, submitted_by="nerbench tests")


def test_two_ingest_commands_at_once_store_both_submissions(data_dir, tmp_path):
    folders = [_package(data_dir, tmp_path, name) for name in ("ingest-a", "ingest-b")]
    db, held = tmp_path / "ingested.duckdb", tmp_path / "held"
    # A third process holds the file for their first seconds: both ingests wait for it, then for each other.
    holder = _python(_HOLDER, db, held, 3.0)
    _wait_for(held, holder)
    cli = "from nerbench.cli import main; main()"
    commands = [_python(cli, "ingest", folder, "--db", db, "--data-dir", data_dir, cwd=tmp_path) for folder in folders]
    for command in commands:
        code, out, err = _finish(command, timeout=300)
        assert code == 0 and "Traceback" not in err, out + err
    _finish(holder)
    with Store(db) as store:
        runs = store.runs()
        assert sorted(r["model_id"] for r in runs) == ["ingest-a", "ingest-b"]
        for run in runs:
            assert predictions_sha256(store.predictions(run["run_id"])) == run["predictions_sha256"]


# --------------------------------------------------------------------------- kill -9

_KILLED_INSIDE = """
    import sys, time
    from pathlib import Path
    from nerbench import store
    from test_store_reliability import result

    db, marker, sentences = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    real = store.Store._insert_predictions

    def inserted_then_wait(self, run_id, predictions):
        real(self, run_id, predictions)  # every row of the run written, nothing committed
        marker.touch()
        time.sleep(600)

    store.Store._insert_predictions = inserted_then_wait
    with store.Store(db) as s:
        s.save_run(result(100, sentences))
"""


def test_sigkill_inside_the_transaction_stores_nothing_of_that_run_and_the_rerun_stores_it(tmp_path):
    db, marker = tmp_path / "killed.duckdb", tmp_path / "inside"
    before = _store_with_runs(db, seeds=(0, 1), sentences=5000)
    # More sentences than a DuckDB row group: DuckDB writes them to the file before the commit.
    sentences = 200_000
    process = _python(_KILLED_INSIDE, db, marker, sentences)
    try:
        _wait_for(marker, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert assert_whole(db) == before
    with Store(db) as store:  # the rerun: not stored, so saved now, whole
        assert not store.has_run(result(100, 1).record.run_id)
        store.save_run(result(100, sentences))
    assert sorted(assert_whole(db).values()) == [0, 1, 100]


_SAVE_LOOP = """
    import sys
    from nerbench.store import Store
    from test_store_reliability import result

    db, count, sentences = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for seed in range(count):
        run = result(seed, sentences)
        with Store(db) as store:
            if store.has_run(run.record.run_id):  # as an eval resumes: what is stored is skipped
                continue
            print("saving", seed, flush=True)
            store.save_run(run)
        print("saved", seed, flush=True)
    print("done", flush=True)
"""


def test_sigkill_at_any_moment_of_a_run_of_saves_leaves_only_whole_runs_and_the_rerun_resumes(tmp_path):
    db, count, sentences = tmp_path / "loop.duckdb", 5, 40_000
    Store(db).close()
    # Killed while a save is under way, at several moments of it: building the rows, inserting them,
    # committing, closing the file.
    for delay in (0.0, 0.05, 0.15, 0.3):
        process = _python(_SAVE_LOOP, db, count, sentences)
        saved = []
        try:
            line = process.stdout.readline()
            assert line.startswith("saving"), line + process.stderr.read()
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            out, _ = process.communicate()
            saved = [int(said.split()[1]) for said in (line + out).splitlines() if said.startswith("saved")]
        finally:
            process.kill()
            process.wait()
        seeds = set(assert_whole(db).values())
        assert set(saved) <= seeds  # every save that returned is stored, whole
    code, out, err = _finish(_python(_SAVE_LOOP, db, count, sentences))
    assert code == 0 and out.strip().endswith("done"), err
    assert sorted(assert_whole(db).values()) == list(range(count))


# --------------------------------------------------------------------------- a damaged file


@pytest.fixture(scope="module")
def good_store(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    db = tmp_path_factory.mktemp("good") / "good.duckdb"
    return db, _store_with_runs(db, seeds=(0, 1, 2), sentences=30_000)


def _use(db: Path) -> None:
    """Read every row, then write: a damaged index block (read only by a write) shows too."""
    with Store(db) as store:
        for run in store.runs():
            store.predictions(run["run_id"])
            store.metrics(run["run_id"])
            store.timing(run["run_id"])
        store.summary()
        store.save_run(result(50, 100))


def _damaged(good_store, tmp_path, damage) -> Path:
    source, _ = good_store
    db = tmp_path / "damaged.duckdb"
    shutil.copyfile(source, db)
    with open(db, "r+b") as handle:
        damage(handle, source.stat().st_size)
    return db


def test_a_store_truncated_to_half_is_refused_on_opening_by_name(good_store, tmp_path):
    db = _damaged(good_store, tmp_path, lambda f, size: f.truncate(size // 2))
    damaged = db.read_bytes()
    with pytest.raises(StoreFileError) as info:
        Store(db)
    assert str(info.value).startswith(f"{db}: the results database is damaged or truncated (")
    assert isinstance(info.value, NerbenchError) and "\n" not in str(info.value)
    assert db.read_bytes() == damaged  # opening never writes over what is left


def _overwrite(offset_of, length: int):
    def damage(handle, size):
        handle.seek(offset_of(size))
        handle.write(random.Random(offset_of(size)).randbytes(length))

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda f, size: f.truncate(100), id="truncated-to-100-bytes"),
        pytest.param(lambda f, size: f.truncate(0), id="emptied"),
        pytest.param(lambda f, size: f.truncate(size - 50_000), id="last-block-cut"),
        pytest.param(_overwrite(lambda size: 0, 64), id="main-header"),
        pytest.param(_overwrite(lambda size: 4096, 8192), id="database-headers"),
        pytest.param(_overwrite(lambda size: size // 3, 300_000), id="a-third-in"),
        pytest.param(_overwrite(lambda size: size // 2, 300_000), id="the-middle"),
    ],
)
def test_a_damaged_store_gives_one_clear_error_naming_the_file(good_store, tmp_path, damage):
    db = _damaged(good_store, tmp_path, damage)
    with pytest.raises(StoreFileError) as info:
        _use(db)  # the damage shows on opening, or at the first read of a damaged block
    message = str(info.value)
    assert message.startswith(f"{db}: ") and "\n" not in message
    assert "damaged or truncated" in message or "cannot read or write" in message


def _block_of(db: Path, table: str) -> int:
    """Where the first data block of `table` starts in the file (three 4 KiB headers, then blocks)."""
    with Store(db) as store:
        (block_size,) = store._conn.execute("SELECT block_size FROM pragma_database_size()").fetchone()
        (block,) = store._conn.execute(
            f"SELECT min(block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0"
        ).fetchone()
    return 3 * 4096 + block * block_size


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda db: lambda f, size: f.truncate(size // 2), id="truncated"),
        pytest.param(lambda db: _overwrite(lambda size: 0, 64), id="main-header"),
        # Opens, and fails at the query: `results` reads the runs table.
        pytest.param(lambda db: _overwrite(lambda size: _block_of(db, "runs") + 100, 1000), id="the-runs-block"),
    ],
)
def test_the_results_command_on_a_damaged_store_exits_with_one_line(good_store, tmp_path, damage):
    db = _damaged(good_store, tmp_path, damage(good_store[0]))
    code, out, err = _finish(_python("from nerbench.cli import main; main()", "results", "--db", db))
    assert code == 2, out + err
    assert out == "" and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {db}: the results database is damaged or truncated ("), line


# --------------------------------------------------------------------------- a full disk

_FULL_DISK = """
    import resource, signal, sys
    from nerbench.errors import NerbenchError
    from nerbench.store import Store
    from test_store_reliability import result

    db, limit, sentences = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    # No file of this process may grow past `limit` bytes: a write beyond fails (EFBIG) as on a full disk.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    with Store(db) as store:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            store.save_run(result(100, sentences))
        except NerbenchError as err:
            print(err, flush=True)
            sys.exit(3)
    print("saved", flush=True)
"""


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize(
    "sentences, room, where",
    [
        pytest.param(20_000, None, "duckdb.wal", id="the-write-ahead-log-fills"),  # a run the log holds
        # Since schema version 7 a run's predictions are one packed row, so no run's insert reaches a
        # row group (122,880 rows), the size DuckDB writes ahead into the database file itself: every
        # run goes through the write-ahead log, as above.
        pytest.param(300_000, None, "duckdb.wal", id="a-large-run-fills-the-log"),
    ],
)
def test_a_full_disk_while_saving_fails_clearly_and_keeps_the_earlier_runs(tmp_path, sentences, room, where):
    db = tmp_path / "full.duckdb"
    before = _store_with_runs(db, seeds=(0, 1), sentences=5000)
    limit = 64 * 1024 if room is None else db.stat().st_size + room
    code, out, err = _finish(_python(_FULL_DISK, db, limit, sentences))
    assert code == 3, out + err
    assert "Traceback" not in err
    message = out.strip()
    assert message.startswith(
        f"{db}: run of writer on bc5cdr not stored, nothing was written: cannot write the "
        "results database: the disk is full or the file too large ("
    )
    assert f'{where}": File too large' in message
    assert assert_whole(db) == before  # the earlier runs read back whole, the failed one is absent
    with Store(db) as store:  # room again: the same run is saved, and the file reads back whole
        store.save_run(result(100, sentences))
    assert sorted(assert_whole(db).values()) == [0, 1, 100]


_NEW_ON_FULL_DISK = """
    import resource, signal, sys
    from nerbench.errors import NerbenchError
    from nerbench.store import Store

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
    try:
        Store(sys.argv[1])
    except NerbenchError as err:
        print(err, flush=True)
        sys.exit(3)
"""


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("limit", [4096, 8192])
def test_a_store_that_cannot_be_created_for_a_full_disk_leaves_no_file(tmp_path, limit):
    db = tmp_path / "new.duckdb"
    code, out, err = _finish(_python(_NEW_ON_FULL_DISK, db, limit))
    assert code == 3, out + err
    assert out.startswith(f"{db}: ") and "the disk is full or the file too large" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-made file to read as damaged later
    with Store(db) as store:
        store.save_run(result(0, 100))
    assert list(assert_whole(db).values()) == [0]
