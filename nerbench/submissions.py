"""Submissions: a folder of tags-only predictions plus `submission.toml`, checked as hostile input,
re-scored against the gold test sets, packaged from stored runs, and ingested into the store.

    submissions/<id>/submission.toml
    submissions/<id>/predictions/<dataset>.tags     one line per test sentence, tags separated by
                                                    single spaces, in the split's order
    submissions/<id>/predictions/<dataset>.dev.tags optional: the same for the dev split, re-scored
                                                    too, so that models can be chosen on dev F1
    submissions/<id>/README.md                      optional

Nothing in a submission is trusted: the file set, sizes and encodings are checked before anything
is parsed, every field is validated (unknown fields refused), the predictions are re-scored, and
claimed scores that differ from the re-scored ones are an error. Every problem is reported (file,
line where there is one, what was expected), not just the first.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from nerbench import __version__, scoring
from nerbench.datasets import REGISTRY, DatasetInfo, load_split
from nerbench.errors import NerbenchError
from nerbench.record import Bootstrap, RunRecord, Submitted, Weights
from nerbench.store import SELF_REPORTED_COST, RunResult, Store, predictions_sha256, predictions_text

SCHEMA_VERSION = 1
TOML_NAME = "submission.toml"
README_NAME = "README.md"
PREDICTIONS_DIR = "predictions"
TAGS_SUFFIX = ".tags"
DEV_TAGS_SUFFIX = ".dev.tags"
DEV_SOURCE = "submission dev predictions, re-scored by nerbench"
MAX_TOML_BYTES = 64 * 1024
MAX_README_BYTES = 64 * 1024
MAX_TAGS_BYTES = 16 * 1024 * 1024  # the largest test set (chemprot) needs about 1.1 MB
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_PROBLEMS_PER_FILE = 20
# Claimed scores must equal the re-scored ones up to rounding at the 4th decimal.
CLAIM_TOLERANCE = 5e-5

# Dots only between other characters, so no '..' and no hidden name; 64 characters at most.
ID_RE = re.compile(r"^(?=.{1,64}$)[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*$")
_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*$"  # the same, for pydantic (no look-ahead)
_TAGS_FILE_RE = re.compile(r"^[a-z0-9_]{1,64}(?:\.dev)?\.tags$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# ----------------------------------------------------------------------------- the schema

Text = Annotated[str, StringConstraints(max_length=2000)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(max_length=64, pattern=_ID_PATTERN)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelSection(BaseModel):
    model_config = _STRICT
    id: Identifier
    family: Literal["encoder", "llm"]
    base_model: Short
    parameters: Annotated[int, Field(gt=0, le=10**13)]
    licence: Short
    links: Annotated[
        list[Annotated[str, StringConstraints(max_length=500, pattern=r"^https://")]], Field(max_length=10)
    ] = []
    description: Text = ""


class TrainingSection(BaseModel):
    model_config = _STRICT
    regime: Literal["full", "lora", "qlora", "none"]
    head: Literal["token", "generative"]
    lora_rank: Annotated[int, Field(gt=0, le=65536)] | None = None
    lora_alpha: Annotated[int, Field(gt=0, le=65536)] | None = None
    quantization_bits: Literal[4, 8, 16, 32] | None = None
    profile: Short | None = None
    epochs: Annotated[int, Field(gt=0, le=1000)] | None = None
    notes: Text = ""


class GenerationSection(BaseModel):
    model_config = _STRICT
    decoding: Literal["greedy", "sampling", "beam"]
    max_new_tokens_rule: Short


class HardwareSection(BaseModel):
    model_config = _STRICT
    device: Short
    num_devices: Annotated[int, Field(ge=1, le=4096)] = 1


class TimingSection(BaseModel):
    """Self-reported: shown as such, never ranked as if measured by nerbench."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    wall_seconds: Annotated[float, Field(gt=0, le=10**9)]
    sentences_per_second: Annotated[float, Field(gt=0, le=10**9)]
    tokens_per_second: Annotated[float, Field(gt=0, le=10**10)] | None = None
    peak_memory_bytes: Annotated[int, Field(ge=0, le=10**15)] | None = None
    cost_usd: Annotated[float, Field(ge=0, le=10**9)] | None = None


class GeneratedSection(BaseModel):
    """A generative run's decoding statistics: self-reported, like the timing (the generated text is
    not submitted, so they cannot be re-derived)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    generated_tokens_per_sentence: Annotated[float, Field(ge=0, le=10**7)]
    sentence_latency_p50_s: Annotated[float, Field(ge=0, le=10**6)] | None = None
    sentence_latency_p95_s: Annotated[float, Field(ge=0, le=10**6)] | None = None
    stopped_at_limit: Annotated[int, Field(ge=0, le=10**9)] | None = None
    parse: (
        Annotated[
            dict[Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")], Annotated[int, Field(ge=0, le=10**12)]],
            Field(max_length=32),
        ]
        | None
    ) = None


class ClaimedScores(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    strict_f1: Fraction | None = None
    strict_precision: Fraction | None = None
    strict_recall: Fraction | None = None
    long_f1: Fraction | None = None


class DatasetSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    split: Literal["test"] = "test"
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    predictions: Annotated[str, StringConstraints(max_length=200, pattern=r"^predictions/[a-z0-9_]{1,64}\.tags$")]
    # Optional, both or neither: the dev split's predictions, re-scored like the test ones, so that
    # the leaderboard can choose a family's best model on dev F1 rather than on test F1.
    dev_predictions: (
        Annotated[str, StringConstraints(max_length=200, pattern=r"^predictions/[a-z0-9_]{1,64}\.dev\.tags$")] | None
    ) = None
    dev_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    timing: TimingSection | None = None
    generation: GeneratedSection | None = None
    claimed: ClaimedScores | None = None


class Submission(BaseModel):
    model_config = _STRICT
    schema_version: Literal[1]
    id: Identifier
    nerbench_version: Short
    submitted_by: Annotated[str, StringConstraints(max_length=200)] = ""
    model: ModelSection
    training: TrainingSection
    generation: GenerationSection | None = None
    hardware: HardwareSection
    datasets: Annotated[
        dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")], DatasetSection],
        Field(min_length=1, max_length=20),
    ]


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass
class Validation:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    submission: Submission | None = None
    scores: dict[str, scoring.Scores] = field(default_factory=dict)
    predictions: dict[str, list[list[str]]] = field(default_factory=dict)
    split_sha256: dict[str, str] = field(default_factory=dict)
    # Per dataset with dev predictions: their re-scored dev F1 (the run's details["dev"]).
    dev: dict[str, dict[str, Any]] = field(default_factory=dict)
    content_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, file: Path | str, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(str(file), message, line))


# ----------------------------------------------------------------------------- the file set


def _scan(path: Path, v: Validation) -> dict[str, Path]:
    """The submission's files by relative name, after checking the layout. Never follows links."""
    files: dict[str, Path] = {}
    try:
        top = os.lstat(path)
    except OSError:
        v.add(path, "no such submission folder")
        return files
    if stat.S_ISLNK(top.st_mode):
        v.add(path, "is a symbolic link: a submission is a plain folder")
        return files
    if not stat.S_ISDIR(top.st_mode):
        v.add(path, "is not a folder")
        return files
    if not ID_RE.match(path.name):
        v.add(
            path,
            f"folder name {path.name!r} is not a valid submission id "
            "(lower-case letters, digits, '.', '_' and '-'; at most 64; no '..')",
        )
    total = 0

    def visit(folder: Path, rel: str, allowed) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            v.add(folder, f"cannot be listed ({err.strerror})")
            return
        for entry in entries:
            name = entry.name
            shown = folder / name
            rel_name = f"{rel}{name}"
            if entry.is_symlink():
                v.add(shown, "is a symbolic link: links are not allowed in a submission")
                continue
            if name.startswith("."):
                v.add(shown, "hidden files are not allowed in a submission")
                continue
            kind = allowed(name, entry)
            if kind is None:
                v.add(
                    shown,
                    "unexpected "
                    + ("folder" if entry.is_dir(follow_symlinks=False) else "file")
                    + f" (a submission holds {TOML_NAME}, {PREDICTIONS_DIR}/<dataset>{TAGS_SUFFIX}"
                    + f" and optionally {PREDICTIONS_DIR}/<dataset>{DEV_TAGS_SUFFIX} and {README_NAME})",
                )
                continue
            if kind == "dir":
                visit(Path(entry.path), f"{rel_name}/", _allowed_in_predictions)
                continue
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                v.add(shown, "is not a regular file")
                continue
            limit = {TOML_NAME: MAX_TOML_BYTES, README_NAME: MAX_README_BYTES}.get(rel_name, MAX_TAGS_BYTES)
            if info.st_size > limit:
                v.add(shown, f"is {info.st_size} bytes, more than the limit of {limit}")
                continue
            total += info.st_size
            files[rel_name] = Path(entry.path)

    visit(path, "", _allowed_at_top)
    if total > MAX_TOTAL_BYTES:
        v.add(path, f"holds {total} bytes, more than the limit of {MAX_TOTAL_BYTES}")
    if TOML_NAME not in files and not any(p.file == str(path / TOML_NAME) for p in v.problems):
        v.add(path / TOML_NAME, "missing")
    return files


def _allowed_at_top(name: str, entry: os.DirEntry) -> str | None:
    is_dir = entry.is_dir(follow_symlinks=False)
    if name == PREDICTIONS_DIR and is_dir:
        return "dir"
    if name in (TOML_NAME, README_NAME) and not is_dir:
        return "file"
    return None


def _allowed_in_predictions(name: str, entry: os.DirEntry) -> str | None:
    # No folders below predictions/: nesting is refused without descending into it.
    if entry.is_dir(follow_symlinks=False) or not _TAGS_FILE_RE.match(name):
        return None
    return "file"


def _read_text(path: Path, v: Validation) -> str | None:
    data = path.read_bytes()
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        v.add(path, "binary content (a NUL byte): expected UTF-8 text", line)
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        v.add(path, f"not valid UTF-8 (byte 0x{data[err.start]:02x})", line)
        return None


def content_sha256(files: dict[str, Path]) -> str:
    """One digest over the submission's files (names and bytes): its identity for ingestion."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + files[name].read_bytes() + b"\0")
    return digest.hexdigest()


# ----------------------------------------------------------------------------- submission.toml


def _free_text_problems(value: Any, where: str) -> list[str]:
    """Control characters have no business in any field (HTML is fine: the site escapes it)."""
    if isinstance(value, str):
        return [f"field {where}: control characters are not allowed"] if _CONTROL_RE.search(value) else []
    if isinstance(value, dict):
        return [p for k, item in value.items() for p in _free_text_problems(item, f"{where}.{k}" if where else k)]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _free_text_problems(item, f"{where}[{i}]")]
    return []


def _parse_toml(path: Path, v: Validation) -> Submission | None:
    text = _read_text(path, v)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # Python 3.11's error has no lineno attribute; its message ends "(at line N, column M)".
        found = re.search(r"\(at line (\d+), column \d+\)$", str(err))
        message = str(err)[: found.start()].strip() if found else str(err)
        v.add(path, f"not valid TOML ({message})", int(found.group(1)) if found else None)
        return None
    except RecursionError:
        v.add(path, "nested too deeply")
        return None
    for message in _free_text_problems(data, ""):
        v.add(path, message)
    try:
        return Submission.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            where = ".".join(str(part) for part in e["loc"]) or "(top level)"
            message = "unknown field (not in the submission schema)" if e["type"] == "extra_forbidden" else e["msg"]
            v.add(path, f"field {where}: {message}")
        return None


# ----------------------------------------------------------------------------- predictions


def parse_tags(
    text: str, path: Path, gold, labels: set[str], v: Validation, split: str = "test"
) -> list[list[str]] | None:
    """One line per gold sentence of `split`; returns the tags, or None after adding the problems found."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    before = len(v.problems)
    reported = 0

    def problem(message: str, line: int) -> None:
        nonlocal reported
        reported += 1
        if reported <= MAX_PROBLEMS_PER_FILE:
            v.add(path, message, line)

    if len(lines) != len(gold):
        what = "missing" if len(lines) < len(gold) else "extra"
        problem(
            f"{len(lines)} lines, but the {split} split has {len(gold)} sentences "
            f"({abs(len(gold) - len(lines))} {what})",
            min(len(lines), len(gold)) + 1,
        )
    predictions = []
    for number, (line, sentence) in enumerate(zip(lines, gold), start=1):
        line = line.removesuffix("\r")
        tags = line.split(" ") if line else []
        if len(tags) != len(sentence.tokens):
            problem(
                f"{len(tags)} tags, but sentence {number} has {len(sentence.tokens)} tokens "
                "(tags are separated by single spaces)",
                number,
            )
        bad = [t for t in tags if t not in labels]
        if bad:
            problem(f"tag {bad[0][:40]!r} is not one of the dataset's labels ({', '.join(sorted(labels))})", number)
        predictions.append(tags)
    if reported > MAX_PROBLEMS_PER_FILE:
        v.add(path, f"... and {reported - MAX_PROBLEMS_PER_FILE} more problems in this file")
    return predictions if len(v.problems) == before else None


def _check_claims(path: Path, name: str, claimed: ClaimedScores | None, scores: scoring.Scores, v: Validation):
    if claimed is None:
        return
    actual = {
        "strict_f1": scores.strict.f1,
        "strict_precision": scores.strict.precision,
        "strict_recall": scores.strict.recall,
        "long_f1": scores.long_f1,
    }
    for key, value in claimed.model_dump().items():
        if value is not None and abs(value - actual[key]) > CLAIM_TOLERANCE:
            v.add(
                path,
                f"field datasets.{name}.claimed.{key}: claims {value:.6f}, "
                f"but the predictions re-score to {actual[key]:.6f}",
            )


# ----------------------------------------------------------------------------- dev predictions


def _rescore_dev(
    path: Path,
    files: dict[str, Path],
    name: str,
    entry: DatasetSection,
    info: DatasetInfo,
    data_dir: Path | None,
    v: Validation,
) -> None:
    """Check and re-score one dataset's dev predictions into `v.dev` (or add the problems found)."""
    toml_path = files[TOML_NAME]
    expected = f"{PREDICTIONS_DIR}/{name}{DEV_TAGS_SUFFIX}"
    where = f"field datasets.{name}"
    if entry.dev_predictions is None or entry.dev_sha256 is None:
        given, missing = (
            ("dev_predictions", "dev_sha256") if entry.dev_sha256 is None else ("dev_sha256", "dev_predictions")
        )
        v.add(toml_path, f"{where}.{missing}: missing ({given} is given; the two come together or not at all)")
        return
    if entry.dev_predictions != expected:
        v.add(toml_path, f"{where}.dev_predictions: must be {expected!r}, not {entry.dev_predictions[:80]!r}")
        return
    try:
        registered = info.split("dev").sha256 if info.public else None
    except NerbenchError:
        registered = None
    if registered is None:
        v.add(toml_path, f"{where}.dev_predictions: {name} has no public dev split, so nerbench cannot re-score it")
        return
    if entry.dev_sha256 != registered:
        v.add(toml_path, f"{where}.dev_sha256: {entry.dev_sha256} is not the registered dev split {registered}")
        return
    if expected not in files:
        v.add(path / expected, f"missing (named in submission.toml, {where}.dev_predictions)")
        return
    try:
        split = load_split(name, "dev", data_dir)
    except NerbenchError as err:
        v.add(path / expected, f"cannot be re-scored: {err}")
        return
    text = _read_text(files[expected], v)
    if text is None:
        return
    predictions = parse_tags(text, files[expected], split.sentences, set(info.labels), v, split="dev")
    if predictions is None:
        return
    gold = [list(s.tags) for s in split.sentences]
    scores = scoring.score(gold, predictions, types=info.entity_types, bootstrap=0)
    v.dev[name] = {
        "strict_f1": scores.strict.f1,
        "long_f1": scores.long_f1,
        "sentences": len(predictions),
        "sha256": split.sha256,
        "source": DEV_SOURCE,
    }


# ----------------------------------------------------------------------------- validate


def validate(path: str | os.PathLike, data_dir: Path | None = None) -> Validation:
    """Check one submission folder completely and re-score it. Never raises for bad input."""
    path = Path(path)
    v = Validation(path)
    files = _scan(path, v)
    if TOML_NAME not in files:
        return v
    submission = _parse_toml(files[TOML_NAME], v)
    if submission is None:
        return v
    v.submission = submission
    toml_path = files[TOML_NAME]
    if submission.id != path.name:
        v.add(toml_path, f"field id: {submission.id!r} differs from the folder name {path.name!r}")
    named = set()
    for name, entry in submission.datasets.items():
        expected = f"{PREDICTIONS_DIR}/{name}{TAGS_SUFFIX}"
        named.add(expected)
        if entry.dev_predictions is not None:
            named.add(f"{PREDICTIONS_DIR}/{name}{DEV_TAGS_SUFFIX}")
        if entry.predictions != expected:
            v.add(toml_path, f"field datasets.{name}.predictions: must be {expected!r}, not {entry.predictions[:80]!r}")
            continue
        info = REGISTRY.get(name)
        if info is None:
            v.add(toml_path, f"field datasets.{name}: unknown dataset (known: {', '.join(REGISTRY)})")
            continue
        if entry.dev_predictions is not None or entry.dev_sha256 is not None:
            _rescore_dev(path, files, name, entry, info, data_dir, v)
        registered = info.split("test").sha256 if info.public else None
        if registered is None:
            v.add(toml_path, f"field datasets.{name}: not a public test set, so nerbench cannot re-score it")
            continue
        if entry.sha256 != registered:
            v.add(
                toml_path, f"field datasets.{name}.sha256: {entry.sha256} is not the registered test split {registered}"
            )
            continue
        if expected not in files:
            v.add(path / expected, "missing (named in submission.toml)")
            continue
        try:
            split = load_split(name, "test", data_dir)
        except NerbenchError as err:
            v.add(path / expected, f"cannot be re-scored: {err}")
            continue
        text = _read_text(files[expected], v)
        if text is None:
            continue
        predictions = parse_tags(text, files[expected], split.sentences, set(info.labels), v)
        if predictions is None:
            continue
        gold = [list(s.tags) for s in split.sentences]
        scores = scoring.score(
            gold,
            predictions,
            types=info.entity_types,
            bootstrap=scoring.BOOTSTRAP_RESAMPLES,
            seed=scoring.BOOTSTRAP_SEED,
            units=split.documents,  # the intervals resample documents where the split names them
        )
        v.scores[name], v.predictions[name], v.split_sha256[name] = scores, predictions, split.sha256
        _check_claims(toml_path, name, entry.claimed, scores, v)
    for rel in sorted(files):
        if rel.startswith(f"{PREDICTIONS_DIR}/") and rel not in named:
            v.add(files[rel], "unexpected file: no dataset in submission.toml names it")
    v.content_sha256 = content_sha256(files)
    return v


# ----------------------------------------------------------------------------- ingest


def _timing(submission: Submission, name: str, n_sentences: int, n_tokens: int) -> dict | None:
    """The submission's own timing, kept and shown as self-reported.

    nerbench did not measure it, so it is never flagged as reference hardware (whatever device it
    names: only runs nerbench timed itself on the reference hardware are) and never priced from
    nerbench's price table. Its cost is the submitter's claimed `cost_usd`, else unknown.
    """
    entry = submission.datasets[name].timing
    if entry is None:
        return None
    device, devices = submission.hardware.device, submission.hardware.num_devices
    cost = entry.cost_usd
    return {
        "wall_seconds": entry.wall_seconds,
        "sentences": n_sentences,
        "word_tokens": n_tokens,
        "sentences_per_second": entry.sentences_per_second,
        "tokens_per_second": entry.tokens_per_second,
        "peak_memory_bytes": entry.peak_memory_bytes,
        "memory_kind": "self-reported",
        "device_name": device,
        "num_devices": devices,
        "reference_hardware": False,
        "device_hours": entry.wall_seconds * devices / 3600,
        "price_per_device_hour": None,
        "price_source": None if cost is None else SELF_REPORTED_COST,
        "cost_usd": cost,
        "cost_per_1k_sentences_usd": None if cost is None else cost / n_sentences * 1000,
        "protocol": {"self_reported": True},
    }


def _records(v: Validation, data_dir: Path | None) -> list[RunResult]:
    s = v.submission
    if s is None:  # callers store valid submissions only
        raise NerbenchError("a submission without a valid submission.toml cannot be stored")
    model = {
        "id": s.model.id,
        "family": s.model.family,
        "hf_id": s.model.base_model,
        "revision": None,
        "parameters": s.model.parameters,
        "licence": s.model.licence,
        "links": list(s.model.links),
        "description": s.model.description,
        "submission": s.id,
    }
    records = []
    for name in sorted(v.scores):
        predictions = v.predictions[name]
        record = RunRecord(
            model_id=s.model.id,
            family=s.model.family,
            dataset=name,
            dataset_sha256=v.split_sha256[name],
            weights=Weights(name=s.model.base_model, source="submission", hf_id=s.model.base_model),
            head=s.training.head,
            quantization="nf4" if s.training.regime == "qlora" else "none",
            bootstrap=Bootstrap(
                resamples=scoring.BOOTSTRAP_RESAMPLES,
                seed=scoring.BOOTSTRAP_SEED,
                unit="document" if v.scores[name].bootstrap.get("unit") == "document" else "sentence",
            ),
            submission=Submitted(
                id=s.id,
                content_sha256=v.content_sha256,
                training=s.training.model_dump(),
                generation=s.generation.model_dump() if s.generation else None,
                hardware=s.hardware.model_dump(),
            ),
            nerbench_version=__version__,
        )
        n_tokens = sum(len(t) for t in predictions)
        details = {"submitted_by": s.submitted_by, "ill_formed": v.scores[name].ill_formed, "rescored_by": __version__}
        generated = s.datasets[name].generation
        if name in v.dev:  # the dev F1 that models are chosen on
            details["dev"] = dict(v.dev[name])
        if generated is not None:  # where `nerbench results` finds a local run's parse counts
            details["generation"] = generated.model_dump(exclude_none=True) | {"self_reported": True}
        records.append(
            RunResult(
                model=model,
                record=record,
                predictions=predictions,
                predictions_sha256=predictions_sha256(predictions),
                metrics=v.scores[name].metric_rows(),
                timing=_timing(s, name, len(predictions), n_tokens),
                environment={"self_reported": s.hardware.model_dump(), "nerbench_version": s.nerbench_version},
                source="submission",
                self_reported=True,
                details=details,
            )
        )
    return records


@dataclass
class IngestOutcome:
    submission_id: str
    status: str  # "stored" | "unchanged" | "replaced"
    run_ids: list[str]


def ingest(path: str | os.PathLike, db: Path, *, data_dir: Path | None = None, replace: bool = False) -> IngestOutcome:
    """Validate one submission and store all its datasets in one transaction (or nothing)."""
    v = validate(path, data_dir)
    if not v.ok:
        listed = "; ".join(str(p) for p in v.problems[:5])
        more = f" (and {len(v.problems) - 5} more)" if len(v.problems) > 5 else ""
        raise NerbenchError(f"{path}: not ingested, the submission is invalid: {listed}{more}")
    assert v.submission is not None  # a valid submission has parsed
    sid = v.submission.id
    with Store(db) as store:
        existing = store.runs_of_submission(sid)
        if existing and all(r["record"].submission.content_sha256 == v.content_sha256 for r in existing):
            return IngestOutcome(sid, "unchanged", [r["run_id"] for r in existing])
        if existing and not replace:
            raise NerbenchError(
                f"{path}: submission {sid!r} is already stored with other content (pass --replace to replace it)"
            )
        run_ids = store.save_runs(_records(v, data_dir), replaces=[r["run_id"] for r in existing])
    return IngestOutcome(sid, "replaced" if existing else "stored", run_ids)


# ----------------------------------------------------------------------------- submit


def _claims(store: Store, run_id: str) -> dict[str, float]:
    rows = {(m["scheme"], m["entity_type"], m["length_bucket"]): m for m in store.metrics(run_id)}
    strict = rows[("strict", scoring.ALL, scoring.ALL)]
    long = rows[("strict", scoring.ALL, scoring.LONG_BUCKET)]
    return {
        "strict_f1": strict["f1"],
        "strict_precision": strict["precision"],
        "strict_recall": strict["recall"],
        "long_f1": long["f1"],
    }


def _decoding_settings(record: RunRecord) -> dict:
    """A generative run's decoding settings, as its record holds them."""
    if record.decoding is None:
        return {}
    return {"generation": {"decoding": record.decoding.decoding, "max_new_tokens_rule": record.decoding.max_new_tokens}}


def _training_section(record: RunRecord) -> dict:
    """The submission's [training] section, from the run record."""
    training: dict[str, Any] = {
        "regime": "full" if record.family == "encoder" else ("qlora" if record.quantization == "nf4" else "lora"),
        "head": record.head,
    }
    if record.budget is not None:
        training["profile"] = record.budget.name
        if record.budget.epochs:
            training["epochs"] = record.budget.epochs
    if record.lora is not None:
        training["lora_rank"], training["lora_alpha"] = record.lora.r, record.lora.alpha
    if training["regime"] == "qlora":
        training["quantization_bits"] = 4
    return training


def _generation_stats(stats: dict) -> dict:
    """The submittable summary of a stored run's generation statistics (no per-sentence lists)."""
    keys = ("sentence_latency_p50_s", "sentence_latency_p95_s", "stopped_at_limit", "parse")
    return {"generated_tokens_per_sentence": stats["generated_tokens_per_sentence_mean"]} | {
        k: stats[k] for k in keys if stats.get(k) is not None
    }


def package(
    run_ids: list[str],
    out: Path,
    db: Path,
    *,
    submitted_by: str = "",
    overwrite: bool = False,
    model_id: str | None = None,
) -> Path:
    """Write a submission folder from stored runs of one model (one run per dataset).

    `model_id` names the leaderboard entry (default: the stored model's id). The leaderboard has one
    row per model id, so two budgets of one model (say the quick profile and the full recipe) need
    two ids to both be shown.
    """
    out = Path(out)
    for option, value in (("--out", out.name), ("--model-id", model_id)):
        if value is not None and not ID_RE.match(value):
            raise NerbenchError(f"{option}: {value!r} is not a valid id (lower-case letters, digits, '.', '_' and '-')")
    if out.exists() and not overwrite:
        raise NerbenchError(f"{out}: already exists (pass --overwrite to replace it)")
    with Store(db, create=False) as store:
        runs = [store.run(r) for r in run_ids]
        models = {r["model_id"] for r in runs}
        if len(models) != 1:
            raise NerbenchError(f"runs of several models ({', '.join(sorted(models))}): a submission is one model")
        datasets = [r["dataset"] for r in runs]
        if len(set(datasets)) != len(datasets):
            raise NerbenchError("two runs on the same dataset: give one run per dataset")
        model_row = store.model(runs[0]["model_id"])
        if model_row is None:
            raise NerbenchError(f"run {runs[0]['run_id']}: its model {runs[0]['model_id']} is not in {db}")
        meta = model_row["meta"]
        first = runs[0]
        record = first["record"]
        device = store.timing(first["run_id"]) or {}
        entries = {}
        tags_files = {}
        for run in sorted(runs, key=lambda r: r["dataset"]):
            if run["record"].split != "test" or run["record"].modified_dataset:
                raise NerbenchError(f"run {run['run_id']}: only runs on the unmodified test split can be submitted")
            timing = store.timing(run["run_id"])
            entry = {
                "split": "test",
                "sha256": run["dataset_sha256"],
                "predictions": f"{PREDICTIONS_DIR}/{run['dataset']}{TAGS_SUFFIX}",
                "claimed": _claims(store, run["run_id"]),
            }
            if timing and timing.get("wall_seconds"):
                entry["timing"] = {
                    k: timing[k]
                    for k in (
                        "wall_seconds",
                        "sentences_per_second",
                        "tokens_per_second",
                        "peak_memory_bytes",
                        "cost_usd",
                    )
                    if timing.get(k) is not None
                }
            if timing and timing.get("generation"):
                entry["generation"] = _generation_stats(timing["generation"])
            entries[run["dataset"]] = entry
            tags_files[run["dataset"]] = predictions_text(store.predictions(run["run_id"]))
    family = meta["family"]
    submission = {
        "schema_version": SCHEMA_VERSION,
        "id": out.name,
        "nerbench_version": __version__,
        "submitted_by": submitted_by,
        "model": {
            "id": model_id or meta["id"],
            "family": family,
            "base_model": meta.get("hf_id") or meta["id"],
            "parameters": int(meta.get("parameters") or 1),
            "licence": meta.get("licence") or "unknown",
        },
        "training": _training_section(record),
        **_decoding_settings(record),
        "hardware": {
            "device": device.get("device_name") or "unknown",
            "num_devices": int(device.get("num_devices") or 1),
        },
        "datasets": entries,
    }
    Submission.model_validate(submission)  # what we write must be what we accept
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        (staging / PREDICTIONS_DIR).mkdir()
        (staging / TOML_NAME).write_text(tomli_w.dumps(submission), encoding="utf-8")
        for name, text in tags_files.items():
            (staging / PREDICTIONS_DIR / f"{name}{TAGS_SUFFIX}").write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
