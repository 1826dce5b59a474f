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

A **reproduction shard** (`nerbench reproduce --shards DIR`: nerbench's re-run of a submission's
weights, its details naming the submission under "reproduces") is what a maintainer commits under
`leaderboard/reproduced/<submission-id>/` so that the published site, built from a fresh store,
shows the re-run. A file in the repository is input to check, not a result to copy, so ingesting one
takes none of its numbers on trust (`checked_reproduction`):

- it must link to a submission stored with the same content sha256: a re-run of an older version of
  a submission that has changed since is refused, since its agreement was measured against tags the
  submission no longer has, and stored unlinked it would show a timing of weights the submission
  may no longer name (the maintainer runs `nerbench reproduce` on the current version again);
- its predictions are re-scored against the gold test split with nerbench's scorer, and the store
  keeps those metrics, never the shard's; a shard whose F1 differs from the re-scored one is refused;
- agreement, F1 difference and the verdict are recomputed against the stored submission's
  predictions and re-scored F1, under this nerbench's rule (REPRODUCED_RULE); a shard whose measured
  numbers differ is refused;
- the model's record is the stored submission's, never the shard's.

What cannot be recomputed is trusted: the timing, the environment and the weights' identity in the
record are the reference runner's measurement, and are believed because a maintainer merged the
file (pull requests from others that touch the folder fail the submission check). Every problem
names the file and the field; a shard that fails stores nothing, and the others go on.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nerbench import scoring
from nerbench.datasets import get_dataset, load_split
from nerbench.errors import NerbenchError
from nerbench.record import Bootstrap, RunRecord
from nerbench.safe_text import shown
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


# ----------------------------------------------------------------------------- reproductions

# What agreement counts as reproduced, stated once (and in the README's words). It lives here, below
# the pipeline, because ingesting a reproduction shard applies it again (nerbench.pipeline.reproduce
# applies it when it re-runs).
MIN_AGREEMENT = 0.995
MAX_F1_DELTA = 0.005
REPRODUCED_RULE = f">= {MIN_AGREEMENT:.1%} identical tags and |delta F1| <= {MAX_F1_DELTA}"


def is_reproduced(agreement: float, f1_delta: float) -> bool:
    """Whether a re-run agrees with the submitted tags closely enough to count as reproduced."""
    return agreement >= MIN_AGREEMENT and abs(f1_delta) <= MAX_F1_DELTA


@dataclass(frozen=True)
class Agreement:
    tokens: int
    differing: int
    submitted_f1: float
    reproduced_f1: float

    @property
    def share(self) -> float:
        return 1.0 if self.tokens == 0 else (self.tokens - self.differing) / self.tokens

    @property
    def f1_delta(self) -> float:
        return self.reproduced_f1 - self.submitted_f1

    @property
    def reproduced(self) -> bool:
        return is_reproduced(self.share, self.f1_delta)


def agreement(
    submitted: Sequence[Sequence[str]], reproduced: Sequence[Sequence[str]], submitted_f1: float, reproduced_f1: float
) -> Agreement:
    """Tag-by-tag agreement of two taggings of one split (the same sentences, the same words)."""
    if len(submitted) != len(reproduced):
        raise NerbenchError(f"{len(reproduced)} sentences re-predicted, but {len(submitted)} submitted")
    tokens = differing = 0
    for number, (a, b) in enumerate(zip(submitted, reproduced), start=1):
        if len(a) != len(b):
            raise NerbenchError(f"sentence {number}: {len(b)} tags re-predicted, but {len(a)} submitted")
        tokens += len(a)
        differing += sum(x != y for x, y in zip(a, b))
    return Agreement(tokens, differing, submitted_f1, reproduced_f1)


def strict_f1(metrics: Sequence[Any]) -> float:
    """The strict F1 over all entities among metric rows (objects or dicts)."""
    for row in metrics:
        values = row if isinstance(row, Mapping) else vars(row)
        if (
            values["scheme"] == "strict"
            and values["entity_type"] == scoring.ALL
            and values["length_bucket"] == scoring.ALL
        ):
            return float(values["f1"])
    raise NerbenchError("no strict F1 over all entities among the metrics")


def reproduction_link(
    submission: str, content_sha256: str, found: Agreement, submitted_hardware: Mapping[str, Any]
) -> dict[str, Any]:
    """What a re-run's details["reproduces"] says: the submission, its content, the agreement, the verdict."""
    return {
        "submission": submission,
        "content_sha256": content_sha256,
        "agreement": found.share,
        "f1_delta": found.f1_delta,
        "submitted_f1": found.submitted_f1,
        "reproduced_f1": found.reproduced_f1,
        "tokens": found.tokens,
        "differing_tags": found.differing,
        "reproduced": found.reproduced,
        "rule": REPRODUCED_RULE,
        "submitted_hardware": dict(submitted_hardware),
    }


def is_reproduction(result: RunResult) -> bool:
    """A re-run of a submission's weights (`nerbench reproduce`): its details name the submission."""
    return isinstance(result.details, dict) and "reproduces" in result.details


# The measured numbers a shard's link states, checked against the recomputed ones. The verdict and
# the rule are not: they are this nerbench's, applied anew to the recomputed numbers.
_MEASURED = ("agreement", "f1_delta", "submitted_f1", "reproduced_f1", "tokens", "differing_tags")
# JSON carries floats exactly; this forgives only a last-bit difference in the arithmetic.
_TOLERANCE = 1e-9


def _differs(claimed: Any, actual: float) -> bool:
    if isinstance(claimed, bool) or not isinstance(claimed, int | float):
        return True
    return not math.isclose(claimed, actual, rel_tol=0.0, abs_tol=_TOLERANCE)


def _quoted(value: object) -> str:
    return f"'{shown(value)}'"


def _own_run(path: Path, result: RunResult) -> None:
    """A reproduction is nerbench's own measured run, never a submission's or a self-reported one."""
    record = result.record
    if record.submission is not None:
        raise NerbenchError(f"{path}: run.record.submission: set, but a reproduction is nerbench's own run")
    if result.source != "local":
        raise NerbenchError(f"{path}: run.source: {_quoted(result.source)}, but a reproduction is nerbench's own run")
    if result.self_reported:
        raise NerbenchError(f"{path}: run.self_reported: true, but a reproduction is timed by nerbench")
    if result.status != "complete":
        raise NerbenchError(f"{path}: run.status: {_quoted(result.status)}, not 'complete'")
    if record.protocol is None or result.timing is None:
        missing = "run.record.protocol" if record.protocol is None else "run.timing"
        raise NerbenchError(f"{path}: {missing}: missing, but a reproduction is timed under nerbench's protocol")
    if record.modified_dataset:
        raise NerbenchError(f"{path}: run.record.modified_dataset: true; a reproduction is of the registered split")


def _rescored(path: Path, result: RunResult, data_dir: Path | None) -> scoring.Scores:
    """The shard's predictions scored by nerbench against the gold test split, as `evaluate` scores them."""
    record = result.record
    try:
        info = get_dataset(record.dataset)
    except NerbenchError as err:
        raise NerbenchError(f"{path}: run.record.dataset: {err}") from None
    split = load_split(info.name, "test", data_dir)  # refused unless its sha256 is the registry's
    if record.dataset_sha256 != split.sha256:
        raise NerbenchError(
            f"{path}: run.record.dataset_sha256: {_quoted(record.dataset_sha256)} is not the registered test split "
            f"{split.sha256}"
        )
    expected = Bootstrap(
        resamples=scoring.BOOTSTRAP_RESAMPLES,
        seed=scoring.BOOTSTRAP_SEED,
        unit="document" if split.documents else "sentence",
        draw=scoring.BOOTSTRAP_DRAW,
    )
    if record.bootstrap != expected:  # a stated number of resamples is also the scorer's cost: never the shard's
        raise NerbenchError(
            f"{path}: run.record.bootstrap: {record.bootstrap.model_dump()} is not nerbench's "
            f"{expected.model_dump()} (written by another nerbench version? reproduce again)"
        )
    predictions, sentences, labels = result.predictions, split.sentences, set(info.labels)
    if len(predictions) != len(sentences):
        raise NerbenchError(
            f"{path}: run.predictions: {len(predictions)} sentences, but the {info.name} test split has "
            f"{len(sentences)}"
        )
    for index, (tags, sentence) in enumerate(zip(predictions, sentences)):
        if len(tags) != len(sentence.tokens):
            raise NerbenchError(
                f"{path}: run.predictions[{index}]: {len(tags)} tags for a sentence of {len(sentence.tokens)} words"
            )
        for tag in tags:
            if tag not in labels:
                raise NerbenchError(f"{path}: run.predictions[{index}]: {_quoted(tag)} is not a {info.name} label")
    gold = [list(s.tags) for s in sentences]
    return scoring.score(
        gold,
        predictions,
        types=info.entity_types,
        bootstrap=expected.resamples,
        seed=expected.seed,
        units=split.documents if expected.unit == "document" else None,
        draw=expected.draw,
    )


def _check_claimed_metrics(path: Path, claimed: Sequence[Any], scores: scoring.Scores) -> None:
    """Refuse a shard whose stated F1 differs from nerbench's (a changed number, or tags changed under it)."""
    actual = {(row.scheme, row.entity_type, row.length_bucket): row.f1 for row in scores.metric_rows()}
    for index, row in enumerate(claimed):
        if not isinstance(row, Mapping):
            raise NerbenchError(f"{path}: run.metrics[{index}]: not an object")
        key = (row.get("scheme"), row.get("entity_type"), row.get("length_bucket"))
        if key in actual and _differs(row.get("f1"), actual[key]):
            raise NerbenchError(
                f"{path}: run.metrics[{index}].f1 ({'/'.join(map(str, key))}): {shown(row.get('f1'))}, but nerbench "
                f"re-scores the shard's predictions to {actual[key]}"
            )


def checked_reproduction(shard: Shard, store: Store, data_dir: Path | None = None) -> RunResult:
    """The run to store for a reproduction shard: linked to the submission stored with the same content,
    its metrics nerbench's re-scoring, its agreement recomputed against the stored submitted tags, its
    model record the submission's. Anything else is refused, naming the file and the field."""
    path, result = shard.path, shard.result
    record = result.record
    link = (result.details or {}).get("reproduces")
    where = "run.details.reproduces"
    if not isinstance(link, Mapping):
        raise NerbenchError(f"{path}: {where}: not an object")
    sid, content = link.get("submission"), link.get("content_sha256")
    for name, value in (("submission", sid), ("content_sha256", content)):
        if not isinstance(value, str) or not value:
            raise NerbenchError(f"{path}: {where}.{name}: missing or not a string")
    assert isinstance(sid, str) and isinstance(content, str)
    _own_run(path, result)

    submitted_runs = store.runs_of_submission(sid)
    if not submitted_runs:
        raise NerbenchError(
            f"{path}: {where}.submission: {_quoted(sid)} is not a stored submission (ingest the submission folders "
            "first; a reproduction is stored only beside what it reproduces)"
        )
    declared = submitted_runs[0]["record"].submission
    if content != declared.content_sha256:
        raise NerbenchError(
            f"{path}: {where}.content_sha256: {_quoted(content)}, but submission {_quoted(sid)} is stored with content "
            f"{declared.content_sha256}: the submission changed since it was re-run, so the re-run is not stored "
            "(run nerbench reproduce on the current version)"
        )
    submitted = next((run for run in submitted_runs if run["dataset"] == record.dataset), None)
    if submitted is None:
        raise NerbenchError(
            f"{path}: run.record.dataset: submission {_quoted(sid)} has no predictions for {_quoted(record.dataset)}"
        )
    if record.model_id != submitted["model_id"]:
        raise NerbenchError(
            f"{path}: run.record.model_id: {_quoted(record.model_id)}, but submission {_quoted(sid)} is stored under "
            f"{_quoted(submitted['model_id'])}"
        )

    scores = _rescored(path, result, data_dir)
    _check_claimed_metrics(path, result.metrics, scores)
    submitted_f1 = strict_f1(store.metrics(submitted["run_id"]))
    try:
        found = agreement(store.predictions(submitted["run_id"]), result.predictions, submitted_f1, scores.strict.f1)
    except NerbenchError as err:
        raise NerbenchError(f"{path}: run.predictions: {err}") from None
    recomputed = reproduction_link(sid, content, found, declared.hardware)
    for name in _MEASURED:
        if _differs(link.get(name), recomputed[name]):
            raise NerbenchError(
                f"{path}: {where}.{name}: {shown(link.get(name))}, but recomputed against the stored submission it is "
                f"{recomputed[name]}"
            )
    model = store.model(record.model_id)
    assert model is not None  # the submission's runs are stored under it
    details = dict(result.details or {}) | {"ill_formed": scores.ill_formed, "reproduces": recomputed}
    return replace(result, model=model["meta"], metrics=scores.metric_rows(), details=details)


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


def ingest_shards(
    paths: Iterable[Path], db: Path, *, data_dir: Path | None = None, reproductions_only: bool = False
) -> list[Ingested]:
    """Load each shard into the store at `db`, one transaction each; stored runs are skipped.
    A shard that cannot be read or stored is reported (its file named) and the others go on.

    A reproduction shard is stored only as `checked_reproduction` makes it (re-scored against the
    test split in `data_dir`). `reproductions_only` refuses every other shard: a folder of committed
    reproductions may hold nothing whose numbers nerbench does not check."""
    files = shard_paths(paths)
    outcomes: list[Ingested] = []
    if not files:
        return outcomes
    with Store(db) as store:
        for path in files:
            try:
                shard = read_shard(path)
                reproduction = is_reproduction(shard.result)
                if reproductions_only and not reproduction:
                    raise NerbenchError(
                        f"{path}: run.details.reproduces: missing: not a reproduction of a submission "
                        "(only `nerbench reproduce --shards` files are ingested here)"
                    )
                if store.has_run(shard.run_id):
                    outcomes.append(Ingested(path, "skipped", shard.run_id, "already stored"))
                    continue
                store.save_run(checked_reproduction(shard, store, data_dir) if reproduction else shard.result)
            except NerbenchError as err:
                message = str(err)
                outcomes.append(
                    Ingested(path, "failed", None, message if str(path) in message else f"{path}: {message}")
                )
                continue
            outcomes.append(Ingested(path, "stored", shard.run_id))
    return outcomes
