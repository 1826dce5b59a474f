"""What the leaderboard shows, read from the results database in a few bulk queries.

`Store` reads one run at a time, which is right for the CLI but would cost thousands of queries
for a store of many submissions; the site opens the file once through `Store` (so an older schema
is migrated and a missing file is a clear error) and then reads every table in one query each over
a read-only connection.

Per model and dataset the site shows one run: the most recent one (ties broken by run id). Every
stored run stays listed on its model's page.
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb

from nerbench.errors import NerbenchError
from nerbench.record import RunRecord, canonical_json
from nerbench.scoring import PAPER_BUCKETS
from nerbench.store import ALL, LONG_BUCKET, Store, read_predictions
from nerbench.tracks import Track, device_class, track_of


def slug(text: str) -> str:
    """A file name for any model id or dataset name: readable part plus a hash that keeps it unique."""
    readable = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")[:60] or "x"
    return f"{readable}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:8]}"


@dataclass
class Run:
    """One stored run with everything the pages need."""

    run_id: str
    model_id: str
    family: str
    dataset: str
    split: str
    source: str
    self_reported: bool
    modified: bool
    created_at: str
    dataset_sha256: str
    record: RunRecord
    details: dict[str, Any] | None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    f1_ci: tuple[float, float] | None = None
    long_f1: float | None = None
    long_f1_ci: tuple[float, float] | None = None
    schemes: dict[str, float] = field(default_factory=dict)  # scheme -> F1 over all entities
    per_type: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_length: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The paper's gold-span length buckets (scheme 'paper-buckets'); empty for runs stored before them.
    paper_buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    paper_long_f1: float | None = None
    paper_long_f1_ci: tuple[float, float] | None = None
    timing: dict[str, Any] | None = None
    environment: dict[str, Any] | None = None
    seed_runs: list[Run] = field(default_factory=list)  # the shown run: its configuration's runs, one per seed

    @property
    def seed_spread(self) -> tuple[float, float, int] | None:
        """Mean and standard deviation of strict F1 over the seeds, where there are several."""
        values = [r.f1 for r in self.seed_runs if r.f1 is not None]
        if len(values) < 2 or len(values) != len(self.seed_runs):
            return None
        return statistics.fmean(values), statistics.stdev(values), len(values)

    @property
    def head(self) -> str:
        return self.record.head

    @property
    def cost_per_1k(self) -> float | None:
        return self.timing.get("cost_per_1k_sentences_usd") if self.timing else None

    @property
    def cost_usd(self) -> float | None:
        return self.timing.get("cost_usd") if self.timing else None

    @property
    def sentences(self) -> int | None:
        return self.timing.get("sentences") if self.timing else None

    @property
    def device_name(self) -> str | None:
        return self.timing.get("device_name") if self.timing else None

    @property
    def device_class(self) -> str | None:
        return device_class(self.device_name)

    @property
    def reference_hardware(self) -> bool:
        """Timed by nerbench itself on the reference hardware (a self-reported device never counts)."""
        return self.track.hardware == "reference"

    @cached_property
    def track(self) -> Track:
        return track_of(self.record, self.timing, self.self_reported)

    @property
    def seed(self) -> int | None:
        return self.record.training.seed if self.record.training is not None else None

    @property
    def dev_f1(self) -> float | None:
        """Dev strict F1, for choosing among models without looking at test: the best epoch's F1 from
        nerbench's training record, or a submission's dev predictions as nerbench re-scored them."""
        details = self.details or {}
        dev = details.get("dev")
        if isinstance(dev, dict) and isinstance(dev.get("strict_f1"), int | float):
            return float(dev["strict_f1"])
        training = details.get("training")
        scores = training.get("dev_f1") if isinstance(training, dict) else None
        if isinstance(scores, list) and scores and all(isinstance(v, int | float) for v in scores):
            return float(max(scores))
        return None

    @property
    def load(self) -> dict[str, Any] | None:
        """How busy the machine was while nerbench timed the run (nerbench.timing.MachineLoad: "cpus",
        "busy_share", "busy", "passes"); None where it was not measured: runs stored before nerbench
        measured it, and submissions (their timing is their own)."""
        load = self.timing.get("load") if self.timing and not self.self_reported else None
        if not isinstance(load, dict) or not isinstance(load.get("busy"), bool):
            return None
        passes = load.get("passes")
        if not isinstance(passes, list) or not all(isinstance(p, dict) for p in passes):
            return None
        return load

    @property
    def timed_busy(self) -> bool | None:
        """True: timed on a busy machine; False: the load was measured and the machine was not busy;
        None: not measured (never taken for idle)."""
        return self.load["busy"] if self.load is not None else None

    @property
    def train_sentences(self) -> int | None:
        training = (self.details or {}).get("training")
        sentences = training.get("sentences") if isinstance(training, dict) else None
        count = sentences.get("train") if isinstance(sentences, dict) else None
        return count if isinstance(count, int) else None


@dataclass
class Model:
    id: str
    family: str
    meta: dict[str, Any]
    slug: str
    runs: list[Run] = field(default_factory=list)  # every stored run, newest first
    shown: dict[str, Run] = field(default_factory=dict)  # dataset -> the run the site shows

    @property
    def heads(self) -> str:
        return ", ".join(sorted({run.head for run in self.shown.values()})) or "—"


@dataclass
class StoreData:
    models: dict[str, Model]  # sorted by id
    datasets: list[str]  # datasets with at least one run, sorted
    runs: list[Run]  # all runs, sorted by dataset, model, newest first


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def read_store(db: Path) -> StoreData:
    with Store(db, create=False):
        pass  # validates the file and applies pending migrations
    try:
        conn = duckdb.connect(str(db), read_only=True)
    except duckdb.Error as err:
        raise NerbenchError(f"{db}: cannot open the results database ({str(err).splitlines()[0]})") from None
    try:
        return _read(conn)
    finally:
        conn.close()


def _read(conn: duckdb.DuckDBPyConnection) -> StoreData:
    runs: dict[str, Run] = {}
    for row in _rows(
        conn, "SELECT r.*, m.family FROM runs r JOIN models m ON m.id = r.model_id WHERE r.status = 'complete'"
    ):
        runs[row["run_id"]] = Run(
            run_id=row["run_id"],
            model_id=row["model_id"],
            family=row["family"],
            dataset=row["dataset"],
            split=row["split"],
            source=row["source"],
            self_reported=bool(row["self_reported"]),
            modified=bool(row["modified"]),
            created_at=_iso(row["created_at"]),
            dataset_sha256=row["dataset_sha256"],
            record=RunRecord.model_validate_json(row["config"]),
            details=json.loads(row["details"]) if row.get("details") else None,
        )
    # Tuples, not dicts: a store of 1,000 submissions holds over 100,000 metric rows.
    metric_rows = conn.execute(
        "SELECT run_id, scheme, entity_type, length_bucket, tp, n_pred, n_gold, precision, recall, f1, ci_low, "
        f"ci_high FROM metrics WHERE scheme IN ('strict', '{PAPER_BUCKETS}') "
        "OR (entity_type = '*' AND length_bucket = '*')"
    ).fetchall()
    for run_id, scheme, entity_type, bucket, tp, n_pred, n_gold, precision, recall, f1, low, high in metric_rows:
        run = runs.get(run_id)
        if run is None:
            continue
        ci = (low, high) if low is not None and high is not None else None
        if entity_type == ALL and bucket == ALL:
            run.schemes[scheme] = f1
            if scheme == "strict":
                run.precision, run.recall, run.f1, run.f1_ci = precision, recall, f1, ci
            continue
        cell = {
            "tp": tp,
            "n_pred": n_pred,
            "n_gold": n_gold,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "ci": ci,
        }
        if scheme == PAPER_BUCKETS:
            run.paper_buckets[bucket] = cell
            if bucket == LONG_BUCKET:
                run.paper_long_f1, run.paper_long_f1_ci = f1, ci
            continue
        if bucket == ALL:
            run.per_type[entity_type] = cell
        elif entity_type == ALL:
            run.per_length[bucket] = cell
            if bucket == LONG_BUCKET:
                run.long_f1, run.long_f1_ci = f1, ci
    for row in _rows(conn, "SELECT * FROM timings"):
        run = runs.get(row.pop("run_id"))
        if run is not None:
            for name in ("generation", "protocol", "load"):
                if row.get(name) is not None:
                    row[name] = json.loads(row[name])
            run.timing = row
    for run_id, environment in conn.execute("SELECT run_id, environment FROM environments").fetchall():
        if run_id in runs:
            runs[run_id].environment = json.loads(environment)

    models: dict[str, Model] = {}
    for row in _rows(conn, "SELECT id, family, meta FROM models ORDER BY id"):
        models[row["id"]] = Model(row["id"], row["family"], json.loads(row["meta"]), slug(row["id"]))
    ordered = sorted(runs.values(), key=lambda r: (r.dataset, r.model_id, r.created_at, r.run_id), reverse=True)
    for run in ordered:  # newest first: the first run seen per dataset is the one shown
        model = models[run.model_id]
        model.runs.append(run)
        model.shown.setdefault(run.dataset, run)
    models = {mid: m for mid, m in models.items() if m.runs}
    for model in models.values():
        for dataset, shown in model.shown.items():
            shown.seed_runs = _seeds_of(shown, [r for r in model.runs if r.dataset == dataset])
    all_runs = sorted(runs.values(), key=lambda r: (r.dataset, r.model_id, _desc(r.created_at), r.run_id))
    return StoreData(models=models, datasets=sorted({r.dataset for r in runs.values()}), runs=all_runs)


# What a serving condition changes in a run's record (nerbench.record.Serving): the same checkpoint
# served another way.
SERVING_FIELDS = frozenset({"serving", "quantization", "precision", "batch_size"})


def serving_group(run: Run) -> str:
    """Runs of one model configuration, whatever their seed and serving condition."""
    record = run.record.model_dump(mode="json", exclude={"nerbench_version", "bootstrap", *SERVING_FIELDS})
    if record.get("training"):
        record["training"].pop("seed", None)
    return canonical_json(record) + "|" + run.track.key


def seed_group(run: Run) -> str:
    """Runs that differ only in their training seed (and the version that ran them) are seeds of one
    model configuration."""
    record = run.record.model_dump(mode="json", exclude={"nerbench_version", "bootstrap"})
    if record.get("training"):
        record["training"].pop("seed", None)
    return canonical_json(record) + "|" + run.track.key


def _seeds_of(shown: Run, runs: list[Run]) -> list[Run]:
    """The newest run of each seed of the shown run's configuration (runs: newest first)."""
    if len(runs) == 1:
        return [shown]
    group, by_seed = seed_group(shown), dict[int | None, Run]()
    for run in runs:
        if seed_group(run) == group:
            by_seed.setdefault(run.seed, run)
    by_seed[shown.seed] = shown
    return sorted(by_seed.values(), key=lambda r: (r.seed is None, r.seed or 0))


def _desc(text: str) -> tuple:
    return tuple(-ord(c) for c in text)


def predictions(db: Path, run_ids: list[str]) -> dict[str, list[list[str]]]:
    """The stored tags of a few runs, in sentence order: one read for all of them (one row per run,
    store.read_predictions); a run without stored predictions has none."""
    out: dict[str, list[list[str]]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return out
    conn = duckdb.connect(str(db), read_only=True)
    try:
        out.update(read_predictions(conn, run_ids))
    finally:
        conn.close()
    return out
