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
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from nerbench.builds import APPROXIMATE, BUILDS, Reader, Source, builder, documents_builder
from nerbench.conll import Sentence, documents_path, load_documents, parse_conll, read_documents  # noqa: F401
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
class DocsInfo:
    """The document sidecar (`<split>.docs`) of a split: its pinned sha256 and the sources it is built from."""

    sha256: str
    sources: tuple[Source, ...]


@dataclass(frozen=True)
class SplitInfo:
    name: str
    sha256: str | None  # None: not public, nothing to pin
    bytes: int | None
    made: str  # how the file was made from its sources
    source_reserialises: bool  # the source file equals ours up to re-serialisation
    sources: tuple[Source, ...]
    build: str = ""  # how fetch makes the file from `sources` (nerbench.builds.BUILDS); "" when not public
    docs: DocsInfo | None = None  # the document sidecar, where the split has one


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
                build=_build_name(name, split, info.get("build", "")),
                docs=_docs_info(info.get("docs")),
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


def _build_name(dataset: str, split: str, name: str) -> str:
    if name and name not in BUILDS:
        raise NerbenchError(f"datasets.json: {dataset} {split}: unknown build {name!r} (known: {', '.join(BUILDS)})")
    return name


def _docs_info(entry: dict | None) -> DocsInfo | None:
    if entry is None:
        return None
    return DocsInfo(sha256=entry["sha256"], sources=tuple(Source(**source) for source in entry["sources"]))


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
    check_labels(info, sentences, path)
    return Split(name, split, sentences, actual, path, modified, read_documents(path, len(sentences)))


def check_labels(info: DatasetInfo, sentences: list[Sentence], path: Path) -> None:
    """Refuse the first tag outside the dataset's labels, naming its file and line. A pinned file
    is checked by its sha256; this guards user-supplied and modified copies, and prediction files
    (`nerbench score --dataset`), where an unknown label would count as an entity type of its own."""
    allowed = set(info.labels)
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag not in allowed:
                raise NerbenchError(
                    f"{path}:{sentence.line + offset}: tag {tag!r} is not one of {info.name}'s labels "
                    f"({', '.join(info.labels)})"
                )


# The document sidecars (<stem>.docs) are read in nerbench.conll, beside the reader: scoring files
# (`nerbench score`) needs no registry. load_documents is named here too (imported above).


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

NEAREST_SUFFIX = ".nearest.json"  # beside a split placed as the nearest build: what it is and why


@dataclass(frozen=True)
class FetchResult:
    """What fetch did with one file: a split's `.conll` (kind "conll") or its sidecar (kind "docs").

    action: "fetched" (placed now, sha256 checked), "present" (already there, sha256 checked),
    "failed" (not placed: `reason` says why), "different" (made, but its sha256 is not the registry's:
    not placed) or "skipped" (a sidecar of a split that holds the nearest build). `nearest`: the file
    is the nearest build of an approximate build, placed (or kept) on request, not the registered file.
    """

    dataset: str
    split: str
    kind: str  # "conll" or "docs"
    path: Path
    action: str
    url: str | None  # where the bytes came from: the mirror's file, or the (first) source's URL
    build: str | None = None  # the build that made them; None from a mirror or when already present
    sources: tuple[str, ...] = ()  # the build's sources (`Source.label`)
    reason: str = ""
    sha256: str | None = None  # of the file placed, present or (for "different") made
    seconds: float = 0.0
    nearest: bool = False

    @property
    def ok(self) -> bool:
        return self.action in ("fetched", "present", "skipped")

    @property
    def file(self) -> str:
        """`<dataset>/<split>.conll` or `.docs`: the file's name inside the data directory."""
        return f"{self.dataset}/{self.path.name}"

    def to_dict(self) -> dict:
        record = asdict(self)
        record["path"] = str(self.path)
        record["ok"] = self.ok
        return record


def fetch(
    names: Iterable[str] = DEFAULT_SUITE,
    data_dir: Path | None = None,
    mirror: str | None = None,
    on_result: Callable[[FetchResult], None] | None = None,
    *,
    splits: Iterable[str] | None = None,
    allow_nearest: bool = False,
    reader: Reader | None = None,
    on_start: Callable[[str, str], None] | None = None,
) -> list[FetchResult]:
    """Put every split of `names` (or only `splits`) into the data dir, and its `.docs` sidecar where
    the registry has one, each verified against the registry's sha256 before it lands.

    From `mirror` (or $NERBENCH_DATA_MIRROR), a base URL laid out like the data dir
    (<name>/<split>.conll and .docs); without one, built from the split's pinned public sources
    (read through `reader`, by default from $NERBENCH_SOURCE_URL or raw.githubusercontent.com) by
    its registered build. A file that cannot be made is reported and the others go on; the caller
    decides what a failure means (see `FetchResult.ok`). A file that exists with a different sha256 is
    never overwritten. An approximate build (the ChemProt train rebuild) whose bytes are not the
    registry's is placed only with `allow_nearest`, beside a `<split>.nearest.json` record of what it is.
    `on_start` sees each split before its work begins, `on_result` each file as soon as it is done.
    Raises only for a wrong request (unknown dataset or split, a private set), before fetching anything.
    """
    infos = [get_dataset(name) for name in names]
    wanted = _wanted_splits(splits)
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    root = resolve_data_dir(data_dir)
    for info in infos:
        if not info.public:
            raise NerbenchError("nothing to fetch: " + _private_message(info, root / info.name))
    results: list[FetchResult] = []
    for info in infos:
        # Sources are kept for one dataset (its splits and sidecars share some), then let go.
        read = reader or source_reader()
        for split in info.splits:
            if wanted is not None and split.name not in wanted:
                continue
            if on_start:
                on_start(info.name, split.name)
            for result in _fetch_split(info, split, root, mirror, read, allow_nearest):
                results.append(result)
                if on_result:
                    on_result(result)
    return results


def _wanted_splits(splits: Iterable[str] | None) -> set[str] | None:
    if splits is None:
        return None
    wanted = set(splits)
    unknown = sorted(wanted - set(SPLITS))
    if unknown:
        raise NerbenchError(f"unknown split {unknown[0]!r}; splits: {', '.join(SPLITS)}")
    return wanted or None


def source_reader(base: str | None = None) -> Reader:
    """A Reader of pinned sources under `base` (default: $NERBENCH_SOURCE_URL, else
    raw.githubusercontent.com) that downloads each file once and keeps it (or its failure)."""
    base = base or os.environ.get(SOURCE_URL_ENV) or DEFAULT_SOURCE_URL
    kept: dict[tuple[str, str, str], bytes | NerbenchError] = {}

    def read(source: Source) -> bytes:
        key = (source.repository, source.commit, source.path)
        if key not in kept:
            try:
                kept[key] = _download(source.url(base))
            except NerbenchError as err:
                kept[key] = err
        value = kept[key]
        if isinstance(value, NerbenchError):
            raise value
        return value

    return read


def _fetch_split(
    info: DatasetInfo, split: SplitInfo, root: Path, mirror: str | None, read: Reader, allow_nearest: bool
) -> Iterable[FetchResult]:
    target = root / info.name / f"{split.name}.conll"
    result, data = _fetch_conll(info, split, target, mirror, read, allow_nearest)
    yield result
    if split.docs is None or result.action not in ("fetched", "present"):
        return
    docs_target = documents_path(target)
    if result.nearest:
        yield FetchResult(
            info.name,
            split.name,
            "docs",
            docs_target,
            "skipped",
            None,
            reason=f"{target.name} is the nearest build, not the registered file; its sidecar is registered "
            "for the registered file only",
        )
        return
    assert data is not None
    yield _fetch_docs(info, split, split.docs, data, docs_target, mirror, read)


def _fetch_conll(
    info: DatasetInfo, split: SplitInfo, target: Path, mirror: str | None, read: Reader, allow_nearest: bool
) -> tuple[FetchResult, bytes | None]:
    start = time.monotonic()
    expected = split.sha256
    labels: tuple[str, ...] = ()  # the sources, once a build reads them

    def result(action: str, url: str | None = None, **fields) -> FetchResult:
        fields.setdefault("seconds", round(time.monotonic() - start, 3))
        return FetchResult(info.name, split.name, "conll", target, action, url, sources=labels, **fields)

    if expected is None:  # only public sets are fetched, and every public split is pinned
        return result("failed", reason="the registry pins no sha256 to check a file against"), None
    present = _present(target)
    if isinstance(present, str):
        return result("failed", reason=present), None
    if present is not None:
        actual = sha256_bytes(present)
        if actual == expected:
            return result("present", sha256=actual), present
        nearest = _nearest_record(target)
        if nearest is not None and nearest.get("sha256") == actual:
            if allow_nearest:
                kept = "the nearest build (--allow-nearest)"
                return result("present", sha256=actual, nearest=True, reason=kept), present
            return result(
                "failed",
                sha256=actual,
                reason=f"{target} is the nearest build placed by --allow-nearest, not the registry's file "
                f"(sha256 {expected}); pass --allow-nearest to keep it, or move it away to fetch the registered file",
            ), None
        return result(
            "failed",
            sha256=actual,
            reason=f"{target} exists with sha256 {actual}, not the registry's {expected}; "
            "not overwriting it (move it away to fetch a fresh copy)",
        ), None

    build: str | None = None
    if mirror:
        mirrored = f"{mirror.rstrip('/')}/{info.name}/{split.name}.conll"
        url: str | None = mirrored
        made = _attempt(lambda: _download(mirrored))
    else:
        build = split.build
        url = split.sources[0].url(_source_base()) if split.sources else None
        made = _attempt(lambda: builder(split.build)(split.sources, read), f"build {split.build!r}")
        labels = tuple(source.label for source in split.sources)
    if isinstance(made, str):
        return result("failed", url, build=build, reason=made), None
    actual = sha256_bytes(made)
    if actual == expected:
        placed = _place(made, target, expected)
        if placed:
            return result("failed", url, build=build, reason=placed, sha256=actual), None
        return result("fetched", url, build=build, sha256=actual), made
    if build in APPROXIMATE:
        if not allow_nearest:
            offer = _nearest_offer(made, expected, split)
            return result("different", url, build=build, sha256=actual, reason=offer), None
        placed = _place(made, target, actual)
        if placed:
            return result("failed", url, build=build, reason=placed, sha256=actual), None
        _write_nearest_record(target, info, split, actual)
        return result(
            "fetched",
            url,
            build=build,
            sha256=actual,
            nearest=True,
            reason=f"placed the nearest build (sha256 {actual}; the registry's is {expected}), recorded in "
            f"{target.name.removesuffix('.conll')}{NEAREST_SUFFIX}; `nerbench eval --allow-modified` uses it",
        ), made
    origin = f"downloaded from {url}" if mirror else f"made by build {build!r}"
    return result(
        "different",
        url,
        build=build,
        sha256=actual,
        reason=f"{origin}: sha256 {actual} differs from the registry's {expected}; refused (not placed)",
    ), None


def _fetch_docs(
    info: DatasetInfo, split: SplitInfo, docs: DocsInfo, conll: bytes, target: Path, mirror: str | None, read: Reader
) -> FetchResult:
    start = time.monotonic()
    labels: tuple[str, ...] = ()  # the sources, once the sidecar build reads them

    def result(action: str, url: str | None = None, **fields) -> FetchResult:
        fields.setdefault("seconds", round(time.monotonic() - start, 3))
        return FetchResult(info.name, split.name, "docs", target, action, url, sources=labels, **fields)

    present = _present(target)
    if isinstance(present, str):
        return result("failed", reason=present)
    if present is not None:
        actual = sha256_bytes(present)
        if actual == docs.sha256:
            return result("present", sha256=actual)
        return result(
            "failed",
            sha256=actual,
            reason=f"{target} exists with sha256 {actual}, not the registry's {docs.sha256}; "
            "not overwriting it (move it away to fetch a fresh copy)",
        )
    build: str | None = None
    if mirror:
        mirrored = f"{mirror.rstrip('/')}/{info.name}/{target.name}"
        url: str | None = mirrored
        made = _attempt(lambda: _download(mirrored))
    else:
        build = "documents"
        url = docs.sources[0].url(_source_base()) if docs.sources else None
        made = _attempt(
            lambda: documents_builder()(info.name, split.name, conll, docs.sources, read), "the sidecar build"
        )
        labels = tuple(source.label for source in docs.sources)
    if isinstance(made, str):
        return result("failed", url, build=build, reason=made)
    actual = sha256_bytes(made)
    if actual != docs.sha256:
        return result(
            "different",
            url,
            build=build,
            sha256=actual,
            reason=f"sha256 {actual} differs from the registry's {docs.sha256}; refused (not placed)",
        )
    placed = _place(made, target, docs.sha256)
    if placed:
        return result("failed", url, build=build, reason=placed, sha256=actual)
    return result("fetched", url, build=build, sha256=actual)


def _source_base() -> str:
    return os.environ.get(SOURCE_URL_ENV) or DEFAULT_SOURCE_URL


def _attempt(make: Callable[[], bytes], what: str = "") -> bytes | str:
    """The bytes `make` returns, or the one-line reason it failed."""
    try:
        return make()
    except NerbenchError as err:
        return str(err)
    except Exception as err:  # a bug in one build must not stop the others; reported with its type
        return f"{what or 'download'} failed: {type(err).__name__}: {err}"


def _present(path: Path) -> bytes | str | None:
    """The bytes of an existing file, None when there is none, or why it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"{path}: exists but cannot be read ({err.strerror or err}); not touching it"


def _nearest_offer(data: bytes, expected: str, split: SplitInfo) -> str:
    return (
        f"the exact rebuild was not possible: build {split.build!r} gives sha256 {sha256_bytes(data)} "
        f"({len(data):,} bytes), not the registry's {expected} ({split.bytes or 0:,} bytes); not placed. "
        "Pass --allow-nearest to place this nearest build (recorded as modified: `nerbench eval "
        "--allow-modified` then trains on it), or fetch the registered file from a mirror (--mirror URL)"
    )


def _nearest_record(target: Path) -> dict | None:
    path = target.with_name(target.name.removesuffix(".conll") + NEAREST_SUFFIX)
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_nearest_record(target: Path, info: DatasetInfo, split: SplitInfo, actual: str) -> None:
    record = {
        "file": target.name,
        "sha256": actual,
        "registry_sha256": split.sha256,
        "build": split.build,
        "sources": [asdict(source) for source in split.sources],
        "note": f"the nearest build of {info.name} {split.name}: the exact rebuild was not possible, so this "
        "file differs from the registered one; load_split refuses it unless allow_modified (--allow-modified)",
    }
    path = target.with_name(target.name.removesuffix(".conll") + NEAREST_SUFFIX)
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def _download(url: str) -> bytes:
    import urllib.error
    import urllib.request  # here, not at the top: reading and scoring splits never download

    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except urllib.error.HTTPError as err:
        raise NerbenchError(f"{url}: download failed (HTTP {err.code} {err.reason})") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise NerbenchError(f"{url}: download failed ({reason})") from None


def _place(data: bytes, target: Path, expected: str) -> str:
    """Write to a temporary file beside the target, check its sha256, then rename into place;
    '' when placed, else why not (nothing is left behind)."""
    created = not target.parent.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as err:
        return f"{target}: cannot write ({err.strerror or err})"
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        actual = _sha256_file(temp)
        if actual != expected:
            return f"{target}: the written copy has sha256 {actual}, not {expected}; refused"
        os.replace(temp, target)
        return ""
    except OSError as err:
        return f"{target}: cannot write ({err.strerror or err})"
    finally:
        temp.unlink(missing_ok=True)
        if created and target.parent.is_dir() and not any(target.parent.iterdir()):
            target.parent.rmdir()
