"""Untrusted text made safe for the places it is written to: a terminal, a CSV cell, a Markdown cell, JSON.

Submissions are hostile input, and their strings (model ids, device names, tags, keys, file names)
end up in the terminal, the CI log, CSV downloads and the Markdown job summary. Every sink that
writes such a string passes it through one function here, chosen by the sink:

- `shown(text, limit)`: one line for a terminal or log. Every character that could move the cursor,
  recolour, hide, reorder or split text is replaced by a visible escape, and long text is cut:
  C0 controls, DEL and C1 controls (U+0080-U+009F) become `\\x1b`, `\\x9b`, with the short forms
  `\\n`, `\\r` and `\\t`; bidi marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
  U+202A-U+202E, U+2066-U+2069), the line and paragraph separators U+2028 and U+2029, and lone
  surrogates (undecodable bytes of a file name, which no UTF-8 stream can carry) become `\\u202e`
  and the like. A backslash is left as it is: the escapes are for reading, not for decoding back.
  Rich markup is not this module's concern: the CLI prints with markup off (`nerbench.cli._util`).
- `csv_cell(value)`: a cell of a CSV download. Spreadsheets run a cell that starts with `=`, `+`,
  `-`, `@`, a tab or a carriage return as a formula, so such a text cell gets a leading `'`
  (OWASP's advice for CSV injection), which spreadsheets show as text. A cell that is a number
  (a float or int, or text that reads as a plain decimal number such as `-0.5` or `1e-3`) is left
  as it is, so that numbers stay numbers. Text cells are also passed through `shown` without a
  limit, so that no control character reaches a terminal that prints the file.
- `markdown_cell(text, limit)`: a cell of a GitHub-flavoured Markdown table. `shown` first (so a
  newline cannot end the row), then every character with a meaning in a table or inline Markdown
  (`\\`, `|`, backtick, `*`, `_`, `[`, `]`, `#`, `~`, `!`) is backslash-escaped and `&`, `<` and
  `>` become entities: the cell renders as the text it holds, one cell, no link, no HTML.
- `json_text(value)`: `json.dumps` with non-ASCII text kept readable, but with the characters
  `shown` escapes (which JSON would otherwise carry raw) written as `\\uXXXX` escapes: the same
  data, valid JSON, safe to print.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Bidi controls: Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# Everything `shown` escapes: C0, DEL, C1, bidi, line/paragraph separators, surrogates.
UNSAFE_RE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
# The same less C0: JSON escapes C0 inside strings itself, and its layout (newlines) is C0.
_UNSAFE_IN_JSON_RE = re.compile(f"[\x7f-\x9f{_BIDI}\u2028\u2029\ud800-\udfff]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
DEFAULT_LIMIT = 200


def escape(char: str) -> str:
    """The visible escape of one character: `\\n`, `\\x1b`, `\\u202e`."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """`text` (str() of any value) as one safe line of at most `limit` characters (None: no cut).

    Unsafe characters become visible escapes; text longer than `limit` after escaping is cut at a
    character boundary (never inside an escape) and ends with '… (N more characters)', N counted
    in the original text.
    """
    text = str(text)
    if limit is None:
        return UNSAFE_RE.sub(lambda match: escape(match.group()), text)
    out: list[str] = []
    length = 0
    for index, char in enumerate(text):
        piece = escape(char) if UNSAFE_RE.match(char) else char
        if length + len(piece) > limit:
            rest = len(text) - index
            return "".join(out) + f"… ({rest} more character{'' if rest == 1 else 's'})"
        out.append(piece)
        length += len(piece)
    return "".join(out)


# A plain decimal number, as a spreadsheet reads one: what `csv_cell` leaves alone.
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One CSV cell, safe to open in a spreadsheet; non-text values are returned as they are."""
    if not isinstance(value, str):
        return value
    if _NUMBER_RE.fullmatch(value):
        return value
    # A leading tab or carriage return is escaped by `shown` already; the check keeps them anyway.
    if value.startswith(_FORMULA_START):
        return "'" + shown(value, limit=None)
    return shown(value, limit=None)


_MARKDOWN_RE = re.compile(r"[\\|`*_\[\]#~!&<>]")
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_cell(text: object, limit: int | None = DEFAULT_LIMIT) -> str:
    """`text` as the content of one Markdown table cell that renders as exactly this text."""
    return _MARKDOWN_RE.sub(lambda m: _ENTITIES.get(m.group(), "\\" + m.group()), shown(text, limit))


def json_text(value: Any, **options: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, **options)` with every character `shown` escapes as `\\uXXXX`."""
    # The unsafe characters JSON does not escape can only sit inside strings: escaped there.
    text = json.dumps(value, ensure_ascii=False, **options)
    return _UNSAFE_IN_JSON_RE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
