"""Read and write CoNLL-style BIO files: one `token<TAB>tag` line per token, a blank line between sentences.

Reading also accepts multi-column files (the tag is the last column, the token the first), CRLF
line endings, a UTF-8 byte order mark at the start of the file, `-DOCSTART-` lines and runs of
blank lines. Every problem is reported as `file:line: what is wrong`.

A CoNLL file may have a document sidecar beside it, `<stem>.docs`: the document id of each sentence,
one a line (read here, with the file, so that scoring files needs no dataset registry).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nerbench.errors import NerbenchError, utf8_text

DOCSTART = "-DOCSTART-"
_BOM = "\ufeff"
_VALID_TAG = re.compile(r"O|[BI]-\S+")


@dataclass(frozen=True)
class Sentence:
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    line: int  # 1-based line of the first token in the file it was read from (0 if built in memory)


class ConllError(NerbenchError):
    """A CoNLL file (or text) that cannot be read or written; the message names file:line."""


def is_valid_tag(tag: str) -> bool:
    """`O`, or `B-X` / `I-X` with a non-empty type X without whitespace."""
    return _VALID_TAG.fullmatch(tag) is not None


def _read(path: Path, error: type[NerbenchError] = NerbenchError) -> bytes:
    """The file's bytes; a missing or unreadable file is `error`, naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None


def read_conll(path: str | os.PathLike) -> list[Sentence]:
    path = Path(path)
    return parse_conll(_read(path, ConllError), str(path))


def parse_conll(text: str | bytes, source: str = "<text>") -> list[Sentence]:
    """Parse CoNLL text; `source` names the file in error messages."""
    if isinstance(text, (bytes, bytearray)):
        text = _decode(bytes(text), source)
    if text.startswith(_BOM):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # A read makes a few objects per token and frees none: Python's cyclic garbage collector would
    # run over the growing heap again and again (about a third of the time), to find nothing.
    collecting = gc.isenabled()
    gc.disable()
    try:
        sentences = _parse_plain(text)
        return sentences if sentences is not None else _parse_lines(text, source)
    finally:
        if collecting:
            gc.enable()


_TWO_TABS = re.compile(r"\t[^\t\n]*\t")


def _parse_plain(text: str) -> list[Sentence] | None:
    """The common file, read a sentence at a time with string methods: every token line is exactly
    `token<TAB>tag` with a valid tag, one empty line between sentences, no -DOCSTART-. None for
    anything else (other columns, spaces for tabs, runs of blank lines, whitespace-only lines, a
    problem to report), which `_parse_lines` then reads line by line: it stays the one definition
    of the format and of its error messages."""
    if DOCSTART in text or _TWO_TABS.search(text):
        return None  # a line of several tabs: with a line of none, the count per sentence below adds up
    body = text.lstrip("\n")
    line = len(text) - len(body) + 1  # of the sentence's first line
    sentences: list[Sentence] = []
    tags_seen: set[str] = set()
    for block in body.rstrip("\n").split("\n\n"):
        lines = block.count("\n") + 1
        fields = block.replace("\n", "\t").split("\t")
        if len(fields) != 2 * lines or not block or block[0] == "\n":
            return None  # a line without a tab or with several; an empty block: more blank lines
        tokens, tags = tuple(fields[0::2]), tuple(fields[1::2])
        if not all(map(str.strip, tokens)):
            return None
        tags_seen.update(tags)
        sentences.append(Sentence(tokens, tags, line))
        line += lines + 1
    if not all(map(is_valid_tag, tags_seen)):
        return None
    return sentences


def _parse_lines(text: str, source: str) -> list[Sentence]:
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    valid_tags: set[str] = set()  # tags already checked: most files use a handful of distinct tags

    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            if tokens:
                sentences.append(Sentence(tuple(tokens), tuple(tags), first_line))
                tokens, tags = [], []
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        token = fields[0]
        if token == DOCSTART:
            # A document boundary also ends a sentence; it never yields an empty one.
            if tokens:
                sentences.append(Sentence(tuple(tokens), tuple(tags), first_line))
                tokens, tags = [], []
            continue
        tag = fields[-1].strip() if len(fields) > 1 else ""
        if tag not in valid_tags:
            if not token.strip():
                raise ConllError(f"{source}:{number}: empty token")
            if not tag:
                raise ConllError(f"{source}:{number}: missing tag (expected token<TAB>tag, got {line!r})")
            if not is_valid_tag(tag):
                raise ConllError(f"{source}:{number}: invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")
            valid_tags.add(tag)
        elif not token.strip():
            raise ConllError(f"{source}:{number}: empty token")
        if not tokens:
            first_line = number
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append(Sentence(tuple(tokens), tuple(tags), first_line))
    return sentences


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConllError(
            f"{source}:{line}: not valid UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})"
        ) from None


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
    if not path.exists():
        return None
    return parse_documents(_read(path), path, n_sentences, Path(conll_path))


def load_documents(path: Path, n_sentences: int, conll_path: Path | None = None) -> tuple[str, ...]:
    """The document ids in an explicitly named sidecar (`--docs FILE`), which must exist."""
    path = Path(path)
    return parse_documents(_read(path), path, n_sentences, conll_path)


def parse_documents(data: bytes, path: Path, n_sentences: int, conll_path: Path | None = None) -> tuple[str, ...]:
    """One document id a line (UTF-8, LF, no header), exactly one line per sentence."""
    text = utf8_text(data, str(path))
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


def format_conll(sentences: Iterable[Sentence], source: str = "<output>") -> str:
    """The exact text write_conll writes: `token<TAB>tag` lines, one blank line between
    sentences, a final newline after the last token line, nothing else.

    Refuses anything that would not read back as the same sentences: an empty sentence, an empty or
    whitespace-only token, a token holding a tab or line break, a `-DOCSTART-` token, an invalid tag,
    and a first token starting with U+FEFF (the reader drops one byte order mark at the start of a
    file; a U+FEFF anywhere else is kept as written).
    """
    blocks: list[str] = []
    for index, sentence in enumerate(sentences, start=1):
        if len(sentence.tokens) != len(sentence.tags):
            raise ConllError(
                f"{source}: sentence {index} has {len(sentence.tokens)} tokens but {len(sentence.tags)} tags"
            )
        if not sentence.tokens:
            raise ConllError(f"{source}: sentence {index} is empty")
        for position, (token, tag) in enumerate(zip(sentence.tokens, sentence.tags)):
            if not token.strip() or any(c in token for c in "\t\n\r") or token == DOCSTART:
                raise ConllError(f"{source}: sentence {index}: token {token!r} cannot be written")
            if not blocks and position == 0 and token.startswith(_BOM):
                # The reader drops a U+FEFF at the very start of a file as a byte order mark, so this
                # token would read back without it (or, alone, as an empty token).
                raise ConllError(
                    f"{source}: sentence {index}: token {token!r} cannot be written first in a file: it starts "
                    "with U+FEFF, which a reader takes for a byte order mark"
                )
            if not is_valid_tag(tag):
                raise ConllError(f"{source}: sentence {index}: invalid tag {tag!r}")
        blocks.append("\n".join(f"{t}\t{g}" for t, g in zip(sentence.tokens, sentence.tags)))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def write_conll(path: str | os.PathLike, sentences: Iterable[Sentence]) -> None:
    path = Path(path)
    text = format_conll(sentences, str(path))
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
