"""Submissions: a folder of tags-only predictions plus `submission.toml`, checked as hostile input,
re-scored against the gold test sets, packaged from stored runs, and ingested into the store.

    submissions/<id>/submission.toml
    submissions/<id>/predictions/<dataset>.tags     one line per test sentence, tags separated by
                                                    single spaces, in the split's order
    submissions/<id>/predictions/<dataset>.dev.tags optional: the same for the dev split, re-scored
                                                    too, so that models can be chosen on dev F1
    submissions/<id>/README.md                      optional
    submissions/<id>/weights/...                    optional, for local testing only: a checkpoint
                                                    folder that [weights].path names (see WeightsSection)

Nothing in a submission is trusted: the file set, sizes and encodings are checked before anything
is parsed, every field is validated with strict types (unknown fields refused), the predictions are
re-scored, and claimed scores that differ from the re-scored ones are an error. Every problem is
reported (file, line where there is one, what was expected), not just the first, up to a fixed
number per kind of problem.

Two mechanisms keep untrusted text harmless. Every one-line field is a `Line` (or an id with a
narrower pattern) that refuses control, bidirectional-formatting and line-separator characters,
and the multi-line `Text` fields keep only the newline beyond that. Any untrusted string shown in
a message goes through `shown`, which escapes what is not printable and cuts long strings; a
problem's file and message are escaped once more when printed. Every pattern is matched whole
(`fullmatch`), never with `$`, which also matches before a final newline.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from nerbench import __version__, safe_text, scoring
from nerbench.datasets import REGISTRY, DatasetInfo, load_split
from nerbench.errors import NerbenchError
from nerbench.record import Bootstrap, RunRecord, Submitted, Weights
from nerbench.store import SELF_REPORTED_COST, RunResult, Store, predictions_sha256, predictions_text

SCHEMA_VERSION = 1
TOML_NAME = "submission.toml"
README_NAME = "README.md"
PREDICTIONS_DIR = "predictions"
WEIGHTS_DIR = "weights"
# A local weights folder nests at most this deep below weights/ (a checkpoint folder is flat).
MAX_WEIGHTS_DEPTH = 4
TAGS_SUFFIX = ".tags"
DEV_TAGS_SUFFIX = ".dev.tags"
DEV_SOURCE = "submission dev predictions, re-scored by nerbench"
MAX_TOML_BYTES = 64 * 1024
MAX_README_BYTES = 64 * 1024
MAX_TAGS_BYTES = 16 * 1024 * 1024  # the largest test set (chemprot) needs about 1.1 MB
MAX_TOTAL_BYTES = 64 * 1024 * 1024
# At most this many problems of one kind are listed, then one line says how many more there are.
MAX_PROBLEMS_PER_KIND = 20
# Tables and arrays nest at most this deep in submission.toml (the schema needs 5).
MAX_TOML_DEPTH = 8
# An untrusted string is shown in a message with at most this many characters.
SHOWN_CHARS = 80
# Claimed scores must equal the re-scored ones up to rounding at the 4th decimal.
CLAIM_TOLERANCE = 5e-5
# Self-reported throughput must equal the split's size / wall_seconds within this relative tolerance.
TIMING_TOLERANCE = 0.01
# What a local run (not a submission) is called where a model id's owner is named.
LOCAL_OWNER = "a local `nerbench eval` run"

# ----------------------------------------------------------------------------- untrusted text

# Refused in every one-line field: C0 controls, DEL, C1 controls, the bidirectional marks,
# embeddings, overrides and isolates, and the line and paragraph separators.
_BIDI = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_LINE_FORBIDDEN_RE = re.compile(rf"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
# Multi-line free text (description, notes) may hold newlines, and nothing else of the above.
_TEXT_FORBIDDEN_RE = re.compile(rf"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}\u2028\u2029]")
# A text file of the folder (README.md) may hold tabs, newlines and carriage returns; no other control.
_FILE_FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

# Ids: dots only between other characters, so no '..' and no hidden name; 64 characters at most.
# Every pattern here is used with fullmatch.
ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
MAX_ID_CHARS = 64
_DATASET_RE = re.compile(r"[a-z0-9_]{1,64}")
_TAGS_FILE_RE = re.compile(r"[a-z0-9_]{1,64}(?:\.dev)?\.tags")
_PREDICTIONS_RE = re.compile(r"predictions/[a-z0-9_]{1,64}\.tags")
_DEV_PREDICTIONS_RE = re.compile(r"predictions/[a-z0-9_]{1,64}\.dev\.tags")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# A Hugging Face repository id, owner/name; no part starts with '.', so no '..' either.
_HUB_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_REVISION_RE = re.compile(r"[0-9a-f]{40}")  # a commit: a branch or tag could move
# A local weights folder: weights/ or a folder below it, each part a plain name (no '..', no hidden part).
_LOCAL_WEIGHTS_RE = re.compile(r"weights(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})*")
_PARSE_KEY_RE = re.compile(r"[a-z_]{1,32}")
_LINK_RE = re.compile(r"https://\S+")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_]{1,64}|\[key\]")  # a location part shown as it is
_TOML_LINE_RE = re.compile(r"\(at line (\d+), column \d+\)\Z")

# Names that Windows reserves for devices, whatever the case and whatever extension follows.
WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"{port}{n}" for port in ("com", "lpt") for n in range(10)]
)


def shown(value: object, limit: int = SHOWN_CHARS, *, quote: bool = True) -> str:
    """An untrusted string as a message may show it: cut after `limit` characters, quoted unless
    `quote` is false, its controls, bidirectional formatting, separators and unpaired surrogates
    escaped visibly as `\\x1b`, `\\u202e`... (the project's one escape, `safe_text.shown`)."""
    text = value if isinstance(value, str) else str(value)
    more = len(text) - limit
    body = _escaped(text[:limit] if more > 0 else text)
    if quote:
        body = f"'{body}'"
    return f"{body}… ({more} more characters)" if more > 0 else body


def _escaped(text: str) -> str:
    """`text` with every unsafe character escaped, uncut (a no-op on text that `shown` produced)."""
    return safe_text.shown(text, None)


def reserved_name(name: str) -> bool:
    """Whether `name` is a device name on Windows (con, prn, aux, nul, com0-9, lpt0-9), also with
    an extension (con.txt): no file or folder of that name can exist there."""
    return name.split(".", 1)[0].lower() in WINDOWS_RESERVED


def _forbidden(regex: re.Pattern[str], value: str, what: str) -> str | None:
    found = regex.search(value)
    if found is None:
        return None
    return (
        f"character {shown(found.group())} (U+{ord(found.group()):04X}) at position {found.start() + 1} "
        f"is not allowed in {what} (control, bidirectional-formatting and line-separator characters are refused)"
    )


def _line_problem(value: str) -> str | None:
    return _forbidden(_LINE_FORBIDDEN_RE, value, "a one-line field")


def _text_problem(value: str) -> str | None:
    return _forbidden(_TEXT_FORBIDDEN_RE, value, "free text (newlines are the only control allowed)")


def id_problem(value: str) -> str | None:
    """Why `value` is not a valid submission or model id, or None."""
    if not value or len(value) > MAX_ID_CHARS or not ID_RE.fullmatch(value):
        return (
            f"{shown(value)} is not a valid id (1 to {MAX_ID_CHARS} lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit; a '.' only between other characters)"
        )
    if reserved_name(value):
        return f"{shown(value)} is a reserved device name on Windows ({value.split('.', 1)[0]})"
    return None


def _pattern(regex: re.Pattern[str], expected: str, *, no_reserved: bool = False) -> Callable[[str], str | None]:
    def problem(value: str) -> str | None:
        if not regex.fullmatch(value):
            return f"{shown(value)} is not {expected}"
        if no_reserved and reserved_name(value):
            return f"{shown(value)} is a reserved device name on Windows"
        return _line_problem(value)

    return problem


def _checked(check: Callable[[Any], str | None]) -> AfterValidator:
    """A pydantic validator from a function that says what is wrong (or None)."""

    def validate(value: Any) -> Any:
        problem = check(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


def _one_of(*allowed: int) -> Callable[[int], str | None]:
    return lambda value: None if value in allowed else f"{value} is not one of {', '.join(map(str, allowed))}"


# ----------------------------------------------------------------------------- the schema

# Strict everywhere: no `true` for 1, no "1.0" for 1.0, no 1.0 for 1. An integer is accepted where a
# float is expected (TOML writes `wall_seconds = 5`); NaN and infinities are refused.
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

Line = Annotated[str, StringConstraints(min_length=1, max_length=200), _checked(_line_problem)]
OptionalLine = Annotated[str, StringConstraints(max_length=200), _checked(_line_problem)]
Text = Annotated[str, StringConstraints(max_length=2000), _checked(_text_problem)]
Identifier = Annotated[str, _checked(id_problem)]
Sha256 = Annotated[str, _checked(_pattern(_SHA256_RE, "64 lower-case hexadecimal digits"))]
DatasetName = Annotated[
    str, _checked(_pattern(_DATASET_RE, "a dataset name (lower-case letters, digits and '_')", no_reserved=True))
]
Link = Annotated[
    str, StringConstraints(max_length=500), _checked(_pattern(_LINK_RE, "an https:// link without spaces"))
]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class ModelSection(BaseModel):
    model_config = _STRICT
    id: Identifier
    family: Literal["encoder", "llm"]
    base_model: Line
    parameters: Annotated[int, Field(gt=0, le=10**13)]
    licence: Line
    links: Annotated[list[Link], Field(max_length=10)] = []
    description: Text = ""


class TrainingSection(BaseModel):
    model_config = _STRICT
    regime: Literal["full", "lora", "qlora", "none"]
    head: Literal["token", "generative"]
    lora_rank: Annotated[int, Field(gt=0, le=65536)] | None = None
    lora_alpha: Annotated[int, Field(gt=0, le=65536)] | None = None
    # An int, not a Literal: pydantic's Literal takes `4.0` for 4 even in strict mode.
    quantization_bits: Annotated[int, _checked(_one_of(4, 8, 16, 32))] | None = None
    profile: Line | None = None
    epochs: Annotated[int, Field(gt=0, le=1000)] | None = None
    notes: Text = ""


class GenerationSection(BaseModel):
    model_config = _STRICT
    decoding: Literal["greedy", "sampling", "beam"]
    max_new_tokens_rule: Line


class HardwareSection(BaseModel):
    model_config = _STRICT
    device: Line
    num_devices: Annotated[int, Field(ge=1, le=4096)] = 1


class TimingSection(BaseModel):
    """Self-reported: shown as such, never ranked as if measured by nerbench. The throughputs must
    agree with the split's size and wall_seconds (checked once the split is known)."""

    model_config = _STRICT
    wall_seconds: Annotated[float, Field(gt=0, le=10**9)]
    sentences_per_second: Annotated[float, Field(gt=0, le=10**9)]
    tokens_per_second: Annotated[float, Field(gt=0, le=10**10)] | None = None
    peak_memory_bytes: Annotated[int, Field(ge=0, le=10**15)] | None = None
    cost_usd: Annotated[float, Field(ge=0, le=10**9)] | None = None


class GeneratedSection(BaseModel):
    """A generative run's decoding statistics: self-reported, like the timing (the generated text is
    not submitted, so they cannot be re-derived)."""

    model_config = _STRICT
    generated_tokens_per_sentence: Annotated[float, Field(ge=0, le=10**7)]
    sentence_latency_p50_s: Annotated[float, Field(ge=0, le=10**6)] | None = None
    sentence_latency_p95_s: Annotated[float, Field(ge=0, le=10**6)] | None = None
    stopped_at_limit: Annotated[int, Field(ge=0, le=10**9)] | None = None
    parse: (
        Annotated[
            dict[
                Annotated[str, _checked(_pattern(_PARSE_KEY_RE, "a parse count's name (a-z and '_')"))],
                Annotated[int, Field(ge=0, le=10**12)],
            ],
            Field(max_length=32),
        ]
        | None
    ) = None


def _hub_id_problem(value: str) -> str | None:
    if not _HUB_ID_RE.fullmatch(value) or ".." in value:
        return f"{shown(value)} is not a Hugging Face id (owner/name: letters, digits, '_', '.' and '-')"
    return _line_problem(value)


def _local_weights_problem(value: str) -> str | None:
    if not _LOCAL_WEIGHTS_RE.fullmatch(value):
        return (
            f"{shown(value)} is not a folder inside the submission's {WEIGHTS_DIR}/ folder "
            f"('{WEIGHTS_DIR}' or '{WEIGHTS_DIR}/<name>...', plain names: no '..', no hidden or absolute path)"
        )
    if any(reserved_name(part) for part in value.split("/")):
        return f"{shown(value)} has a reserved device name on Windows"
    return None


def _no_remote_code(value: bool) -> str | None:
    if value:
        return (
            "nerbench never runs a model's own code (trust_remote_code): submit safetensors weights of an "
            "architecture that transformers itself provides"
        )
    return None


HubId = Annotated[str, _checked(_hub_id_problem)]
Revision = Annotated[
    str, _checked(_pattern(_REVISION_RE, "a pinned revision (a commit: 40 lower-case hexadecimal digits)"))
]


class WeightsSection(BaseModel):
    """The weights `nerbench reproduce` loads to re-run the submission under the timing protocol.

    Either a Hugging Face id pinned to a commit (`hf_id` + `revision`), optionally with a PEFT
    adapter on it (`adapter_id` + `adapter_revision`), or, for local testing, `path`: a checkpoint
    folder inside the submission's own weights/ folder (no '..', no links: the folder is scanned
    like the rest of the submission, so nothing outside it can be named). Weights load from
    safetensors only, and never with the model's own code.
    """

    model_config = _STRICT
    hf_id: HubId | None = None
    revision: Revision | None = None
    adapter_id: HubId | None = None
    adapter_revision: Revision | None = None
    path: Annotated[str, StringConstraints(max_length=200), _checked(_local_weights_problem)] | None = None
    trust_remote_code: Annotated[bool, _checked(_no_remote_code)] = False

    @model_validator(mode="after")
    def _one_source(self) -> WeightsSection:
        hub = self.hf_id is not None
        if hub == (self.path is not None):
            raise ValueError("give either hf_id (with revision) or path (a folder under weights/), not both or neither")
        if hub and self.revision is None:
            raise ValueError("hf_id needs revision: the commit (40 hexadecimal digits) the weights are pinned to")
        if (self.adapter_id is None) != (self.adapter_revision is None):
            raise ValueError("adapter_id and adapter_revision come together or not at all")
        if not hub and (self.revision is not None or self.adapter_id is not None):
            raise ValueError("path names local weights: revision and adapter_id go with hf_id only")
        return self


class ClaimedScores(BaseModel):
    model_config = _STRICT
    strict_f1: Fraction | None = None
    strict_precision: Fraction | None = None
    strict_recall: Fraction | None = None
    long_f1: Fraction | None = None


class DatasetSection(BaseModel):
    model_config = _STRICT
    split: Literal["test"] = "test"
    sha256: Sha256
    predictions: Annotated[str, _checked(_pattern(_PREDICTIONS_RE, "'predictions/<dataset>.tags'"))]
    # Optional, both or neither: the dev split's predictions, re-scored like the test ones, so that
    # the leaderboard can choose a family's best model on dev F1 rather than on test F1.
    dev_predictions: (
        Annotated[str, _checked(_pattern(_DEV_PREDICTIONS_RE, "'predictions/<dataset>.dev.tags'"))] | None
    ) = None
    dev_sha256: Sha256 | None = None
    timing: TimingSection | None = None
    generation: GeneratedSection | None = None
    claimed: ClaimedScores | None = None


def _schema_version_problem(value: int) -> str | None:
    if value == SCHEMA_VERSION:
        return None
    return f"schema version {value} is not supported (this nerbench reads version {SCHEMA_VERSION})"


class Submission(BaseModel):
    model_config = _STRICT
    # An int, not Literal[1]: pydantic's Literal takes `true` for 1 even in strict mode.
    schema_version: Annotated[int, _checked(_schema_version_problem)]
    id: Identifier
    nerbench_version: Line
    submitted_by: OptionalLine = ""
    model: ModelSection
    training: TrainingSection
    generation: GenerationSection | None = None
    hardware: HardwareSection
    weights: WeightsSection | None = None
    datasets: Annotated[dict[DatasetName, DatasetSection], Field(min_length=1, max_length=20)]


# ----------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        # Escaped once more: a path holds untrusted names, and no message may print a control.
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{_escaped(where)}: {_escaped(self.message)}"


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
    local_weights: bool = False  # the folder holds a weights/ folder (checked by _scan)
    # Problems found per kind, and where in `problems` the "... and N more" line of a kind is.
    _counts: dict[str, int] = field(default_factory=dict, repr=False)
    _more_at: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def folder_name(self) -> str:
        """The folder's own name, also for `.` or a path ending in `..` (the name is the id)."""
        return Path(os.path.abspath(self.path)).name

    @property
    def name(self) -> str:
        """The folder's name as it may be shown (escaped and cut: it is untrusted)."""
        return shown(self.folder_name, quote=False)

    def add(self, file: Path | str, message: str, line: int | None = None, *, kind: str = "problems") -> None:
        """Add a problem; past MAX_PROBLEMS_PER_KIND of one kind, one line counts the rest."""
        count = self._counts[kind] = self._counts.get(kind, 0) + 1
        if count <= MAX_PROBLEMS_PER_KIND:
            self.problems.append(Problem(str(file), message, line))
            return
        more = Problem(str(self.path), f"… and {count - MAX_PROBLEMS_PER_KIND} more {kind}")
        if kind in self._more_at:
            self.problems[self._more_at[kind]] = more
        else:
            self._more_at[kind] = len(self.problems)
            self.problems.append(more)


# ----------------------------------------------------------------------------- the file set

_NOT_ALLOWED = "files not allowed"


def _scan(path: Path, name: str, v: Validation) -> dict[str, Path]:
    """The submission's files by relative name, after checking the layout. Never follows links."""
    files: dict[str, Path] = {}
    try:
        top = os.lstat(path)
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        v.add(path, "no such submission folder")
        return files
    if stat.S_ISLNK(top.st_mode):
        v.add(path, "is a symbolic link: a submission is a plain folder")
        return files
    if not stat.S_ISDIR(top.st_mode):
        v.add(path, "is not a folder")
        return files
    problem = id_problem(name)
    if problem is not None:
        v.add(path, f"folder name: {problem}")
    total = 0

    def visit(folder: Path, rel: str, allowed: Callable[[str, os.DirEntry], str | None]) -> None:
        nonlocal total
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as err:
            v.add(folder, f"cannot be listed ({err.strerror})")
            return
        for entry in entries:
            name = entry.name
            shown_path = folder / name
            rel_name = f"{rel}{name}"
            if entry.is_symlink():
                v.add(shown_path, "is a symbolic link: links are not allowed in a submission", kind=_NOT_ALLOWED)
                continue
            if name.startswith("."):
                v.add(shown_path, "hidden files are not allowed in a submission", kind=_NOT_ALLOWED)
                continue
            if reserved_name(name):
                v.add(shown_path, "a reserved device name on Windows: no such file can exist there", kind=_NOT_ALLOWED)
                continue
            kind = allowed(name, entry)
            if kind is None:
                v.add(
                    shown_path,
                    "unexpected "
                    + ("folder" if entry.is_dir(follow_symlinks=False) else "file")
                    + f" (a submission holds {TOML_NAME}, {PREDICTIONS_DIR}/<dataset>{TAGS_SUFFIX}"
                    + f" and optionally {PREDICTIONS_DIR}/<dataset>{DEV_TAGS_SUFFIX} and {README_NAME})",
                    kind=_NOT_ALLOWED,
                )
                continue
            if kind == "dir":
                visit(Path(entry.path), f"{rel_name}/", _allowed_in_predictions)
                continue
            if kind == "weights-dir":
                if rel_name.count("/") >= MAX_WEIGHTS_DEPTH:
                    v.add(shown_path, f"nests more than {MAX_WEIGHTS_DEPTH} folders deep", kind=_NOT_ALLOWED)
                else:
                    v.local_weights = True
                    visit(Path(entry.path), f"{rel_name}/", _allowed_in_weights)
                continue
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                v.add(shown_path, "is not a regular file", kind=_NOT_ALLOWED)
                continue
            if kind == "weights-file":  # checked for links and kind, but neither kept nor hashed here
                continue
            limit = {TOML_NAME: MAX_TOML_BYTES, README_NAME: MAX_README_BYTES}.get(rel_name, MAX_TAGS_BYTES)
            if info.st_size > limit:
                v.add(shown_path, f"is {info.st_size} bytes, more than the limit of {limit}", kind=_NOT_ALLOWED)
                continue
            total += info.st_size
            files[rel_name] = Path(entry.path)

    visit(path, "", _allowed_at_top)
    if total > MAX_TOTAL_BYTES:
        v.add(path, f"holds {total} bytes, more than the limit of {MAX_TOTAL_BYTES}")
    if not os.path.lexists(path / TOML_NAME):  # one that is there but refused has had its problem
        v.add(path / TOML_NAME, "missing")
    return files


def _allowed_at_top(name: str, entry: os.DirEntry) -> str | None:
    is_dir = entry.is_dir(follow_symlinks=False)
    if name == PREDICTIONS_DIR and is_dir:
        return "dir"
    if name == WEIGHTS_DIR and is_dir:
        return "weights-dir"
    if name in (TOML_NAME, README_NAME) and not is_dir:
        return "file"
    return None


def _allowed_in_predictions(name: str, entry: os.DirEntry) -> str | None:
    # No folders below predictions/: nesting is refused without descending into it.
    if entry.is_dir(follow_symlinks=False) or not _TAGS_FILE_RE.fullmatch(name):
        return None
    return "file"


def _allowed_in_weights(name: str, entry: os.DirEntry) -> str | None:
    """A local checkpoint folder's files: plain names (links, hidden files and reserved names are
    refused before this), regular files and folders only. They are not part of the submission's
    content digest: a reproduced run names them by the sha256 of their safetensors."""
    return "weights-dir" if entry.is_dir(follow_symlinks=False) else "weights-file"


def _read_text(path: Path, v: Validation) -> str | None:
    """A text file of the submission: UTF-8 without NUL bytes, or None after naming the problem."""
    try:
        data = path.read_bytes()
    except OSError as err:
        v.add(path, f"cannot be read ({err.strerror or type(err).__name__})")
        return None
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


def _check_readme(path: Path, v: Validation) -> None:
    """README.md is free Markdown, but text: UTF-8, no NUL byte, no control but tab and line ends."""
    text = _read_text(path, v)
    if text is None:
        return
    found = _FILE_FORBIDDEN_RE.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        v.add(path, f"control character {shown(found.group())} (U+{ord(found.group()):04X}): expected text", line)


def content_sha256(files: dict[str, Path]) -> str:
    """One digest over the submission's files (names and bytes): its identity for ingestion."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode("utf-8") + b"\0" + files[name].read_bytes() + b"\0")
    return digest.hexdigest()


# ----------------------------------------------------------------------------- submission.toml


def _depth(data: Any, limit: int) -> int:
    """How deep tables and arrays nest in `data` (the top table is 1), counted without recursion
    and only up to `limit + 1`: whatever nests deeper is not walked further."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if depth > limit:
                continue
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _location(loc: Sequence[int | str]) -> str:
    """A pydantic error location as a dotted field name; untrusted keys are shown escaped and cut."""
    parts = [str(p) if isinstance(p, int) or _PLAIN_KEY_RE.fullmatch(p) else shown(p) for p in loc]
    return ".".join(parts) or "(top level)"


def _parse_toml(path: Path, v: Validation) -> Submission | None:
    text = _read_text(path, v)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        # Python 3.11's error has no lineno attribute; its message ends "(at line N, column M)".
        found = _TOML_LINE_RE.search(str(err))
        message = str(err)[: found.start()].strip() if found else str(err)
        v.add(path, f"not valid TOML ({shown(message, 200, quote=False)})", int(found.group(1)) if found else None)
        return None
    except RecursionError:
        v.add(
            path,
            f"nested too deeply to be parsed (tables and arrays nest at most {MAX_TOML_DEPTH} levels deep "
            "in a submission.toml)",
        )
        return None
    depth = _depth(data, MAX_TOML_DEPTH)
    if depth > MAX_TOML_DEPTH:
        v.add(
            path,
            f"tables and arrays nest more than {MAX_TOML_DEPTH} levels deep (at least {depth}); "
            f"a submission.toml needs at most {MAX_TOML_DEPTH}",
        )
        return None
    try:
        return Submission.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            where = _location(e["loc"])
            if e["type"] == "extra_forbidden":
                v.add(path, f"field {where}: unknown field (not in the submission schema)", kind="unknown fields")
            else:
                message = e["msg"].removeprefix("Value error, ")
                v.add(path, f"field {where}: {message}", kind="field problems")
        return None


# ----------------------------------------------------------------------------- predictions


def parse_tags(
    text: str, path: Path, gold, labels: set[str], v: Validation, split: str = "test"
) -> list[list[str]] | None:
    """One line per gold sentence of `split`; returns the tags, or None after adding the problems found."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    found = False
    kind = f"problems in {path.parent.name}/{path.name}"

    def problem(message: str, line: int) -> None:
        nonlocal found
        found = True
        v.add(path, message, line, kind=kind)

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
            problem(f"tag {shown(bad[0], 40)} is not one of the dataset's labels ({', '.join(sorted(labels))})", number)
        predictions.append(tags)
    return None if found else predictions


def _check_timing(path: Path, name: str, timing: TimingSection | None, sentences: Sequence[Any], v: Validation):
    """Self-reported throughput must be what the split's size and the claimed wall_seconds make it."""
    if timing is None:
        return
    counts = {
        "sentences_per_second": (len(sentences), "sentences"),
        "tokens_per_second": (sum(len(s.tokens) for s in sentences), "word tokens"),
    }
    for key, (count, what) in counts.items():
        claimed = getattr(timing, key)
        if claimed is None:
            continue
        expected = count / timing.wall_seconds
        if abs(claimed - expected) > TIMING_TOLERANCE * expected:
            v.add(
                path,
                f"field datasets.{name}.timing.{key}: {claimed:g} contradicts the test split's {count} {what} "
                f"in wall_seconds = {timing.wall_seconds:g}, which make {expected:g} per second "
                f"(they must agree within {TIMING_TOLERANCE:.0%})",
            )


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
        v.add(toml_path, f"{where}.dev_predictions: must be {expected!r}, not {shown(entry.dev_predictions)}")
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


# ----------------------------------------------------------------------------- local weights


def _check_local_weights(path: Path, toml_path: Path, weights: WeightsSection | None, v: Validation) -> None:
    """A weights/ folder only where [weights].path names a folder inside it, and that folder there."""
    named = weights.path if weights is not None else None
    if named is None:
        if v.local_weights:
            v.add(path / WEIGHTS_DIR, "unexpected folder: no [weights].path names it", kind=_NOT_ALLOWED)
        return
    if not os.path.isdir(path / named) or os.path.islink(path / named):
        v.add(toml_path, f"field weights.path: {shown(named)} is not a folder in the submission")


def local_weights_folder(v: Validation) -> Path | None:
    """The local checkpoint folder a valid submission's [weights].path names, checked again where
    it is about to be loaded: inside the submission folder once every link is resolved."""
    s = v.submission
    if s is None or s.weights is None or s.weights.path is None:
        return None
    root = Path(os.path.realpath(v.path))
    folder = Path(os.path.realpath(v.path / s.weights.path))
    if not folder.is_relative_to(root / WEIGHTS_DIR) or not folder.is_dir():
        raise NerbenchError(
            f"{_escaped(str(v.path))}: weights.path {shown(s.weights.path)} is not a folder inside the submission's "
            f"{WEIGHTS_DIR}/ folder once its links are resolved"
        )
    return folder


# ----------------------------------------------------------------------------- validate


def validate(path: str | os.PathLike, data_dir: Path | None = None) -> Validation:
    """Check one submission folder completely and re-score it. Never raises for bad input."""
    v = Validation(Path(path))
    path, folder_name = v.path, v.folder_name
    files = _scan(path, folder_name, v)
    if README_NAME in files:
        _check_readme(files[README_NAME], v)
    if TOML_NAME not in files:
        return v
    submission = _parse_toml(files[TOML_NAME], v)
    if submission is None:
        return v
    v.submission = submission
    toml_path = files[TOML_NAME]
    if submission.id != folder_name:
        v.add(toml_path, f"field id: {shown(submission.id)} differs from the folder name {shown(folder_name)}")
    named = set()
    for name, entry in submission.datasets.items():
        expected = f"{PREDICTIONS_DIR}/{name}{TAGS_SUFFIX}"
        named.add(expected)
        if entry.dev_predictions is not None:
            named.add(f"{PREDICTIONS_DIR}/{name}{DEV_TAGS_SUFFIX}")
        if entry.predictions != expected:
            v.add(toml_path, f"field datasets.{name}.predictions: must be {expected!r}, not {shown(entry.predictions)}")
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
        _check_timing(toml_path, name, entry.timing, split.sentences, v)
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
    _check_local_weights(path, toml_path, submission.weights, v)
    for rel in sorted(files):
        if rel.startswith(f"{PREDICTIONS_DIR}/") and rel not in named:
            v.add(files[rel], "unexpected file: no dataset in submission.toml names it", kind=_NOT_ALLOWED)
    try:
        v.content_sha256 = content_sha256(files)
    except OSError as err:  # a file that went unreadable since it was checked
        v.add(Path(err.filename or v.path), f"cannot be read ({err.strerror or type(err).__name__})")
    return v


# ----------------------------------------------------------------------------- several folders


@dataclass(frozen=True)
class Skipped:
    """A path given among submission folders that is not one (a file such as submissions/README.md,
    or a folder without submission.toml): passed over, not an error."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{_escaped(str(self.path))}: skipped: not a submission folder ({self.reason})"


def submission_folders(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Skipped]]:
    """Split the given paths into submission folders and skipped paths (with the reason), so that
    `nerbench ingest submissions/*` passes over submissions/README.md.

    The folders come sorted by absolute path, each once, whatever order they were given in: which
    of two folders claiming one model id comes first must not depend on the order of arguments.
    A path that does not exist or is a symbolic link is kept, so that validation refuses it.
    """
    folders: dict[str, Path] = {}
    skipped = []
    for given in paths:
        path = Path(given)
        try:
            mode = os.lstat(path).st_mode
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            mode = None
        if mode is not None and not stat.S_ISDIR(mode) and not stat.S_ISLNK(mode):
            skipped.append(Skipped(path, "not a folder"))
        elif mode is not None and stat.S_ISDIR(mode) and not os.path.lexists(path / TOML_NAME):
            skipped.append(Skipped(path, f"no {TOML_NAME} in it"))
        else:
            folders.setdefault(os.path.abspath(path), path)
    return [folders[key] for key in sorted(folders)], skipped


@dataclass
class Batch:
    """Several submission folders checked together: one Validation per folder, in folder order."""

    validations: list[Validation]
    skipped: list[Skipped]

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.validations)


def _check_claimed_ids(validations: Sequence[Validation], *, model_ids: bool = True) -> None:
    """Among folders given together (in their sorted order), a submission id may come once and
    (unless `model_ids` is false) a model id belongs to the first submission that claims it: every
    later claim is a problem."""
    by_id: dict[str, Validation] = {}
    by_model: dict[str, Validation] = {}
    for v in validations:
        s = v.submission
        if s is None:
            continue
        toml_path = v.path / TOML_NAME
        first = by_id.setdefault(s.id, v)
        if first is not v:
            v.add(toml_path, f"field id: submission {shown(s.id)} is also the folder {first.path}", kind="clashes")
            continue
        owner = by_model.setdefault(s.model.id, v) if model_ids else v
        if owner is not v:
            assert owner.submission is not None
            v.add(
                toml_path,
                f"field model.id: {shown(s.model.id)} is claimed by submission {shown(owner.submission.id)} "
                f"({owner.path}), which comes first; a model id belongs to one submission "
                "(choose another model.id)",
                kind="clashes",
            )


def validate_all(paths: Iterable[str | os.PathLike], data_dir: Path | None = None) -> Batch:
    """Validate every submission folder among `paths` (others are skipped), and check them against
    each other: one folder per submission id, one submission per model id."""
    folders, skipped = submission_folders(paths)
    validations = [validate(folder, data_dir) for folder in folders]
    _check_claimed_ids(validations)
    return Batch(validations, skipped)


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


def model_meta(s: Submission) -> dict[str, Any]:
    """The store's model record of a submission's model (its runs and a reproduction of them share it)."""
    model: dict[str, Any] = {
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
    if s.weights is not None:
        model["weights"] = s.weights.model_dump(exclude_none=True)
    return model


def _records(v: Validation, data_dir: Path | None) -> list[RunResult]:
    s = v.submission
    if s is None:  # callers store valid submissions only
        raise NerbenchError("a submission without a valid submission.toml cannot be stored")
    model = model_meta(s)
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
                draw=scoring.BOOTSTRAP_DRAW,
            ),
            submission=Submitted(
                id=s.id,
                content_sha256=v.content_sha256,
                training=s.training.model_dump(),
                generation=s.generation.model_dump() if s.generation else None,
                hardware=s.hardware.model_dump(),
                weights=s.weights.model_dump(exclude_none=True) if s.weights is not None else None,
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


def _owners(store: Store, model_id: str) -> set[str]:
    """Who holds `model_id` in the store: the submission whose id its model record names (set when
    the submission registered it), or LOCAL_OWNER where a local run registered it; and the same for
    each of its stored runs, in case the record was rewritten."""
    owners = set()
    model = store.model(model_id)
    if model is not None:
        owners.add(str(model["meta"].get("submission") or LOCAL_OWNER))
    for run in store.runs(model_id=model_id):
        submitted = run["record"].submission if run["source"] == "submission" else None
        owners.add(submitted.id if submitted is not None else reproduced_submission(run) or LOCAL_OWNER)
    return owners


def reproduced_submission(run: dict[str, Any]) -> str | None:
    """The submission a stored run of nerbench's own reproduces (`nerbench reproduce`), or None."""
    details = run.get("details")
    link = details.get("reproduces") if isinstance(details, dict) else None
    submission = link.get("submission") if isinstance(link, dict) else None
    return submission if isinstance(submission, str) else None


def _owner_text(owner: str) -> str:
    return owner if owner == LOCAL_OWNER else f"submission {shown(owner)}"


def _store_valid(v: Validation, db: Path, *, replace: bool) -> IngestOutcome:
    """Store one validated submission, all its datasets in one transaction, or raise and write
    nothing: every check (validity, same id with other content, the model id's owner) comes first."""
    where = _escaped(str(v.path))
    if not v.ok:
        listed = "; ".join(str(p) for p in v.problems[:5])
        more = f" (and {len(v.problems) - 5} more)" if len(v.problems) > 5 else ""
        raise NerbenchError(f"{where}: not ingested, the submission is invalid: {listed}{more}")
    assert v.submission is not None  # a valid submission has parsed
    sid, model_id = v.submission.id, v.submission.model.id
    with Store(db) as store:
        existing = store.runs_of_submission(sid)
        if existing and all(r["record"].submission.content_sha256 == v.content_sha256 for r in existing):
            return IngestOutcome(sid, "unchanged", [r["run_id"] for r in existing])
        if existing and not replace:
            raise NerbenchError(
                f"{where}: submission {shown(sid)} is already stored with other content (pass --replace to replace it)"
            )
        others = sorted(_owners(store, model_id) - {sid})
        if others:
            raise NerbenchError(
                f"{where}: not ingested: model id {shown(model_id)} belongs to "
                f"{' and '.join(map(_owner_text, others))}, which registered it first in {db}; submission "
                f"{shown(sid)} may not take it over (choose another model.id)"
            )
        run_ids = store.save_runs(_records(v, None), replaces=[r["run_id"] for r in existing])
    return IngestOutcome(sid, "replaced" if existing else "stored", run_ids)


def ingest(path: str | os.PathLike, db: Path, *, data_dir: Path | None = None, replace: bool = False) -> IngestOutcome:
    """Validate one submission and store all its datasets in one transaction (or nothing)."""
    return _store_valid(validate(path, data_dir), db, replace=replace)


@dataclass
class IngestReport:
    """What `ingest_all` did, folder by folder (in folder order)."""

    outcomes: list[tuple[Path, IngestOutcome]]
    failures: list[tuple[Path, str]]
    skipped: list[Skipped]

    @property
    def ok(self) -> bool:
        return not self.failures


def ingest_all(
    paths: Iterable[str | os.PathLike], db: Path, *, data_dir: Path | None = None, replace: bool = False
) -> IngestReport:
    """Ingest every submission folder among `paths` (others are skipped, see `submission_folders`).

    Every folder is validated before anything is written (and one submission id may come only
    once); then each valid one is stored in its own transaction, in the order of their paths. A
    model id belongs to whoever holds it in the store, and else to the first folder by path that
    is stored with it: a later one claiming it is refused naming both, whatever the order the
    folders were given in.
    """
    folders, skipped = submission_folders(paths)
    validations = [validate(folder, data_dir) for folder in folders]
    _check_claimed_ids(validations, model_ids=False)  # model ids: the store decides, see _store_valid
    report = IngestReport([], [], skipped)
    for v in validations:
        try:
            report.outcomes.append((v.path, _store_valid(v, db, replace=replace)))
        except NerbenchError as err:
            report.failures.append((v.path, str(err)))
    return report


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
    for option, value in (("--out", Path(os.path.abspath(out)).name), ("--model-id", model_id)):
        problem = None if value is None else id_problem(value)
        if problem is not None:
            raise NerbenchError(f"{option}: {problem}")
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
        "id": Path(os.path.abspath(out)).name,
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
