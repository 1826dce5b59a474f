from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nerbench.conll import (
    ConllError,
    Sentence,
    format_conll,
    is_valid_tag,
    parse_conll,
    read_conll,
    write_conll,
)
from nerbench.errors import NerbenchError


def _split_files(data_dir: Path) -> list[Path]:
    files = sorted(data_dir.glob("*/*.conll"))
    assert files, f"no .conll files under {data_dir}"
    return files


def test_read_write_is_byte_identical_for_every_shared_file(data_dir, tmp_path):
    for path in _split_files(data_dir):
        sentences = read_conll(path)
        out = tmp_path / f"{path.parent.name}-{path.name}"
        write_conll(out, sentences)
        assert out.read_bytes() == path.read_bytes(), path


def test_two_columns_and_line_numbers():
    text = "Aspirin\tB-Chemical\ncauses\tO\n\nheart\tB-Disease\nattack\tI-Disease\n"
    sentences = parse_conll(text, "x.conll")
    assert sentences == [
        Sentence(("Aspirin", "causes"), ("B-Chemical", "O"), 1),
        Sentence(("heart", "attack"), ("B-Disease", "I-Disease"), 4),
    ]


def test_multi_column_files_take_first_and_last_column():
    spaces = "IL-2 NN O B-protein\ngene NN O I-protein\n\nbinds NN O O\n"
    tabs = "IL-2\tNN\tO\tB-protein\ngene\tNN\tO\tI-protein\n\nbinds\tNN\tO\tO\n"
    expected = [
        Sentence(("IL-2", "gene"), ("B-protein", "I-protein"), 1),
        Sentence(("binds",), ("O",), 4),
    ]
    assert parse_conll(spaces) == expected
    assert parse_conll(tabs) == expected


def test_tab_lines_keep_spaces_inside_the_token():
    assert parse_conll("New York\tB-LOC\n")[0].tokens == ("New York",)


def test_crlf_bom_docstart_and_many_blank_lines():
    raw = (
        "\ufeff-DOCSTART-\tO\r\n\r\n\r\na\tO\r\nb\tB-X\r\n   \r\n\t\r\n\r\n-DOCSTART-\tO\r\nc\tI-X\r\n\r\n\r\n\r\n"
    ).encode("utf-8")
    sentences = parse_conll(raw, "f")
    assert sentences == [
        Sentence(("a", "b"), ("O", "B-X"), 4),
        Sentence(("c",), ("I-X",), 10),
    ]


def test_docstart_ends_a_sentence_without_a_blank_line():
    sentences = parse_conll("a\tO\n-DOCSTART- -X- O O\nb\tO\n")
    assert [s.tokens for s in sentences] == [("a",), ("b",)]
    assert [s.line for s in sentences] == [1, 3]


def test_missing_final_newline_and_empty_input():
    assert parse_conll("a\tO") == [Sentence(("a",), ("O",), 1)]
    assert parse_conll("") == []
    assert parse_conll("\n\n-DOCSTART-\tO\n\n") == []


@pytest.mark.parametrize(
    "line, problem",
    [
        ("lonely", "missing tag"),
        ("lonely\t", "missing tag"),
        ("\tO", "empty token"),
        ("tok\tX-Foo", "invalid tag 'X-Foo'"),
        ("tok\tB-", "invalid tag 'B-'"),
        ("tok\tI", "invalid tag 'I'"),
        ("tok\to", "invalid tag 'o'"),
    ],
)
def test_errors_name_file_and_line(line, problem):
    text = f"a\tO\nb\tB-X\n\n{line}\n"
    with pytest.raises(ConllError) as info:
        parse_conll(text, "data/bad.conll")
    message = str(info.value)
    assert message.startswith("data/bad.conll:4: ")
    assert problem in message


def test_empty_token_is_reported_even_when_its_tag_was_seen_before():
    with pytest.raises(ConllError, match=r"^f:2: empty token"):
        parse_conll("a\tO\n\tO\n", "f")


def test_invalid_utf8_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "latin1.conll"
    path.write_bytes("a\tO\n\nna\u00efve\tO\n".encode("latin-1"))
    with pytest.raises(ConllError) as info:
        read_conll(path)
    assert str(info.value).startswith(f"{path}:3: not valid UTF-8")


def test_conll_error_is_a_nerbench_error_and_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.conll"
    with pytest.raises(NerbenchError, match="nope.conll: file not found"):
        read_conll(missing)


def test_valid_tags():
    for tag in ["O", "B-X", "I-cell_line", "B-Gene-Or-Product"]:
        assert is_valid_tag(tag)
    for tag in ["", "o", "B", "I-", "X-Foo", "B-a b", "B-X ", "Bx-X"]:
        assert not is_valid_tag(tag)


def test_write_layout_and_round_trip(tmp_path):
    sentences = [
        Sentence(("naïve", "T", "cells"), ("B-cell_type", "I-cell_type", "I-cell_type"), 1),
        Sentence(("ok",), ("O",), 5),
    ]
    path = tmp_path / "out.conll"
    write_conll(path, sentences)
    assert path.read_bytes() == "naïve\tB-cell_type\nT\tI-cell_type\ncells\tI-cell_type\n\nok\tO\n".encode()
    assert read_conll(path) == sentences
    write_conll(path, [])
    assert path.read_bytes() == b""


@pytest.mark.parametrize(
    "sentence, problem",
    [
        (Sentence(("a",), ("O", "O"), 0), "1 tokens but 2 tags"),
        (Sentence((), (), 0), "is empty"),
        (Sentence(("a\tb",), ("O",), 0), "cannot be written"),
        (Sentence(("",), ("O",), 0), "cannot be written"),
        (Sentence(("-DOCSTART-",), ("O",), 0), "cannot be written"),
        (Sentence(("a",), ("B-",), 0), "invalid tag"),
    ],
)
def test_write_refuses_what_would_not_read_back(sentence, problem):
    with pytest.raises(ConllError, match=problem):
        format_conll([sentence])


def test_a_bom_is_dropped_only_at_the_start_of_a_file():
    assert parse_conll("\ufeffa\tO\n") == [Sentence(("a",), ("O",), 1)]
    # Anywhere else U+FEFF is an ordinary (zero-width) character of a token, kept as written.
    text = "a\tO\n\n\ufeff\tO\nb\ufeff\tO\n"
    assert [s.tokens for s in parse_conll(text)] == [("a",), ("\ufeff", "b\ufeff")]
    assert format_conll(parse_conll(text)) == text


@pytest.mark.parametrize("token", ["\ufeff", "\ufeffa", "\ufeff\ufeff"])
def test_write_refuses_a_first_token_the_reader_would_take_for_a_bom(token, tmp_path):
    # Written as it is, the reader would drop the leading U+FEFF: "\ufeffa" would read back as "a",
    # a lone "\ufeff" as an empty token.
    with pytest.raises(
        ConllError, match=r"sentence 1: token .* cannot be written first in a file: it starts with U\+FEFF"
    ):
        format_conll([Sentence((token, "x"), ("O", "O"), 0)])
    path = tmp_path / "bom.conll"
    with pytest.raises(ConllError, match=str(path)):
        write_conll(path, [Sentence((token,), ("O",), 0)])
    assert not path.exists()  # refused before the file is opened
    # Not first in the file, the same token reads back as written.
    sentences = [Sentence(("x", token), ("O", "O"), 1), Sentence((token,), ("B-X",), 4)]
    assert parse_conll(format_conll(sentences)) == sentences


def _writable(token: str, first_in_file: bool) -> bool:
    """What the reader can read back as written (format_conll's rule, restated independently)."""
    if not token.strip() or "\t" in token or "\n" in token or "\r" in token or token == "-DOCSTART-":
        return False
    return not (first_in_file and token.startswith("\ufeff"))


# Any character but surrogates (which UTF-8 cannot encode); one token in eight is hostile: made of the
# characters the format gives a meaning to (tab, line breaks, whitespace, U+FEFF), '-DOCSTART-', or
# starting with U+FEFF.
_plain_tokens = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
_hostile_tokens = st.one_of(
    st.text(alphabet=st.sampled_from("a-\ufeff \t\r\n\x0b\x1c\x85\u2028\u3000"), max_size=4),
    st.just("-DOCSTART-"),
    _plain_tokens.map(lambda t: "\ufeff" + t),
)
_tokens = st.integers(0, 7).flatmap(lambda k: _hostile_tokens if k == 0 else _plain_tokens)
_tags = st.sampled_from(["O", "B-X", "I-X", "B-cell_line", "I-cell_line"])
_sentences = st.lists(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(st.lists(_tokens, min_size=n, max_size=n), st.lists(_tags, min_size=n, max_size=n))
    ),
    max_size=5,
)


@given(_sentences)
@settings(max_examples=max(150, settings.default.max_examples))
def test_format_then_parse_round_trips(pairs):
    """What the writer accepts reads back as written; what it refuses, it refuses by name."""
    sentences = [Sentence(tuple(tokens), tuple(tags), 0) for tokens, tags in pairs]
    refused = [
        token
        for i, s in enumerate(sentences)
        for j, token in enumerate(s.tokens)
        if not _writable(token, first_in_file=(i == 0 and j == 0))
    ]
    if refused:  # the first token that would not read back is named
        with pytest.raises(ConllError, match="cannot be written") as info:
            format_conll(sentences)
        assert f"token {refused[0]!r} cannot be written" in str(info.value)
        return
    text = format_conll(sentences)
    parsed = parse_conll(text)
    assert [(s.tokens, s.tags) for s in parsed] == [(s.tokens, s.tags) for s in sentences]
    assert format_conll(parsed) == text
