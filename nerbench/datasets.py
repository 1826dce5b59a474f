"""The dataset registry: what each set is, where its files come from, and their pinned sha256.

The registry (nerbench/datasets.json, shipped with the package) is the source of truth for the
sha256 of every split; a local file whose sha256 differs is refused unless the caller allows a
modified copy, and the returned Split then says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from nerbench.conll import Sentence, format_conll, parse_conll
from nerbench.errors import NerbenchError
from nerbench.scoring import extract_spans

SPLITS = ("train", "dev", "test")
DEFAULT_SUITE: tuple[str, ...] = ("jnlpba", "bc5cdr", "biored", "chemprot", "ncbi_disease")
EXTRAS: tuple[str, ...] = ("bc2gm", "linnaeus")

DATA_DIR_ENV = "NERBENCH_DATA_DIR"
MIRROR_ENV = "NERBENCH_DATA_MIRROR"
SOURCE_URL_ENV = "NERBENCH_SOURCE_URL"
DEFAULT_SOURCE_URL = "https://raw.githubusercontent.com"
ALLOW_MODIFIED_HINT = "--allow-modified (allow_modified=True)"
LONG_ENTITY_TOKENS = 3  # the paper's "longer entities": three tokens or more


@dataclass(frozen=True)
class Source:
    repository: str
    commit: str
    path: str
    note: str = ""

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{self.path}"


@dataclass(frozen=True)
class SplitInfo:
    name: str
    sha256: str | None  # None: not public, nothing to pin
    bytes: int | None
    made: str  # how the file was made from its sources
    source_reserialises: bool  # the source file equals ours up to re-serialisation
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    entity_types: tuple[str, ...]
    citation: str
    licence: str
    paper_set: bool  # one of the paper's held-out sets
    suite: str  # "default", "extra" or "private"
    public: bool
    note: str
    splits: tuple[SplitInfo, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return ("O",) + tuple(f"{p}-{t}" for t in self.entity_types for p in ("B", "I"))

    def to_dict(self) -> dict:
        record = asdict(self)
        record["labels"] = list(self.labels)
        return record

    def split(self, name: str) -> SplitInfo:
        for info in self.splits:
            if info.name == name:
                return info
        raise NerbenchError(
            f"dataset {self.name!r} has no split {name!r} (splits: {', '.join(s.name for s in self.splits)})"
        )


@dataclass(frozen=True)
class Split:
    dataset: str
    split: str
    sentences: list[Sentence]
    sha256: str
    path: Path
    modified: bool  # the file differs from the registry's sha256 and was allowed anyway
    # The document (abstract) id of each sentence, from the `<split>.docs` sidecar; None without one.
    documents: tuple[str, ...] | None = None


def _load_registry() -> dict[str, DatasetInfo]:
    raw = json.loads(resources.files("nerbench").joinpath("datasets.json").read_text("utf-8"))
    registry = {}
    for name, entry in raw.items():
        splits = tuple(
            SplitInfo(
                name=split,
                sha256=info["sha256"],
                bytes=info["bytes"],
                made=info["made"],
                source_reserialises=info["source_reserialises"],
                sources=tuple(Source(**source) for source in info["sources"]),
            )
            for split, info in entry["splits"].items()
        )
        registry[name] = DatasetInfo(
            name=name,
            title=entry["title"],
            entity_types=tuple(entry["entity_types"]),
            citation=entry["citation"],
            licence=entry["licence"],
            paper_set=entry["paper_set"],
            suite=entry["suite"],
            public=entry["public"],
            note=entry["note"],
            splits=splits,
        )
    return registry


REGISTRY: dict[str, DatasetInfo] = _load_registry()


def get_dataset(name: str) -> DatasetInfo:
    try:
        return REGISTRY[name]
    except KeyError:
        raise NerbenchError(f"unknown dataset {name!r}; known: {', '.join(REGISTRY)}") from None


def resolve_data_dir(explicit: Path | None = None) -> Path:
    """`--data-dir`, else $NERBENCH_DATA_DIR, else the user cache ($XDG_CACHE_HOME/nerbench/data)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "nerbench" / "data"


def split_path(name: str, split: str, data_dir: Path | None = None) -> Path:
    return resolve_data_dir(data_dir) / name / f"{split}.conll"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _private_message(info: DatasetInfo, folder: Path) -> str:
    return (
        f"{info.name} was not released publicly: request it from its authors ({info.citation}), "
        f"then put its splits at {folder}/{{train,dev,test}}.conll (or pass --data-dir)"
    )


def _missing_message(info: DatasetInfo, path: Path) -> str:
    if not info.public:
        return f"{path}: not found; " + _private_message(info, path.parent)
    return (
        f"{path}: not found; run `nerbench datasets fetch {info.name}`, or point --data-dir "
        f"(env {DATA_DIR_ENV}) at a folder holding {info.name}/{path.name}"
    )


def _modified_message(path: Path, expected: str, actual: str) -> str:
    return (
        f"{path}: sha256 {actual} differs from the registry's {expected}; refusing a modified copy "
        f"(pass {ALLOW_MODIFIED_HINT} to use it anyway; the run records it as modified)"
    )


def load_split(name: str, split: str, data_dir: Path | None = None, allow_modified: bool = False) -> Split:
    info = get_dataset(name)
    expected = info.split(split).sha256
    path = split_path(name, split, data_dir)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NerbenchError(_missing_message(info, path)) from None
    except OSError as err:
        raise NerbenchError(f"{path}: cannot read ({err.strerror or err})") from None
    actual = sha256_bytes(data)
    modified = False
    if expected is not None and actual != expected:
        if not allow_modified:
            raise NerbenchError(_modified_message(path, expected, actual))
        modified = True
    sentences = parse_conll(data, str(path))
    _check_labels(info, sentences, path)
    return Split(name, split, sentences, actual, path, modified, read_documents(path, len(sentences)))


def _check_labels(info: DatasetInfo, sentences: list[Sentence], path: Path) -> None:
    # A pinned file is checked by its sha256; this guards user-supplied and modified copies.
    allowed = set(info.labels)
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag not in allowed:
                raise NerbenchError(
                    f"{path}:{sentence.line + offset}: tag {tag!r} is not one of {info.name}'s labels "
                    f"({', '.join(info.labels)})"
                )


# ---------------------------------------------------------------- document sidecars

DOCS_SUFFIX = ".docs"


def documents_path(conll_path: Path) -> Path:
    """The document sidecar of a CoNLL file: `<stem>.docs` beside it."""
    conll_path = Path(conll_path)
    return conll_path.with_name(conll_path.stem + DOCS_SUFFIX)


def read_documents(conll_path: Path, n_sentences: int) -> tuple[str, ...] | None:
    """The document id of each sentence of `conll_path`, from the sidecar beside it (None when
    there is none). A sidecar that is there but does not fit is an error, never ignored."""
    path = documents_path(conll_path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise NerbenchError(f"{path}: cannot read ({err.strerror or err})") from None
    return parse_documents(data, path, n_sentences, Path(conll_path))


def load_documents(path: Path, n_sentences: int, conll_path: Path | None = None) -> tuple[str, ...]:
    """The document ids in an explicitly named sidecar (`--docs FILE`), which must exist."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NerbenchError(f"{path}: file not found") from None
    except OSError as err:
        raise NerbenchError(f"{path}: cannot read ({err.strerror or err})") from None
    return parse_documents(data, path, n_sentences, conll_path)


def parse_documents(data: bytes, path: Path, n_sentences: int, conll_path: Path | None = None) -> tuple[str, ...]:
    """One document id a line (UTF-8, LF, no header), exactly one line per sentence."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise NerbenchError(f"{path}:{line}: not UTF-8 ({err.reason})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the LF that ends the last line
    gold = f"{conll_path} has" if conll_path is not None else "the gold file has"
    if len(lines) != n_sentences:
        line = min(len(lines), n_sentences) + 1
        what = "one line per sentence expected" if len(lines) > n_sentences else "the file ends early"
        raise NerbenchError(
            f"{path}:{line}: {len(lines)} lines, but {gold} {n_sentences} sentences ({what}; one document id a line)"
        )
    for number, value in enumerate(lines, 1):
        if not value.strip():
            raise NerbenchError(f"{path}:{number}: empty document id")
        if value != value.strip():
            raise NerbenchError(f"{path}:{number}: document id {value!r} has surrounding whitespace (LF lines only)")
    return tuple(lines)


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Statistics:
    sentences: int
    tokens: int
    mentions_per_type: dict[str, int]
    long_entities: int  # entities of LONG_ENTITY_TOKENS tokens or more
    longest_sentence: int

    @property
    def mentions(self) -> int:
        return sum(self.mentions_per_type.values())

    @property
    def long_share(self) -> float:
        return self.long_entities / self.mentions if self.mentions else 0.0

    def to_dict(self) -> dict:
        return {
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entity_mentions": self.mentions,
            "entity_mentions_per_type": dict(self.mentions_per_type),
            "entities_ge3_tokens": self.long_entities,
            "entities_ge3_tokens_share": round(self.long_share, 4),
            "max_sentence_length_tokens": self.longest_sentence,
        }


def statistics(sentences: Sequence[Sentence], entity_types: Iterable[str] = ()) -> Statistics:
    """Counts of a split; entities are read the conlleval way (nerbench.scoring.extract_spans).

    `entity_types` fixes the order (and presence, with 0) of types; others follow, sorted.
    """
    entity_types = tuple(entity_types)
    spans = extract_spans([s.tags for s in sentences], types=entity_types)
    counts = np.bincount(spans.type_id, minlength=len(spans.types))
    ordered = {name: int(counts[i]) for i, name in enumerate(spans.types[: len(entity_types)])}
    others = {name: int(counts[i]) for i, name in enumerate(spans.types) if i >= len(entity_types)}
    ordered.update(sorted(others.items()))
    return Statistics(
        sentences=len(sentences),
        tokens=sum(len(s.tokens) for s in sentences),
        mentions_per_type=ordered,
        long_entities=int(np.count_nonzero(spans.length >= LONG_ENTITY_TOKENS)),
        longest_sentence=max((len(s.tokens) for s in sentences), default=0),
    )


# ---------------------------------------------------------------- local status


@dataclass(frozen=True)
class SplitStatus:
    dataset: str
    split: str
    path: Path
    status: str  # "ok", "modified", "missing", or "unpinned" (present, no sha256 to compare)
    expected_sha256: str | None
    actual_sha256: str | None

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "unpinned")

    def to_dict(self) -> dict:
        record = asdict(self)
        record["path"] = str(self.path)
        return record


def check_split(name: str, split: str, data_dir: Path | None = None) -> SplitStatus:
    info = get_dataset(name)
    expected = info.split(split).sha256
    path = split_path(name, split, data_dir)
    if not path.is_file():
        return SplitStatus(name, split, path, "missing", expected, None)
    actual = _sha256_file(path)
    if expected is None:
        status = "unpinned"
    else:
        status = "ok" if actual == expected else "modified"
    return SplitStatus(name, split, path, status, expected, actual)


def verify(names: Iterable[str] = DEFAULT_SUITE, data_dir: Path | None = None) -> list[SplitStatus]:
    infos = [get_dataset(name) for name in names]  # unknown names fail before any file is read
    return [check_split(info.name, s.name, data_dir) for info in infos for s in info.splits]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class SplitOverview:
    status: SplitStatus
    statistics: Statistics | None  # None when the file is missing

    def to_dict(self) -> dict:
        record = self.status.to_dict()
        record.update(self.statistics.to_dict() if self.statistics else {})
        return record


def overview(names: Iterable[str], data_dir: Path | None = None) -> list[SplitOverview]:
    """Status and statistics of every split; missing files are reported, never raised."""
    rows = []
    for info in [get_dataset(name) for name in names]:
        for split in info.splits:
            status = check_split(info.name, split.name, data_dir)
            stats = None
            if status.status != "missing":
                loaded = load_split(info.name, split.name, data_dir, allow_modified=True)
                stats = statistics(loaded.sentences, info.entity_types)
            rows.append(SplitOverview(status, stats))
    return rows


# ---------------------------------------------------------------- fetching


@dataclass(frozen=True)
class FetchResult:
    dataset: str
    split: str
    path: Path
    action: str  # "present" (already there, sha256 ok) or "fetched"
    url: str | None

    def to_dict(self) -> dict:
        record = asdict(self)
        record["path"] = str(self.path)
        return record


def fetch(
    names: Iterable[str] = DEFAULT_SUITE,
    data_dir: Path | None = None,
    mirror: str | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Download every split of `names` into the data dir, verifying sha256 before it lands.

    From `mirror` (or $NERBENCH_DATA_MIRROR), a base URL laid out as <name>/<split>.conll; without
    one, from the pinned public source where that file equals ours up to re-serialisation.
    A file that exists with a different sha256 is never overwritten. `on_result` sees each split
    as soon as it is in place (so a caller can report progress before a later failure).
    """
    infos = [get_dataset(name) for name in names]
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    root = resolve_data_dir(data_dir)
    results = []
    for info in infos:
        if not info.public:
            raise NerbenchError("nothing to fetch: " + _private_message(info, root / info.name))
        for split in info.splits:
            results.append(_fetch_split(info, split, root, mirror))
            if on_result:
                on_result(results[-1])
    return results


def _fetch_split(info: DatasetInfo, split: SplitInfo, root: Path, mirror: str | None) -> FetchResult:
    target = root / info.name / f"{split.name}.conll"
    expected = split.sha256
    if expected is None:  # only public sets are fetched, and every public split is pinned
        raise NerbenchError(f"{info.name} {split.name}: the registry pins no sha256 to check a download against")
    if target.exists():
        actual = _sha256_file(target)
        if actual == expected:
            return FetchResult(info.name, split.name, target, "present", None)
        raise NerbenchError(
            f"{target}: exists with sha256 {actual}, not the registry's {expected}; "
            "not overwriting it (move it away to fetch a fresh copy)"
        )
    if mirror:
        url = f"{mirror.rstrip('/')}/{info.name}/{split.name}.conll"
        data = _download(url)
    elif split.source_reserialises:
        base = os.environ.get(SOURCE_URL_ENV) or DEFAULT_SOURCE_URL
        url = split.sources[0].url(base)
        # The public file differs only in layout (trailing blank lines, -DOCSTART- lines).
        data = format_conll(parse_conll(_download(url), url), url).encode("utf-8")
    else:
        raise NerbenchError(
            f"{info.name} {split.name}: no public file has these bytes (made by: {split.made[:160]}); "
            f"fetch it from a mirror of the nerbench layout (--mirror URL or env {MIRROR_ENV}), "
            f"or copy it to {target}"
        )
    _place_verified(data, target, expected, url)
    return FetchResult(info.name, split.name, target, "fetched", url)


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise NerbenchError(f"{url}: download failed ({reason})") from None


def _place_verified(data: bytes, target: Path, expected: str, url: str) -> None:
    """Write to a temporary file beside the target, check its sha256, then rename into place."""
    created = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        actual = _sha256_file(temp)
        if actual != expected:
            raise NerbenchError(f"{url}: sha256 {actual} differs from the registry's {expected} for {target}; refused")
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
        if created and not any(target.parent.iterdir()):
            target.parent.rmdir()
