"""Build "chemprot_span_json": ChemProt dev and test from the span JSON of bionlproc/end-to-end-ChemProt.

`chemprot_data/processed_data/json/{dev,test}.json` holds one JSON object a line (PURE/SciERC
layout): `doc_key` (the PMID), `sentences` (lists of tokens) and `ner` (per sentence, a list of
`[start, end, type]` spans whose token offsets count from the start of the document, end included).
Each sentence becomes one BIO sentence:

- types map to the registry's CHEMICAL and GENE (GENE-Y and GENE-N merge into GENE);
- exact duplicate spans (same tokens, same type after the mapping) are removed;
- BIO allows no nested or overlapping spans: they are resolved longest first (ties: the first
  listed), and a span that overlaps one already kept is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from nerbench.builds import Reader, Source
from nerbench.conll import Sentence, format_conll
from nerbench.errors import NerbenchError, utf8_text

TYPE_MAP: dict[str, str] = {"CHEMICAL": "CHEMICAL", "GENE-Y": "GENE", "GENE-N": "GENE", "GENE": "GENE"}


@dataclass(frozen=True)
class Document:
    key: str  # doc_key: the PMID
    sentences: tuple[tuple[str, ...], ...]
    # per sentence: (start, end, type) with document token offsets, end included
    spans: tuple[tuple[tuple[int, int, str], ...], ...]
    line: int = 0  # the line of the JSON file it was read from


@dataclass
class ConversionCounts:
    spans_labeled: int = 0  # spans written as B-/I- tags
    overlapping_spans_dropped: int = 0  # spans that overlap a longer (or earlier equal) kept span
    duplicate_spans_removed: int = 0  # exact repeats of a span in the same sentence

    def to_dict(self) -> dict[str, int]:
        return {
            "spans_labeled": self.spans_labeled,
            "overlapping_spans_dropped": self.overlapping_spans_dropped,
            "duplicate_spans_removed": self.duplicate_spans_removed,
        }


def build_span_json(sources: Sequence[Source], read: Reader) -> bytes:
    if len(sources) != 1:
        raise NerbenchError(f"build 'chemprot_span_json' takes exactly one source, got {len(sources)}")
    source = sources[0]
    sentences, _ = documents_to_bio(read_span_json(read(source), source.label), source.label)
    return format_conll(sentences, source.label).encode("utf-8")


def read_span_json(data: bytes, where: str) -> list[Document]:
    """The documents of a span JSON file (one JSON object a line), checked; errors name where:line."""
    text = utf8_text(data, where)
    documents = []
    for number, value in enumerate(text.split("\n"), start=1):
        if not value.strip():
            continue
        try:
            record = json.loads(value)
        except json.JSONDecodeError as err:
            raise NerbenchError(
                f"{where}:{number}: not a JSON object ({err.msg}; expected one document a line)"
            ) from None
        documents.append(_document(record, f"{where}:{number}", number))
    if not documents:
        raise NerbenchError(f"{where}: no documents (expected one JSON object a line)")
    return documents


def _document(record: object, at: str, line: int) -> Document:
    if not isinstance(record, dict):
        raise NerbenchError(f"{at}: expected a JSON object with doc_key, sentences and ner")
    missing = [key for key in ("doc_key", "sentences", "ner") if key not in record]
    if missing:
        raise NerbenchError(f"{at}: no {', '.join(missing)} (expected the span JSON of end-to-end-ChemProt)")
    key, sentences, ner = record["doc_key"], record["sentences"], record["ner"]
    if not isinstance(key, str | int) or isinstance(key, bool) or not str(key).strip():
        raise NerbenchError(f"{at}: doc_key {key!r} is not an id")
    if not isinstance(sentences, list) or not isinstance(ner, list) or len(sentences) != len(ner):
        raise NerbenchError(f"{at}: doc {key}: sentences and ner must be lists of the same length")
    offset = 0
    checked_sentences = []
    checked_spans = []
    for index, (tokens, spans) in enumerate(zip(sentences, ner)):
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t.strip() for t in tokens):
            raise NerbenchError(f"{at}: doc {key}: sentence {index} is not a list of non-empty tokens")
        if not isinstance(spans, list):
            raise NerbenchError(f"{at}: doc {key}: ner of sentence {index} is not a list")
        kept = []
        for span in spans:
            if (
                not isinstance(span, list)
                or len(span) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span[:2])
                or not isinstance(span[2], str)
            ):
                raise NerbenchError(f"{at}: doc {key}: sentence {index}: span {span!r} is not [start, end, type]")
            start, end, kind = span
            if not offset <= start <= end < offset + len(tokens):
                raise NerbenchError(
                    f"{at}: doc {key}: sentence {index}: span {span!r} is outside its sentence "
                    f"(tokens {offset}-{offset + len(tokens) - 1} of the document)"
                )
            if kind not in TYPE_MAP:
                raise NerbenchError(
                    f"{at}: doc {key}: sentence {index}: unknown entity type {kind!r} (known: {', '.join(TYPE_MAP)})"
                )
            kept.append((start, end, kind))
        checked_sentences.append(tuple(tokens))
        checked_spans.append(tuple(kept))
        offset += len(tokens)
    return Document(str(key), tuple(checked_sentences), tuple(checked_spans), line)


def documents_to_bio(documents: Iterable[Document], where: str) -> tuple[list[Sentence], ConversionCounts]:
    """BIO sentences of the documents (an empty sentence is skipped), and what the conversion did."""
    counts = ConversionCounts()
    out = []
    for document in documents:
        offset = 0
        for tokens, spans in zip(document.sentences, document.spans):
            tags = sentence_tags(len(tokens), [(s - offset, e - offset, TYPE_MAP[t]) for s, e, t in spans], counts)
            offset += len(tokens)
            if tokens:
                out.append(Sentence(tokens, tags, 0))
    if not out:
        raise NerbenchError(f"{where}: no sentences")
    return out, counts


def sentence_tags(length: int, spans: Sequence[tuple[int, int, str]], counts: ConversionCounts) -> tuple[str, ...]:
    """IOB2 tags of one sentence from (start, end, type) spans (end included, sentence offsets)."""
    unique: list[tuple[int, int, str]] = []
    seen: set[tuple[int, int, str]] = set()
    for span in spans:
        if span in seen:
            counts.duplicate_spans_removed += 1
        else:
            seen.add(span)
            unique.append(span)
    # Longest first; sorted() is stable, so of equally long spans the first listed wins.
    taken = [False] * length
    tags = ["O"] * length
    for start, end, kind in sorted(unique, key=lambda span: span[0] - span[1]):
        if any(taken[start : end + 1]):
            counts.overlapping_spans_dropped += 1
            continue
        taken[start : end + 1] = [True] * (end + 1 - start)
        tags[start] = f"B-{kind}"
        tags[start + 1 : end + 1] = [f"I-{kind}"] * (end - start)
        counts.spans_labeled += 1
    return tuple(tags)
