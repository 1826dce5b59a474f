"""Stores written before the typed run record open with every run kept and readable.

tests/fixtures/store_v2.duckdb.gz was written by nerbench 0.1.0 at schema version 2 (the script
beside it says how): local runs of a registry encoder (two seeds), a registry LLM fine-tuned per
head, a PEFT adapter evaluated as it is, and an ingested submission.

Schema version 4 corrects self-reported timings that an older ingestion flagged as reference
hardware or priced from nerbench's price table; nerbench's own runs are never touched.
"""

import gzip
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from nerbench.errors import NerbenchError
from nerbench.store import (
    MIGRATIONS,
    SELF_REPORTED_COST,
    PackedPredictions,
    RunResult,
    Store,
    predictions_sha256,
    read_predictions,
)

from _records import run_record

FIXTURE = Path(__file__).parent / "fixtures" / "store_v2.duckdb.gz"


@pytest.fixture
def old_store(tmp_path) -> Path:
    path = tmp_path / "v2.duckdb"
    with gzip.open(FIXTURE) as packed, path.open("wb") as out:
        shutil.copyfileobj(packed, out)
    return path


# The timing columns schema version 4 may change, and only on a self-reported run.
PRICED = ("reference_hardware", "price_per_device_hour", "price_source", "cost_usd", "cost_per_1k_sentences_usd")


# The timing columns schema version 6 adds (NULL for every older run).
ADDED_BY_V6 = ("model_seconds", "host_seconds", "load")


def _tags(conn, run_id: str) -> list[list[str]]:
    """A run's stored tags, read as the store's schema of the file has them: before version 7 one
    row per sentence of space-joined tags, since then one packed row per run."""
    columns = [row[1] for row in conn.execute("PRAGMA table_info('predictions')").fetchall()]
    if "sentence" in columns:
        rows = conn.execute("SELECT tags FROM predictions WHERE run_id = ? ORDER BY sentence", [run_id]).fetchall()
        return [text.split(" ") if text else [] for (text,) in rows]
    return read_predictions(conn, [run_id]).get(run_id, [])


def _run_rows(conn, run_id: str, keep_prices: bool, added: tuple[str, ...] = ()) -> tuple:
    excluded = ("run_id", *added, *(() if keep_prices else PRICED))
    timing = f"* EXCLUDE ({', '.join(excluded)})"
    rows = tuple(
        conn.execute(
            f"SELECT {timing if table == 'timings' else '* EXCLUDE (run_id)'} FROM {table} "
            "WHERE run_id = ? ORDER BY ALL",
            [run_id],
        ).fetchall()
        for table in ("metrics", "timings", "environments")
    )
    return (_tags(conn, run_id), *rows)


def _rows(path: Path) -> dict[str, tuple]:
    """Per old run: its predictions, metrics and timing, to compare after the migration (a
    self-reported run's reference flag and price aside, which version 4 corrects)."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return {
            run_id: _run_rows(conn, run_id, keep_prices=not self_reported)
            for run_id, self_reported in conn.execute("SELECT run_id, self_reported FROM runs").fetchall()
        }
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
        assert store.schema_version == len(MIGRATIONS) == 7
        runs = store.runs()
        assert len(runs) == len(before) == 6
        for run in runs:
            record = run["record"]
            assert run["run_id"] == record.run_id and run["config_hash"] == record.digest
            assert record.dataset == run["dataset"] and record.model_id == run["model_id"]
        # each run kept its rows, under its new id
        after = {
            run["run_id"]: _run_rows(store._conn, run["run_id"], not run["self_reported"], ADDED_BY_V6) for run in runs
        }
        added = store._conn.execute(f"SELECT {', '.join(ADDED_BY_V6)} FROM timings").fetchall()
    assert sorted(after.values()) == sorted(before.values())
    assert added and all(value is None for row in added for value in row)
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


# --------------------------------------------------------------------------- version 4: self-reported timing

H100 = "NVIDIA H100 80GB HBM3"


def _timing(device: str, *, reference: bool, price: float | None, source: str | None, cost: float | None) -> dict:
    return {
        "wall_seconds": 10.0,
        "sentences": 4,
        "word_tokens": 9,
        "sentences_per_second": 0.4,
        "device_name": device,
        "num_devices": 1,
        "reference_hardware": reference,
        "device_hours": 10.0 / 3600,
        "price_per_device_hour": price,
        "price_source": source,
        "cost_usd": cost,
        "cost_per_1k_sentences_usd": None if cost is None else cost / 4 * 1000,
    }


def _result(model_id: str, timing: dict | None, *, submitted: bool) -> RunResult:
    predictions = [["O", "B-Chemical"], ["O"], [], ["B-Disease", "I-Disease", "O", "O", "O"]]
    return RunResult(
        model={"id": model_id, "family": "encoder"},
        record=run_record(model_id, submission=f"{model_id}-sub" if submitted else None),
        predictions=predictions,
        predictions_sha256=predictions_sha256(predictions),
        metrics=[],
        timing=timing,
        environment={"device_name": H100},
        source="submission" if submitted else "local",
        self_reported=submitted,
        details={"note": model_id},
    )


# What ingestion before schema version 4 stored for a submission naming one H100: flagged reference
# hardware and priced from the table (its own claimed cost_usd dropped).
OLD_H100_CLAIM = _timing(H100, reference=True, price=3.2, source="Hyperstack on-demand H100 (table)", cost=3.2 / 360)
LOCAL_H100 = _timing(H100, reference=True, price=3.2, source="Hyperstack on-demand H100 (table)", cost=3.2 / 360)
CLAIMED_COST = _timing("Some accelerator", reference=False, price=None, source=SELF_REPORTED_COST, cost=0.25)
UNKNOWN_COST = _timing("Some accelerator", reference=False, price=None, source=None, cost=None)


@pytest.fixture
def v3_store(tmp_path) -> Path:
    """A schema-version-3 store as nerbench wrote it before version 4: a local run timed on the
    reference H100, a submission claiming an H100, one with its own cost, one with none, one untimed."""
    path = tmp_path / "v3.duckdb"
    with Store(path, migrations=MIGRATIONS[:3]) as store:
        assert store.schema_version == 3
        store.save_runs(
            [
                _result("local-h100", LOCAL_H100, submitted=False),
                _result("claims-h100", OLD_H100_CLAIM, submitted=True),
                _result("claims-cost", CLAIMED_COST, submitted=True),
                _result("claims-nothing", UNKNOWN_COST, submitted=True),
                _result("untimed", None, submitted=True),
            ]
        )
    return path


def _timings(store: Store) -> dict[str, dict]:
    return {run["model_id"]: store.timing(run["run_id"]) for run in store.runs()}


def _all_rows(conn) -> dict[str, list]:
    tables = ("models", "runs", "metrics", "timings", "environments")
    out = {table: conn.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() for table in tables}
    run_ids = sorted(row[0] for row in conn.execute("SELECT DISTINCT run_id FROM predictions").fetchall())
    out["predictions"] = [(run_id, _tags(conn, run_id)) for run_id in run_ids]
    return out


def test_a_self_reported_h100_run_is_no_longer_reference_nor_priced_from_the_table(v3_store):
    with Store(v3_store) as store:
        assert store.schema_version == len(MIGRATIONS)
        timings = _timings(store)
    claimed = timings["claims-h100"]
    assert claimed["reference_hardware"] is False
    assert claimed["price_per_device_hour"] is None and claimed["price_source"] is None
    assert claimed["cost_usd"] is None and claimed["cost_per_1k_sentences_usd"] is None
    # the rest of the self-reported timing is kept, to be shown as such
    kept = {k: v for k, v in OLD_H100_CLAIM.items() if k not in PRICED}
    assert {k: claimed[k] for k in kept} == kept
    # a submitter's own cost stays; a run with no cost, or no timing, stays as it was
    assert {k: timings["claims-cost"][k] for k in CLAIMED_COST} == CLAIMED_COST
    assert {k: timings["claims-nothing"][k] for k in UNKNOWN_COST} == UNKNOWN_COST
    assert timings["untimed"] is None


def test_a_run_nerbench_timed_itself_on_the_reference_hardware_is_untouched(v3_store):
    conn = duckdb.connect(str(v3_store), read_only=True)
    local_before = conn.execute(
        "SELECT t.* FROM timings t JOIN runs r USING (run_id) WHERE NOT r.self_reported"
    ).fetchall()
    conn.close()
    with Store(v3_store) as store:
        local = _timings(store)["local-h100"]
        after = store._conn.execute(
            f"SELECT t.* EXCLUDE ({', '.join(ADDED_BY_V6)}) FROM timings t JOIN runs r USING (run_id) "
            "WHERE NOT r.self_reported"
        ).fetchall()
    assert after == local_before
    assert local["reference_hardware"] is True and local["price_per_device_hour"] == 3.2
    assert local["cost_usd"] == pytest.approx(3.2 / 360)


def test_version_4_keeps_every_other_row_and_is_idempotent(v3_store):
    conn = duckdb.connect(str(v3_store), read_only=True)
    before = _all_rows(conn)
    conn.close()
    with Store(v3_store) as store:
        after = _all_rows(store._conn)
        assert {t: rows for t, rows in after.items() if t != "timings"} == {
            t: rows for t, rows in before.items() if t != "timings"
        }
        assert len(after["timings"]) == len(before["timings"]) == 4
        # its statements again change nothing
        (v4,) = [m for m in MIGRATIONS if m.version == 4]
        for statement in v4.statements:
            store._conn.execute(statement)
        assert _all_rows(store._conn) == after
    with Store(v3_store) as store:  # a second open applies nothing
        assert store.schema_version == len(MIGRATIONS) and _all_rows(store._conn) == after


def test_a_failing_version_4_leaves_the_version_3_file_unchanged(v3_store):
    conn = duckdb.connect(str(v3_store), read_only=True)
    before = _all_rows(conn)
    conn.close()
    broken = replace(MIGRATIONS[3], statements=(*MIGRATIONS[3].statements, "SELECT * FROM no_such_table"))
    with pytest.raises(NerbenchError, match="migration to schema version 4 failed"):
        Store(v3_store, migrations=(*MIGRATIONS[:3], broken))
    conn = duckdb.connect(str(v3_store), read_only=True)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 3
    assert _all_rows(conn) == before
    conn.close()


def test_the_v2_fixtures_submission_loses_its_table_price_and_its_local_runs_keep_theirs(old_store):
    with Store(old_store) as store:
        runs = store.runs()
        timings = {run["run_id"]: (run["self_reported"], store.timing(run["run_id"])) for run in runs}
    submitted = [t for self_reported, t in timings.values() if self_reported]
    local = [t for self_reported, t in timings.values() if not self_reported]
    assert len(submitted) == 1 and len(local) == 5
    (timing,) = submitted
    # ingested at version 2 with a CPU price from the table and no cost of its own
    assert timing["reference_hardware"] is False and timing["wall_seconds"] > 0
    assert timing["price_source"] is None and timing["cost_usd"] is None
    assert all(t["price_per_device_hour"] == 2.0 and t["cost_usd"] > 0 for t in local)


# --------------------------------------------------------------------------- version 7: packed predictions


def _unusual(model_id: str, predictions: list[list[str]]) -> RunResult:
    return replace(
        _result(model_id, None, submitted=False),
        predictions=predictions,
        predictions_sha256=predictions_sha256(predictions),
    )


LONG_TYPE = "B-" + "Gene_or_gene_product_or_a_very_long_entity_type_name_" * 12
MANY = [f"{prefix}-T{i:03d}" for i in range(150) for prefix in "BI"]  # 300 labels: two-byte ids
UNUSUAL = {
    "ordinary": [["O", "B-Chemical"], ["O"], [], ["B-Disease", "I-Disease", "O", "O", "O"]],
    "long-type": [[LONG_TYPE, "I" + LONG_TYPE[1:]], [], ["O", "ünïcödé-τύπος", LONG_TYPE]],
    "many-labels": [MANY[i : i + 7] for i in range(0, len(MANY), 7)] + [[]],
    "only-empty": [[], [], []],
}


@pytest.fixture
def v6_store(tmp_path) -> Path:
    """A schema-version-6 store: predictions one row per sentence, with unusual tags."""
    path = tmp_path / "v6.duckdb"
    with Store(path, migrations=MIGRATIONS[:6]) as store:
        assert store.schema_version == 6
        store.save_runs([_unusual(name, tags) for name, tags in UNUSUAL.items()])
        store.save_run(_unusual("no-predictions", []))
    return path


def test_version_7_packs_every_runs_predictions_and_reads_back_the_same_tags(v6_store):
    conn = duckdb.connect(str(v6_store), read_only=True)
    before = _all_rows(conn)
    conn.close()
    assert len(before["predictions"]) == len(UNUSUAL)  # a run without predictions has no row
    with Store(v6_store) as store:
        assert store.schema_version == len(MIGRATIONS) == 7
        assert _all_rows(store._conn) == before
        for run in store.runs():
            tags = store.predictions(run["run_id"])
            assert tags == UNUSUAL.get(run["model_id"], [])
            assert predictions_sha256(tags) == run["predictions_sha256"]
        # one row per run; the per-sentence table is gone
        assert store._conn.execute("SELECT count(*) FROM predictions").fetchone() == (len(UNUSUAL),)
        assert "sentence" not in store._columns("predictions")
        widths = dict(
            store._conn.execute(
                "SELECT r.model_id, p.id_bytes FROM predictions p JOIN runs r USING (run_id)"
            ).fetchall()
        )
    assert widths["many-labels"] == 2 and widths["ordinary"] == 1
    with Store(v6_store) as store:  # a second open applies nothing
        assert store.schema_version == 7 and _all_rows(store._conn) == before


def test_a_failing_version_7_leaves_the_version_6_file_unchanged(v6_store, monkeypatch):
    conn = duckdb.connect(str(v6_store), read_only=True)
    before = _all_rows(conn)
    conn.close()
    monkeypatch.setattr(PackedPredictions, "unpack", lambda self: [["changed"]])
    with pytest.raises(NerbenchError, match="migration to schema version 7 failed.*do not read back unchanged"):
        Store(v6_store)
    conn = duckdb.connect(str(v6_store), read_only=True)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 6
    assert _all_rows(conn) == before
    conn.close()


def test_the_v2_fixtures_predictions_survive_every_migration(old_store):
    def frozen(tags: list[list[str]]) -> tuple:
        return tuple(tuple(sentence) for sentence in tags)

    conn = duckdb.connect(str(old_store), read_only=True)
    before = sorted(
        (hashed, frozen(_tags(conn, run_id)))
        for run_id, hashed in conn.execute("SELECT run_id, predictions_sha256 FROM runs").fetchall()
    )
    conn.close()
    with Store(old_store) as store:
        after = sorted((run["predictions_sha256"], frozen(store.predictions(run["run_id"]))) for run in store.runs())
    assert after == before and all(tags for _, tags in after)
    assert all(predictions_sha256([list(s) for s in tags]) == hashed for hashed, tags in after)
