import subprocess
import sys
from dataclasses import replace

import pytest

from nerbench.errors import NerbenchError
from nerbench.record import RunRecord
from nerbench.scoring import MetricRow
from nerbench.store import (
    MIGRATIONS,
    Migration,
    PackedPredictions,
    RunResult,
    Store,
    canonical_json,
    predictions_sha256,
)

from _records import run_record

Row = MetricRow  # the scorer's own row type, so the store is tested with what it receives


PREDICTIONS = [["B-Chemical", "O", "O"], [], ["O", "B-Disease", "I-Disease", "I-Disease"]]

TIMING = {
    "wall_seconds": 2.0,
    "pass_seconds": [2.5, 2.0, 1.5],
    "repeats": 3,
    "warmup_batches": 3,
    "batch_size": 64,
    "precision": "bf16",
    "sentences": 3,
    "word_tokens": 7,
    "sentences_per_second": 1.5,
    "tokens_per_second": 3.5,
    "batch_latency_p50_s": 0.5,
    "batch_latency_p95_s": 0.9,
    "peak_memory_bytes": 123456789,
    "memory_kind": "cuda_max_memory_allocated",
    "device": "cuda:0",
    "device_name": "NVIDIA H100 80GB HBM3",
    "num_devices": 1,
    "reference_hardware": True,
    "device_hours": 2.0 / 3600,
    "price_per_device_hour": 3.2,
    "price_source": "test table",
    "cost_usd": 3.2 * 2.0 / 3600,
    "cost_per_1k_sentences_usd": 3.2 * 2.0 / 3600 / 3 * 1000,
    "generation": None,
    "protocol": {"repeats": 3, "warmup_batches": 3},
    "model_seconds": 1.6,
    "host_seconds": 0.4,
    "load": {
        "cpus": 16,
        "busy_share": 0.25,
        "busy": False,
        "passes": [{"others_share": 0.01, "steal_share": 0.0, "loadavg_1m": 1.05}] * 3,
    },
}


# The timing fields of schema version 1 (version 6 added the time split and the machine's load).
V1_TIMING = {k: v for k, v in TIMING.items() if k not in ("model_seconds", "host_seconds", "load")}


def metric_rows(f1=0.8):
    return [
        Row("strict", "*", "*", 2.0, 3, 2, 2 / 3, 1.0, f1, 0.5, 0.95),
        Row("strict", "*", "3+", 1.0, 1, 1, 1.0, 1.0, 1.0, None, None),
        Row("strict", "Disease", "*", 1.0, 1, 1, 1.0, 1.0, 1.0, None, None),
        Row("partial", "*", "*", 1.5, 3, 2, 0.5, 0.75, 0.6, None, None),
    ]


MODEL = {
    "id": "tiny-bert",
    "family": "encoder",
    "hf_id": "org/tiny-bert",
    "revision": "abc123",
    "parameters": 4_400_000,
    "licence": "MIT",
    "recipe": {"lr": 2e-5},
}

# What identifies a run: these changes go to the run record (tests/_records.py), the rest to the result.
IDENTITY = {
    "model_id": "tiny-bert",
    "family": "encoder",
    "dataset": "bc5cdr",
    "profile": "quick",
    "epochs": 1,
    "seed": 0,
    "submission": None,
}


def record(**changes):
    """The result of a made-up run of tiny-bert on bc5cdr; identity changes (model_id, family, dataset,
    profile, epochs, seed, submission) build another run record, the others replace result fields."""
    identity = IDENTITY | {key: changes.pop(key) for key in IDENTITY if key in changes}
    model = MODEL if identity["model_id"] == MODEL["id"] else {"id": identity["model_id"]}
    base = RunResult(
        model=model | {"family": identity["family"]},
        record=run_record(**identity),
        predictions=PREDICTIONS,
        predictions_sha256=predictions_sha256(PREDICTIONS),
        metrics=metric_rows(),
        timing=dict(TIMING),
        environment={"device_name": "NVIDIA H100 80GB HBM3", "torch": "2.13.0"},
    )
    return replace(base, **changes)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "results.duckdb") as s:
        yield s


def counts(store, run_id):
    return {
        table: store._conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]
        for table in ("runs", "metrics", "timings", "environments", "predictions")
    }


def test_round_trip(store):
    rec = record()
    run_id = store.save_run(rec)
    assert store.predictions(run_id) == PREDICTIONS
    assert store.timing(run_id) == TIMING
    assert store.environment(run_id) == rec.environment
    stored = {(m["scheme"], m["entity_type"], m["length_bucket"]): m for m in store.metrics(run_id)}
    assert stored[("strict", "*", "*")]["f1"] == 0.8 and stored[("strict", "*", "*")]["ci_low"] == 0.5
    assert stored[("strict", "*", "3+")]["ci_high"] is None
    assert len(stored) == 4
    (run,) = store.runs()
    assert run["run_id"] == run_id == rec.record.run_id and run["family"] == "encoder"
    assert isinstance(run["record"], RunRecord) and run["record"] == rec.record
    assert run["record"].budget.name == "quick" and run["record"].training.seed == 0
    assert run["dataset"] == "bc5cdr" and run["split"] == "test" and run["dataset_sha256"] == "f" * 64
    assert run["config_hash"] == rec.record.digest and run["status"] == "complete"
    assert store.run(run_id)["record"] == rec.record
    assert run["source"] == "local" and run["self_reported"] is False
    assert store.model("tiny-bert")["meta"]["recipe"] == {"lr": 2e-5}
    assert store.model("tiny-bert")["parameters"] == 4_400_000


def test_data_survives_reopening(tmp_path):
    path = tmp_path / "results.duckdb"
    with Store(path) as s:
        run_id = s.save_run(record())
    with Store(path, create=False) as s:
        assert s.predictions(run_id) == PREDICTIONS
        assert s.schema_version == len(MIGRATIONS)


def test_the_run_id_is_the_records_identity():
    rec = run_record("tiny-bert", profile="quick", epochs=1)
    assert run_record("tiny-bert", profile="quick", epochs=1) == rec  # equal records ...
    assert run_record("tiny-bert", profile="quick", epochs=1).run_id == rec.run_id  # ... are the same run
    assert rec.run_id == rec.digest[: len(rec.run_id)] and len(rec.digest) == 64
    # Any change of what identifies the run is another run.
    others = [
        run_record("tiny-bert", profile="quick", epochs=1, seed=1),
        run_record("tiny-bert", profile="quick", epochs=2),
        run_record("tiny-bert", profile="paper", epochs=1),
        run_record("tiny-bert"),  # evaluated as it is, not fine-tuned
        run_record("tiny-bert", dataset="ncbi_disease", profile="quick", epochs=1),
        run_record("tiny-bert", profile="quick", epochs=1, dataset_sha256="0" * 64),
        run_record("tiny-bert", profile="quick", epochs=1, modified_dataset=True),
    ]
    assert len({rec.run_id, *(other.run_id for other in others)}) == len(others) + 1


def test_canonical_json_is_independent_of_key_order():
    assert canonical_json({"a": 1, "b": [1, 2]}, "x") == canonical_json({"b": [1, 2], "a": 1}, "x")
    assert canonical_json({"a": 1}, "x") != canonical_json({"a": 2}, "x")
    rec = run_record("tiny-bert", profile="quick", epochs=1)
    data = rec.model_dump(mode="json")

    def reversed_keys(value):
        if isinstance(value, dict):
            return {key: reversed_keys(value[key]) for key in reversed(list(value))}
        return [reversed_keys(item) for item in value] if isinstance(value, list) else value

    shuffled = RunRecord.model_validate(reversed_keys(data))
    assert list(reversed_keys(data)) != list(data)
    assert shuffled.canonical_json() == rec.canonical_json() and shuffled.run_id == rec.run_id


def test_canonical_json_refuses_nan_by_name(store):
    with pytest.raises(NerbenchError, match=r"details: not plain JSON data"):
        canonical_json({"a": float("nan")}, "details")
    with pytest.raises(NerbenchError, match=r"timing\.protocol: not plain JSON data"):
        canonical_json({"repeats": float("inf")}, "timing.protocol")
    # In a run: refused by name, nothing stored.
    with pytest.raises(NerbenchError, match=r"details: not plain JSON data"):
        store.save_run(record(details={"alignment": {"ratio": float("nan")}}))
    assert store.runs() == [] and store.model("tiny-bert") is None


def test_failure_mid_save_leaves_no_trace_and_keeps_earlier_runs(store):
    first = store.save_run(record())
    bad_rows = metric_rows() + [Row("exact", "*", "*", 1.0, 1, 1, None, 1.0, 1.0, None, None)]
    bad = record(dataset="ncbi_disease", metrics=bad_rows)
    with pytest.raises(NerbenchError, match="nothing was written"):
        store.save_run(bad)
    assert [r["run_id"] for r in store.runs()] == [first]
    for table in ("metrics", "timings", "environments", "predictions"):
        n = store._conn.execute(f"SELECT count(DISTINCT run_id) FROM {table}").fetchone()[0]
        assert n == 1, table
    assert store.predictions(first) == PREDICTIONS
    # The store is still usable after the rollback.
    assert store.save_run(record(dataset="ncbi_disease"))


def test_nan_score_is_refused(store):
    rows = metric_rows(f1=float("nan"))
    with pytest.raises(NerbenchError, match="nothing was written"):
        store.save_run(record(metrics=rows))
    assert store.runs() == []


def test_crash_in_last_step_rolls_back(store, monkeypatch):
    def explode(run_id, predictions):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "_insert_predictions", explode)
    with pytest.raises(RuntimeError, match="disk on fire"):
        store.save_run(record())
    assert store.runs() == [] and store.model("tiny-bert") is None
    assert store._conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == 0


def test_sha_mismatch_refused(store):
    with pytest.raises(NerbenchError, match="predictions_sha256"):
        store.save_run(record(predictions_sha256="0" * 64))
    assert store.runs() == []


def test_tag_with_whitespace_refused(store):
    preds = [["B-X Y"]]
    with pytest.raises(NerbenchError, match=r"predictions\[0\]"):
        store.save_run(record(predictions=preds, predictions_sha256=predictions_sha256(preds)))


@pytest.mark.parametrize(
    "predictions",
    [
        [
            [
                "B-" + "Gene_or_gene_product_and_a_long_type_name_" * 20,
                "I-" + "Gene_or_gene_product_and_a_long_type_name_" * 20,
            ]
        ],
        [[f"B-T{i}" for i in range(300)], [], [f"I-T{i}" for i in range(299, -1, -1)]],  # 600 labels: two-byte ids
        [[f"B-T{i}" for i in range(70_000)]],  # past 65,536 labels: four-byte ids
        [["ünïcödé-τύπος", "O", "😀", "O"], [], [], ["O"] * 5000],
        [[], []],
    ],
    ids=["long-type", "many-labels", "very-many-labels", "unicode-and-long-sentence", "only-empty-sentences"],
)
def test_unusual_tags_round_trip_exactly(store, predictions):
    run_id = store.save_run(record(predictions=predictions, predictions_sha256=predictions_sha256(predictions)))
    assert store.predictions(run_id) == predictions
    assert predictions_sha256(store.predictions(run_id)) == store.run(run_id)["predictions_sha256"]


def test_damaged_stored_predictions_are_refused_naming_the_run(store):
    run_id = store.save_run(record())
    store._conn.execute("UPDATE predictions SET ids = ?::BLOB WHERE run_id = ?", [b"not zlib", run_id])
    with pytest.raises(NerbenchError, match=f"run {run_id}: stored predictions cannot be read"):
        store.predictions(run_id)
    packed = PackedPredictions.pack([["O", "B-X"]])
    store._conn.execute(
        "UPDATE predictions SET sentences = ?, tokens = ?, labels = ?, id_bytes = ?, lengths = ?, ids = ? "
        "WHERE run_id = ?",
        [*packed.values()[:2], ["O"], *packed.values()[3:], run_id],
    )
    with pytest.raises(NerbenchError, match="a label id past the 1 labels"):
        store.predictions(run_id)


def test_has_run_for_resume_and_duplicate_refused(store):
    rec = record()
    assert not store.has_run(rec.record.run_id)
    run_id = store.save_run(rec)
    assert run_id == rec.record.run_id and store.has_run(run_id)
    assert store.has_run(run_record("tiny-bert", profile="quick", epochs=1).run_id)  # an equal record, built anew
    assert not store.has_run(record(seed=1).record.run_id)
    assert not store.has_run(record(dataset="ncbi_disease").record.run_id)
    with pytest.raises(NerbenchError, match=f"already stored as run {run_id}"):
        store.save_run(rec)
    # Other results of an equal record are the same run: refused too, the stored one kept.
    with pytest.raises(NerbenchError, match=f"already stored as run {run_id}"):
        store.save_run(record(metrics=metric_rows(f1=0.9), details={"training": {"epochs": 1}}))
    assert [r["run_id"] for r in store.runs()] == [run_id]
    assert {
        m["f1"]
        for m in store.metrics(run_id)
        if m["scheme"] == "strict" and m["length_bucket"] == "*" and m["entity_type"] == "*"
    } == {0.8}
    # Another configuration of the same model is a separate run.
    other = store.save_run(record(seed=1))
    assert other != run_id and len(store.runs()) == 2
    assert store.run(other)["record"].training.seed == 1
    budget = store.save_run(record(profile="paper", epochs=None))
    assert len({run_id, other, budget}) == 3 and len(store.runs()) == 3


def strict_f1(store, run_id):
    (row,) = [
        m for m in store.metrics(run_id) if (m["scheme"], m["entity_type"], m["length_bucket"]) == ("strict", "*", "*")
    ]
    return row["f1"]


def test_force_replaces_in_one_transaction(store):
    old = store.save_run(record())
    one_run = counts(store, old)
    # A --force re-run: the same record, so the same id, with the new results only.
    new = store.save_run(record(metrics=metric_rows(f1=0.9)), replaces=old)
    assert new == old and [r["run_id"] for r in store.runs()] == [new]
    assert counts(store, new) == one_run and strict_f1(store, new) == 0.9
    # A run replaced by another record leaves nothing of itself.
    other = store.save_run(record(seed=1), replaces=new)
    assert other != new and [r["run_id"] for r in store.runs()] == [other]
    assert counts(store, new) == dict.fromkeys(one_run, 0)
    # A failing replacement keeps the old run.
    with pytest.raises(NerbenchError):
        store.save_run(record(seed=1, metrics=metric_rows(f1=2.0)), replaces=other)
    assert [r["run_id"] for r in store.runs()] == [other]
    assert counts(store, other) == one_run and strict_f1(store, other) == 0.8


def test_delete_run(store):
    keep = store.save_run(record())
    gone = store.save_run(record(dataset="ncbi_disease"))
    store.delete_run(gone)
    assert counts(store, gone) == dict.fromkeys(counts(store, gone), 0)
    assert counts(store, keep)["predictions"] == 1  # one packed row per run
    assert store.predictions(keep) == PREDICTIONS
    with pytest.raises(NerbenchError, match="not in"):
        store.delete_run(gone)


def test_bad_record_fields(store):
    with pytest.raises(NerbenchError, match="model.family"):
        store.save_run(record(model={"id": "x", "family": "rnn"}))
    with pytest.raises(NerbenchError, match="model.id: missing"):
        store.save_run(record(model={"family": "encoder"}))
    with pytest.raises(NerbenchError, match="timing.flops"):
        store.save_run(record(timing={"flops": 1}))
    with pytest.raises(NerbenchError, match=r"metrics\[0\]\.entity_type: missing"):
        store.save_run(record(metrics=[{"scheme": "strict"}]))
    assert store.runs() == []


def test_model_and_record_must_name_the_same_model(store):
    with pytest.raises(NerbenchError, match="model.id: 'other-bert', but the run record says 'tiny-bert'"):
        store.save_run(record(model=MODEL | {"id": "other-bert"}))
    with pytest.raises(NerbenchError, match="model.family: 'llm', but the run record says 'encoder'"):
        store.save_run(record(model=MODEL | {"family": "llm"}))
    with pytest.raises(NerbenchError, match="model.id: 'tiny-bert', but the run record says 'tiny-llm'"):
        store.save_run(record(model_id="tiny-llm", family="llm", model=MODEL | {"family": "llm"}))
    assert store.runs() == [] and store.model("tiny-bert") is None and store.model("other-bert") is None
    assert store.save_run(record(model=MODEL | {"licence": "Apache-2.0"}))  # the rest of the dict is free


def test_submission_with_partial_timing(store):
    run_id = store.save_run(
        record(
            source="submission",
            self_reported=True,
            profile=None,
            submission="sub-1",
            timing={"wall_seconds": 10.0, "device_name": "NVIDIA A100-SXM4-80GB"},
            environment=None,
        )
    )
    timing = store.timing(run_id)
    assert timing["wall_seconds"] == 10.0 and timing["cost_usd"] is None
    assert store.environment(run_id) is None
    (row,) = store.summary()
    assert row["self_reported"] is True and row["device_name"] == "NVIDIA A100-SXM4-80GB"


def test_summary_rows(store):
    a = store.save_run(record())
    b = store.save_run(record(model_id="tiny-llm", family="llm", metrics=metric_rows(f1=0.9)))
    c = store.save_run(record(dataset="ncbi_disease"))
    rows = store.summary()
    assert [r["run_id"] for r in rows] == [b, a, c]  # by dataset, then F1 descending
    top = rows[0]
    assert top["f1"] == 0.9 and top["long_f1"] == 1.0 and top["f1_ci_low"] == 0.5
    assert top["family"] == "llm" and top["reference_hardware"] is True
    assert top["cost_usd"] == pytest.approx(TIMING["cost_usd"])
    assert [r["run_id"] for r in store.summary(dataset="ncbi_disease")] == [c]


# --------------------------------------------------------------------------- migrations


def test_migration_of_an_older_database_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    v1 = MIGRATIONS[:1]
    with Store(path, migrations=v1) as s:
        assert s.schema_version == 1
        run_id = s.save_run(record(timing=dict(V1_TIMING)))
    v2 = tuple(v1) + (Migration(2, "runs.note", ("ALTER TABLE runs ADD COLUMN note VARCHAR DEFAULT 'none'",)),)
    with Store(path, migrations=v2) as s:
        assert s.schema_version == 2
        assert s.predictions(run_id) == PREDICTIONS
        assert s.timing(run_id) == V1_TIMING
        (run,) = s.runs()
        assert run["run_id"] == run_id and run["note"] == "none"
        applied = s._conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert applied == [(1,), (2,)]
    # An older nerbench refuses a newer file rather than misreading it.
    with pytest.raises(NerbenchError, match="newer nerbench"):
        Store(path, migrations=v1)


def test_failed_migration_is_rolled_back(tmp_path):
    path = tmp_path / "old.duckdb"
    with Store(path, migrations=MIGRATIONS[:1]) as s:
        run_id = s.save_run(record(timing=dict(V1_TIMING)))
    broken = tuple(MIGRATIONS[:1]) + (
        Migration(2, "broken", ("ALTER TABLE runs ADD COLUMN x INTEGER", "SELECT * FROM no_such_table")),
    )
    with pytest.raises(NerbenchError, match="schema version 2"):
        Store(path, migrations=broken)
    with Store(path, migrations=MIGRATIONS[:1]) as s:
        assert s.schema_version == 1
        assert "x" not in s.runs()[0] and s.predictions(run_id) == PREDICTIONS


# --------------------------------------------------------------------------- opening


def test_missing_file_without_create(tmp_path):
    with pytest.raises(NerbenchError, match="no results database"):
        Store(tmp_path / "absent.duckdb", create=False)


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("not a database at all\n" * 100)
    with pytest.raises(NerbenchError, match=str(path)):
        Store(path)


def test_locked_by_another_process(tmp_path):
    path = tmp_path / "busy.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(NerbenchError, match=r"in use by another process \(waited 0.2 s\)") as err:
            Store(path, lock_wait=0.2)
        assert str(path) in str(err.value) and "lock" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_every_timing_report_field_has_a_column(store):
    from dataclasses import fields

    from nerbench.protocol import PROTOCOL
    from nerbench.timing import TimingReport

    values = {f.name: None for f in fields(TimingReport)}
    values.update(TIMING)
    values["pass_seconds"] = tuple(TIMING["pass_seconds"])
    values["protocol"] = PROTOCOL.to_dict()
    values["generation"] = {"generated_tokens_per_sentence": 41.5, "latency_p50_s": 0.8}
    report = TimingReport(**values)
    run_id = store.save_run(record(timing=report.to_dict()))
    assert store.timing(run_id) == report.to_dict()


def test_details_are_stored_outside_the_configuration(tmp_path):
    details = {"training": {"epochs": 1, "dev_f1": [0.5]}, "alignment": {"windows": 3}}
    with Store(tmp_path / "d.duckdb") as s:
        assert s.schema_version == len(MIGRATIONS)
        plain = record()
        with_details = record(details=details)
        assert plain.record == with_details.record  # details never change the identity
        run_id = s.save_run(with_details)
        assert run_id == plain.record.run_id and s.run(run_id)["details"] == details
        assert "alignment" not in s.run(run_id)["record"].canonical_json()
        with pytest.raises(NerbenchError, match=f"already stored as run {run_id}"):
            s.save_run(plain)
        other_details = record(details={"alignment": {"windows": 4}})
        assert s.save_run(other_details, replaces=run_id) == run_id
        assert s.run(run_id)["details"] == {"alignment": {"windows": 4}}


def test_save_runs_is_all_or_nothing(store):
    first = record(dataset="bc5cdr", profile=None, submission="sub-1", source="submission")
    second = record(
        dataset="ncbi_disease", profile=None, submission="sub-1", source="submission", timing={"no_such_field": 1}
    )
    with pytest.raises(NerbenchError, match="no_such_field"):
        store.save_runs([first, second])
    assert store.runs() == []
    ids = store.save_runs([first, replace(second, timing=dict(TIMING))])
    # A submission's runs are found by the submission id in their records, and only those.
    local = store.save_run(record(dataset="bc5cdr"))
    another = store.save_run(record(dataset="bc5cdr", profile=None, submission="sub-2", source="submission"))
    assert len({*ids, local, another}) == 4
    rows = store.runs_of_submission("sub-1")
    assert [r["run_id"] for r in rows] == ids  # ordered by dataset
    assert all(r["record"].submission.id == "sub-1" for r in rows)
    assert [r["run_id"] for r in store.runs_of_submission("sub-2")] == [another]
    assert store.runs_of_submission("other") == []
    again = store.save_runs([first], replaces=ids)
    assert [r["run_id"] for r in store.runs_of_submission("sub-1")] == again == ids[:1]
    assert {r["run_id"] for r in store.runs()} == {*again, local, another}
