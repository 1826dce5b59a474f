"""What the leaderboard shows, read from the results database in a few bulk queries.

`Store` reads one run at a time, which is right for the CLI but would cost thousands of queries
for a store of many submissions; the site opens the file once through `Store` (so an older schema
is migrated and a missing file is a clear error) and then reads every table in one query each over
a read-only connection.

Per model and dataset the site shows one run: the most recent one (ties broken by run id). Every
stored run stays listed on its model's page.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
from markupsafe import Markup

from nerbench.errors import NerbenchError
from nerbench.record import RunRecord, canonical_json
from nerbench.scoring import LENGTH_BUCKETS, PAPER_BUCKETS, SCHEMES
from nerbench.store import ALL, LONG_BUCKET, Store, read_predictions
from nerbench.tracks import Track, device_class, track_of


@functools.cache  # the same ids are linked from thousands of rows
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
    # The paper's gold-span length buckets (scheme 'paper-buckets'); None for runs stored before them.
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
        load = self.load
        return load["busy"] if load is not None else None

    @property
    def train_sentences(self) -> int | None:
        training = (self.details or {}).get("training")
        sentences = training.get("sentences") if isinstance(training, dict) else None
        count = sentences.get("train") if isinstance(sentences, dict) else None
        return count if isinstance(count, int) else None


@functools.cache  # a track's label is asked for on every row of every table
def track_label(track: Track) -> str:
    return track.label


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

    @cached_property
    def rerun(self) -> bool:
        """Whether one of its runs links a re-run of a submission (details "reproduces"): where none
        does, its pages need not look for a reproduction run by run."""
        return any(isinstance(run.details, dict) and "reproduces" in run.details for run in self.runs)


@dataclass
class StoreData:
    models: dict[str, Model]  # sorted by id
    datasets: list[str]  # datasets with at least one run, sorted
    runs: list[Run]  # all runs, sorted by dataset, model, newest first


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _connect(db: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as err:
        raise NerbenchError(f"{db}: cannot open the results database ({str(err).splitlines()[0]})") from None


def read_store(db: Path) -> StoreData:
    with Store(db, create=False):
        pass  # validates the file and applies pending migrations
    conn = _connect(db)
    try:
        return _read(conn)
    finally:
        conn.close()


def _pair(low: float | None, high: float | None) -> tuple[float, float] | None:
    return (low, high) if low is not None and high is not None else None


def _overall_sql() -> str:
    """One row per run: its overall scores, pivoted out of the metrics table by DuckDB (a store of
    10,000 submissions holds over 600,000 metric rows; looping over them in Python took seconds)."""
    strict_all = f"scheme = 'strict' AND entity_type = '{ALL}' AND length_bucket = '{ALL}'"
    strict_long = f"scheme = 'strict' AND entity_type = '{ALL}' AND length_bucket = '{LONG_BUCKET}'"
    paper_long = f"scheme = '{PAPER_BUCKETS}' AND length_bucket = '{LONG_BUCKET}'"
    everything = f"entity_type = '{ALL}' AND length_bucket = '{ALL}'"
    columns = [f"any_value({name}) FILTER (WHERE {strict_all})" for name in ("precision", "recall", "f1")]
    columns += [
        f"any_value({name}) FILTER (WHERE {where})"
        for where in (strict_all, strict_long, paper_long)
        for name in ("ci_low", "ci_high")
    ]
    columns += [f"any_value(f1) FILTER (WHERE {where})" for where in (strict_long, paper_long)]
    # Each scheme's F1 in a column of its own (lists of them took longer to fetch than the rest).
    columns += [f"any_value(f1) FILTER (WHERE scheme = '{scheme}' AND {everything})" for scheme in SCHEMES]
    return (
        f"SELECT run_id, {', '.join(columns)} FROM metrics "
        f"WHERE ({everything}) OR ({strict_long}) OR ({paper_long}) GROUP BY run_id"
    )


def _read(conn: duckdb.DuckDBPyConnection) -> StoreData:
    runs: dict[str, Run] = {}
    rows = conn.execute(
        "SELECT r.run_id, r.model_id, m.family, r.dataset, r.split, r.source, r.self_reported, r.modified, "
        "strftime(r.created_at, '%Y-%m-%dT%H:%M:%S') AS created, r.dataset_sha256, r.config, r.details, "
        f"o.* EXCLUDE (run_id) FROM runs r JOIN models m ON m.id = r.model_id "
        f"LEFT JOIN ({_overall_sql()}) o USING (run_id) WHERE r.status = 'complete' "
        # StoreData.runs' order (by dataset, model, newest first, run id): strings compare as in Python
        "ORDER BY r.dataset, r.model_id, created DESC, r.run_id"
    ).fetchall()
    for (
        run_id,
        model_id,
        family,
        dataset,
        split,
        source,
        self_reported,
        modified,
        created,
        sha,
        config,
        details,
        *scores,
    ) in rows:
        precision, recall, f1, low, high, long_low, long_high, paper_low, paper_high, long_f1, paper_f1 = scores[:11]
        runs[run_id] = Run(
            run_id=run_id,
            model_id=model_id,
            family=family,
            dataset=dataset,
            split=split,
            source=source,
            self_reported=bool(self_reported),
            modified=bool(modified),
            created_at=created,
            dataset_sha256=sha,
            record=RunRecord.model_validate_json(config),
            details=json.loads(details) if details else None,
            precision=precision,
            recall=recall,
            f1=f1,
            f1_ci=_pair(low, high),
            long_f1=long_f1,
            long_f1_ci=_pair(long_low, long_high),
            schemes={scheme: value for scheme, value in zip(SCHEMES, scores[11:]) if value is not None},
            paper_long_f1=paper_f1,
            paper_long_f1_ci=_pair(paper_low, paper_high),
        )
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
    all_runs = list(runs.values())  # in the query's order
    ordered = sorted(runs.values(), key=lambda r: (r.dataset, r.model_id, r.created_at, r.run_id), reverse=True)
    for run in ordered:  # newest first: the first run seen per dataset is the one shown
        model = models[run.model_id]
        model.runs.append(run)
        model.shown.setdefault(run.dataset, run)
    models = {mid: m for mid, m in models.items() if m.runs}
    for model in models.values():
        for dataset, shown in model.shown.items():
            shown.seed_runs = _seeds_of(shown, [r for r in model.runs if r.dataset == dataset])
    return StoreData(models=models, datasets=sorted({r.dataset for r in runs.values()}), runs=all_runs)


def score_cells(
    db: Path, datasets: list[tuple[list[Run], Sequence[str]]]
) -> Iterator[tuple[list[str], dict[str, list[Markup]]]]:
    """The score cells of the per-type, per-length and paper-bucket tables of dataset pages, one
    dataset after the other (its runs and the registry's order of its entity types): the entity types
    present (in that order, then by name), and for each run its three rows of cells (strict F1, with
    precision, recall and the gold count on hover; a dash where a run has no score), formatted by
    DuckDB: 50,000 runs hold 1.5 million cells, which Python took seconds to read and format. Only
    numbers go into them. One connection for all: a new one reads the metrics table anew."""
    cells = f"""
        SELECT run_id,
               CASE WHEN scheme = '{PAPER_BUCKETS}' THEN 2 WHEN length_bucket = '{ALL}' THEN 0 ELSE 1 END AS kind,
               CASE WHEN length_bucket = '{ALL}' THEN entity_type ELSE length_bucket END AS key,
               printf('<td class="num" title="P %.3f, R %.3f, %d gold">%.3f</td>', precision, recall, n_gold, f1)
                   AS html
        FROM metrics
        WHERE run_id IN (SELECT unnest($runs)) AND (
            (scheme = 'strict' AND (entity_type = '{ALL}') <> (length_bucket = '{ALL}'))
            OR (scheme = '{PAPER_BUCKETS}' AND entity_type = '{ALL}' AND length_bucket <> '{ALL}'))"""
    conn = _connect(db)
    try:
        for runs, order in datasets:
            yield _cells_of(conn, cells, [run.run_id for run in runs], order)
    finally:
        conn.close()


def _cells_of(
    conn: duckdb.DuckDBPyConnection, cells: str, ids: list[str], order: Sequence[str]
) -> tuple[list[str], dict[str, list[Markup]]]:
    """One dataset's types and cells (score_cells)."""
    found = conn.execute(f"SELECT DISTINCT key FROM ({cells}) WHERE kind = 0", {"runs": ids}).fetchall()
    types = sorted((t for (t,) in found), key=lambda t: (order.index(t) if t in order else len(order), t))
    # One row a run: each table's cells in column order, a dash where the run has no score (an
    # aggregate per column: string_agg with ORDER BY took twice as long).
    params: dict[str, Any] = {"runs": ids}
    rows: list[list[str]] = [[], [], []]
    for kind, keys in enumerate((types, LENGTH_BUCKETS, LENGTH_BUCKETS)):
        for key in keys:
            params[f"k{len(params)}"] = key
            rows[kind].append(
                f"coalesce(any_value(html) FILTER (WHERE kind = {kind} AND key = $k{len(params) - 1}), '{_DASH}')"
            )
    select = ", ".join(" || ".join(row) if row else "''" for row in rows)
    found_rows = conn.execute(f"SELECT run_id, {select} FROM ({cells}) GROUP BY run_id", params).fetchall()
    # A run without any of these scores (stored before they were): dashes throughout.
    empty = [Markup(_DASH * len(keys)) for keys in (types, LENGTH_BUCKETS, LENGTH_BUCKETS)]
    out = {run_id: empty for run_id in ids}
    for run_id, *html in found_rows:
        out[run_id] = [Markup(h) for h in html]
    return types, out


_DASH = '<td class="num">—</td>'


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
