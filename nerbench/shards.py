"""Shard files: the whole result of one cell (one run), written by a worker, loaded by `ingest`.

A worker on a cluster node never opens the results store (DuckDB has one writer at a time): it
writes what `Store.save_run` would have stored — the run record, the model's meta, predictions,
metrics, timing, environment and details (training record, and the scheduler's job id) — to one
JSON file, atomically (a temporary file in the same folder, then a rename), so a shard is either
whole or absent. `ingest_shards` loads shards into the store, one transaction each; a run already
stored is skipped, so ingesting the same shards twice changes nothing.

Shards are plain JSON (never pickle). Reading one checks it as the store checks a run: the record
through its typed model, the rest through the store's own validation, and every problem names the
file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nerbench.errors import NerbenchError
from nerbench.record import RunRecord
from nerbench.store import RunResult, Store
from nerbench.store import _validate as validate_result  # the checks save_run applies to every run

SHARD_SUFFIX = ".shard.json"
SHARD_FORMAT = "nerbench-shard"
SHARD_VERSION = 1


@dataclass(frozen=True)
class Shard:
    path: Path
    result: RunResult
    cell: dict[str, Any]  # the cell that made it (plain data: nerbench.pipeline.cells.Cell)
    job: dict[str, Any] | None  # the scheduler and its job id; None when run in-process

    @property
    def run_id(self) -> str:
        return self.result.record.run_id


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def shard_data(result: RunResult, *, cell: Mapping[str, Any], job: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The shard's JSON value: the run (as save_run takes it), the cell and the job."""
    validate_result(result)
    return {
        "format": SHARD_FORMAT,
        "version": SHARD_VERSION,
        "run_id": result.record.run_id,
        "cell": dict(cell),
        "job": dict(job) if job is not None else None,
        "run": {
            "model": result.model,
            "record": result.record.model_dump(mode="json"),
            "predictions": result.predictions,
            "predictions_sha256": result.predictions_sha256,
            "metrics": [_plain(row) for row in result.metrics],
            "timing": result.timing,
            "environment": result.environment,
            "source": result.source,
            "self_reported": result.self_reported,
            "status": result.status,
            "created_at": result.created_at.isoformat() if result.created_at is not None else None,
            "details": result.details,
        },
    }


def write_shard(
    path: Path, result: RunResult, *, cell: Mapping[str, Any], job: Mapping[str, Any] | None = None
) -> Path:
    """Write the shard atomically: a temporary file beside it, flushed to disk, then renamed."""
    text = json.dumps(shard_data(result, cell=cell, job=job), ensure_ascii=False, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _field(data: Mapping[str, Any], name: str, kind: type | tuple[type, ...], path: Path, where: str = "") -> Any:
    if name not in data:
        raise NerbenchError(f"{path}: {where}{name}: missing")
    value = data[name]
    if not isinstance(value, kind):
        raise NerbenchError(f"{path}: {where}{name}: {type(value).__name__}, not the expected kind")
    return value


def read_shard(path: Path) -> Shard:
    """Read and check one shard; every problem is one NerbenchError naming the file."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise NerbenchError(f"{path}: cannot be read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise NerbenchError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise NerbenchError(f"{path}:{err.lineno}: not a shard: invalid JSON ({err.msg}; cut short?)") from None
    if not isinstance(data, dict) or data.get("format") != SHARD_FORMAT:
        raise NerbenchError(f'{path}: not a nerbench shard (no "format": "{SHARD_FORMAT}")')
    if data.get("version") != SHARD_VERSION:
        raise NerbenchError(f"{path}: shard version {data.get('version')!r}; this nerbench reads {SHARD_VERSION}")
    run = _field(data, "run", dict, path)
    cell = _field(data, "cell", dict, path)
    job = data.get("job")
    if job is not None and not isinstance(job, dict):
        raise NerbenchError(f"{path}: job: not an object")
    try:
        record = RunRecord.model_validate(_field(run, "record", dict, path, "run."))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise NerbenchError(f"{path}: run.record.{where}: {first['msg']}") from None
    created = run.get("created_at")
    try:
        created_at = datetime.fromisoformat(created) if created is not None else None
    except (TypeError, ValueError):
        raise NerbenchError(f"{path}: run.created_at: {created!r} is not an ISO date and time") from None
    result = RunResult(
        model=_field(run, "model", dict, path, "run."),
        record=record,
        predictions=_field(run, "predictions", list, path, "run."),
        predictions_sha256=_field(run, "predictions_sha256", str, path, "run."),
        metrics=_field(run, "metrics", list, path, "run."),
        timing=run.get("timing"),
        environment=run.get("environment"),
        source=run.get("source", "local"),
        self_reported=bool(run.get("self_reported", False)),
        status=run.get("status", "complete"),
        created_at=created_at,
        details=run.get("details"),
    )
    for index, tags in enumerate(result.predictions):
        if not isinstance(tags, list):
            raise NerbenchError(f"{path}: run.predictions[{index}]: not a list of tags")
    try:
        validate_result(result)
    except NerbenchError as err:
        raise NerbenchError(f"{path}: run.{err}") from None
    if data.get("run_id") != record.run_id:
        raise NerbenchError(
            f"{path}: run_id {data.get('run_id')!r}, but its record hashes to {record.run_id} (the record was changed)"
        )
    return Shard(path, result, cell, job)


def is_shard_path(path: Path) -> bool:
    """A shard file, or a folder holding shard files."""
    path = Path(path)
    if path.is_dir():
        return any(path.glob(f"*{SHARD_SUFFIX}"))
    return path.name.endswith(SHARD_SUFFIX)


def shard_paths(paths: Iterable[Path]) -> list[Path]:
    """The shard files named: files as given, folders by their `*.shard.json` files (sorted)."""
    found: list[Path] = []
    for path in map(Path, paths):
        found.extend(sorted(path.glob(f"*{SHARD_SUFFIX}")) if path.is_dir() else [path])
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Ingested:
    path: Path
    status: str  # "stored" | "skipped" (already stored) | "failed"
    run_id: str | None = None
    message: str = ""


def ingest_shards(paths: Iterable[Path], db: Path) -> list[Ingested]:
    """Load each shard into the store at `db`, one transaction each; stored runs are skipped.
    A shard that cannot be read or stored is reported (its file named) and the others go on."""
    files = shard_paths(paths)
    outcomes: list[Ingested] = []
    if not files:
        return outcomes
    with Store(db) as store:
        for path in files:
            try:
                shard = read_shard(path)
                if store.has_run(shard.run_id):
                    outcomes.append(Ingested(path, "skipped", shard.run_id, "already stored"))
                    continue
                store.save_run(shard.result)
            except NerbenchError as err:
                message = str(err)
                outcomes.append(
                    Ingested(path, "failed", None, message if str(path) in message else f"{path}: {message}")
                )
                continue
            outcomes.append(Ingested(path, "stored", shard.run_id))
    return outcomes
