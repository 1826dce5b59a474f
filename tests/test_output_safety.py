"""Untrusted text in every output: the terminal, CSV downloads, the Markdown job summary, JSON.

`nerbench.safe_text` is tested on its own (examples and properties), then through the commands that
print submissions: `validate` (problem lines, table, --summary), `ingest`, and the site's CSV.
"""

import csv
import io
import json
import re
import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import nerbench.cli as cli
from nerbench.errors import NerbenchError
from nerbench.safe_text import UNSAFE_RE, csv_cell, json_text, markdown_cell, shown

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
# The smallest committed submission (one dataset, ncbi_disease): valid, and quick to re-score.
SUBMISSION = REPO / "submissions" / "smollm2-135m-generative-quick-cpu"

# Strings a submission may carry: rich markup that raises or vanishes, terminal controls (CSI,
# OSC 8 links, C1), bidi overrides and isolates, line breaks, emoji codes, spreadsheet formulas,
# Markdown and HTML that would forge a table row, a cell, a link or a heading.
HOSTILE = [
    "[/x]",
    "[bold]x[/bold]",
    "[link=http://evil.example]click[/link]",
    "\x1b[2J\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "\x9b31m C1 CSI\x85\x7f",
    "txt.exe\u202egnp",
    "\u2066isolate\u2069 \u2028sep\u2029",
    "two\nlines\r\tand a tab",
    ":thumbs_up:",
    '=HYPERLINK("http://evil.example","x")',
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1)",
    "ok` | ✅ ok |\n| evil",
    "<script>alert(1)</script>",
    "# heading",
    "> quote",
    "*bold* _it_ ~~strike~~ ![img](http://evil.example/x.png) [link](http://evil.example)",
    "back\\|slash \\ &#124; &amp;",
    "\ud800 lone \udcff surrogates",
]
IDS = [f"hostile{i}" for i in range(len(HOSTILE))]
# Text with every unsafe kind mixed into arbitrary Unicode (surrogates included).
UNSAFE_CHARS = "\x00\x07\x1b\x7f\x80\x85\x9b\x9f\n\r\t\u061c\u200e\u200f\u202a\u202e\u2066\u2069\u2028\u2029"
UNSAFE_CHARS += "\ud800\udfff"
TEXT = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(UNSAFE_CHARS + "[]/|`\\<>&=+-@#")))


# ----------------------------------------------------------------------------- shown


@pytest.mark.parametrize(
    "char, escaped",
    [("\x00", "\\x00"), ("\x07", "\\x07"), ("\x08", "\\x08"), ("\x1b", "\\x1b"), ("\x1f", "\\x1f")]
    + [("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\x7f", "\\x7f"), ("\x80", "\\x80"), ("\x9b", "\\x9b")]
    + [("\x9f", "\\x9f"), ("\u061c", "\\u061c"), ("\u200e", "\\u200e"), ("\u200f", "\\u200f")]
    + [(chr(c), f"\\u{c:04x}") for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]]
    + [("\ud800", "\\ud800"), ("\udcff", "\\udcff")],
)
def test_shown_escapes_every_unsafe_character_visibly(char, escaped):
    assert shown(f"a{char}b") == f"a{escaped}b"
    assert shown(char * 3, limit=None) == escaped * 3


@pytest.mark.parametrize(
    "text",
    ["minilm-l6", "NVIDIA H100 80GB HBM3", "Ünïcödé ✅ 中文 😀 \xa0", "[bold]x[/bold]", "C:\\x1b is text", ""],
)
def test_shown_leaves_safe_text_as_it_is(text):
    assert shown(text) == text


def test_shown_cuts_long_text_and_never_inside_an_escape():
    assert shown("x" * 201) == "x" * 200 + "… (1 more character)"
    assert shown("x" * 300, limit=10) == "x" * 10 + "… (290 more characters)"
    assert shown("\x1b" * 100, limit=10) == "\\x1b\\x1b… (98 more characters)"
    assert shown("x" * 10_000, limit=None) == "x" * 10_000
    assert shown(42) == "42" and shown(Path("a\nb")) == "a\\nb"


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_shown_is_one_safe_printable_line(text):
    out = shown(text)
    assert not UNSAFE_RE.search(out) and "\n" not in out
    out.encode("utf-8")  # no surrogate: any UTF-8 stream can carry it


@given(TEXT, st.one_of(st.none(), st.integers(0, 40)))
def test_shown_properties(text, limit):
    out = shown(text, limit)
    assert not UNSAFE_RE.search(out)
    out.encode("utf-8")
    whole = shown(text, None)
    if limit is None or len(whole) <= limit:
        assert out == whole
        if not UNSAFE_RE.search(text):
            assert out == text
        return
    # Cut: the kept part is the escape of a prefix, as long as fits, and N counts the rest.
    kept, _, tail = out.rpartition("… (")
    rest = int(tail.split(" ")[0])
    assert tail == f"{rest} more character{'' if rest == 1 else 's'})" and 0 < rest <= len(text)
    consumed = len(text) - rest
    assert kept == shown(text[:consumed], None) and len(kept) <= limit
    assert len(kept) + len(shown(text[consumed], None)) > limit


# ----------------------------------------------------------------------------- csv_cell

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "=", "+", "-", "@", "-inf", "+nan", "-1,5", "- 1", "-٣"]
    + ['=HYPERLINK("http://evil.example","x")', "-2+3+cmd|' /C calc'!A0", "=cmd|'/C calc'!A0", "+\x1b[31m"],
)
def test_csv_cell_neutralizes_formulas(text):
    out = csv_cell(text)
    assert out == "'" + shown(text, None)


@pytest.mark.parametrize("value", ["-0.5", "+3", "1e-3", "-1.5E+10", ".5", "0", "12.", -0.5, 3, 0.25, None, True])
def test_csv_cell_leaves_numbers_numeric(value):
    assert csv_cell(value) == value


@pytest.mark.parametrize("text", ["minilm", "a=b", "NVIDIA H100 80GB HBM3", "[bold]x[/bold]", "2024-01-01T00:00:00"])
def test_csv_cell_leaves_plain_text(text):
    assert csv_cell(text) == text


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_csv_cells_read_back_as_text_or_numbers(text):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([csv_cell(text), csv_cell(-0.5), csv_cell("ok")])
    assert not UNSAFE_RE.search(buffer.getvalue().replace("\n", ""))
    (row,) = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row[1:] == ["-0.5", "ok"] and not row[0].startswith(FORMULA_START)
    assert row[0].removeprefix("'") == shown(text, None)


@given(TEXT)
def test_csv_cell_properties(text):
    out = csv_cell(text)
    assert not UNSAFE_RE.search(out)
    assert not out.startswith(FORMULA_START) or float(out) == float(text)


def test_site_csv_download_neutralizes_formulas_and_keeps_json_exact(tmp_path):
    from nerbench.site import RESULT_COLUMNS, _write_downloads

    hostile = '=HYPERLINK("http://evil.example","x")\x1b[31m'
    row = dict.fromkeys(RESULT_COLUMNS) | {
        "run_id": "-r1",
        "model_id": hostile,
        "device_name": "@SUM(A1)",
        "dataset": "bc5cdr",
        "f1": 0.5,
        "seed": -1,
        "self_reported": True,
    }
    _write_downloads(tmp_path, [row])
    text = (tmp_path / "results.csv").read_text(encoding="utf-8")
    assert not UNSAFE_RE.search(text.replace("\n", ""))
    (read,) = list(csv.DictReader(io.StringIO(text)))
    assert read["run_id"] == "'-r1" and read["model_id"] == "'" + shown(hostile, None)
    assert read["device_name"] == "'@SUM(A1)" and read["seed"] == "-1" and read["f1"] == "0.5"
    (stored,) = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert stored["model_id"] == hostile  # the JSON download carries the value as stored


# ----------------------------------------------------------------------------- markdown_cell


def gfm_cells(row: str) -> list[str]:
    """The cells of a Markdown table row as GitHub splits it: at each '|' not escaped by a backslash."""
    assert row.startswith("| ") and row.endswith(" |"), row
    cells, current, chars = [], "", iter(row[1:-1])
    for char in chars:
        if char == "\\":
            current += char + next(chars, "")
        elif char == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def rendered(cell: str) -> str:
    """What GitHub shows for an escaped cell: backslash escapes of punctuation and the entities undone."""
    text, chars = "", iter(cell)
    for char in chars:
        if char == "\\":
            nxt = next(chars)
            assert not nxt.isalnum(), cell  # only punctuation is escaped
            text += nxt
        elif char == "&":
            entity = "&" + "".join(iter(lambda: next(chars), ";")) + ";"
            text += {"&amp;": "&", "&lt;": "<", "&gt;": ">"}[entity]
        else:
            assert char not in "|`*_[]<>#~!", cell  # every character with a meaning is escaped
            text += char
    return text


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_markdown_cell_is_one_cell_that_renders_as_its_text(text):
    out = markdown_cell(text)
    assert "\n" not in out and "\r" not in out and "<" not in out and ">" not in out
    assert gfm_cells(f"| {out} | b |") == [out, "b"]
    assert rendered(out) == shown(text)


@given(TEXT)
def test_markdown_cell_properties(text):
    out = markdown_cell(text, limit=None)
    assert len(gfm_cells(f"| a | {out} | c |")) == 3
    assert rendered(out) == shown(text, None)


# ----------------------------------------------------------------------------- json_text


@pytest.mark.parametrize("text", HOSTILE, ids=IDS)
def test_json_text_is_the_same_data_with_nothing_unsafe_raw(text):
    value = [{"model_id": text, "n": 1}]
    for options in ({}, {"indent": 2}, {"sort_keys": True}):
        out = json_text(value, **options)
        assert not UNSAFE_RE.search(out.replace("\n", "")) and json.loads(out) == value
    assert json_text({"id": "Ünïcödé ✅"}) == '{"id": "Ünïcödé ✅"}'  # readable text stays readable


# ----------------------------------------------------------------------------- validate and ingest


@pytest.fixture(scope="module", autouse=True)
def _commands():
    cli._register()


def copy_submission(folder: Path, *, other_ids: bool = False) -> Path:
    """A copy of SUBMISSION; with `other_ids`, under another submission and model id (so that it
    does not clash with a second copy validated beside it)."""
    shutil.copytree(SUBMISSION, folder)
    if other_ids:
        toml = folder / "submission.toml"
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
        data["id"], data["model"]["id"] = "another-copy", "another-model"
        toml.write_text(tomli_w.dumps(data), encoding="utf-8")
    return folder


def no_raw_controls(text: str) -> None:
    assert not UNSAFE_RE.search(text.replace("\n", "")), ascii(text)


# Folder names: a name can hold neither '/' nor NUL.
FOLDER_NAMES = [t for t in HOSTILE if "/" not in t and "\x00" not in t and "\ud800" not in t]


@pytest.mark.parametrize("name", FOLDER_NAMES, ids=[f"name{i}" for i in range(len(FOLDER_NAMES))])
def test_validate_prints_problems_and_the_summary_of_a_hostile_folder_as_text(tmp_path, data_dir, name):
    folder = copy_submission(tmp_path / name, other_ids=True)
    good = copy_submission(tmp_path / "good" / SUBMISSION.name)
    summary = tmp_path / "summary.md"
    args = ["validate", str(folder), str(good), "--summary", str(summary), "--data-dir", str(data_dir)]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    no_raw_controls(result.output)
    problems = [line for line in result.output.splitlines() if line.startswith("✗ ")]
    assert problems and all(line.startswith(f"✗ {shown(folder)}") for line in problems)
    assert "✓ " + shown(good) + ": valid (1 datasets re-scored)" in result.output
    # The summary: a table and nothing else; every row five cells; the hostile folder's rows (its
    # re-scored dataset and its problem count) name it, rendered exactly; no row is forged. The
    # folders come in the order of their absolute paths.
    lines = summary.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == [
        "| submission | dataset | strict F1 [95% CI] | long-entity F1 | problems |",
        "|---|---|---|---|---|",
    ]
    rows = [gfm_cells(line) for line in lines[2:]]
    assert all(len(row) == 5 for row in rows), lines
    hostile = [(shown(name), "ncbi_disease", ""), (shown(name), "", f"{len(problems)} problem(s): see the log")]
    valid = [(SUBMISSION.name, "ncbi_disease", "")]
    expected = hostile + valid if str(folder) < str(good) else valid + hostile
    assert [(rendered(row[0]), rendered(row[1]), rendered(row[4])) for row in rows] == expected


def test_validate_and_ingest_skip_paths_that_are_not_submission_folders(tmp_path, data_dir):
    readme = tmp_path / "README.md"
    readme.write_text("# Submissions\n", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "no-toml" / "predictions").mkdir(parents=True)
    good = copy_submission(tmp_path / SUBMISSION.name)
    paths = [str(readme), str(empty), str(tmp_path / "no-toml"), str(good)]
    summary = tmp_path / "summary.md"
    result = runner.invoke(cli.app, ["validate", *paths, "--summary", str(summary), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, (result.exception, result.output)
    for path in paths[:3]:
        assert f"{path}: skipped (not a submission folder)" in result.output.splitlines()
    assert f"✓ {good}: valid (1 datasets re-scored)" in result.output
    rows = [gfm_cells(line) for line in summary.read_text(encoding="utf-8").splitlines()[2:]]
    assert [(rendered(r[0]), rendered(r[4])) for r in rows] == [
        *((path, "skipped (not a submission folder)") for path in paths[:3]),
        (SUBMISSION.name, ""),
    ]
    db = tmp_path / "store.duckdb"
    result = runner.invoke(cli.app, ["ingest", *paths, "--db", str(db), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, (result.exception, result.output)
    assert f"{readme}: skipped (not a submission folder)" in result.output
    assert f"{good}: stored (1 runs)" in result.output


def test_a_path_that_does_not_exist_or_nothing_to_check_is_still_an_error(tmp_path, data_dir):
    missing = tmp_path / "typo"
    result = runner.invoke(cli.app, ["validate", str(missing), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "no such submission folder" in result.output
    readme = tmp_path / "README.md"
    readme.write_text("x", encoding="utf-8")
    for command in (["validate"], ["ingest", "--db", str(tmp_path / "s.duckdb")]):
        result = runner.invoke(cli.app, [*command, str(readme), "--data-dir", str(data_dir)])
        assert isinstance(result.exception, NerbenchError)
        assert "no submission folder among the 1 path(s) given" in str(result.exception)
    assert not (tmp_path / "s.duckdb").exists()


def test_validate_dot_inside_a_submission_folder(tmp_path, data_dir, monkeypatch):
    folder = copy_submission(tmp_path / SUBMISSION.name)
    monkeypatch.chdir(folder)
    result = runner.invoke(cli.app, ["validate", ".", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, (result.exception, result.output)
    assert "✓ .: valid (1 datasets re-scored)" in result.output
    monkeypatch.chdir(folder / "predictions")
    result = runner.invoke(cli.app, ["validate", "..", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, (result.exception, result.output)
    assert "✓ ..: valid (1 datasets re-scored)" in result.output


def test_ingest_prints_each_refused_folder_on_its_own_line(tmp_path, data_dir):
    bad = copy_submission(tmp_path / "\x1b[31m[/x]", other_ids=True)
    good = copy_submission(tmp_path / SUBMISSION.name)
    db = tmp_path / "store.duckdb"
    result = runner.invoke(cli.app, ["ingest", str(bad), str(good), "--db", str(db), "--data-dir", str(data_dir)])
    assert isinstance(result.exception, NerbenchError), (result.exception, result.output)
    assert str(result.exception) == "1 of 2 submission folder(s) not ingested (see above)"
    no_raw_controls(result.output)
    refused = [line for line in result.output.splitlines() if line.startswith("✗ ")]
    assert len(refused) == 1 and refused[0].startswith(f"✗ {shown(bad)}: not ingested")
    assert f"{good}: stored (1 runs)" in result.output


def test_validate_prints_scores_as_fractions(tmp_path, data_dir):
    """validate printed 71.87 where the store, the site and the README print 0.7187."""
    good = copy_submission(tmp_path / SUBMISSION.name)
    summary = tmp_path / "summary.md"
    args = ["validate", str(good), "--summary", str(summary), "--data-dir", str(data_dir)]
    result = runner.invoke(cli.app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    (row,) = [gfm_cells(line) for line in summary.read_text(encoding="utf-8").splitlines()[2:]]
    assert re.fullmatch(r"0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", rendered(row[2])), row
    assert re.fullmatch(r"0\.\d{4}", rendered(row[3])), row
    assert rendered(row[2]) in result.output
