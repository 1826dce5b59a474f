"""Build "jnlpba_genia_train": the JNLPBA train split from the original JNLPBA 2004 training package.

`Genia4ERtraining.tar.gz` (pinned in wolfe-pack/wolfe) holds `Genia4ERtask2.iob2`: 2,000 MEDLINE
abstracts, each opened by a `###MEDLINE:<id>` line, then `token<TAB>tag` lines with a blank line
between sentences. The split of MTL-Bioinformatics-2016 takes abstracts 1-1,800 (in file order) as
train and 1,801-2,000 as dev; train is those first 1,800 abstracts with the `###MEDLINE` lines dropped.
The archive is read in memory; nothing is extracted to disk.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from nerbench.builds import Reader, Source
from nerbench.conll import Sentence, format_conll, parse_conll
from nerbench.errors import NerbenchError, utf8_text

TRAINING_MEMBER = "Genia4ERtask2.iob2"
TRAIN_ABSTRACTS = 1800  # abstracts 1-1,800 are train, 1,801-2,000 dev
MEDLINE = "###MEDLINE:"
_MAX_MEMBER_BYTES = 64 << 20  # the member is about 4.9 MB


@dataclass(frozen=True)
class Abstract:
    medline: str  # the id after "###MEDLINE:" (a MEDLINE UI, not a PMID)
    sentences: tuple[Sentence, ...]


def build_train(sources: Sequence[Source], read: Reader) -> bytes:
    if len(sources) != 1:
        raise NerbenchError(f"build 'jnlpba_genia_train' takes exactly one source, got {len(sources)}")
    source = sources[0]
    where = f"{source.label}:{TRAINING_MEMBER}"
    abstracts = genia_abstracts(read_member(read(source), TRAINING_MEMBER, source.label), where)
    if len(abstracts) < TRAIN_ABSTRACTS:
        raise NerbenchError(
            f"{where}: {len(abstracts)} abstracts ({MEDLINE} lines), expected at least {TRAIN_ABSTRACTS}"
        )
    sentences = [s for abstract in abstracts[:TRAIN_ABSTRACTS] for s in abstract.sentences]
    return format_conll(sentences, where).encode("utf-8")


def read_member(archive: bytes, member: str, where: str) -> bytes:
    """The bytes of `member` of a (gzipped) tar archive held in memory."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise NerbenchError(f"{where}: the archive has no member {member!r}") from None
            if not info.isfile():
                raise NerbenchError(f"{where}: archive member {member!r} is not a regular file")
            if info.size > _MAX_MEMBER_BYTES:
                raise NerbenchError(f"{where}: archive member {member!r} is {info.size:,} bytes, more than expected")
            handle = tar.extractfile(info)
            if handle is None:  # not reachable for a regular file; kept for the type checker
                raise NerbenchError(f"{where}: archive member {member!r} cannot be read")
            return handle.read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise NerbenchError(f"{where}: not a readable tar.gz archive ({err})") from None


def genia_abstracts(data: bytes, where: str) -> list[Abstract]:
    """The abstracts of a JNLPBA `.iob2` file, in file order; errors name `where` and the line."""
    text = utf8_text(data, where)
    lines = text.split("\n")
    starts: list[tuple[int, str]] = []  # (1-based line of the marker, MEDLINE id)
    for number, value in enumerate(lines, start=1):
        if value.startswith(MEDLINE):
            medline = value[len(MEDLINE) :].strip()
            if not medline:
                raise NerbenchError(f"{where}:{number}: {MEDLINE} line without an id")
            starts.append((number, medline))
            lines[number - 1] = ""  # a marker ends a sentence; blanked, every line keeps its number
        elif not starts and value.strip():
            raise NerbenchError(f"{where}:{number}: text before the first {MEDLINE} line")
    if not starts:
        raise NerbenchError(f"{where}: no {MEDLINE} lines (expected the JNLPBA abstracts file)")
    sentences = parse_conll("\n".join(lines), where)
    abstracts: list[Abstract] = []
    position = 0
    for index, (line, medline) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else len(lines) + 1
        first = position
        while position < len(sentences) and sentences[position].line < end:
            position += 1
        if position == first:
            raise NerbenchError(f"{where}:{line}: abstract {medline} has no sentences")
        abstracts.append(Abstract(medline, tuple(sentences[first:position])))
    return abstracts
