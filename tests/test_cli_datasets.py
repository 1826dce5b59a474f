import json
import shutil
import sys

import pytest
from typer.testing import CliRunner

import nerbench.cli
from nerbench.datasets import DEFAULT_SUITE, REGISTRY, get_dataset
from nerbench.errors import NerbenchError


@pytest.fixture(scope="module")
def app():
    if "datasets" not in [group.name for group in nerbench.cli.app.registered_groups]:
        nerbench.cli._register()
    return nerbench.cli.app


@pytest.fixture(scope="module")
def manifest(data_manifest) -> dict:
    return data_manifest


def _run(app, *args, env=None):
    return CliRunner().invoke(app, ["datasets", *args], env={"COLUMNS": "200", **(env or {})})


def _copy(data_dir, root, name):
    shutil.copytree(data_dir / name, root / name)
    for path in (root / name).iterdir():
        path.chmod(0o644)


def test_list_json_gives_statistics_of_every_split(app, data_dir, manifest):
    result = _run(app, "list", "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["dataset"], r["split"]) for r in rows] == [
        (name, split.name) for name, info in REGISTRY.items() for split in info.splits
    ]
    for row in rows:
        if row["dataset"] == "reddit_impacts":
            assert row["status"] == "missing" and "sentences" not in row
            continue
        entry = manifest["datasets"][row["dataset"]][row["split"]]
        assert row["status"] == "ok"
        for key in (
            "sentences",
            "tokens",
            "entity_mentions_per_type",
            "entities_ge3_tokens",
            "entities_ge3_tokens_share",
        ):
            assert row[key] == entry[key], (row["dataset"], row["split"], key)


def test_list_table_shows_missing_sets_without_failing(app, data_dir, tmp_path):
    _copy(data_dir, tmp_path, "ncbi_disease")
    result = _run(app, "list", env={"NERBENCH_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ncbi_test = next(line for line in lines if "ncbi_disease" in line and "test" in line)
    assert "ok" in ncbi_test and "940" in ncbi_test and "Disease 960" in ncbi_test
    assert any("jnlpba" in line and "missing" in line for line in lines)


def test_show_json(app, data_dir):
    result = _run(app, "show", "bc5cdr", "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["labels"] == ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    assert [s["sha256"] for s in record["splits"]] == [s.sha256 for s in get_dataset("bc5cdr").splits]
    assert [(row["split"], row["status"], row["sentences"]) for row in record["local"]] == [
        ("train", "ok", 4560),
        ("dev", "ok", 4581),
        ("test", "ok", 4797),
    ]


def test_show_reddit_impacts_says_it_is_not_public(app, tmp_path):
    result = _run(app, "show", "reddit_impacts", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "public: no" in result.output and "missing" in result.output
    assert "request" in result.output and "from its authors" in result.output


def test_unknown_dataset_is_a_one_line_error_with_exit_code_2(app, monkeypatch, capsys):
    result = _run(app, "show", "conll2003")
    assert isinstance(result.exception, NerbenchError)
    assert "unknown dataset 'conll2003'" in str(result.exception)
    monkeypatch.setattr(sys, "argv", ["nerbench", "datasets", "verify", "conll2003"])
    with pytest.raises(SystemExit) as info:
        nerbench.cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'conll2003'" in err and "Traceback" not in err


def test_verify_default_suite_passes_on_the_shared_data(app, data_dir):
    result = _run(app, "verify", "--json", "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted({r["dataset"] for r in rows}) == sorted(DEFAULT_SUITE)
    assert {r["status"] for r in rows} == {"ok"}


def test_verify_exits_1_on_modified_or_missing(app, data_dir, tmp_path):
    _copy(data_dir, tmp_path, "biored")
    (tmp_path / "biored" / "dev.conll").write_text("x\tO\n")
    result = _run(app, "verify", "biored", "--json", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert [r["status"] for r in json.loads(result.output)] == ["ok", "modified", "ok"]
    (tmp_path / "biored" / "dev.conll").unlink()
    result = _run(app, "verify", "biored", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "missing" in result.output
    assert _run(app, "verify", "reddit_impacts", "--data-dir", str(tmp_path)).exit_code == 1


def test_fetch_from_a_file_mirror(app, data_dir, tmp_path):
    target = tmp_path / "cache"
    result = _run(app, "fetch", "linnaeus", "--mirror", data_dir.as_uri(), "--data-dir", str(target))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"fetching into {target}"
    assert lines[3].startswith(f"linnaeus/test.conll: fetched (from {data_dir.as_uri()}/linnaeus/test.conll, ")
    assert lines[-1] == f"3 files in {target}: 3 fetched"
    for split in ("train", "dev", "test"):
        name = f"{split}.conll"
        assert (target / "linnaeus" / name).read_bytes() == (data_dir / "linnaeus" / name).read_bytes()
    again = _run(
        app, "fetch", "linnaeus", "--json", "--data-dir", str(target), env={"NERBENCH_DATA_MIRROR": data_dir.as_uri()}
    )
    assert again.exit_code == 0, again.output
    # Progress goes to stderr so that stdout stays pure JSON.
    assert [(r["action"], r["ok"]) for r in json.loads(again.stdout)] == [("present", True)] * 3
    assert "linnaeus/train.conll: present" in again.stderr


def test_fetch_reports_every_file_and_exits_1_when_one_could_not_be_placed(app, data_dir, tmp_path):
    mirror = tmp_path / "mirror"
    _copy(data_dir, mirror, "biored")
    (mirror / "biored" / "dev.conll").unlink()
    (mirror / "biored" / "test.docs").write_text("x\n")
    target = tmp_path / "cache"
    result = _run(app, "fetch", "biored", "--mirror", mirror.as_uri(), "--data-dir", str(target), "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [(r["split"], r["kind"], r["action"]) for r in rows] == [
        ("train", "conll", "fetched"),
        ("train", "docs", "fetched"),
        ("dev", "conll", "failed"),
        ("test", "conll", "fetched"),
        ("test", "docs", "different"),
    ]
    err = result.stderr.splitlines()
    assert err[3].startswith(f"biored/dev.conll: failed: {mirror.as_uri()}/biored/dev.conll: download failed")
    assert err[5].startswith("biored/test.docs: different: sha256 ")
    assert err[-2:] == [
        f"5 files in {target}: 3 fetched, 1 different, 1 failed",
        "not placed: biored/dev.conll, biored/test.docs",
    ]
    assert sorted(p.name for p in (target / "biored").iterdir()) == ["test.conll", "train.conll", "train.docs"]


def test_fetch_split_option(app, data_dir, tmp_path):
    target = tmp_path / "cache"
    args = ["fetch", "ncbi_disease", "bc2gm", "--split", "test", "--mirror", data_dir.as_uri()]
    result = _run(app, *args, "--data-dir", str(target), "--json")
    assert result.exit_code == 0, result.output
    assert [(r["dataset"], r["split"], r["kind"]) for r in json.loads(result.stdout)] == [
        ("ncbi_disease", "test", "conll"),
        ("ncbi_disease", "test", "docs"),
        ("bc2gm", "test", "conll"),
    ]
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*.*")) == [
        "bc2gm/test.conll",
        "ncbi_disease/test.conll",
        "ncbi_disease/test.docs",
    ]
    result = _run(app, "fetch", "ncbi_disease", "--split", "valid", "--data-dir", str(target))
    assert isinstance(result.exception, NerbenchError)
    assert "unknown split 'valid'; splits: train, dev, test" in str(result.exception)


def test_fetch_without_sources_reports_each_split(app, tmp_path):
    env = {"NERBENCH_DATA_MIRROR": "", "NERBENCH_SOURCE_URL": (tmp_path / "raw").as_uri()}
    result = _run(app, "fetch", "chemprot", "--data-dir", str(tmp_path / "cache"), env=env)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split(":")[0] for line in lines[1:4]] == [f"chemprot/{s}.conll" for s in ("train", "dev", "test")]
    assert all(": failed: " in line for line in lines[1:4])
    assert "chemprot_data/processed_data/json/dev.json: download failed" in lines[2]
    assert lines[-1] == "not placed: chemprot/train.conll, chemprot/dev.conll, chemprot/test.conll"


def test_show_names_the_build_and_the_sidecar(app, tmp_path):
    result = _run(app, "show", "jnlpba", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "(fetch: build jnlpba_genia_train)" in result.output
    assert f"sidecar: train.docs sha256 {get_dataset('jnlpba').split('train').docs.sha256}" in result.output


@pytest.mark.parametrize("columns", [80, 100, 200])
def test_list_fits_the_terminal_without_cutting_names_or_counts(app, data_dir, columns):
    """Old code cut counts ('sentenc…') and wrapped the mentions into ~100 lines at 80 columns."""
    result = _run(app, "list", "--data-dir", str(data_dir), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= columns and "…" not in result.output
    assert len(lines) <= 60
    flat = " ".join(line.replace("│", " ").replace("┃", " ") for line in lines).split()
    for row in _overview(data_dir):
        assert row.status.dataset in flat
        if row.statistics is not None:
            for count in (row.statistics.sentences, row.statistics.tokens, row.statistics.long_entities):
                assert f"{count:,}" in flat, (columns, row.status.dataset, row.status.split)
            for name, count in row.statistics.mentions_per_type.items():
                assert name in " ".join(flat) and f"{count:,}" in " ".join(flat)


def test_list_at_80_columns_puts_mentions_per_type_in_a_table_of_their_own(app, data_dir):
    result = _run(app, "list", "--data-dir", str(data_dir), env={"COLUMNS": "80"})
    lines = result.output.splitlines()
    ncbi_test = next(line for line in lines if line.startswith("ncbi_disease") and " test " in line)
    assert ncbi_test.split()[:6] == ["ncbi_disease", "test", "ok", "940", "24,497", "960"]
    start = next(i for i, line in enumerate(lines) if "Entity mentions per type" in line)
    per_type = [line.strip("│ ").split() for line in lines[start:]]
    assert [cells for cells in per_type if cells[:1] == ["ncbi_disease"]] == [
        ["ncbi_disease", "│", "Disease", "│", "5,134", "│", "787", "│", "960"]
    ]


def _overview(data_dir):
    from nerbench.datasets import overview

    return overview(REGISTRY, data_dir)
