"""Build "chemprot_rebuild_train": the ChemProt train split rebuilt from the original corpus.

bionlproc/end-to-end-ChemProt pooled the original BioCreative VI ChemProt training (1,020) and
development (612) abstracts and re-split them into 1,305 train and 327 dev abstracts. It released
the dev and test span JSON, but not train.json. This build makes train from the original corpus.
The pool is the training abstracts, then the development abstracts, each in file order, minus the
327 `doc_key`s of the released dev.json. Each abstract is converted as the repository's preprocessing
converts it (a re-implementation, not a copy):

- Reading: the abstracts and entities TSVs are read with Python's csv module (tab-delimited, default
  quoting), as pandas reads them there. One abstract (PMID 23194825) starts with a quoted word,
  `"Ecstasy" (...`. The reader drops those two quote characters, which moves the text after them
  by one and two characters. The repository corrects that abstract's entity offsets by hand. Here every
  entity offset is mapped from the raw line to the text the reader returns, which gives the same
  correction.
- Text: title + " " + abstract, with U+00A0, U+2002, U+2005, U+2009 and U+200A replaced by spaces.
- Sentences: stanza stands in the repository; here a rule-based splitter (`split_sentences`).
  Checked on the 1,127 released dev+test abstracts, it gives identical sentence boundaries for
  267 of 327 dev and 630 of 800 test abstracts. Those are the registry's `reconstruction_validation`
  numbers. It reproduces all 13,090 sentence boundaries of the registered train.conll.
- Tokens: a sentence is split at whitespace. A piece is split further into runs of Latin or Greek
  letters, runs of digits, and single other characters (`tokenise`).
- Entities: an entity is kept when it lies inside one sentence, its offsets fall on token boundaries
  and the text there equals its text. A sentence's offset is the first occurrence of its text in the
  abstract, as `doc.index` gives it there. GENE-Y and GENE-N become GENE. 66 entities are dropped.
- BIO: exact duplicate spans are removed. Overlapping or nested spans are resolved longest first
  (ties: the first listed). That gives 30,801 spans labelled and 2,013 dropped.

With the pinned sources the bytes equal the registered train.conll
(sha256 5e454cf29e3c546b87988d18c80d0805d6314581175e7683e4eff84ef11d9983).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nerbench.conll import Sentence, format_conll
from nerbench.errors import NerbenchError

if TYPE_CHECKING:
    from nerbench.builds import Reader, Source

BUILD = "chemprot_rebuild_train"

# The source files, found among the build's sources by the end of their path.
TRAINING_ABSTRACTS = "chemprot_training/chemprot_training_abstracts.tsv"
TRAINING_ENTITIES = "chemprot_training/chemprot_training_entities.tsv"
DEVELOPMENT_ABSTRACTS = "chemprot_development/chemprot_development_abstracts.tsv"
DEVELOPMENT_ENTITIES = "chemprot_development/chemprot_development_entities.tsv"
RELEASED_DEV = "processed_data/json/dev.json"
REQUIRED: tuple[str, ...] = (
    TRAINING_ABSTRACTS,
    TRAINING_ENTITIES,
    DEVELOPMENT_ABSTRACTS,
    DEVELOPMENT_ENTITIES,
    RELEASED_DEV,
)

TYPE_MAP: dict[str, str] = {"CHEMICAL": "CHEMICAL", "GENE-Y": "GENE", "GENE-N": "GENE"}

# Spaces the repository replaces by " " before splitting (one character each, so offsets hold).
SPACE_LIKE = "\u00a0\u2002\u2005\u2009\u200a"
_SPACE_TABLE = str.maketrans(dict.fromkeys(SPACE_LIKE, " "))

# Token pieces: a run of Latin or Greek letters, a run of digits, or any other single character.
_LETTERS = "A-Za-z\u03b1-\u03c9\u0391-\u03a9"
_PIECE = re.compile(rf"[{_LETTERS}]+|\d+|[^{_LETTERS}\s]")
_WORD = re.compile(r"\S+")

# --- the sentence splitter ---------------------------------------------------------------------
# A sentence ends after a word that ends in . ? or ! (closing quotes and brackets may follow), unless
# the word is one of these abbreviations (compared in lower case, without the final stop and
# without opening brackets).
ABBREVIATIONS: frozenset[str] = frozenset(
    {"e.g", "i.e", "vs", "al", "etc", "sp", "spp", "var", "min", "prof", "st", "linn"}
)
# Section headings written without a colon end a sentence when a capitalised word follows them.
HEADINGS: frozenset[str] = frozenset({"OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"})
# Lower-case words that continue a sentence even after a full stop.
CONTINUATIONS: frozenset[str] = frozenset({"and", "or", "of"})
_CLOSERS = "\"')]"
_OPENERS = "(["
_SINGLE_CAPITAL = re.compile(r"[A-Z]")
_LOWER_WORD = re.compile(r"[a-z][a-z-]{2,}")
_TITLE_CASE = re.compile(r"[A-Z][a-z]")


def ends_sentence(word: str, following: str, opens_sentence: bool) -> bool:
    """Whether a sentence ends between whitespace-separated `word` and `following`.

    `opens_sentence`: `word` is the first word of its sentence.
    """
    if word in HEADINGS and _TITLE_CASE.match(following):
        return True
    stripped = word.rstrip(_CLOSERS)
    if not stripped or stripped[-1] not in ".?!":
        return False
    core = stripped[:-1].lstrip(_OPENERS)
    if core.lower() in ABBREVIATIONS:
        return False
    if _SINGLE_CAPITAL.fullmatch(core):  # an initial: "E. coli", "vitamin C. The"
        return False
    if opens_sentence and core.isdigit():  # a numbered paragraph: "1. The effects ..."
        return False
    first = following[0]
    if first.isupper() or first.isdigit() or first in _OPENERS:
        return True
    if first.islower():
        # "... in cells. siRNA knockdown ..." but not "body wt. or", "(PDE10A). cDNA"
        return _LOWER_WORD.fullmatch(core) is not None and following not in CONTINUATIONS
    return False


def split_sentences(text: str) -> list[tuple[int, int]]:
    """The (start, end) character ranges of the sentences of `text`, from first to last non-space."""
    words = list(_WORD.finditer(text))
    if not words:
        return []
    starts = [0]
    for index in range(len(words) - 1):
        if ends_sentence(words[index].group(), words[index + 1].group(), starts[-1] == index):
            starts.append(index + 1)
    ends = [*starts[1:], len(words)]
    return [(words[first].start(), words[last - 1].end()) for first, last in zip(starts, ends)]


def tokenise(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) of each token of `text`: whitespace-separated words split into pieces."""
    tokens: list[tuple[str, int, int]] = []
    for word in _WORD.finditer(text):
        base = word.start()
        for piece in _PIECE.finditer(word.group()):
            tokens.append((piece.group(), base + piece.start(), base + piece.end()))
    return tokens


# --- reading the sources -----------------------------------------------------------------------
@dataclass(frozen=True)
class Entity:
    entity_id: str  # T1, T2, ... (unique within an abstract)
    label: str  # CHEMICAL, GENE-Y or GENE-N
    start: int  # character offsets into title + " " + abstract as the csv reader returns them
    end: int
    text: str


@dataclass(frozen=True)
class Abstract:
    pmid: str
    title: str
    abstract: str
    # raw offset -> offset in title + " " + abstract; None where the csv reader changed nothing
    offsets: tuple[int, ...] | None = None

    @property
    def text(self) -> str:
        return self.title + " " + self.abstract


@dataclass
class Counts:
    documents: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: int = 0  # entities of the pooled abstracts
    entities_dropped_by_alignment: int = 0  # crossing a sentence, off token boundaries or text differs
    spans_labeled: int = 0
    overlapping_spans_dropped: int = 0
    duplicate_spans_removed: int = 0
    per_type: dict[str, int] = field(default_factory=dict)  # labelled spans per type


def build_train(sources: Sequence[Source], read: Reader) -> bytes:
    sentences, _ = rebuild(sources, read)
    return format_conll(sentences, BUILD).encode("utf-8")


def rebuild(sources: Sequence[Source], read: Reader) -> tuple[list[Sentence], Counts]:
    """The train sentences and the counts of the conversion."""
    found = {suffix: _find(sources, suffix) for suffix in REQUIRED}
    texts = {suffix: _decode(read(source), source) for suffix, source in found.items()}
    abstracts = _read_abstracts(texts[TRAINING_ABSTRACTS], found[TRAINING_ABSTRACTS]) + _read_abstracts(
        texts[DEVELOPMENT_ABSTRACTS], found[DEVELOPMENT_ABSTRACTS]
    )
    entities = _read_entities(texts[TRAINING_ENTITIES], found[TRAINING_ENTITIES])
    for pmid, more in _read_entities(texts[DEVELOPMENT_ENTITIES], found[DEVELOPMENT_ENTITIES]).items():
        entities.setdefault(pmid, []).extend(more)
    dev_keys = _read_dev_keys(texts[RELEASED_DEV], found[RELEASED_DEV])

    pmids = [abstract.pmid for abstract in abstracts]
    if len(set(pmids)) != len(pmids):
        duplicated = sorted({pmid for pmid in pmids if pmids.count(pmid) > 1})
        raise NerbenchError(f"build {BUILD!r}: PMIDs listed twice in the abstracts: {', '.join(duplicated[:5])}")
    missing = sorted(set(dev_keys) - set(pmids))
    if missing:
        raise NerbenchError(
            f"{_label(found[RELEASED_DEV])}: {len(missing)} doc_keys are not among the original training and "
            f"development abstracts (first: {missing[0]})"
        )

    counts = Counts()
    sentences: list[Sentence] = []
    excluded = set(dev_keys)
    for abstract in abstracts:
        if abstract.pmid in excluded:
            continue
        doc_entities = [_remap(entity, abstract) for entity in entities.get(abstract.pmid, [])]
        sentences.extend(convert_abstract(abstract.text, doc_entities, counts))
        counts.documents += 1
    counts.sentences = len(sentences)
    counts.tokens = sum(len(sentence.tokens) for sentence in sentences)
    return sentences, counts


def convert_abstract(text: str, entities: Sequence[Entity], counts: Counts | None = None) -> list[Sentence]:
    """The BIO sentences of one abstract (title + " " + abstract) with its entities."""
    counts = counts if counts is not None else Counts()
    doc = text.translate(_SPACE_TABLE)
    counts.entities += len(entities)
    aligned_total = 0
    result: list[Sentence] = []
    for start, end in split_sentences(doc):
        sentence = doc[start:end]
        # The repository places a sentence at the first occurrence of its text (doc.index).
        offset = doc.index(sentence)
        tokens = tokenise(sentence)
        token_at_start = {token_start + offset: index for index, (_, token_start, _) in enumerate(tokens)}
        token_at_end = {token_end + offset: index for index, (_, _, token_end) in enumerate(tokens)}
        spans: dict[str, tuple[int, int, str]] = {}
        for entity in entities:
            if entity.start < offset or entity.end > offset + len(sentence):
                continue
            first = token_at_start.get(entity.start)
            last = token_at_end.get(entity.end)
            if first is None or last is None or sentence[tokens[first][1] : tokens[last][2]] != entity.text:
                continue
            spans[entity.entity_id] = (first, last, TYPE_MAP[entity.label])
        aligned_total += len(spans)
        tags = spans_to_bio(len(tokens), list(spans.values()), counts)
        result.append(Sentence(tokens=tuple(token for token, _, _ in tokens), tags=tuple(tags), line=0))
    counts.entities_dropped_by_alignment += len(entities) - aligned_total
    return result


def spans_to_bio(length: int, spans: Sequence[tuple[int, int, str]], counts: Counts | None = None) -> list[str]:
    """BIO tags of `length` tokens from (first, last, type) spans (last included), in listed order.

    Exact duplicates are removed; overlapping spans are resolved longest first (ties: first listed).
    """
    unique: list[tuple[int, int, str]] = []
    for span in spans:
        if span in unique:
            if counts is not None:
                counts.duplicate_spans_removed += 1
            continue
        unique.append(span)
    order = sorted(range(len(unique)), key=lambda i: (unique[i][0] - unique[i][1], i))
    tags = ["O"] * length
    for index in order:
        first, last, label = unique[index]
        if any(tag != "O" for tag in tags[first : last + 1]):
            if counts is not None:
                counts.overlapping_spans_dropped += 1
            continue
        tags[first] = f"B-{label}"
        for position in range(first + 1, last + 1):
            tags[position] = f"I-{label}"
        if counts is not None:
            counts.spans_labeled += 1
            counts.per_type[label] = counts.per_type.get(label, 0) + 1
    return tags


def _find(sources: Sequence[Source], suffix: str) -> Source:
    for source in sources:
        if source.path == suffix or source.path.endswith("/" + suffix):
            return source
    raise NerbenchError(f"build {BUILD!r} needs the source file .../{suffix}, which is not among its sources")


def _label(source: Source) -> str:
    return f"{source.repository}@{source.commit[:12]}:{source.path}"


def _decode(data: bytes, source: Source) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise NerbenchError(f"{_label(source)}: not UTF-8 text (byte {err.start})") from None


def _tsv_rows(text: str, source: Source, width: int) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise NerbenchError(f"{_label(source)}: row {number} has {len(row)} fields, expected {width}")
    return rows


def _read_abstracts(text: str, source: Source) -> list[Abstract]:
    rows = _tsv_rows(text, source, 3)
    # The same rows split at tabs without quote handling: entity offsets count in these.
    raw = [line.split("\t") for line in text.split("\n") if line]
    if len(raw) != len(rows):
        raise NerbenchError(f"{_label(source)}: {len(rows)} csv rows but {len(raw)} lines (quoted line breaks?)")
    abstracts = []
    for number, (row, raw_row) in enumerate(zip(rows, raw), start=1):
        pmid, title, abstract = row
        offsets = None
        if raw_row != row:
            if len(raw_row) != 3:
                raise NerbenchError(f"{_label(source)}: row {number} has quoted tabs")
            offsets = _offset_map(raw_row[1] + " " + raw_row[2], title + " " + abstract, source, number)
        abstracts.append(Abstract(pmid=pmid, title=title, abstract=abstract, offsets=offsets))
    return abstracts


def _offset_map(raw: str, parsed: str, source: Source, number: int) -> tuple[int, ...]:
    """For each offset 0..len(raw) of `raw`, the offset in `parsed` (`raw` less some quote characters)."""
    mapped = []
    position = 0
    for char in raw:
        mapped.append(position)
        if position < len(parsed) and parsed[position] == char:
            position += 1
        elif char != '"':
            raise NerbenchError(f"{_label(source)}: row {number}: the csv reader changed more than quotes")
    mapped.append(position)
    if position != len(parsed):
        raise NerbenchError(f"{_label(source)}: row {number}: the csv reader changed more than quotes")
    return tuple(mapped)


def _read_entities(text: str, source: Source) -> dict[str, list[Entity]]:
    entities: dict[str, list[Entity]] = {}
    for number, (pmid, entity_id, label, start, end, mention) in enumerate(_tsv_rows(text, source, 6), start=1):
        if label not in TYPE_MAP:
            raise NerbenchError(f"{_label(source)}: row {number}: unknown entity type {label!r}")
        try:
            entity = Entity(entity_id=entity_id, label=label, start=int(start), end=int(end), text=mention)
        except ValueError:
            raise NerbenchError(f"{_label(source)}: row {number}: offsets {start!r}, {end!r} are not numbers") from None
        entities.setdefault(pmid, []).append(entity)
    return entities


def _remap(entity: Entity, abstract: Abstract) -> Entity:
    if abstract.offsets is None:
        return entity
    last = len(abstract.offsets) - 1
    start = abstract.offsets[min(max(entity.start, 0), last)]
    end = abstract.offsets[min(max(entity.end, 0), last)]
    return Entity(entity_id=entity.entity_id, label=entity.label, start=start, end=end, text=entity.text)


def _read_dev_keys(text: str, source: Source) -> list[str]:
    keys = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError as err:
            raise NerbenchError(f"{_label(source)}:{number}: not JSON ({err.msg})") from None
        if not isinstance(document, dict) or not isinstance(document.get("doc_key"), (str, int)):
            raise NerbenchError(f"{_label(source)}:{number}: no doc_key")
        keys.append(str(document["doc_key"]))
    return keys
