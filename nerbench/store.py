"""The results database: one DuckDB file holding models, runs, metrics, timings, environments and
predictions.

Every run is written in one transaction (`Store.save_run`): an interrupted or failing write leaves
nothing of that run, and every earlier run intact. The schema is versioned: `MIGRATIONS` is the
ordered list of steps, `schema_version` records the ones applied, and opening an older file applies
the missing steps (each in its own transaction) instead of dropping anything. Add a step to change
the schema; never edit one that has shipped.

Referential integrity (runs -> models, rows -> runs) is kept by this module rather than by foreign
keys: DuckDB checks foreign keys eagerly inside a transaction, which would forbid deleting a run and
its rows together.

Failures of the file itself come out as one NerbenchError naming the file, never as a DuckDB
traceback: `_Connection` is the one place that turns them into it (`_file_problem` says which
errors are about the file: it cannot be read or written, is damaged or truncated, the disk is full).
A process killed mid-save (even with SIGKILL) leaves nothing of that run: what DuckDB writes for a
transaction becomes part of the database only with its commit record in the write-ahead log, which
the next open replays. DuckDB lets one process at a time
open the file; a second one waits for it up to `LOCK_WAIT_SECONDS`, then fails naming the lock.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from pydantic import ValidationError

from nerbench import record as run_record
from nerbench.errors import NerbenchError
from nerbench.record import RunRecord
from nerbench.scoring import ALL, LONG_BUCKET

DEFAULT_DB = Path("nerbench.duckdb")
# How long opening a store waits for another process holding the file (an eval saving a run, an
# ingest) before it gives up naming the lock; each holder keeps it only for a lookup or a save.
LOCK_WAIT_SECONDS = 5.0
FAMILIES = ("encoder", "llm")
SOURCES = ("local", "submission")

METRIC_FIELDS = (
    "scheme",
    "entity_type",
    "length_bucket",
    "tp",
    "n_pred",
    "n_gold",
    "precision",
    "recall",
    "f1",
    "ci_low",
    "ci_high",
)


def _metrics_table(name: str, schemes: tuple[str, ...]) -> str:
    """The metrics table's DDL; migrations widen the schemes its CHECK allows (DuckDB cannot alter
    a CHECK, so a migration creates the wider table and copies the rows)."""
    allowed = ", ".join(f"'{scheme}'" for scheme in schemes)
    return f"""CREATE TABLE {name} (
            run_id VARCHAR NOT NULL,
            scheme VARCHAR NOT NULL CHECK (scheme IN ({allowed})),
            entity_type VARCHAR NOT NULL,
            length_bucket VARCHAR NOT NULL,
            tp DOUBLE NOT NULL CHECK (tp >= 0 AND tp <= 1e15),
            n_pred INTEGER NOT NULL CHECK (n_pred >= 0),
            n_gold INTEGER NOT NULL CHECK (n_gold >= 0),
            precision DOUBLE NOT NULL CHECK (precision >= 0 AND precision <= 1),
            recall DOUBLE NOT NULL CHECK (recall >= 0 AND recall <= 1),
            f1 DOUBLE NOT NULL CHECK (f1 >= 0 AND f1 <= 1),
            ci_low DOUBLE CHECK (ci_low >= 0 AND ci_low <= 1),
            ci_high DOUBLE CHECK (ci_high >= 0 AND ci_high <= 1),
            PRIMARY KEY (run_id, scheme, entity_type, length_bucket)
        )"""


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # A step SQL alone cannot express; runs after the statements, inside the same transaction.
    apply: Callable[[duckdb.DuckDBPyConnection], None] | None = None


_V1 = Migration(
    1,
    "models, runs, metrics, timings, environments, predictions",
    (
        """CREATE TABLE models (
            id VARCHAR PRIMARY KEY,
            family VARCHAR NOT NULL CHECK (family IN ('encoder', 'llm')),
            hf_id VARCHAR,
            revision VARCHAR,
            parameters BIGINT,
            licence VARCHAR,
            meta JSON NOT NULL
        )""",
        """CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            model_id VARCHAR NOT NULL,
            dataset VARCHAR NOT NULL,
            split VARCHAR NOT NULL,
            config JSON NOT NULL,
            config_hash VARCHAR NOT NULL,
            dataset_sha256 VARCHAR NOT NULL,
            modified BOOLEAN NOT NULL,
            predictions_sha256 VARCHAR NOT NULL,
            source VARCHAR NOT NULL CHECK (source IN ('local', 'submission')),
            self_reported BOOLEAN NOT NULL,
            created_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL
        )""",
        # Scores are fractions: the checks also refuse NaN (DuckDB orders NaN above every number).
        _metrics_table("metrics", ("strict", "exact", "partial", "type")),
        """CREATE TABLE timings (
            run_id VARCHAR PRIMARY KEY,
            wall_seconds DOUBLE,
            pass_seconds DOUBLE[],
            repeats INTEGER,
            warmup_batches INTEGER,
            batch_size INTEGER,
            precision VARCHAR,
            sentences INTEGER,
            word_tokens BIGINT,
            sentences_per_second DOUBLE,
            tokens_per_second DOUBLE,
            batch_latency_p50_s DOUBLE,
            batch_latency_p95_s DOUBLE,
            peak_memory_bytes BIGINT,
            memory_kind VARCHAR,
            device VARCHAR,
            device_name VARCHAR,
            num_devices INTEGER,
            reference_hardware BOOLEAN,
            device_hours DOUBLE,
            price_per_device_hour DOUBLE,
            price_source VARCHAR,
            cost_usd DOUBLE,
            cost_per_1k_sentences_usd DOUBLE,
            generation JSON,
            protocol JSON
        )""",
        "CREATE TABLE environments (run_id VARCHAR PRIMARY KEY, environment JSON NOT NULL)",
        """CREATE TABLE predictions (
            run_id VARCHAR NOT NULL,
            sentence INTEGER NOT NULL,
            tags VARCHAR NOT NULL,
            PRIMARY KEY (run_id, sentence)
        )""",
    ),
)

_V2 = Migration(
    2,
    "runs.details: what a run did beyond its configuration (training record, alignment and parse counts)",
    ("ALTER TABLE runs ADD COLUMN details JSON",),
)

_V3 = Migration(
    3,
    "runs.config holds the typed run record (nerbench.record.RunRecord); run_id is its hash",
    (),
    apply=lambda conn: _migrate_to_typed_records(conn),
)

# The price_source of a self-reported run whose cost is the submitter's own claimed cost_usd.
SELF_REPORTED_COST = "self-reported cost"

_SELF_REPORTED = "run_id IN (SELECT run_id FROM runs WHERE self_reported)"

# Before version 4, an ingested submission naming the reference device was flagged reference
# hardware and priced from nerbench's price table, although nerbench never timed it. Only runs that
# nerbench timed itself (self_reported false) are touched by neither statement; both are idempotent.
# A table-priced run's claimed cost_usd cannot be recovered: ingestion dropped it in favour of the
# table price and no column or JSON field kept it, so its cost becomes unknown (NULL). Re-ingesting
# the submission into a new store gives it back.
_V4 = Migration(
    4,
    "self-reported timings are never reference hardware and never priced from nerbench's price table",
    (
        f"UPDATE timings SET reference_hardware = false WHERE {_SELF_REPORTED} "
        "AND reference_hardware IS DISTINCT FROM false",
        "UPDATE timings SET price_per_device_hour = NULL, price_source = NULL, cost_usd = NULL, "
        f"cost_per_1k_sentences_usd = NULL WHERE {_SELF_REPORTED} "
        f"AND (price_source IS NOT NULL OR price_per_device_hour IS NOT NULL) "
        f"AND price_source IS DISTINCT FROM '{SELF_REPORTED_COST}'",
    ),
)

# DuckDB cannot alter a CHECK constraint, so the metrics table is rebuilt with the wider one; every
# row is kept as it is. Scheme 'paper-buckets' holds the paper's gold-span length buckets
# (nerbench.scoring.paper_bucket_segments); runs stored before this step have no such rows.
_V5 = Migration(
    5,
    "metrics.scheme may be 'paper-buckets': the paper's gold-span length buckets",
    (
        _metrics_table("metrics_v5", ("strict", "exact", "partial", "type", "paper-buckets")),
        f"INSERT INTO metrics_v5 SELECT {', '.join(('run_id', *METRIC_FIELDS))} FROM metrics",
        "DROP TABLE metrics",
        "ALTER TABLE metrics_v5 RENAME TO metrics",
    ),
)

# Runs stored before this step have NULL in the new columns: their time was not split, and the
# machine's load was not measured.
_V6 = Migration(
    6,
    "timings: model time apart from host time, and the machine's load during the timed passes",
    (
        "ALTER TABLE timings ADD COLUMN model_seconds DOUBLE",
        "ALTER TABLE timings ADD COLUMN host_seconds DOUBLE",
        "ALTER TABLE timings ADD COLUMN load JSON",
    ),
)


def _predictions_table(name: str) -> str:
    """One row per run: its label vocabulary and its tags as compressed label ids (PackedPredictions)."""
    return f"""CREATE TABLE {name} (
            run_id VARCHAR PRIMARY KEY,
            sentences INTEGER NOT NULL CHECK (sentences >= 0),
            tokens BIGINT NOT NULL CHECK (tokens >= 0),
            labels VARCHAR[] NOT NULL,
            id_bytes UTINYINT NOT NULL CHECK (id_bytes IN (1, 2, 4)),
            lengths BLOB NOT NULL,
            ids BLOB NOT NULL
        )"""


# One row per (run, sentence) holding the space-joined tags took 728 MiB for 1,000 submissions on the
# five default test sets; one row per run of zlib-compressed label ids takes about a tenth of it.
# Every run's tags are read back exactly as stored before (checked for each run before the old
# table is dropped).
_V7 = Migration(
    7,
    "predictions: one row per run, the tags as compressed label ids with the run's label vocabulary",
    (),
    apply=lambda conn: _migrate_to_packed_predictions(conn),
)

MIGRATIONS: tuple[Migration, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)

_JSON_TIMING_COLUMNS = ("generation", "protocol", "load")


# --------------------------------------------------------------------------- migration to typed records


def _v2_weights(model: dict[str, Any], sha256: str | None) -> run_record.Weights:
    source = model.get("source") or "folder"
    name = str(model.get("name") or "")
    return run_record.Weights(
        name=Path(name).name if source in ("folder", "adapter") else name,
        source=source,
        hf_id=model.get("hf_id"),
        revision=model.get("revision"),
        registry_id=model.get("registry_id"),
        package=model.get("package"),
        sha256=sha256,
        base=_v2_weights(model["base"], None) if model.get("base") else None,
    )


def _v2_recipe(family: str, stored: dict[str, Any] | None, budget: run_record.Budget, head: str) -> Any:
    """The effective recipe: the one the checkpoint's training record kept, else the default one
    with the budget applied (a v2 run whose training record is missing)."""
    from nerbench.recipes import EncoderRecipe, LLMRecipe

    kind = EncoderRecipe if family == "encoder" else LLMRecipe
    if stored:
        return kind.model_validate({k: v for k, v in stored.items() if k in kind.model_fields})
    overrides: dict[str, Any] = {"max_epochs": budget.epochs, "learning_rate": budget.learning_rate}
    if family == "llm":
        overrides |= {"head": head, "gradient_accumulation_steps": budget.gradient_accumulation_steps}
    return kind.model_validate({k: v for k, v in overrides.items() if v is not None})


def _record_from_v2(row: dict[str, Any]) -> RunRecord:
    """A schema-version-2 run's configuration dict as a typed record."""
    config = json.loads(row["config"])
    details = json.loads(row["details"]) if row.get("details") else {}
    common = {
        "model_id": row["model_id"],
        "family": row["family"],
        "dataset": row["dataset"],
        "dataset_sha256": row["dataset_sha256"],
        "modified_dataset": bool(row["modified"]),
    }
    if row["source"] == "submission":
        training = config.get("training") or {}
        return RunRecord(
            **common,
            weights=run_record.Weights(name=row["hf_id"] or row["model_id"], source="submission", hf_id=row["hf_id"]),
            head=config.get("head") or "token",
            quantization="nf4" if training.get("regime") == "qlora" else "none",
            bootstrap=run_record.Bootstrap(resamples=1000, seed=0),  # what v2 validate re-scored with
            submission=run_record.Submitted(
                id=config["submission_id"],
                content_sha256=config["submission_sha256"],
                training=training,
                generation=config.get("generation"),
                hardware=config.get("hardware") or {},
            ),
            nerbench_version=details.get("rescored_by") or "unknown",
        )
    llm = config.get("llm") or {}
    head = config.get("head") or "token"
    quantization = llm.get("quantization") or "none"
    training = None
    if config.get("fine_tuned_by_eval"):
        budget = run_record.Budget(**config["profile"])
        stored = (details.get("training") or {}).get("recipe")
        training = run_record.Training(
            base=_v2_weights(config["model"], None),
            dataset=row["dataset"],
            head=head,
            quantization=quantization,
            budget=budget,
            recipe=_v2_recipe(row["family"], stored, budget, head),
            seed=config["seed"],
        )
    lora = llm.get("lora")
    generation = llm.get("generation")
    return RunRecord(
        **common,
        weights=_v2_weights(config["model"], config.get("weights_sha256")),
        head=head,
        quantization=quantization,
        label_policy=config.get("label_policy"),
        training=training,
        lora=run_record.Lora(**lora) if lora else None,
        decoding=run_record.Decoding(**{k: v for k, v in generation.items() if k in run_record.Decoding.model_fields})
        if generation
        else None,
        batch_size=config.get("batch_size"),
        device=config.get("device"),
        precision=config.get("precision"),
        protocol=config["protocol"],
        bootstrap=run_record.Bootstrap(**config["bootstrap"]),
        nerbench_version=details.get("nerbench_version") or "unknown",
    )


_RUN_TABLES = ("runs", "metrics", "timings", "environments", "predictions")


def _migrate_to_typed_records(conn: duckdb.DuckDBPyConnection) -> None:
    cursor = conn.execute(
        "SELECT r.run_id, r.model_id, r.dataset, r.config, r.dataset_sha256, r.modified, r.source, r.details, "
        "m.family, m.hf_id FROM runs r JOIN models m ON m.id = r.model_id ORDER BY r.created_at, r.run_id"
    )
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, values)) for values in cursor.fetchall()]
    taken: dict[str, str] = {}
    for row in rows:
        old = row["run_id"]
        try:
            record = _record_from_v2(row)
        except (KeyError, TypeError, ValueError, ValidationError) as err:
            problem = str(err).splitlines()[0]
            raise NerbenchError(f"run {old}: its configuration cannot be read as a run record ({problem})") from None
        new = record.run_id
        if new in taken:
            raise NerbenchError(f"runs {taken[new]} and {old} have the same identity (both would be run {new})")
        taken[new] = old
        conn.execute(
            "UPDATE runs SET config = ?, config_hash = ? WHERE run_id = ?",
            [record.canonical_json(), record.digest, old],
        )
        if new == old:
            continue
        for table in _RUN_TABLES:  # new rows first, then the old ones: no key is ever held twice
            conn.execute(
                f"INSERT INTO {table} SELECT * REPLACE (?::VARCHAR AS run_id) FROM {table} WHERE run_id = ?", [new, old]
            )
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", [old])


# How many runs the version-7 migration reads at once (each a few hundred KB of tag text).
_MIGRATION_BATCH = 64


def _migrate_to_packed_predictions(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(_predictions_table("predictions_v7"))
    run_ids = [row[0] for row in conn.execute("SELECT DISTINCT run_id FROM predictions ORDER BY run_id").fetchall()]
    for start in range(0, len(run_ids), _MIGRATION_BATCH):
        batch = run_ids[start : start + _MIGRATION_BATCH]
        rows = conn.execute(
            "SELECT run_id, list(tags ORDER BY sentence) FROM predictions "
            "WHERE run_id IN (SELECT unnest(?)) GROUP BY run_id ORDER BY run_id",
            [batch],
        ).fetchall()
        for run_id, sentences in rows:
            tags = [text.split(" ") if text else [] for text in sentences]
            packed = PackedPredictions.pack(tags)
            if packed.unpack() != tags:  # never drop what cannot be read back exactly
                raise NerbenchError(f"run {run_id}: its predictions do not read back unchanged once packed")
            conn.execute("INSERT INTO predictions_v7 VALUES (?, ?, ?, ?, ?, ?, ?)", [run_id, *packed.values()])
    (kept,) = _one(conn.execute("SELECT count(*) FROM predictions_v7"))
    if int(kept) != len(run_ids):
        raise NerbenchError(f"{len(run_ids)} runs have predictions, but {kept} were packed")
    conn.execute("DROP TABLE predictions")
    conn.execute("ALTER TABLE predictions_v7 RENAME TO predictions")


# --------------------------------------------------------------------------- packed predictions


_ID_TYPES = {1: "<u1", 2: "<u2", 4: "<u4"}


@dataclass(frozen=True)
class PackedPredictions:
    """A run's tags as stored: its label vocabulary (sorted), the number of tags of each sentence
    (little-endian uint32) and every tag's index in the vocabulary (uint8, or uint16/uint32 for a
    vocabulary past 256/65,536 labels), both zlib-compressed. Lossless: `unpack` gives back the
    very tags `pack` was given (tags hold no whitespace, as the store refuses any that does)."""

    sentences: int
    tokens: int
    labels: list[str]
    id_bytes: int
    lengths: bytes
    ids: bytes

    @classmethod
    def pack(cls, predictions: Sequence[Sequence[str]]) -> PackedPredictions:
        labels = sorted({tag for tags in predictions for tag in tags})
        index = {label: i for i, label in enumerate(labels)}
        id_bytes = 1 if len(labels) <= 2**8 else 2 if len(labels) <= 2**16 else 4
        ids = np.fromiter((index[tag] for tags in predictions for tag in tags), dtype=_ID_TYPES[id_bytes])
        lengths = np.fromiter((len(tags) for tags in predictions), dtype="<u4", count=len(predictions))
        return cls(
            sentences=len(predictions),
            tokens=int(ids.size),
            labels=labels,
            id_bytes=id_bytes,
            lengths=zlib.compress(lengths.tobytes(), 6),
            ids=zlib.compress(ids.tobytes(), 6),
        )

    def values(self) -> list[Any]:
        """The row's values after run_id, in the table's column order."""
        return [self.sentences, self.tokens, self.labels, self.id_bytes, self.lengths, self.ids]

    def unpack(self) -> list[list[str]]:
        try:
            lengths = np.frombuffer(zlib.decompress(self.lengths), dtype="<u4")
            ids = np.frombuffer(zlib.decompress(self.ids), dtype=_ID_TYPES[self.id_bytes])
        except (zlib.error, KeyError, ValueError) as err:
            raise NerbenchError(f"stored predictions cannot be read ({err})") from None
        if lengths.size != self.sentences or ids.size != self.tokens or int(lengths.sum()) != self.tokens:
            raise NerbenchError(
                f"stored predictions are damaged: {lengths.size} sentence lengths summing to {int(lengths.sum())} "
                f"and {ids.size} tags, for {self.sentences} sentences of {self.tokens} tags"
            )
        if ids.size and int(ids.max()) >= len(self.labels):
            raise NerbenchError(f"stored predictions are damaged: a label id past the {len(self.labels)} labels")
        tags = np.array(self.labels, dtype=object)[ids].tolist() if ids.size else []
        out, at = [], 0
        for length in lengths.tolist():
            out.append(tags[at : at + length])
            at += length
        return out


_PACKED_COLUMNS = "sentences, tokens, labels, id_bytes, lengths, ids"


def read_predictions(
    conn: duckdb.DuckDBPyConnection | _Connection, run_ids: Sequence[str]
) -> dict[str, list[list[str]]]:
    """The stored tags of these runs (a run without predictions is absent), one query for all."""
    rows = conn.execute(
        f"SELECT run_id, {_PACKED_COLUMNS} FROM predictions WHERE run_id IN (SELECT unnest(?))", [list(run_ids)]
    ).fetchall()
    out = {}
    for run_id, *values in rows:
        try:
            out[run_id] = PackedPredictions(*values).unpack()
        except NerbenchError as err:
            raise NerbenchError(f"run {run_id}: {err}") from None
    return out


# --------------------------------------------------------------------------- hashing


def canonical_json(value: Any, what: str) -> str:
    """The record's canonical form for any JSON column; what is not plain JSON is refused by name."""
    try:
        return run_record.canonical_json(value)
    except (TypeError, ValueError) as err:
        raise NerbenchError(f"{what}: not plain JSON data ({err})") from None


def predictions_text(predictions: Sequence[Sequence[str]]) -> str:
    """Tags only, one line per sentence, space-separated: the form predictions are hashed in."""
    return "".join(" ".join(tags) + "\n" for tags in predictions)


def predictions_sha256(predictions: Sequence[Sequence[str]]) -> str:
    return hashlib.sha256(predictions_text(predictions).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the record


@dataclass
class RunResult:
    """Everything one run stores: its identity (the typed record) and what it produced.
    `model` needs "id" and "family"; the whole dict is kept as the model's meta."""

    model: dict[str, Any]
    record: RunRecord
    predictions: list[list[str]]
    predictions_sha256: str
    metrics: list[Any]  # objects (or dicts) with the MetricRow field names
    timing: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    source: str = "local"
    self_reported: bool = False
    status: str = "complete"
    created_at: datetime | None = None  # UTC; now when None
    # Not part of the identity (so not hashed): the training record, alignment statistics,
    # generation parse counts... whatever explains how the predictions came about.
    details: dict[str, Any] | None = None


def _metric_values(row: Any, index: int) -> tuple:
    values = []
    for name in METRIC_FIELDS:
        if isinstance(row, Mapping):
            if name not in row:
                raise NerbenchError(f"metrics[{index}].{name}: missing")
            values.append(row[name])
        else:
            if not hasattr(row, name):
                raise NerbenchError(f"metrics[{index}].{name}: missing")
            values.append(getattr(row, name))
    return tuple(values)


def _validate(result: RunResult) -> None:
    for key in ("id", "family"):
        if not result.model.get(key):
            raise NerbenchError(f"model.{key}: missing")
    if result.model["family"] not in FAMILIES:
        raise NerbenchError(f"model.family: {result.model['family']!r} is not one of {', '.join(FAMILIES)}")
    for key in ("id", "family"):
        held = result.model[key]
        in_record = result.record.model_id if key == "id" else result.record.family
        if held != in_record:
            raise NerbenchError(f"model.{key}: {held!r}, but the run record says {in_record!r}")
    if result.source not in SOURCES:
        raise NerbenchError(f"source: {result.source!r} is not one of {', '.join(SOURCES)}")
    for index, tags in enumerate(result.predictions):
        for tag in tags:
            if not isinstance(tag, str) or not tag or tag != tag.strip() or len(tag.split()) != 1:
                raise NerbenchError(f"predictions[{index}]: tag {tag!r} is empty or holds whitespace")
    actual = predictions_sha256(result.predictions)
    if actual != result.predictions_sha256:
        raise NerbenchError(
            f"predictions_sha256: the predictions hash to {actual}, not to the given {result.predictions_sha256}"
        )


def _parse_run_json(row: dict[str, Any]) -> dict[str, Any]:
    row["record"] = RunRecord.model_validate_json(row.pop("config"))
    row["details"] = json.loads(row["details"]) if row.get("details") is not None else None
    return row


# --------------------------------------------------------------------------- the file's own failures


class StoreFileError(NerbenchError):
    """The results file cannot be read or written: damaged, truncated, the disk full, unreadable.
    `problem` is the message without the file's name in front."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


# DuckDB raises a damaged block ("Corrupt database file: computed checksum ...") as its base Error and
# a failed commit as a TransactionException, so the classes alone do not tell; these words do.
_DAMAGED = ("corrupt database file", "not a valid duckdb database", "could not read enough bytes")
_FULL = ("no space left", "file too large", "disk quota", "out of disk")
_FILE_WORDS = (*_DAMAGED, *_FULL, "could not write", "could not read", "could not open", "invalidated")
_FILE_CLASSES = (duckdb.IOException, duckdb.FatalException, duckdb.InternalException, duckdb.SerializationException)


def _first_line(err: BaseException) -> str:
    line = (str(err).splitlines() or [type(err).__name__])[0]
    return line if len(line) <= 300 else line[:300] + "..."


def _file_problem(err: duckdb.Error) -> str | None:
    """What is wrong with the file, if `err` is about the file rather than about a statement."""
    text = str(err).lower()
    detail = _first_line(err)
    if any(words in text for words in _DAMAGED) or isinstance(err, duckdb.SerializationException):
        return f"the results database is damaged or truncated ({detail}); restore it from a copy, or pass another --db"
    if any(words in text for words in _FULL):
        return f"cannot write the results database: the disk is full or the file too large ({detail})"
    if isinstance(err, _FILE_CLASSES) or any(words in text for words in _FILE_WORDS):
        return f"cannot read or write the results database ({detail})"
    return None


_HEADERS_BYTES = 3 * 4096  # DuckDB's main header and its two alternating database headers


def _is_lock_conflict(err: duckdb.Error) -> bool:
    text = str(err).lower()
    return isinstance(err, duckdb.IOException) and ("could not set lock" in text or "conflicting lock" in text)


class _Connection:
    """The store's DuckDB connection: the one place where DuckDB's errors about the file become a
    StoreFileError naming it. Errors of a statement (a constraint, a type) stay DuckDB's, for the
    caller to report."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, path: Path) -> None:
        self.raw = conn
        self.path = path

    def _guarded(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except duckdb.Error as err:
            problem = _file_problem(err)
            if problem is None:
                raise
            raise StoreFileError(self.path, problem) from None

    def execute(self, sql: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        return self._guarded(self.raw.execute, sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> duckdb.DuckDBPyConnection:
        return self._guarded(self.raw.executemany, sql, parameters)

    def begin(self) -> None:
        self._guarded(self.raw.begin)

    def commit(self) -> None:
        self._guarded(self.raw.commit)

    def rollback_quietly(self) -> None:
        """Undo the open transaction, if DuckDB has not already: a failed commit rolls back by itself,
        and after a fatal error there is nothing left to roll back. The error that led here is the
        one to report."""
        try:
            self.raw.rollback()
        except duckdb.Error:
            pass

    def close(self) -> None:
        self._guarded(self.raw.close)


# --------------------------------------------------------------------------- the store


class Store:
    """One DuckDB results file. Use as a context manager, or call `close()`.

    `lock_wait`: seconds to wait while another process holds the file (default LOCK_WAIT_SECONDS).
    """

    def __init__(
        self,
        path: str | Path = DEFAULT_DB,
        *,
        create: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
        lock_wait: float | None = None,
    ) -> None:
        self.path = Path(path)
        new = not self.path.exists()
        if new:
            if not create:
                raise NerbenchError(f"{self.path}: no results database here (run `nerbench eval` first, or pass --db)")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = _Connection(self._connect(LOCK_WAIT_SECONDS if lock_wait is None else lock_wait), self.path)
        except StoreFileError:
            if new:  # a file DuckDB began and could not finish (a full disk) would read as damaged
                self._remove_new_file()
            raise
        try:
            self._check_size()
            self._migrate(migrations)
            # Packed predictions (schema version 7); a file opened with older `migrations` keeps
            # one row per sentence.
            self._packed = "sentence" not in self._columns("predictions")
        except BaseException:
            self._close_quietly()
            if new:
                self._remove_new_file()
            raise

    def _remove_new_file(self) -> None:
        """Remove a store this call created and could not set up: it held nothing before."""
        for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
            try:
                leftover.unlink(missing_ok=True)
            except OSError:
                pass

    def _connect(self, lock_wait: float) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting up to `lock_wait` seconds for another process that holds it."""
        deadline = time.monotonic() + lock_wait
        pause = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as err:
                if not _is_lock_conflict(err):
                    problem = _file_problem(err) or f"cannot open the results database ({_first_line(err)})"
                    raise StoreFileError(self.path, problem) from None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NerbenchError(
                        f"{self.path}: the results database is in use by another process (waited {lock_wait:g} s); "
                        f"wait for it to finish or pass another --db ({_first_line(err)})"
                    ) from None
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.5)

    def _check_size(self) -> None:
        """Refuse a truncated file at once: DuckDB itself opens one and fails only when a query reaches
        a missing block. The file is three 4 KiB headers, then blocks; every block in use lies in it
        (free ones at the end may have been cut off), so it is at least that long."""
        row = self._conn.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size() WHERE database_name = current_database()"
        ).fetchone()
        if row is None:
            return
        least = _HEADERS_BYTES + int(row[0]) * int(row[1])
        size = self.path.stat().st_size
        if size < least:
            raise StoreFileError(
                self.path,
                f"the results database is damaged or truncated (the file holds {size} bytes, but the blocks in "
                f"use need at least {least}); restore it from a copy, or pass another --db",
            )

    # ---- lifecycle

    def close(self) -> None:
        self._conn.close()

    def _close_quietly(self) -> None:
        try:
            self._conn.raw.close()
        except duckdb.Error:
            pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # the error on its way out is the one to report, not a second one from closing
            self._close_quietly()

    # ---- schema

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        versions = [m.version for m in migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"migrations must be numbered 1..n in order, got {versions}")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            "version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        current = self.schema_version
        if current > len(migrations):
            raise NerbenchError(
                f"{self.path}: written by a newer nerbench (schema version {current}; this one knows up to "
                f"{len(migrations)}); upgrade nerbench"
            )
        for step in migrations[current:]:
            self._conn.begin()
            try:
                for statement in step.statements:
                    self._conn.execute(statement)
                if step.apply is not None:
                    step.apply(self._conn.raw)
                self._conn.execute(
                    "INSERT INTO schema_version VALUES (?, ?, ?)", [step.version, step.description, _now()]
                )
                self._conn.commit()
            except StoreFileError as err:
                self._conn.rollback_quietly()
                raise StoreFileError(
                    self.path, f"migration to schema version {step.version} failed: {err.problem}"
                ) from None
            except (duckdb.Error, NerbenchError) as err:
                self._conn.rollback_quietly()
                raise NerbenchError(
                    f"{self.path}: migration to schema version {step.version} failed ({err}); the file is unchanged"
                ) from None
            except BaseException:
                self._conn.rollback_quietly()
                raise

    @property
    def schema_version(self) -> int:
        (version,) = _one(self._conn.execute("SELECT coalesce(max(version), 0) FROM schema_version"))
        return int(version)

    def _columns(self, table: str) -> list[str]:
        return [row[1] for row in self._conn.execute(f"PRAGMA table_info('{table}')").fetchall()]

    # ---- writing

    def save_run(self, record: RunResult, *, replaces: str | None = None) -> str:
        """Store a whole run in one transaction and return its id (its record's hash).

        `replaces` names a stored run deleted in the same transaction (a --force re-run). A run whose
        record is already stored and not replaced is refused.
        """
        return self.save_runs([record], replaces=[] if replaces is None else [replaces])[0]

    def save_runs(self, records: Sequence[RunResult], *, replaces: Sequence[str] = ()) -> list[str]:
        """Store several runs (a submission's datasets) in ONE transaction: all of them or none.

        The runs named in `replaces` are deleted in the same transaction.
        """
        for record in records:
            _validate(record)
        conn = self._conn
        what = f"run of {records[0].model['id']} on {records[0].record.dataset}" if records else "runs"
        conn.begin()
        try:
            for old in replaces:
                if not self.has_run(old):
                    raise NerbenchError(f"run {old}: not in {self.path}, so it cannot be replaced")
                self._delete(old)
            run_ids = []
            for record in records:
                run_ids.append(self._write_run(record))
            conn.commit()
        except StoreFileError as err:  # the file: the disk full, a damaged block, a failed commit
            conn.rollback_quietly()
            raise StoreFileError(self.path, f"{what} not stored, nothing was written: {err.problem}") from None
        except duckdb.Error as err:  # a statement: a constraint, a value out of range
            conn.rollback_quietly()
            raise NerbenchError(f"{self.path}: {what} not stored, nothing was written ({_first_line(err)})") from None
        except BaseException:
            conn.rollback_quietly()
            raise
        return run_ids

    def _write_run(self, result: RunResult) -> str:
        """The inserts of one run; the caller holds the transaction."""
        identity = result.record
        metric_rows = [_metric_values(row, i) for i, row in enumerate(result.metrics)]
        run_id = identity.run_id
        model = result.model
        conn = self._conn
        if self.has_run(run_id):
            raise NerbenchError(
                f"model {model['id']} on {identity.dataset}/{identity.split} with this configuration is already "
                f"stored as run {run_id} (re-run with --force to replace it)"
            )
        conn.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "family = excluded.family, hf_id = excluded.hf_id, revision = excluded.revision, "
            "parameters = excluded.parameters, licence = excluded.licence, meta = excluded.meta",
            [
                model["id"],
                model["family"],
                model.get("hf_id"),
                model.get("revision"),
                model.get("parameters"),
                model.get("licence"),
                canonical_json(model, "model"),
            ],
        )
        row = {
            "run_id": run_id,
            "model_id": identity.model_id,
            "dataset": identity.dataset,
            "split": identity.split,
            "config": identity.canonical_json(),
            "config_hash": identity.digest,
            "dataset_sha256": identity.dataset_sha256,
            "modified": identity.modified_dataset,
            "predictions_sha256": result.predictions_sha256,
            "source": result.source,
            "self_reported": bool(result.self_reported),
            "created_at": result.created_at or _now(),
            "status": result.status,
        }
        if result.details is not None:  # a column since schema version 2
            row["details"] = canonical_json(result.details, "details")
        conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
        if metric_rows:
            conn.executemany(
                f"INSERT INTO metrics VALUES (?, {', '.join('?' for _ in METRIC_FIELDS)})",
                [(run_id, *values) for values in metric_rows],
            )
        if result.timing is not None:
            self._insert_timing(run_id, result.timing)
        if result.environment is not None:
            conn.execute(
                "INSERT INTO environments VALUES (?, ?)", [run_id, canonical_json(result.environment, "environment")]
            )
        self._insert_predictions(run_id, result.predictions)
        return run_id

    def runs_of_submission(self, submission_id: str) -> list[dict[str, Any]]:
        """Runs ingested from the submission with this id (its config names it)."""
        rows = self._dicts(
            "SELECT r.*, m.family FROM runs r JOIN models m ON m.id = r.model_id "
            "WHERE r.source = 'submission' AND json_extract_string(r.config, '$.submission.id') = ? "
            "ORDER BY r.dataset",
            [submission_id],
        )
        return [_parse_run_json(row) for row in rows]

    def _insert_timing(self, run_id: str, timing: Mapping[str, Any]) -> None:
        columns = self._columns("timings")[1:]
        unknown = sorted(set(timing) - set(columns))
        if unknown:
            raise NerbenchError(f"timing.{unknown[0]}: not a timing field (known: {', '.join(columns)})")
        values = []
        for name in columns:
            value = timing.get(name)
            if name in _JSON_TIMING_COLUMNS and value is not None:
                value = canonical_json(value, f"timing.{name}")
            elif isinstance(value, float) and not math.isfinite(value):
                raise NerbenchError(f"timing.{name}: {value} is not a finite number")
            elif isinstance(value, tuple):
                value = list(value)
            values.append(value)
        marks = ", ".join("?" for _ in range(len(columns) + 1))
        self._conn.execute(f"INSERT INTO timings (run_id, {', '.join(columns)}) VALUES ({marks})", [run_id, *values])

    def _insert_predictions(self, run_id: str, predictions: Sequence[Sequence[str]]) -> None:
        if not predictions:
            return
        if not self._packed:  # a file kept at a schema version before 7 (`migrations`): its own form
            self._conn.execute(
                "INSERT INTO predictions SELECT ?, unnest(?), unnest(?)",
                [run_id, list(range(len(predictions))), [" ".join(tags) for tags in predictions]],
            )
            return
        packed = PackedPredictions.pack(predictions)
        self._conn.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", [run_id, *packed.values()])

    def has_run(self, run_id: str) -> bool:
        """Whether the run of this id (its record's hash) is stored: resuming, replacing, duplicates."""
        (count,) = _one(self._conn.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]))
        return int(count) > 0

    def _delete(self, run_id: str) -> None:
        for table in ("predictions", "environments", "timings", "metrics", "runs"):
            self._conn.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])

    def delete_run(self, run_id: str) -> None:
        """Remove a run and all its rows, in one transaction."""
        if not self.has_run(run_id):
            raise NerbenchError(f"run {run_id}: not in {self.path}")
        self._conn.begin()
        try:
            self._delete(run_id)
            self._conn.commit()
        except BaseException:
            self._conn.rollback_quietly()
            raise

    # ---- reading

    def _dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def runs(self, *, dataset: str | None = None, model_id: str | None = None) -> list[dict[str, Any]]:
        rows = self._dicts(
            "SELECT r.*, m.family FROM runs r JOIN models m ON m.id = r.model_id "
            "WHERE (?::VARCHAR IS NULL OR r.dataset = ?) AND (?::VARCHAR IS NULL OR r.model_id = ?) "
            "ORDER BY r.created_at, r.run_id",
            [dataset, dataset, model_id, model_id],
        )
        for row in rows:
            _parse_run_json(row)
        return rows

    def run(self, run_id: str) -> dict[str, Any]:
        rows = self._dicts(
            "SELECT r.*, m.family FROM runs r JOIN models m ON m.id = r.model_id WHERE run_id = ?", [run_id]
        )
        if not rows:
            raise NerbenchError(f"run {run_id}: not in {self.path}")
        return _parse_run_json(rows[0])

    def model(self, model_id: str) -> dict[str, Any] | None:
        rows = self._dicts("SELECT * FROM models WHERE id = ?", [model_id])
        if not rows:
            return None
        rows[0]["meta"] = json.loads(rows[0]["meta"])
        return rows[0]

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        return self._dicts(
            f"SELECT {', '.join(METRIC_FIELDS)} FROM metrics WHERE run_id = ? "
            "ORDER BY scheme, entity_type, length_bucket",
            [run_id],
        )

    def predictions(self, run_id: str) -> list[list[str]]:
        """The run's tags, one list per sentence (none stored: an empty list)."""
        if not self._packed:
            rows = self._conn.execute(
                "SELECT tags FROM predictions WHERE run_id = ? ORDER BY sentence", [run_id]
            ).fetchall()
            return [tags.split(" ") if tags else [] for (tags,) in rows]
        return read_predictions(self._conn, [run_id]).get(run_id, [])

    def timing(self, run_id: str) -> dict[str, Any] | None:
        rows = self._dicts("SELECT * EXCLUDE (run_id) FROM timings WHERE run_id = ?", [run_id])
        if not rows:
            return None
        row = rows[0]
        for name in _JSON_TIMING_COLUMNS:
            if row.get(name) is not None:
                row[name] = json.loads(row[name])
        return row

    def environment(self, run_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT environment FROM environments WHERE run_id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row else None

    def summary(self, *, dataset: str | None = None) -> list[dict[str, Any]]:
        """One row per run: strict micro P/R/F1 with CI, long-entity F1, speed, cost, device, marks.

        Also `head` (an LLM's head, from the run config) and `parse` (a generative run's parse counts,
        from its details, as a dict), so that a listing of runs needs no query per run.
        """
        rows = self._dicts(
            f"""
            SELECT r.run_id, r.model_id, m.family, r.dataset, r.split, r.source, r.self_reported,
                   r.modified, r.created_at,
                   s.precision, s.recall, s.f1, s.ci_low AS f1_ci_low, s.ci_high AS f1_ci_high,
                   l.f1 AS long_f1, l.ci_low AS long_f1_ci_low, l.ci_high AS long_f1_ci_high,
                   t.sentences_per_second, t.cost_usd, t.cost_per_1k_sentences_usd,
                   t.device_name, t.num_devices, t.reference_hardware,
                   json_extract_string(r.config, '$.head') AS head,
                   json_extract(r.details, '$.generation.parse') AS parse
            FROM runs r
            JOIN models m ON m.id = r.model_id
            LEFT JOIN metrics s ON s.run_id = r.run_id AND s.scheme = 'strict'
                 AND s.entity_type = '{ALL}' AND s.length_bucket = '{ALL}'
            LEFT JOIN metrics l ON l.run_id = r.run_id AND l.scheme = 'strict'
                 AND l.entity_type = '{ALL}' AND l.length_bucket = '{LONG_BUCKET}'
            LEFT JOIN timings t ON t.run_id = r.run_id
            WHERE (?::VARCHAR IS NULL OR r.dataset = ?)
            ORDER BY r.dataset, s.f1 DESC NULLS LAST, r.created_at, r.run_id
            """,
            [dataset, dataset],
        )
        for row in rows:  # DuckDB hands JSON back as text
            row["parse"] = json.loads(row["parse"]) if row["parse"] is not None else None
        return rows


def _one(cursor: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    """The one row an aggregate query returns."""
    row = cursor.fetchone()
    assert row is not None, "an aggregate query returns one row"
    return row


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
