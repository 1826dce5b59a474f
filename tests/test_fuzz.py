"""Fuzz tests: hostile bytes and structured-but-wrong input for the CoNLL reader and the submission
validator. Whatever they are given, they answer with sentences, a ConllError / NerbenchError, or
problem reports that name the file, each one line of printable text; never another exception (a
traceback), never a hang.

Each example is small and bounded: Hypothesis's deadline fails one that is slow, and an alarm stops
one that hangs. Derandomized by default (tests/conftest.py); for a longer, random exploration:

    HYPOTHESIS_PROFILE=explore HF_HUB_OFFLINE=1 NERBENCH_DATA_DIR=../shared/data \\
        .venv/bin/python -m pytest -q tests/test_fuzz.py
"""

import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nerbench import submissions
from nerbench.conll import ConllError, format_conll, is_valid_tag, parse_conll, read_conll
from nerbench.datasets import REGISTRY, load_split
from nerbench.errors import NerbenchError

# --------------------------------------------------------------------------- bounds

HANG_SECONDS = 30  # an example still running after this is a hang: stopped, and the test fails


class Hang(BaseException):  # not an Exception: no `except Exception` in the code under test can swallow it
    pass


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def expired(signum, frame):
        raise Hang(f"an example ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(examples: int):
    """Settings of a fuzz test: `examples` under the "ci" profile, proportionally more under
    "explore"; each example must finish within a deadline generous for a loaded 2-core machine."""
    scale = max(1, settings.default.max_examples // 100)
    return settings(
        max_examples=examples * scale,
        deadline=timedelta(seconds=5),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# What a message may not hold: a control character, bidirectional formatting, a line separator.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def assert_one_clean_line(message: str) -> None:
    found = _UNPRINTABLE.search(message)
    assert found is None, f"character U+{ord(found.group()):04X} in the message {message!r}"


# --------------------------------------------------------------------------- the CoNLL reader

# Pieces of a CoNLL line, chosen to hit the reader's every branch: tokens with the characters the
# format gives a meaning to, tags valid and not, both separators, every line ending, the byte order
# mark, -DOCSTART-.
_CONLL_TOKENS = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
    st.sampled_from(["a", "IL-2", "-DOCSTART-", "\ufeff", " ", "\x0b", "\x85", "\u2028", "a\rb", "ü"]),
)
_CONLL_TAGS = st.one_of(
    st.sampled_from(["O", "B-X", "I-X", "B-Gene-Or-Product", "B-", "I", "o", "X-Foo", "B-a b", "", "O\r", " O"]),
    st.text(max_size=5),
)
_SEPARATORS = st.sampled_from(["\t", " ", "  ", "\t\t", "\t \t", " \t"])
_ENDINGS = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\n \n", "\n\t\n"])
_CONLL_LINE = st.one_of(
    st.tuples(_CONLL_TOKENS, _SEPARATORS, _CONLL_TAGS).map("".join),
    st.tuples(_CONLL_TOKENS, _SEPARATORS, _CONLL_TOKENS, _SEPARATORS, _CONLL_TAGS).map("".join),
    _CONLL_TOKENS,
    st.just("-DOCSTART- -X- O O"),
)
_CONLL_TEXT = st.tuples(
    st.sampled_from(["", "\ufeff"]), st.lists(st.tuples(_CONLL_LINE, _ENDINGS).map("".join), max_size=12)
).map(lambda parts: parts[0] + "".join(parts[1]))


def check_conll(data: str | bytes, source: str) -> None:
    """Sentences with valid tags and non-blank tokens, or a ConllError naming source:line."""
    lines = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).count("\n") + 1
    try:
        sentences = parse_conll(data, source)
    except ConllError as err:
        found = re.match(rf"{re.escape(source)}:(\d+): \S", str(err))
        assert found, str(err)
        assert 1 <= int(found.group(1)) <= lines, str(err)
        return
    for sentence in sentences:
        assert sentence.tokens and len(sentence.tokens) == len(sentence.tags)
        assert all(token.strip() for token in sentence.tokens)
        assert all(is_valid_tag(tag) for tag in sentence.tags)
        assert 1 <= sentence.line <= lines
    # What was read writes back (or is refused by name), and what is written reads back the same.
    try:
        text = format_conll(sentences, source)
    except ConllError as err:
        assert str(err).startswith(f"{source}: sentence "), str(err)
        return
    assert [(s.tokens, s.tags) for s in parse_conll(text)] == [(s.tokens, s.tags) for s in sentences]


@given(st.binary(max_size=600))
@fuzz(300)
def test_the_conll_reader_on_random_bytes(data):
    with no_hang():
        check_conll(data, "fuzz.conll")


@given(_CONLL_TEXT, st.booleans())
@fuzz(300)
def test_the_conll_reader_on_lines_made_of_its_own_pieces(text, as_bytes):
    with no_hang():
        check_conll(text.encode("utf-8", "surrogatepass") if as_bytes else text, "fuzz.conll")


@given(st.one_of(st.binary(max_size=300), _CONLL_TEXT.map(lambda t: t.encode("utf-8"))))
@fuzz(100)
def test_read_conll_on_random_files(tmp_path_factory, data):
    path = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "random.conll"
    path.write_bytes(data)
    with no_hang():
        try:
            sentences = read_conll(path)
        except ConllError as err:
            assert str(err).startswith(f"{path}:"), str(err)
        else:
            assert sentences == parse_conll(data, str(path))
    shutil.rmtree(path.parent)


def test_the_conll_reader_on_a_large_hostile_file_is_quick():
    text = ("tok\tB-X\n" * 5000 + "\r\n" * 5000 + "a\tO\n\n" * 5000 + "-DOCSTART-\tO\n" * 5000).encode()
    with no_hang(10):
        assert len(parse_conll(text, "big.conll")) == 5001
        with pytest.raises(ConllError, match=r"^big\.conll:25001: not valid UTF-8"):
            parse_conll(text + b"\xff", "big.conll")


# --------------------------------------------------------------------------- the submission validator

DATASET = "ncbi_disease"  # the smallest public test split (940 sentences)
FOLDER = "fuzz-sub"


def _base_document() -> dict:
    """A valid submission.toml (as data) for one dataset."""
    return {
        "schema_version": 1,
        "id": FOLDER,
        "nerbench_version": "0.1.0",
        "submitted_by": "fuzz tests",
        "model": {
            "id": "fuzz-model",
            "family": "encoder",
            "base_model": "org/fuzz-base",
            "parameters": 1000,
            "licence": "mit",
            "links": ["https://example.org/fuzz"],
            "description": "A made-up model (test data).",
        },
        "training": {"regime": "full", "head": "token", "epochs": 1, "notes": "none"},
        "hardware": {"device": "cpu", "num_devices": 1},
        "datasets": {
            DATASET: {
                "sha256": REGISTRY[DATASET].split("test").sha256,
                "predictions": f"predictions/{DATASET}.tags",
                "claimed": {"strict_f1": 0.5},
            }
        },
    }


class Gold(list):
    """The gold tags of the test split (a list of lists), shown short in a failing example."""

    def __repr__(self) -> str:
        return f"<the gold tags of {DATASET}'s test split>"


@pytest.fixture(scope="module")
def gold_tags(data_dir) -> Gold:
    return Gold(list(s.tags) for s in load_split(DATASET, "test", data_dir).sentences)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-submissions")


@pytest.fixture(scope="module")
def no_data(tmp_path_factory) -> Path:
    """A data folder without any split: a validator that gets as far as re-scoring says so."""
    return tmp_path_factory.mktemp("no-data")


@contextmanager
def submission_folder(scratch: Path, files: dict[str, bytes], name: str = FOLDER) -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(dir=scratch))
    folder = parent / name
    try:
        try:
            folder.mkdir()
        except (OSError, ValueError):  # a name the file system refuses (too long, a NUL byte, a '/')
            folder = parent / FOLDER
            folder.mkdir()
        for rel, content in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(content)
        yield folder
    finally:
        shutil.rmtree(parent)


def check_submission(folder: Path, data_dir: Path) -> submissions.Validation:
    """validate never raises and reports problems that name a file, one clean line each; an invalid
    submission is refused by ingest with one NerbenchError, and no store is made."""
    with no_hang():
        result = submissions.validate(folder, data_dir)
        for problem in result.problems:
            text = str(problem)
            assert text.startswith(str(folder.parent)), text  # the folder's own name is shown escaped
            assert_one_clean_line(text)
        if not result.ok:
            db = folder.parent / "ingest.duckdb"
            with pytest.raises(NerbenchError) as info:
                submissions.ingest(folder, db, data_dir=data_dir)
            assert "not ingested" in str(info.value)
            assert_one_clean_line(str(info.value))
            assert not db.exists()
    return result


def _toml(document: dict) -> bytes:
    return tomli_w.dumps(document).encode("utf-8")


def _tags_text(gold: list[list[str]]) -> bytes:
    return "".join(" ".join(tags) + "\n" for tags in gold).encode()


def test_the_fuzzed_base_submission_is_valid(scratch, data_dir, gold_tags):
    """The starting point of the structured fuzzing is valid: every failure below comes from the damage."""
    files = {"submission.toml": _toml(_base_document()), f"predictions/{DATASET}.tags": _tags_text(gold_tags)}
    with submission_folder(scratch, files) as folder:
        document = _base_document()
        document["datasets"][DATASET].pop("claimed")
        (folder / "submission.toml").write_bytes(_toml(document))
        result = check_submission(folder, data_dir)
        assert result.ok, [str(p) for p in result.problems]


# ---- submission.toml


@given(st.binary(max_size=2000), st.one_of(st.none(), st.binary(max_size=300)))
@fuzz(100)
def test_random_bytes_as_submission_toml_and_readme(scratch, no_data, toml, readme):
    files = {"submission.toml": toml} | ({"README.md": readme} if readme is not None else {})
    with submission_folder(scratch, files) as folder:
        assert not check_submission(folder, no_data).ok


_KEYS = st.one_of(
    st.sampled_from(["id", "model", "datasets", "schema_version", "training", "hardware", DATASET, "claimed"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
    st.integers(200, 3000).map(lambda n: "k" * n),  # a huge key
    st.sampled_from(["\x1b[31m", "a\u202eb", "\x00", "..", "a.b", "", " "]),
)
_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20),
    st.sampled_from(["\x1b]0;title\x07", "a\u2028b", "\u202egnp.exe", "predictions/../x.tags", "con", "\r"]),
    st.integers(1000, 60_000).map(lambda n: "x" * n),  # a huge string
    st.datetimes(),
    st.dates(),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_KEYS, inner, max_size=4)),
    max_leaves=12,
)


def _nested(value, depth: int, as_list: bool):
    for _ in range(depth):
        value = [value] if as_list else {"n": value}
    return value


@given(st.dictionaries(_KEYS, _VALUES, max_size=8), st.booleans())
@fuzz(100)
def test_random_toml_documents(scratch, no_data, document, over_the_valid_one):
    if over_the_valid_one:  # random fields over (or beside) the valid ones
        document = _base_document() | document
    with submission_folder(scratch, {"submission.toml": _toml(document)}) as folder:
        check_submission(folder, no_data)


# One damage at a path into the valid document: a new value, the key removed, the value nested deep.
_PATHS = st.sampled_from(
    [
        ("schema_version",),
        ("id",),
        ("nerbench_version",),
        ("submitted_by",),
        ("model",),
        ("model", "id"),
        ("model", "family"),
        ("model", "base_model"),
        ("model", "parameters"),
        ("model", "links"),
        ("model", "description"),
        ("training", "regime"),
        ("training", "epochs"),
        ("training", "quantization_bits"),
        ("hardware", "num_devices"),
        ("datasets",),
        ("datasets", DATASET),
        ("datasets", DATASET, "sha256"),
        ("datasets", DATASET, "predictions"),
        ("datasets", DATASET, "dev_predictions"),
        ("datasets", DATASET, "timing"),
        ("datasets", DATASET, "timing", "wall_seconds"),
        ("datasets", DATASET, "generation"),
        ("datasets", DATASET, "generation", "parse"),
        ("datasets", DATASET, "claimed", "strict_f1"),
        ("datasets", "unknown_set"),
        ("unknown",),
    ]
)
_DAMAGE = st.one_of(
    st.tuples(st.just("set"), _VALUES),
    st.tuples(st.just("remove"), st.none()),
    st.tuples(st.just("nest"), st.tuples(st.integers(1, 40), st.booleans())),
)


def _damaged(document: dict, path: tuple[str, ...], damage: tuple[str, object]) -> dict:
    target = document
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    kind, argument = damage
    if kind == "set":
        target[path[-1]] = argument
    elif kind == "remove":
        target.pop(path[-1], None)
    else:
        depth, as_list = argument
        target[path[-1]] = _nested(target.get(path[-1], 1), depth, as_list)
    return document


@given(st.lists(st.tuples(_PATHS, _DAMAGE), min_size=1, max_size=3), _KEYS)
@fuzz(100)
def test_a_valid_submission_damaged_field_by_field(scratch, data_dir, gold_tags, damages, folder_name):
    document = _base_document()
    for path, damage in damages:
        document = _damaged(document, path, damage)
    files = {"submission.toml": _toml(document), f"predictions/{DATASET}.tags": _tags_text(gold_tags)}
    name = FOLDER if folder_name in ("", ".", "..") else folder_name  # the folder itself is hostile too
    with submission_folder(scratch, files, name) as folder:
        check_submission(folder, data_dir)


def _hostile_toml(kind: str, size: int) -> bytes:
    match kind:
        case "deep arrays":
            return f"a = {'[' * size}{']' * size}".encode()
        case "deep inline tables":
            return ("a = " + "{ b = " * size + "1" + " }" * size).encode()
        case "deep dotted keys":
            return ("a" + ".b" * size + " = 1").encode()
        case "deep table headers":
            return ("[" + ".".join(["t"] * size) + "]\nx = 1").encode()
        case "many keys":
            return "".join(f"k{i} = {i}\n" for i in range(size * 20)).encode()
        case "long string":
            return f'id = "{"x" * (size * 60)}"'.encode()
        case "over the size limit":
            return b"# " + b"x" * (submissions.MAX_TOML_BYTES + size)
        case "unterminated":
            return b'id = "fuzz-sub\nmodel = { id = "m"'[: size % 30 + 1]
        case "controls in keys":
            return f'"\x1b[2J{"k" * size}" = 1\n"\u202e" = 2'.encode()
        case "lone carriage returns":
            return b'schema_version = 1\rid = "fuzz-sub"\r'
        case "byte order mark":
            return b"\xef\xbb\xbf" + _toml(_base_document())
        case "nul byte":
            return _toml(_base_document())[:size] + b"\x00"
        case _:
            return _toml(_base_document())[: size * 7] + b"\xff\xfe"


@given(
    st.sampled_from(
        [
            "deep arrays",
            "deep inline tables",
            "deep dotted keys",
            "deep table headers",
            "many keys",
            "long string",
            "over the size limit",
            "unterminated",
            "controls in keys",
            "lone carriage returns",
            "byte order mark",
            "nul byte",
            "invalid utf-8",
        ]
    ),
    st.sampled_from([1, 10, 100, 1000, 3000]),
)
@fuzz(60)
def test_hostile_toml_text(scratch, no_data, kind, size):
    with submission_folder(scratch, {"submission.toml": _hostile_toml(kind, size)}) as folder:
        check_submission(folder, no_data)


# ---- the folder's layout

_NAMES = st.one_of(
    st.sampled_from(
        [
            "submission.toml",
            "README.md",
            "predictions",
            f"{DATASET}.tags",
            f"{DATASET}.dev.tags",
            "bc5cdr.tags",
            "x.tags",
            ".hidden",
            "con",
            "CON.tags",
            "nul.tags",
            "...",
            " ",
            "\x1b[31m",
            "\u202eevil",
            "a" * 255,
        ]
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=12
    ),
)
_KINDS = st.sampled_from(
    ["file", "empty file", "folder", "link to a file", "link to a folder", "dangling link", "fifo"]
)
_ENTRY = st.tuples(st.sampled_from(["", "predictions/", "predictions/deeper/"]), _NAMES, _KINDS, st.binary(max_size=64))


def _make(path: Path, kind: str, content: bytes, outside: Path) -> None:
    if kind == "file":
        path.write_bytes(content)
    elif kind == "empty file":
        path.write_bytes(b"")
    elif kind == "folder":
        path.mkdir()
    elif kind == "link to a file":
        path.symlink_to(outside / "secret.txt")
    elif kind == "link to a folder":
        path.symlink_to(outside)
    elif kind == "dangling link":
        path.symlink_to(outside / "nowhere")
    else:
        os.mkfifo(path)  # reading one would block for ever: the validator must never open it


@given(st.lists(_ENTRY, max_size=8), st.booleans())
@fuzz(60)
def test_random_folder_layouts(scratch, data_dir, gold_tags, entries, with_valid_files):
    files = (
        {"submission.toml": _toml(_base_document()), f"predictions/{DATASET}.tags": _tags_text(gold_tags)}
        if with_valid_files
        else {}
    )
    with submission_folder(scratch, files) as folder:
        outside = folder.parent / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("not part of the submission")
        for where, name, kind, content in entries:
            path = folder / where / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not os.path.lexists(path):
                    _make(path, kind, content, outside)
            except OSError:  # a name this file system refuses, or a parent that is not a folder
                continue
        check_submission(folder, data_dir)


# ---- predictions files


def _damaged_tags(gold: list[list[str]], damages: list[tuple[str, int, str]]) -> bytes:
    lines = [" ".join(tags) for tags in gold]
    ending = "\n"
    for kind, where, text in damages:
        at = where % len(lines) if lines else 0
        if kind == "replace line" and lines:
            lines[at] = text
        elif kind == "replace tag" and lines and lines[at]:
            tags = lines[at].split(" ")
            tags[where % len(tags)] = text
            lines[at] = " ".join(tags)
        elif kind == "drop line" and lines:
            del lines[at]
        elif kind == "add line":
            lines.insert(at, text)
        elif kind == "separator" and lines:
            lines[at] = lines[at].replace(" ", text or "\t")
        elif kind == "ending":
            ending = text or "\r\n"
        elif kind == "truncate":
            lines = lines[:at]
    body = ending.join(lines) + ending
    return body.encode("utf-8", "surrogatepass")


_TAG_TEXT = st.one_of(
    st.sampled_from(["O", "B-Disease", "I-Disease", "B-Chemical", "b-disease", "", " ", "\t", "\r", "O O", "\x00"]),
    st.sampled_from(["\ufeffO", "\u202eO", "\x1b[31mO", "O\x85", "I-Disease\u2028"]),
    st.text(max_size=8),
    st.integers(100, 5000).map(lambda n: "B-" + "x" * n),
)
_TAG_DAMAGE = st.tuples(
    st.sampled_from(["replace line", "replace tag", "drop line", "add line", "separator", "ending", "truncate"]),
    st.integers(0, 10_000),
    _TAG_TEXT,
)


@given(st.one_of(st.binary(max_size=2000), st.lists(_TAG_DAMAGE, min_size=1, max_size=4)), st.booleans())
@fuzz(60)
def test_random_and_damaged_predictions_files(scratch, data_dir, gold_tags, tags, as_dev_file):
    document = _base_document()
    document["datasets"][DATASET].pop("claimed")
    content = tags if isinstance(tags, bytes) else _damaged_tags(gold_tags, tags)
    files = {"submission.toml": _toml(document), f"predictions/{DATASET}.tags": _tags_text(gold_tags)}
    if as_dev_file:  # the dev split's file, checked like the test one
        document["datasets"][DATASET]["dev_predictions"] = f"predictions/{DATASET}.dev.tags"
        document["datasets"][DATASET]["dev_sha256"] = REGISTRY[DATASET].split("dev").sha256
        files = files | {"submission.toml": _toml(document), f"predictions/{DATASET}.dev.tags": content}
    else:
        files[f"predictions/{DATASET}.tags"] = content
    with submission_folder(scratch, files) as folder:
        check_submission(folder, data_dir)
