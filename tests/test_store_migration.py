"""Stores written before the typed run record open with every run kept and readable.

tests/fixtures/store_v2.duckdb.gz was written by nerbench 0.1.0 at schema version 2 (the script
beside it says how): local runs of a registry encoder (two seeds), a registry LLM fine-tuned per
head, a PEFT adapter evaluated as it is, and an ingested submission.
"""

import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from nerbench.errors import NerbenchError
from nerbench.store import MIGRATIONS, Store

FIXTURE = Path(__file__).parent / "fixtures" / "store_v2.duckdb.gz"


@pytest.fixture
def old_store(tmp_path) -> Path:
    path = tmp_path / "v2.duckdb"
    with gzip.open(FIXTURE) as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


def _rows(path: Path) -> dict[str, tuple]:
    """Per old run: its predictions, metrics and timing, to compare after the migration."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for (run_id,) in conn.execute("SELECT run_id FROM runs").fetchall():
            out[run_id] = tuple(
                conn.execute(
                    f"SELECT * EXCLUDE (run_id) FROM {table} WHERE run_id = ? ORDER BY ALL", [run_id]
                ).fetchall()
                for table in ("predictions", "metrics", "timings", "environments")
            )
        return out
    finally:
        conn.close()


def test_the_fixture_is_a_schema_version_2_store(old_store):
    conn = duckdb.connect(str(old_store), read_only=True)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 6
    conn.close()


def test_every_run_migrates_to_a_typed_record_whose_hash_is_its_id(old_store):
    before = _rows(old_store)
    with Store(old_store) as store:
        assert store.schema_version == len(MIGRATIONS) == 3
        runs = store.runs()
        assert len(runs) == len(before) == 6
        for run in runs:
            record = run["record"]
            assert run["run_id"] == record.run_id and run["config_hash"] == record.digest
            assert record.dataset == run["dataset"] and record.model_id == run["model_id"]
        # each run kept its rows, under its new id
        after = {
            run["run_id"]: tuple(
                store._conn.execute(
                    f"SELECT * EXCLUDE (run_id) FROM {table} WHERE run_id = ? ORDER BY ALL", [run["run_id"]]
                ).fetchall()
                for table in ("predictions", "metrics", "timings", "environments")
            )
            for run in runs
        }
    assert sorted(after.values()) == sorted(before.values())
    by_model = {}
    for run in runs:
        by_model.setdefault(run["model_id"], []).append(run["record"])
    seeds = sorted(r.training.seed for r in by_model["minilm-l6"])
    assert seeds == [0, 1] and {r.training.recipe.kind for r in by_model["minilm-l6"]} == {"encoder-full-finetune"}
    assert {r.head for r in by_model["smollm2-135m"]} == {"token", "generative"}
    assert all(r.training.budget.name == "tiny" and r.lora.r == 128 for r in by_model["smollm2-135m"])
    generative = next(r for r in by_model["smollm2-135m"] if r.head == "generative")
    assert generative.decoding is not None and generative.decoding.decoding == "greedy"
    (adapter,) = by_model["tiny-llama-adapter"]
    assert adapter.training is None and adapter.weights.source == "adapter" and adapter.weights.sha256
    assert "/" not in adapter.weights.name  # the folder's name, never where it was on a machine
    (submitted,) = by_model["smollm2-135m-generative"]
    assert submitted.submission.id == "smollm2-135m-generative-quick-cpu" and submitted.head == "generative"


def test_a_migrated_store_still_finds_its_submission_and_reopens_unchanged(old_store):
    with Store(old_store) as store:
        (run,) = store.runs_of_submission("smollm2-135m-generative-quick-cpu")
        ids = sorted(r["run_id"] for r in store.runs())
    with Store(old_store) as store:  # a second open applies nothing
        assert sorted(r["run_id"] for r in store.runs()) == ids and run["run_id"] in ids


def test_a_run_that_cannot_be_read_leaves_the_file_unchanged(old_store):
    conn = duckdb.connect(str(old_store))
    conn.execute("UPDATE runs SET config = '{\"head\": \"token\"}' WHERE model_id = 'tiny-llama-adapter'")
    conn.close()
    before = _rows(old_store)
    with pytest.raises(NerbenchError, match="migration to schema version 3 failed.*cannot be read as a run record"):
        Store(old_store)
    conn = duckdb.connect(str(old_store), read_only=True)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 2
    conn.close()
    assert _rows(old_store) == before
