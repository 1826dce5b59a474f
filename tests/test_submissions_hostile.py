"""Hostile submissions, class by class: terminal control and forged lines, unbounded reports, lax
types and self-contradicting timing, model ids taken over, deep structures, names that break other
systems, careless use. Each class is refused by one mechanism, tested here on several inputs; every
refusal leaves the store as it was.

TEST DATA: the submission here is made up (one dataset, biored's 273 test sentences, the gold tags
as its predictions); the owners of model ids are the submissions committed under submissions/.
"""

import os
import re
import shutil
import sys
from pathlib import Path

import duckdb
import pytest
import tomli_w

from nerbench import submissions
from nerbench.datasets import REGISTRY, load_split
from nerbench.errors import NerbenchError
from nerbench.store import RunResult, Store, predictions_sha256, predictions_text

from _records import run_record

NAME = "hostile-sub"
MODEL = "hostile-model"
SEEDS = Path(__file__).resolve().parent.parent / "submissions"
# What no message may print raw: C0, DEL, C1, bidi formatting, line/paragraph separators, surrogates.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


@pytest.fixture(scope="module")
def split(data_dir):
    return load_split("biored", "test", data_dir)


def toml_data(split, name=NAME, model_id=MODEL):
    tokens = sum(len(s.tokens) for s in split.sentences)
    return {
        "schema_version": 1,
        "id": name,
        "nerbench_version": "0.1.0",
        "submitted_by": "nerbench tests",
        "model": {"id": model_id, "family": "encoder", "base_model": "org/base", "parameters": 1000, "licence": "mit"},
        "training": {"regime": "full", "head": "token"},
        "hardware": {"device": "Test CPU", "num_devices": 1},
        "datasets": {
            "biored": {
                "split": "test",
                "sha256": REGISTRY["biored"].split("test").sha256,
                "predictions": "predictions/biored.tags",
                "timing": {
                    "wall_seconds": 2.0,
                    "sentences_per_second": len(split.sentences) / 2.0,
                    "tokens_per_second": tokens / 2.0,
                },
            }
        },
    }


def make_folder(parent, split, name=NAME, model_id=MODEL, change=None):
    """A valid submission folder (unless `change` breaks its submission.toml data)."""
    folder = Path(parent) / name
    (folder / "predictions").mkdir(parents=True)
    data = toml_data(split, name, model_id)
    if change is not None:
        change(data)
    (folder / "submission.toml").write_text(tomli_w.dumps(data), encoding="utf-8")
    gold = [list(s.tags) for s in split.sentences]
    (folder / "predictions" / "biored.tags").write_text(predictions_text(gold), encoding="utf-8")
    return folder


@pytest.fixture
def folder(tmp_path, split):
    return make_folder(tmp_path / "subs", split)


def problems(result):
    """The problems as printed, after checking that none prints an unsafe character raw."""
    lines = [str(p) for p in result.problems]
    for line in lines:
        assert not UNSAFE.search(line), repr(line)
    return "\n".join(lines)


def refused(folder, data_dir, *expected):
    result = submissions.validate(folder, data_dir)
    assert not result.ok
    text = problems(result)
    for fragment in expected:
        assert fragment in text, text
    return text


def store_rows(db):
    """Every row of every table, sorted: the store's content, to compare before and after."""
    conn = duckdb.connect(str(db), read_only=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        conn.close()


# ----------------------------------------------------------------------------- 1. terminal control

CONTROLS = {
    "esc": "\x1b[2J\x1b[31m✓ valid",
    "nul": "a\x00b",
    "tab": "a\tb",
    "newline": "id\n✓ forged line",
    "carriage-return": "a\rb",
    "del": "a\x7fb",
    "c1-nel": "a\x85b",
    "c1-csi": "a\x9b31m",
    "bidi-override": "abc\u202edcb",
    "bidi-isolate": "a\u2066b\u2069",
    "line-separator": "a\u2028b",
    "paragraph-separator": "a\u2029b",
}
ONE_LINE_FIELDS = [
    ("submitted_by",),
    ("nerbench_version",),
    ("model", "base_model"),
    ("model", "licence"),
    ("hardware", "device"),
    ("training", "profile"),
]


def _set(data, where, value):
    target = data
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value


@pytest.mark.parametrize("where", ONE_LINE_FIELDS, ids=".".join)
@pytest.mark.parametrize("control", CONTROLS.values(), ids=CONTROLS.keys())
def test_one_line_fields_refuse_controls_bidi_and_separators(tmp_path, split, data_dir, where, control):
    folder = make_folder(tmp_path, split, change=lambda d: _set(d, where, control))
    bad = UNSAFE.search(control).group()
    text = refused(folder, data_dir, f"field {'.'.join(where)}: character ", f"(U+{ord(bad):04X})")
    assert repr(bad)[1:-1] in text  # shown escaped, e.g. \x1b or \u202e


@pytest.mark.parametrize(
    "where, value",
    [
        (("model", "links"), ["https://example.org/\x1b[2J"]),
        (("model", "links"), ["https://example.org/a\u202eb"]),
        (("generation",), {"decoding": "greedy", "max_new_tokens_rule": "rule\n✓ forged"}),
        (("id",), NAME + "\n"),
        (("model", "id"), MODEL + "\n"),
        (("datasets", "biored", "predictions"), "predictions/biored.tags\n"),
        (("datasets", "biored", "sha256"), REGISTRY["biored"].split("test").sha256 + "\n"),
    ],
    ids=["link-esc", "link-bidi", "generation-rule", "id-newline", "model-id-newline", "path-newline", "sha-newline"],
)
def test_patterned_and_listed_fields_refuse_controls_and_a_final_newline(tmp_path, split, data_dir, where, value):
    """Every pattern is matched whole: an id ending in a newline passes `^...$` but not fullmatch."""
    folder = make_folder(tmp_path, split, change=lambda d: _set(d, where, value))
    refused(folder, data_dir, f"field {'.'.join(where)}")


@pytest.mark.parametrize("field", ["description", "notes"])
def test_free_text_keeps_newlines_and_nothing_else(tmp_path, split, data_dir, field):
    section = "model" if field == "description" else "training"
    ok = make_folder(tmp_path / "ok", split, change=lambda d: d[section].update({field: "line one\nline two"}))
    assert submissions.validate(ok, data_dir).ok
    for control in ("\t", "\r", "\x1b[2J", "\u202e", "\u2028", "\x85"):
        folder = make_folder(
            tmp_path / str(ord(control[0])), split, change=lambda d, c=control: d[section].update({field: f"a{c}b"})
        )
        refused(folder, data_dir, f"field {section}.{field}: character ")


@pytest.mark.parametrize("key", ["evil\x1b[31m", "k\ney", "\u202eyek", "a\u2028b", "k" * 60_000])
def test_unknown_keys_are_shown_escaped_and_cut(tmp_path, split, data_dir, key):
    folder = make_folder(tmp_path, split, change=lambda d: d["model"].update({key: 1}))
    text = refused(folder, data_dir, "field model.", ": unknown field")
    assert len(text) < 1000
    if len(key) > submissions.SHOWN_CHARS:
        assert f"… ({len(key) - submissions.SHOWN_CHARS} more characters)" in text


@pytest.mark.parametrize("key", ["bio\x1bred", "bio\u202ered", "biored\n"])
def test_dataset_keys_with_controls_are_refused(tmp_path, split, data_dir, key):
    folder = make_folder(tmp_path, split, change=lambda d: d["datasets"].update({key: d["datasets"].pop("biored")}))
    refused(folder, data_dir, "field datasets.")


@pytest.mark.parametrize(
    "name, escaped",
    [
        ("evil\x1b[2J.tags", "evil\\x1b[2J.tags"),
        ("a\nb.tags", "a\\nb.tags"),
        ("x\u202esgat.tags", "x\\u202esgat.tags"),
        ("bad\x85", "bad\\x85"),
        ("README\u2028.md", "README\\u2028.md"),
        ("caf\udcff.tags", "caf\\udcff.tags"),  # the byte 0xff of a name that is not UTF-8
    ],
)
def test_file_names_with_controls_are_refused_and_shown_escaped(folder, data_dir, name, escaped):
    with open(os.path.join(os.fsencode(folder / "predictions"), os.fsencode(name)), "wb") as handle:
        handle.write(b"O\n")
    refused(folder, data_dir, f"predictions/{escaped}: unexpected file")


@pytest.mark.parametrize("name", ["evil\x1b[31m", "sub\n✓ valid", "sub\u202e", "sub\u2029x", "sub\n"])
def test_folder_names_with_controls_are_refused_and_shown_escaped(tmp_path, split, data_dir, name):
    folder = make_folder(tmp_path, split, name="plain")
    folder = folder.rename(tmp_path / name)
    refused(folder, data_dir, "folder name: ", "is not a valid id")
    with pytest.raises(NerbenchError) as err:
        submissions.ingest(folder, tmp_path / "board.duckdb", data_dir=data_dir)
    assert not UNSAFE.search(str(err.value)) and "not ingested" in str(err.value)
    assert not (tmp_path / "board.duckdb").exists()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("plain", "'plain'"),
        ("\x1b[2J", "'\\x1b[2J'"),
        ("a\nb", "'a\\nb'"),
        ("\u202e", "'\\u202e'"),
        ("\x9b", "'\\x9b'"),
        ("\u2028", "'\\u2028'"),
        ("x" * 100, "'" + "x" * 80 + "'… (20 more characters)"),
    ],
)
def test_shown_escapes_and_cuts(value, expected):
    assert submissions.shown(value) == expected
    assert not UNSAFE.search(submissions.shown(value))


def test_a_problem_prints_escaped_even_where_a_message_was_not():
    problem = submissions.Problem("sub\x1b/file\u202e", "raw \x1b[2J\nforged", 3)
    assert str(problem) == "sub\\x1b/file\\u202e:3: raw \\x1b[2J\\nforged"


# ----------------------------------------------------------------------------- 2. unbounded reports


def _many_files(folder):
    for i in range(3000):
        (folder / f"junk{i}.txt").write_text("x")
    return "… and 2980 more files not allowed"


def _many_keys(folder):
    path = folder / "submission.toml"
    extra = "".join(f"key{i} = {i}\n" for i in range(4000))
    path.write_text(path.read_text().replace("[model]\n", "[model]\n" + extra))
    return "… and 3980 more unknown fields"


def _many_bad_tags(folder):
    path = folder / "predictions" / "biored.tags"
    path.write_text("\n".join("B-NotALabel " + line for line in path.read_text().splitlines()) + "\n")
    return "more problems in predictions/biored.tags"


def _many_field_problems(folder):
    path = folder / "submission.toml"
    parse = ", ".join(f'"{"x" * (i % 5 + 1)}{i}" = -1' for i in range(30))
    text = (
        path.read_text()
        + f"\n[datasets.biored.generation]\ngenerated_tokens_per_sentence = 1.0\nparse = {{ {parse} }}\n"
    )
    path.write_text(text)
    return "more field problems"


@pytest.mark.parametrize(
    "flood", [_many_files, _many_keys, _many_bad_tags, _many_field_problems], ids=lambda f: f.__name__[1:]
)
def test_reports_list_a_fixed_number_per_kind_then_count_the_rest(folder, data_dir, flood):
    summary = flood(folder)
    result = submissions.validate(folder, data_dir)
    text = problems(result)
    assert summary in text, text
    assert len(result.problems) <= 2 * (submissions.MAX_PROBLEMS_PER_KIND + 1), text
    assert len(text) < 20_000


# ----------------------------------------------------------------------------- 3. lax types


@pytest.mark.parametrize(
    "where, value",
    [
        (("schema_version",), True),
        (("schema_version",), 1.0),
        (("schema_version",), "1"),
        (("datasets", "biored", "claimed"), {"strict_f1": "1.0"}),
        (("datasets", "biored", "claimed"), {"strict_f1": True}),
        (("datasets", "biored", "timing", "wall_seconds"), "4.7"),
        (("datasets", "biored", "timing", "peak_memory_bytes"), True),
        (("datasets", "biored", "timing", "peak_memory_bytes"), 1.0e9),
        (("datasets", "biored", "timing", "sentences_per_second"), float("nan")),
        (("datasets", "biored", "timing", "cost_usd"), float("inf")),
        (("model", "parameters"), 1000.0),
        (("model", "parameters"), "1000"),
        (("hardware", "num_devices"), True),
        (("training", "quantization_bits"), 4.0),
        (("training", "epochs"), True),
        (("training", "lora_rank"), "8"),
        (("model", "id"), 7),
    ],
    ids=lambda value: repr(value)[:20],
)
def test_strict_types_refuse_what_lax_mode_converts(tmp_path, split, data_dir, where, value):
    folder = make_folder(tmp_path, split, change=lambda d: _set(d, where, value))
    refused(folder, data_dir, f"field {'.'.join(where)}")


def test_integers_are_accepted_where_floats_are_expected(tmp_path, split, data_dir):
    """TOML writes `wall_seconds = 273` for a float; the gold tags re-score to exactly 1."""

    def whole_numbers(data):
        entry = data["datasets"]["biored"]
        entry["timing"] = {"wall_seconds": 273, "sentences_per_second": 1, "cost_usd": 0}
        entry["claimed"] = {"strict_f1": 1, "strict_precision": 1, "strict_recall": 1}
        entry["generation"] = {"generated_tokens_per_sentence": 3}

    folder = make_folder(tmp_path, split, change=whole_numbers)
    result = submissions.validate(folder, data_dir)
    assert result.ok, problems(result)


@pytest.mark.parametrize(
    "key, factor, ok",
    [
        ("sentences_per_second", 1.02, False),
        ("sentences_per_second", 0.5, False),
        ("sentences_per_second", 1.005, True),
        ("tokens_per_second", 1.5, False),
        ("tokens_per_second", 0.995, True),
    ],
)
def test_timing_that_contradicts_itself_is_refused(tmp_path, split, data_dir, key, factor, ok):
    def scale(data):
        timing = data["datasets"]["biored"]["timing"]
        timing[key] = timing[key] * factor

    folder = make_folder(tmp_path, split, change=scale)
    result = submissions.validate(folder, data_dir)
    if ok:
        assert result.ok, problems(result)
    else:
        refused(folder, data_dir, f"field datasets.biored.timing.{key}: ", "(they must agree within 1%)")


# ----------------------------------------------------------------------------- 4. model ids


@pytest.fixture(scope="module")
def seeded_db(data_dir, tmp_path_factory):
    """A store holding the committed minilm-l6-quick-cpu submission: the owner of `minilm-l6`."""
    db = tmp_path_factory.mktemp("seeded") / "board.duckdb"
    assert submissions.ingest(SEEDS / "minilm-l6-quick-cpu", db, data_dir=data_dir).status == "stored"
    return db


@pytest.fixture
def board(seeded_db, tmp_path):
    db = tmp_path / "board.duckdb"
    shutil.copyfile(seeded_db, db)
    return db


def test_a_submission_cannot_take_over_a_model_id_another_submission_registered(board, tmp_path, split, data_dir):
    with Store(board) as store:
        before_model = store.model("minilm-l6")
    before = store_rows(board)
    thief = make_folder(tmp_path, split, name="aaa-minilm-takeover", model_id="minilm-l6")
    assert submissions.validate(thief, data_dir).ok  # valid on its own: the store is what refuses it
    with pytest.raises(NerbenchError) as err:
        submissions.ingest(thief, board, data_dir=data_dir, replace=True)
    message = str(err.value)
    for fragment in ("aaa-minilm-takeover", "'minilm-l6'", "submission 'minilm-l6-quick-cpu'", "choose another"):
        assert fragment in message, message
    assert store_rows(board) == before
    with Store(board) as store:
        assert store.model("minilm-l6") == before_model


def test_a_submission_cannot_take_over_a_model_id_a_local_run_registered(tmp_path, split, data_dir):
    db = tmp_path / "local.duckdb"
    gold = [list(s.tags) for s in split.sentences]
    with Store(db) as store:
        store.save_run(
            RunResult(
                model={"id": MODEL, "family": "encoder", "hf_id": "org/base", "licence": "mit"},
                record=run_record(MODEL, "encoder", "biored", split.sha256),
                predictions=gold,
                predictions_sha256=predictions_sha256(gold),
                metrics=[],
            )
        )
    before = store_rows(db)
    with pytest.raises(NerbenchError, match=r"belongs to a local `nerbench eval` run.*'hostile-sub' may not take it"):
        submissions.ingest(make_folder(tmp_path, split), db, data_dir=data_dir)
    assert store_rows(db) == before


def test_folders_claiming_one_model_id_together_are_decided_by_path_not_order(tmp_path, split, data_dir):
    first = make_folder(tmp_path, split, name="claim-a", model_id="shared-model")
    second = make_folder(tmp_path, split, name="claim-b", model_id="shared-model")
    outcomes = []
    for order in ([first, second], [second, first]):
        batch = submissions.validate_all(order, data_dir)
        assert [v.path for v in batch.validations] == [first, second]
        assert batch.validations[0].ok
        text = problems(batch.validations[1])
        assert "field model.id: 'shared-model' is claimed by submission 'claim-a'" in text, text
        db = tmp_path / f"board-{order[0].name}.duckdb"
        report = submissions.ingest_all(order, db, data_dir=data_dir)
        assert [p for p, _ in report.outcomes] == [first] and [p for p, _ in report.failures] == [second]
        assert "not ingested" in report.failures[0][1] and not report.ok
        with Store(db) as store:
            model = store.model("shared-model")
            outcomes.append((model["meta"]["submission"], sorted(r["record"].submission.id for r in store.runs())))
    assert outcomes == [("claim-a", ["claim-a"])] * 2


def test_a_folder_claiming_a_seed_model_id_beside_the_seeds_is_refused(board, tmp_path, split, data_dir):
    """Ingesting the committed owner again together with a newcomer: the owner's record stays."""
    thief = make_folder(tmp_path, split, name="zz-minilm-takeover", model_id="minilm-l6")
    before = store_rows(board)
    for order in ([SEEDS / "minilm-l6-quick-cpu", thief], [thief, SEEDS / "minilm-l6-quick-cpu"]):
        report = submissions.ingest_all(order, board, data_dir=data_dir)
        assert [(p.name, o.status) for p, o in report.outcomes] == [("minilm-l6-quick-cpu", "unchanged")]
        assert [p for p, _ in report.failures] == [thief]
        assert store_rows(board) == before


def test_the_same_submission_id_twice_is_refused(tmp_path, split, data_dir):
    one = make_folder(tmp_path / "a", split)
    two = make_folder(tmp_path / "b", split, model_id="other-model")
    batch = submissions.validate_all([two, one], data_dir)
    assert batch.validations[0].ok and not batch.ok
    assert "field id: submission 'hostile-sub' is also the folder" in problems(batch.validations[1])


def test_re_ingesting_ones_own_submission_with_replace_still_works(tmp_path, split, data_dir):
    folder = make_folder(tmp_path, split)
    db = tmp_path / "board.duckdb"
    assert submissions.ingest(folder, db, data_dir=data_dir).status == "stored"
    path = folder / "submission.toml"
    path.write_text(path.read_text().replace('licence = "mit"', 'licence = "apache-2.0"'))
    before = store_rows(db)
    with pytest.raises(NerbenchError, match="already stored with other content"):
        submissions.ingest(folder, db, data_dir=data_dir)
    assert store_rows(db) == before
    assert submissions.ingest(folder, db, data_dir=data_dir, replace=True).status == "replaced"
    with Store(db) as store:
        assert store.model(MODEL)["licence"] == "apache-2.0"


def test_a_refused_ingest_leaves_every_row_of_the_store_as_it_was(board, tmp_path, split, data_dir):
    before = store_rows(board)
    invalid = make_folder(tmp_path / "x", split, change=lambda d: d.update(schema_version=True))
    clash = make_folder(tmp_path / "y", split, name="minilm-clash", model_id="minilm-l6")
    for folder in (invalid, clash):
        with pytest.raises(NerbenchError, match="not ingested"):
            submissions.ingest(folder, board, data_dir=data_dir, replace=True)
        assert store_rows(board) == before


# ----------------------------------------------------------------------------- 5. deep structures


@pytest.mark.parametrize(
    "text",
    [
        "deep." * 5000 + "x = 1\n",
        "[" + ".".join(["t"] * 5000) + "]\nx = 1\n",
        "nest = " + "[" * 3000 + "]" * 3000 + "\n",
        "nest = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "[datasets.biored.timing." + ".".join(["t"] * 2000) + "]\n",
        "nest = " + "[" * 9 + "]" * 9 + "\n",
    ],
    ids=["dotted-keys", "table-header", "arrays", "inline-tables", "under-a-dataset", "just-too-deep"],
)
def test_deep_structures_are_refused_by_name_not_a_crash(folder, data_dir, text):
    path = folder / "submission.toml"
    original = path.read_text()
    if text.startswith("[datasets"):
        path.write_text(original + text)
    else:
        path.write_text(text + original)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)  # what a fresh interpreter has: deep enough to fail a recursive walk
    try:
        found = refused(folder, data_dir, "submission.toml: ")
    finally:
        sys.setrecursionlimit(limit)
    assert "nest" in found and str(submissions.MAX_TOML_DEPTH) in found, found


# ----------------------------------------------------------------------------- 6. names


@pytest.mark.parametrize("name", ["con", "nul", "aux", "prn", "com1", "lpt9", "con.txt", "nul.v2"])
def test_windows_device_names_are_refused_as_submission_and_model_ids(tmp_path, split, data_dir, name):
    folder = make_folder(tmp_path, split, name=name, model_id=name)
    text = refused(folder, data_dir, "folder name: ", "field id: ", "field model.id: ")
    assert text.count("reserved device name on Windows") >= 3, text


@pytest.mark.parametrize("name", ["con.tags", "NUL.tags", "Com1.dev.tags", "lpt1.tags", "aux"])
def test_windows_device_names_are_refused_as_file_names(folder, data_dir, name):
    (folder / "predictions" / name).write_text("O\n")
    refused(folder, data_dir, f"predictions/{name}: a reserved device name on Windows")


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"# About\n\nsome \x00 text\n", "README.md:3: binary content (a NUL byte)"),
        (b"# About\n\xff\xfe\n", "README.md:2: not valid UTF-8 (byte 0xff)"),
        (b"# About\n\nbad \x1b[2J\n", "README.md:3: control character '\\x1b' (U+001B)"),
        (b"# About\n\xc2\x9b\n", "README.md:2: control character '\\x9b' (U+009B)"),
    ],
    ids=["nul", "utf8", "esc", "c1"],
)
def test_a_readme_that_is_not_text_is_refused_by_name(folder, data_dir, content, expected):
    (folder / "README.md").write_bytes(content)
    refused(folder, data_dir, expected)


def test_a_readme_with_tabs_and_crlf_is_text(folder, data_dir):
    (folder / "README.md").write_bytes("# Über\r\n\tindented — fine\r\n".encode())
    assert submissions.validate(folder, data_dir).ok


# ----------------------------------------------------------------------------- 7. careless use


@pytest.mark.parametrize("given", [".", "predictions/.."])
def test_validate_a_relative_path_inside_the_folder(folder, data_dir, monkeypatch, given):
    monkeypatch.chdir(folder)
    result = submissions.validate(given, data_dir)
    assert result.ok, problems(result)
    assert result.folder_name == NAME and result.name == NAME


def test_paths_that_are_not_submission_folders_are_skipped(folder, tmp_path, data_dir):
    readme = tmp_path / "subs" / "README.md"
    readme.write_text("# Submissions\n")
    empty = tmp_path / "subs" / "not-a-submission"
    empty.mkdir()
    missing = tmp_path / "subs" / "typo"
    link = tmp_path / "subs" / "linked"
    link.symlink_to(folder)
    folders, skipped = submissions.submission_folders([readme, folder, empty, missing, link, folder])
    assert folders == sorted([folder, missing, link], key=lambda p: os.path.abspath(p))
    assert [(s.path, s.reason) for s in skipped] == [(readme, "not a folder"), (empty, "no submission.toml in it")]
    assert all("skipped: not a submission folder" in str(s) for s in skipped)

    batch = submissions.validate_all([readme, folder, empty], data_dir)
    assert batch.ok and [v.path for v in batch.validations] == [folder] and len(batch.skipped) == 2
    db = tmp_path / "board.duckdb"
    report = submissions.ingest_all([readme, folder, empty], db, data_dir=data_dir)
    assert report.ok and [(p, o.status) for p, o in report.outcomes] == [(folder, "stored")]
    # A typo or a symbolic link is not skipped: it is refused.
    report = submissions.ingest_all([missing, link], db, data_dir=data_dir)
    assert not report.ok and len(report.failures) == 2
    assert "no such submission folder" in report.failures[1][1] or "no such submission folder" in report.failures[0][1]


@pytest.mark.parametrize("unreadable", ["submission.toml", "predictions/biored.tags", "README.md"])
def test_a_file_that_cannot_be_read_is_a_problem_not_a_traceback(folder, data_dir, monkeypatch, unreadable):
    """As a user other than the owner, `chmod 000` on a file made validate raise PermissionError."""
    (folder / "README.md").write_text("A test submission.\n", encoding="utf-8")
    target = (folder / unreadable).resolve()
    real = Path.read_bytes

    def read_bytes(self):
        if self.resolve() == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    refused(folder, data_dir, unreadable, "cannot be read (Permission denied)")


def test_a_nul_byte_in_a_path_is_a_problem_not_a_traceback(data_dir):
    assert not submissions.validate("bad\x00name", data_dir).ok
    kept, skipped = submissions.submission_folders(["bad\x00name"])
    assert len(kept) + len(skipped) == 1
