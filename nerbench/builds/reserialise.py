"""Build "reserialise": the source file already holds the split's sentences, token and tag in its
first and last columns; only the layout differs (`-DOCSTART-` lines, runs of blank lines, a final
blank line), so reading it and writing it back gives the registered bytes."""

from __future__ import annotations

from collections.abc import Sequence

from nerbench.builds import Reader, Source
from nerbench.conll import format_conll, parse_conll
from nerbench.errors import NerbenchError


def build(sources: Sequence[Source], read: Reader) -> bytes:
    if len(sources) != 1:
        raise NerbenchError(f"build 'reserialise' takes exactly one source, got {len(sources)}")
    source = sources[0]
    sentences = parse_conll(read(source), source.label)
    if not sentences:
        raise NerbenchError(f"{source.label}: holds no sentences (expected token<TAB>tag lines)")
    return format_conll(sentences, source.label).encode("utf-8")
