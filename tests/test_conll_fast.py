"""The one-pass reader (`conll._parse_plain`) against the line-by-line one (`conll._parse_lines`,
the definition): on any text, the same sentences with the same line numbers, or the same error."""

from hypothesis import given, settings
from hypothesis import strategies as st

from nerbench import conll

_LINES = st.sampled_from(
    [
        "A\tO",
        "b\tB-X",
        "c\tI-X",
        "d\tB-Y",
        "é\tI-Ω",
        "",
        "",
        " ",
        "\t",
        " \tO",
        "e f\tO",
        "g\tO ",
        "h O",
        "i\tj\tB-X",
        "k\tbad",
        "l\tB-",
        "m\t",
        "\tO",
        "-DOCSTART-\tO",
        "-DOCSTART- -X- O",
        "n\tO\r",
        "\u00a0\tO",
        "O",
        "B-X",
        "p\tO\tO",
    ]
)


def _outcome(read, text):
    try:
        sentences = read(text)
    except conll.ConllError as err:
        return ("error", str(err))
    return ("sentences", sentences, [s.line for s in sentences])


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES, max_size=25), st.booleans())
def test_the_fast_reader_reads_as_the_line_reader(lines, final_newline):
    text = "\n".join(lines) + ("\n" if final_newline else "")
    assert _outcome(lambda t: conll.parse_conll(t, "f"), text) == _outcome(lambda t: conll._parse_lines(t, "f"), text)


def test_a_plain_file_takes_the_fast_path():
    text = "A\tB-X\nb\tI-X\n\nc\tO\n"
    assert conll._parse_plain(text) == conll._parse_lines(text, "f") == conll.parse_conll(text)
    assert [s.line for s in conll._parse_plain(text)] == [1, 4]
    assert conll._parse_plain("A O\n") is None  # spaces for tabs: read line by line


def test_lines_of_two_tabs_and_of_none_are_not_read_as_pairs():
    # three columns then one: as many tabs as lines, yet no line is `token<TAB>tag`
    for text in ("Aspirin\tO\tO\nB-Chemical\n", "a\nb\tO\tO\n", "a\tO\tO\nb\tO\nc\n\nx\tO\n"):
        assert conll._parse_plain(text) is None
        assert _outcome(lambda t: conll.parse_conll(t, "f"), text)[0] == "error"
    assert _outcome(lambda t: conll.parse_conll(t, "f"), "Aspirin\tO\tO\nB-Chemical\n") == (
        "error",
        "f:2: missing tag (expected token<TAB>tag, got 'B-Chemical')",
    )
