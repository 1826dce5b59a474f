"""Build the document sidecars (`<name>/<split>.docs`) of the default datasets from their public sources.

A sidecar has one line per sentence of `<name>/<split>.conll`, in the same order: the id of the
abstract the sentence comes from (UTF-8, LF). How each split is matched (data/README.md, "Document
sidecars"); nothing is guessed, anything that does not match exactly is a NerbenchError:

- jnlpba: the `###MEDLINE:<id>` abstracts of the original JNLPBA 2004 files, whose sentences, tokens
  and tags equal the .conll one for one (Genia4ERtask2.iob2 of the training tarball: train = abstracts
  1-1,800, dev = 1,801-2,000; Genia4EReval2.iob2 of the test tarball for test).
- chemprot dev/test: the `doc_key` of the span JSON the .conll was converted from, whose sentences'
  tokens equal the .conll one for one (test: its doc_keys are the PMIDs of the original test abstracts
  TSV, in order).
- chemprot train, bc5cdr, biored, ncbi_disease: the original abstracts (PubTator files; for chemprot
  train the training + development abstracts TSVs minus the dev.json documents). Each abstract's
  title + abstract text, with all whitespace removed, equals the tokens of a run of whole sentences
  (whitespace removed), wherever in the .conll that run is. Every sentence must belong to exactly one
  abstract and every abstract must be used, except a second source copy with the same id and the same
  text (NCBI-disease train lists 8528200 twice; train.conll holds it once).

An id that occurs as two separate runs (the same abstract twice in the .conll) is written `<id>_2` the
second time, `<id>_3` the third, so that every document is one contiguous run.

Standard library only; the caller fetches and verifies the files (`Reader`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nerbench.conll import parse_conll
from nerbench.errors import NerbenchError

if TYPE_CHECKING:
    # Type names only (nothing is imported at run time): nerbench.builds defines them, and
    # nerbench.datasets re-exports Source.
    from nerbench.builds import Reader, Source

_GENIA = "wolfe-examples/src/main/resources/ml/wolfe/datasets/genia/"
_GENIA_TRAINING = _GENIA + "Genia4ERtraining.tar.gz"
_GENIA_TEST = _GENIA + "Genia4ERtest.tar.gz"
_CHEMPROT_TSV = "utils/chemprot/chemprot/"
_CHEMPROT_TRAIN_TSV = _CHEMPROT_TSV + "chemprot_training/chemprot_training_abstracts.tsv"
_CHEMPROT_DEV_TSV = _CHEMPROT_TSV + "chemprot_development/chemprot_development_abstracts.tsv"
_CHEMPROT_TEST_TSV = _CHEMPROT_TSV + "chemprot_test_gs/chemprot_test_abstracts_gs.tsv"
_CHEMPROT_JSON = "chemprot_data/processed_data/json/"
_PUBTATOR = {
    ("bc5cdr", "train"): "original/CDR_TrainingSet.PubTator.txt",
    ("bc5cdr", "dev"): "original/CDR_DevelopmentSet.PubTator.txt",
    ("bc5cdr", "test"): "original/CDR_TestSet.PubTator.txt",
    ("biored", "train"): "NER BioRED/BioRED/Train.PubTator",
    ("biored", "dev"): "NER BioRED/BioRED/Dev.PubTator",
    ("biored", "test"): "NER BioRED/BioRED/Test.PubTator",
    ("ncbi_disease", "train"): "original-data/train/NCBItrainset_corpus.txt",
    ("ncbi_disease", "dev"): "original-data/devel/NCBIdevelopset_corpus.txt",
    ("ncbi_disease", "test"): "original-data/test/NCBItestset_corpus.txt",
}
_GENIA_TRAINING_ABSTRACTS = 2000
_GENIA_TRAIN_ABSTRACTS = 1800  # train = the first 1,800 abstracts of Genia4ERtask2.iob2, dev = the rest
_KEY_CHARS = 32  # characters of an abstract's start used to find where it may begin


@dataclass(frozen=True)
class _Abstract:
    """A source abstract to be matched as text: its id, where it is, and its whitespace-free text."""

    id: str
    where: str  # e.g. "CDR_TrainingSet.PubTator.txt line 12"
    text: str


@dataclass(frozen=True)
class _Run:
    """One document of the split: sentences [start, end) of the .conll (0-based)."""

    id: str
    start: int
    end: int
    where: str


def build_documents(dataset: str, split: str, conll: bytes, sources: Sequence[Source], read: Reader) -> bytes:
    """The `.docs` sidecar of `<dataset>/<split>.conll` (given as bytes), built from its document sources.

    `sources` are the split's document sources; the ones needed are found by path and read with
    `read`. Raises NerbenchError naming the dataset, split, source file and abstract when anything
    does not match exactly.
    """
    label = f"{dataset}/{split}"
    sentences = parse_conll(conll, f"{dataset}/{split}.conll")
    if not sentences:
        raise NerbenchError(f"{label}: {split}.conll has no sentences")
    files = _Files(label, sources, read)
    if dataset == "jnlpba" and split in ("train", "dev", "test"):
        runs, expected = _jnlpba(label, split, sentences, files)
    elif dataset == "chemprot" and split in ("dev", "test"):
        runs, expected = _chemprot_json(label, split, sentences, files)
    elif dataset == "chemprot" and split == "train":
        abstracts = _chemprot_train_abstracts(label, files)
        runs, expected = _match_text(label, split, sentences, abstracts)
    elif (dataset, split) in _PUBTATOR:
        path = _PUBTATOR[(dataset, split)]
        abstracts = _pubtator_abstracts(label, path, files.read(path))
        runs, expected = _match_text(label, split, sentences, abstracts)
    else:
        raise NerbenchError(
            f"{label}: no document sidecar is built for this split (only jnlpba, bc5cdr, biored, "
            f"chemprot and ncbi_disease, splits train, dev and test)"
        )
    ids = _sidecar_ids(label, split, runs, len(sentences), expected)
    return "".join(f"{doc}\n" for doc in ids).encode("utf-8")


class _Files:
    """The split's document sources, looked up by path."""

    def __init__(self, label: str, sources: Sequence[Source], read: Reader) -> None:
        self.label = label
        self.sources = sources
        self.reader = read

    def read(self, path: str) -> bytes:
        matching = [source for source in self.sources if source.path == path]
        if not matching:
            given = ", ".join(repr(source.path) for source in self.sources) or "none"
            raise NerbenchError(f"{self.label}: the document sources lack {path!r} (given: {given})")
        if len(matching) > 1:
            raise NerbenchError(f"{self.label}: the document sources name {path!r} {len(matching)} times")
        data = self.reader(matching[0])
        if not isinstance(data, bytes):
            raise NerbenchError(f"{self.label}: reading {path!r} gave {type(data).__name__}, not bytes")
        return data


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _decode(label: str, what: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise NerbenchError(f"{label}: {what} is not valid UTF-8 (offset {err.start})") from None


def _squeeze(text: str) -> str:
    """`text` without any whitespace."""
    return "".join(text.split())


# ---------------------------------------------------------------------------------------------------- jnlpba


def _jnlpba(label: str, split: str, sentences: Sequence, files: _Files) -> tuple[list[_Run], int]:
    path, member = (_GENIA_TEST, "Genia4EReval2.iob2") if split == "test" else (_GENIA_TRAINING, "Genia4ERtask2.iob2")
    what = f"{_name(path)} member {member}"
    text = _decode(label, what, _tar_member(label, path, member, files.read(path)))
    abstracts = _genia_abstracts(label, what, text)
    if split != "test":
        if len(abstracts) != _GENIA_TRAINING_ABSTRACTS:
            raise NerbenchError(
                f"{label}: {what} has {len(abstracts)} ###MEDLINE: abstracts, expected {_GENIA_TRAINING_ABSTRACTS}"
            )
        if split == "train":
            abstracts = abstracts[:_GENIA_TRAIN_ABSTRACTS]
        else:
            abstracts = abstracts[_GENIA_TRAIN_ABSTRACTS:]
    pairs = [(s.tokens, s.tags) for s in sentences]
    return _match_one_for_one(label, split, what, "MEDLINE", pairs, abstracts), len(abstracts)


def _tar_member(label: str, path: str, member: str, data: bytes) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            names = [info for info in archive.getmembers() if info.isfile() and _name(info.name) == member]
            if len(names) != 1:
                raise NerbenchError(f"{label}: {_name(path)} has {len(names)} files named {member}, expected one")
            handle = archive.extractfile(names[0])
            if handle is None:
                raise NerbenchError(f"{label}: {_name(path)}: cannot read its member {member}")
            return handle.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise NerbenchError(f"{label}: {_name(path)} is not a readable .tar.gz ({err})") from None


_Sentence = tuple[tuple[str, ...], tuple[str, ...]]


def _genia_abstracts(label: str, what: str, text: str) -> list[tuple[str, str, list[_Sentence]]]:
    """[(MEDLINE UI, where, [(tokens, tags), ...]), ...] in file order."""
    abstracts: list[tuple[str, str, list[_Sentence]]] = []
    tokens: list[str] = []
    tags: list[str] = []

    def end_sentence() -> None:
        if tokens:
            abstracts[-1][2].append((tuple(tokens), tuple(tags)))
            tokens.clear()
            tags.clear()

    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if line.startswith("###MEDLINE:"):
            end_sentence()
            ui = line[len("###MEDLINE:") :].strip()
            if not ui:
                raise NerbenchError(f"{label}: {what} line {number}: ###MEDLINE: marker without an id")
            abstracts.append((ui, f"abstract {len(abstracts) + 1} of {what}, line {number}", []))
        elif not line.strip():
            end_sentence()
        else:
            if not abstracts:
                raise NerbenchError(f"{label}: {what} line {number}: a token before the first ###MEDLINE: marker")
            fields = line.split("\t")
            if len(fields) != 2:
                raise NerbenchError(f"{label}: {what} line {number}: expected token<TAB>tag, got {line!r}")
            tokens.append(fields[0])
            tags.append(fields[1])
    end_sentence()
    for ui, where, abstract_sentences in abstracts:
        if not abstract_sentences:
            raise NerbenchError(f"{label}: {where}: MEDLINE {ui} has no sentences")
    return abstracts


def _match_one_for_one(
    label: str,
    split: str,
    what: str,
    kind: str,
    ours: Sequence[_Sentence],
    documents: Sequence[tuple[str, str, Sequence[_Sentence]]],
) -> list[_Run]:
    """Runs for documents whose sentences, concatenated in order, must equal `ours` one for one.

    A document's sentence is compared with tags where it has them (non-empty), else by tokens only.
    """
    runs: list[_Run] = []
    position = 0
    for doc_id, where, doc_sentences in documents:
        for offset, (tokens, tags) in enumerate(doc_sentences):
            number = position + offset
            if number >= len(ours):
                raise NerbenchError(
                    f"{label}: {kind} {doc_id} ({where}): its sentence {offset + 1} is beyond the end of "
                    f"{split}.conll ({len(ours)} sentences; the source has more)"
                )
            our_tokens, our_tags = ours[number]
            if tokens != our_tokens:
                raise NerbenchError(
                    f"{label}: {kind} {doc_id} ({where}): its sentence {offset + 1} has other tokens than "
                    f"sentence {number + 1} of {split}.conll{_first_difference(tokens, our_tokens)}"
                )
            if tags and tags != our_tags:
                raise NerbenchError(
                    f"{label}: {kind} {doc_id} ({where}): its sentence {offset + 1} has other tags than "
                    f"sentence {number + 1} of {split}.conll{_first_difference(tags, our_tags)}"
                )
        runs.append(_Run(doc_id, position, position + len(doc_sentences), where))
        position += len(doc_sentences)
    if position != len(ours):
        raise NerbenchError(
            f"{label}: {what} has {position} sentences, {split}.conll {len(ours)}: no source document holds "
            f"{_sentences(position, len(ours))}"
        )
    return runs


def _first_difference(source: Sequence[str], ours: Sequence[str]) -> str:
    for index, (a, b) in enumerate(zip(source, ours)):
        if a != b:
            return f" (item {index + 1}: source {a!r}, .conll {b!r})"
    return f" (source {len(source)} items, .conll {len(ours)})"


# ---------------------------------------------------------------------------------------------------- chemprot


def _chemprot_json(label: str, split: str, sentences: Sequence, files: _Files) -> tuple[list[_Run], int]:
    path = f"{_CHEMPROT_JSON}{split}.json"
    documents = _span_json(label, path, files.read(path))
    if split == "test":
        pmids = [pmid for pmid, _ in _tsv_abstracts(label, _CHEMPROT_TEST_TSV, files.read(_CHEMPROT_TEST_TSV))]
        keys = [doc_id for doc_id, _, _ in documents]
        if keys != pmids:
            index = next((i for i, (a, b) in enumerate(zip(keys, pmids)) if a != b), min(len(keys), len(pmids)))
            raise NerbenchError(
                f"{label}: the doc_keys of {_name(path)} ({len(keys)}) are not the PMIDs of "
                f"{_name(_CHEMPROT_TEST_TSV)} ({len(pmids)}) in the same order: they differ at document {index + 1}"
            )
    pairs = [(s.tokens, s.tags) for s in sentences]
    return _match_one_for_one(label, split, _name(path), "doc_key", pairs, documents), len(documents)


def _span_json(label: str, path: str, data: bytes) -> list[tuple[str, str, list[_Sentence]]]:
    """[(doc_key, where, [(tokens, ()), ...]), ...] of a JSON-lines span file."""
    documents: list[tuple[str, str, list[_Sentence]]] = []
    for number, line in enumerate(_decode(label, _name(path), data).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{_name(path)} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise NerbenchError(f"{label}: {where}: not JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("doc_key"), (str, int)):
            raise NerbenchError(f"{label}: {where}: no doc_key")
        sentences = record.get("sentences")
        if (
            not isinstance(sentences, list)
            or not sentences
            or not all(isinstance(s, list) and s and all(isinstance(t, str) for t in s) for s in sentences)
        ):
            raise NerbenchError(f"{label}: {where}: 'sentences' is not a non-empty list of lists of tokens")
        documents.append((str(record["doc_key"]), where, [(tuple(s), ()) for s in sentences]))
    if not documents:
        raise NerbenchError(f"{label}: {_name(path)} has no documents")
    return documents


def _tsv_abstracts(label: str, path: str, data: bytes) -> list[tuple[str, _Abstract]]:
    """[(PMID, abstract), ...] of a ChemProt abstracts TSV (PMID, title, abstract), read with the csv module,
    tab-delimited with its default quoting, as when chemprot/train.conll was rebuilt."""
    name = _name(path)
    reader = csv.reader(io.StringIO(_decode(label, name, data), newline=""), delimiter="\t")
    abstracts: list[tuple[str, _Abstract]] = []
    try:
        for row in reader:
            if not row:
                continue
            where = f"{name} record {len(abstracts) + 1} (line {reader.line_num})"
            if len(row) != 3:
                raise NerbenchError(f"{label}: {where}: {len(row)} fields, expected PMID, title and abstract")
            pmid, title, abstract = row
            abstracts.append((pmid, _Abstract(pmid, where, _squeeze(title + " " + abstract))))
    except csv.Error as err:
        raise NerbenchError(f"{label}: {name} line {reader.line_num}: {err}") from None
    if not abstracts:
        raise NerbenchError(f"{label}: {name} has no abstracts")
    return abstracts


def _chemprot_train_abstracts(label: str, files: _Files) -> list[_Abstract]:
    """The original training + development abstracts minus those of dev.json (dev.conll's documents)."""
    dev_path = f"{_CHEMPROT_JSON}dev.json"
    dev_keys = [doc_id for doc_id, _, _ in _span_json(label, dev_path, files.read(dev_path))]
    pool = _tsv_abstracts(label, _CHEMPROT_TRAIN_TSV, files.read(_CHEMPROT_TRAIN_TSV))
    pool += _tsv_abstracts(label, _CHEMPROT_DEV_TSV, files.read(_CHEMPROT_DEV_TSV))
    in_pool: dict[str, int] = {}
    for pmid, _ in pool:
        in_pool[pmid] = in_pool.get(pmid, 0) + 1
    for key in dev_keys:
        if in_pool.get(key) != 1:
            raise NerbenchError(
                f"{label}: dev.json doc_key {key} is {in_pool.get(key, 0)} times in {_name(_CHEMPROT_TRAIN_TSV)} + "
                f"{_name(_CHEMPROT_DEV_TSV)}, expected once"
            )
    if len(set(dev_keys)) != len(dev_keys):
        raise NerbenchError(f"{label}: {_name(dev_path)} repeats a doc_key")
    excluded = set(dev_keys)
    return [abstract for pmid, abstract in pool if pmid not in excluded]


# ---------------------------------------------------------------------------------------------------- PubTator


def _pubtator_abstracts(label: str, path: str, data: bytes) -> list[_Abstract]:
    """The documents of a PubTator file (`PMID|t|title`, `PMID|a|abstract`, annotation lines) in file order."""
    name = _name(path)
    documents: list[list] = []  # [pmid, line, title, abstract or None]
    for number, line in enumerate(_decode(label, name, data).split("\n"), start=1):
        head, bar, rest = line.partition("|")
        if not bar or not head.isdigit() or rest[:2] not in ("t|", "a|"):
            continue
        kind, text = rest[0], rest[2:].removesuffix("\r")
        if kind == "t":
            documents.append([head, number, text, None])
        elif not documents or documents[-1][0] != head or documents[-1][3] is not None:
            raise NerbenchError(f"{label}: {name} line {number}: abstract of PMID {head} without its title line")
        else:
            documents[-1][3] = text
    if not documents:
        raise NerbenchError(f"{label}: {name} has no PubTator documents (PMID|t|title lines)")
    return [
        _Abstract(pmid, f"{name} line {number}", _squeeze(title + " " + (abstract or "")))
        for pmid, number, title, abstract in documents
    ]


# ---------------------------------------------------------------------------------------------------- text


def _match_text(label: str, split: str, sentences: Sequence, abstracts: Sequence[_Abstract]) -> tuple[list[_Run], int]:
    """Runs of whole sentences whose whitespace-free text equals each abstract's, in any order.

    Every abstract must match exactly one run (a source's second copy with the same id and text may
    match none, or the run of its own second copy in the .conll); the runs must tile the sentences.
    Returns the runs in .conll order and the number of documents the .conll must hold.
    """
    conll = f"{split}.conll"
    starts: list[int] = []  # character offset of each sentence in `stream`
    parts: list[str] = []
    offset = 0
    for number, sentence in enumerate(sentences):
        part = _squeeze("".join(sentence.tokens))
        if not part:
            raise NerbenchError(f"{label}: sentence {number + 1} of {conll} has no text")
        starts.append(offset)
        parts.append(part)
        offset += len(part)
    stream = "".join(parts)
    sentence_at = {start: index for index, start in enumerate(starts)}
    sentence_at[len(stream)] = len(sentences)
    for abstract in abstracts:
        if not abstract.text:
            raise NerbenchError(f"{label}: abstract PMID {abstract.id} ({abstract.where}) has no text")
    key = min(_KEY_CHARS, min(len(abstract.text) for abstract in abstracts))
    begins: dict[str, list[int]] = {}  # the first `key` characters from a sentence start -> sentence indices
    for index, start in enumerate(starts):
        begins.setdefault(stream[start : start + key], []).append(index)

    # Where each distinct (id, text) is: all runs of whole sentences equal to it.
    copies: dict[tuple[str, str], list[_Abstract]] = {}
    for abstract in abstracts:
        copies.setdefault((abstract.id, abstract.text), []).append(abstract)
    runs: list[_Run] = []
    expected = 0
    for (pmid, text), same in copies.items():
        found = []
        for index in begins.get(text[:key], []):
            end = starts[index] + len(text)
            if stream.startswith(text, starts[index]) and end in sentence_at:
                found.append((index, sentence_at[end]))
        if not found:
            reason = _no_run(conll, stream, starts, begins, key, text)
            raise NerbenchError(f"{label}: abstract PMID {pmid} ({same[0].where}): {reason}")
        if len(found) > len(same):
            at = ", ".join(f"{a + 1}-{b}" for a, b in found)
            raise NerbenchError(
                f"{label}: abstract PMID {pmid} ({same[0].where}): its text is the text of {len(found)} runs of "
                f"sentences of {conll} (sentences {at}) but the source lists it {len(same)} time(s)"
            )
        for (start, end), abstract in zip(found, same):
            runs.append(_Run(pmid, start, end, abstract.where))
        expected += len(found)

    runs.sort(key=lambda run: (run.start, run.end))
    position = 0
    for number, run in enumerate(runs):
        if run.start > position:
            raise NerbenchError(
                f"{label}: no source abstract holds {_sentences(position, run.start)} of {conll} "
                f"(the next one, PMID {run.id} of {run.where}, starts at sentence {run.start + 1})"
            )
        if run.start < position:
            previous = runs[number - 1]
            raise NerbenchError(
                f"{label}: abstract PMID {run.id} ({run.where}) is sentences {run.start + 1}-{run.end} of {conll}, "
                f"which overlap abstract PMID {previous.id} ({previous.where}), sentences "
                f"{previous.start + 1}-{previous.end}"
            )
        position = run.end
    if position != len(sentences):
        raise NerbenchError(f"{label}: no source abstract holds {_sentences(position, len(sentences))} of {conll}")
    return runs, expected


def _sentences(start: int, end: int) -> str:
    """Sentences [start, end) in words, 1-based."""
    return f"sentence {start + 1}" if end == start + 1 else f"sentences {start + 1} to {end}"


def _no_run(
    conll: str,
    stream: str,
    starts: Sequence[int],
    begins: dict[str, list[int]],
    key: int,
    text: str,
) -> str:
    """Why an abstract's text matches no run of whole sentences, naming the sentence where it goes wrong."""
    candidates = begins.get(text[:key], [])
    if not candidates:
        return f"its text matches no run of whole sentences of {conll} (no sentence starts with {text[:key]!r})"
    best, best_length = candidates[0], -1
    for index in candidates:
        length = len(os.path.commonprefix([text, stream[starts[index] : starts[index] + len(text)]]))
        if length > best_length:
            best, best_length = index, length
    start = starts[best]
    if best_length == len(text):
        inside = _sentence_of(starts, start + len(text))
        return (
            f"its text matches no run of whole sentences of {conll}: it equals the text from sentence {best + 1} "
            f"but ends inside sentence {inside + 1}"
        )
    at = start + best_length
    inside = _sentence_of(starts, at)
    return (
        f"its text matches no run of whole sentences of {conll} at sentence {best + 1}: it differs in sentence "
        f"{inside + 1} (source {text[best_length : best_length + 30]!r}, .conll {stream[at : at + 30]!r}; "
        f"whitespace removed)"
    )


def _sentence_of(starts: Sequence[int], offset: int) -> int:
    """The index of the sentence holding character `offset` of the stream."""
    low, high = 0, len(starts) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if starts[middle] <= offset:
            low = middle
        else:
            high = middle - 1
    return low


# ---------------------------------------------------------------------------------------------------- checks


def _sidecar_ids(label: str, split: str, runs: Sequence[_Run], sentences: int, expected: int) -> list[str]:
    """One id per sentence; a repeated id gets `_2`, `_3`, ... Checks that the runs tile the sentences,
    that every document is one contiguous run and that there are `expected` documents."""
    ids: list[str | None] = [None] * sentences
    seen: dict[str, int] = {}
    position = 0
    for run in runs:
        if run.start != position or run.end <= run.start:
            raise NerbenchError(f"{label}: the documents do not tile {split}.conll at sentence {position + 1}")
        seen[run.id] = seen.get(run.id, 0) + 1
        doc = run.id if seen[run.id] == 1 else f"{run.id}_{seen[run.id]}"
        ids[run.start : run.end] = [doc] * (run.end - run.start)
        position = run.end
    if position != sentences or any(doc is None for doc in ids):
        raise NerbenchError(f"{label}: not every sentence of {split}.conll has a document")
    written = [doc for doc in ids if doc is not None]
    order = [doc for index, doc in enumerate(written) if index == 0 or written[index - 1] != doc]
    if len(order) != len(set(order)):
        raise NerbenchError(f"{label}: a document of {split}.conll is split into several runs")
    if len(order) != expected:
        raise NerbenchError(f"{label}: {len(order)} documents in {split}.conll, the source has {expected}")
    return written
