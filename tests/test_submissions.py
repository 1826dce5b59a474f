"""Submissions: packaging, validation by re-scoring, ingestion; every hostile input refused with its
own message and nothing stored; concurrent and killed ingests leave the store consistent."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tomllib

import pytest
import tomli_w
from typer.testing import CliRunner

import nerbench.cli as cli
from nerbench import scoring, submissions
from nerbench.datasets import REGISTRY, load_split
from nerbench.errors import NerbenchError
from nerbench.record import Decoding, Lora
from nerbench.store import RunResult, Store, predictions_sha256, predictions_text

from _records import run_record

DATASETS = ("ncbi_disease", "biored")
TIMING = {
    "wall_seconds": 2.0,
    "sentences_per_second": 470.0,
    "tokens_per_second": 12000.0,
    "peak_memory_bytes": 10**9,
    "device_name": "CPU: Test CPU (2 threads)",
    "num_devices": 1,
    "reference_hardware": False,
    "device_hours": 2.0 / 3600,
    "cost_usd": 0.0000453,
}


def timing_for(split, wall_seconds=2.0):
    """TIMING for one split: its throughputs are what its size and the wall time make them."""
    tokens = sum(len(s.tokens) for s in split.sentences)
    return dict(
        TIMING,
        wall_seconds=wall_seconds,
        sentences_per_second=len(split.sentences) / wall_seconds,
        tokens_per_second=tokens / wall_seconds,
    )


def _predictions(gold):
    """Test data, not a model's output: the gold tags with every fourth sentence emptied."""
    return [["O"] * len(t) if i % 4 == 0 else list(t) for i, t in enumerate(gold)]


@pytest.fixture(scope="module")
def source_store(data_dir, tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "local.duckdb"
    run_ids = []
    with Store(db) as store:
        for name in DATASETS:
            split = load_split(name, "test", data_dir)
            gold = [list(s.tags) for s in split.sentences]
            pred = _predictions(gold)
            scores = scoring.score(gold, pred, bootstrap=50)
            run_ids.append(
                store.save_run(
                    RunResult(
                        model={
                            "id": "test-encoder",
                            "family": "encoder",
                            "hf_id": "org/test-encoder",
                            "parameters": 1000,
                            "licence": "mit",
                        },
                        record=run_record(
                            "test-encoder", "encoder", name, split.sha256, profile="quick", epochs=1, head="token"
                        ),
                        predictions=pred,
                        predictions_sha256=predictions_sha256(pred),
                        metrics=scores.metric_rows(),
                        timing=timing_for(split),
                    )
                )
            )
    return db, run_ids


@pytest.fixture(scope="module")
def packaged(source_store, tmp_path_factory):
    db, run_ids = source_store
    return submissions.package(
        run_ids, tmp_path_factory.mktemp("subs") / "test-encoder-quick", db, submitted_by="nerbench tests"
    )


@pytest.fixture
def sub(packaged, tmp_path):
    """A fresh copy of the valid submission, to be broken by each test."""
    target = tmp_path / "subs" / packaged.name
    shutil.copytree(packaged, target)
    return target


def edit_toml(folder, change):
    path = folder / "submission.toml"
    data = tomllib.loads(path.read_text())
    change(data)
    path.write_text(tomli_w.dumps(data))


def refused(folder, data_dir, tmp_path, *expected):
    """Validation lists every expected message; ingest refuses and stores nothing."""
    result = submissions.validate(folder, data_dir)
    text = "\n".join(str(p) for p in result.problems)
    assert not result.ok
    for fragment in expected:
        assert fragment in text, text
    db = tmp_path / "ingest.duckdb"
    with pytest.raises(NerbenchError, match="not ingested"):
        submissions.ingest(folder, db, data_dir=data_dir)
    assert not db.exists()  # validation comes first: the store is never even opened
    return text


# ----------------------------------------------------------------------------- the valid path


def test_packaged_submission_is_valid_and_rescores_to_the_stored_numbers(packaged, source_store, data_dir):
    result = submissions.validate(packaged, data_dir)
    assert result.ok, result.problems
    assert sorted(result.scores) == sorted(DATASETS)
    db, run_ids = source_store
    with Store(db) as store:
        for run_id in run_ids:
            run = store.run(run_id)
            stored = {(m["scheme"], m["entity_type"], m["length_bucket"]): m for m in store.metrics(run_id)}
            stored_f1 = stored[("strict", "*", "*")]["f1"]
            assert result.scores[run["dataset"]].strict.f1 == pytest.approx(stored_f1, abs=1e-12)
    files = sorted(p.relative_to(packaged).as_posix() for p in packaged.rglob("*") if p.is_file())
    assert files == ["predictions/biored.tags", "predictions/ncbi_disease.tags", "submission.toml"]
    # Tags only: not one token of the corpus is in the submission.
    first_token = load_split("ncbi_disease", "test", data_dir).sentences[0].tokens[0]
    assert first_token not in (packaged / "predictions" / "ncbi_disease.tags").read_text().split()


def test_ingest_stores_self_reported_runs_and_is_idempotent(sub, data_dir, tmp_path):
    db = tmp_path / "board.duckdb"
    first = submissions.ingest(sub, db, data_dir=data_dir)
    assert first.status == "stored" and len(first.run_ids) == 2
    with Store(db) as store:
        runs = store.runs()
        assert {r["source"] for r in runs} == {"submission"} and all(r["self_reported"] for r in runs)
        timing = store.timing(first.run_ids[0])
        assert timing["memory_kind"] == "self-reported" and not timing["reference_hardware"]
    again = submissions.ingest(sub, db, data_dir=data_dir)
    assert again.status == "unchanged" and again.run_ids == first.run_ids
    with Store(db) as store:
        assert len(store.runs()) == 2


def test_test_intervals_resample_documents_where_the_split_names_them(sub, data_dir, tmp_path):
    db = tmp_path / "board.duckdb"
    submissions.ingest(sub, db, data_dir=data_dir)
    split = load_split("biored", "test", data_dir)
    assert split.documents is not None  # biored ships test.docs
    pred = [line.split(" ") if line else [] for line in (sub / "predictions" / "biored.tags").read_text().splitlines()]
    expected = scoring.score(
        [list(s.tags) for s in split.sentences],
        pred,
        types=REGISTRY["biored"].entity_types,
        bootstrap=scoring.BOOTSTRAP_RESAMPLES,
        seed=scoring.BOOTSTRAP_SEED,
        units=split.documents,
    )
    with Store(db) as store:
        (run,) = [r for r in store.runs() if r["dataset"] == "biored"]
        strict = {(m["scheme"], m["entity_type"], m["length_bucket"]): m for m in store.metrics(run["run_id"])}
    assert run["record"].bootstrap.unit == "document"
    assert (strict[("strict", "*", "*")]["ci_low"], strict[("strict", "*", "*")]["ci_high"]) == pytest.approx(
        expected.ci95["f1"]
    )


def test_a_submission_claiming_the_reference_h100_is_neither_reference_nor_priced_from_the_table(
    sub, data_dir, tmp_path
):
    """Only runs nerbench timed itself on the reference hardware are flagged reference: a claimed
    device keeps its timing (shown as self-reported) and its own claimed cost, or no cost at all."""

    def claim_h100(d, cost):
        d["hardware"] = {"device": "NVIDIA H100 80GB HBM3", "num_devices": 1}
        for entry in d["datasets"].values():
            entry["timing"].pop("cost_usd", None)
            if cost is not None:
                entry["timing"]["cost_usd"] = cost

    for cost in (0.0125, None):
        edit_toml(sub, lambda d, cost=cost: claim_h100(d, cost))
        db = tmp_path / f"board-{cost}.duckdb"
        outcome = submissions.ingest(sub, db, data_dir=data_dir)
        with Store(db) as store:
            for run_id in outcome.run_ids:
                timing = store.timing(run_id)
                assert timing["device_name"] == "NVIDIA H100 80GB HBM3" and timing["wall_seconds"] == 2.0
                assert timing["reference_hardware"] is False and timing["memory_kind"] == "self-reported"
                assert timing["price_per_device_hour"] is None
                assert timing["cost_usd"] == cost
                if cost is None:
                    assert timing["price_source"] is None and timing["cost_per_1k_sentences_usd"] is None
                else:
                    assert timing["price_source"] == "self-reported cost"
                    assert timing["cost_per_1k_sentences_usd"] == pytest.approx(cost / timing["sentences"] * 1000)
            (row, *_) = store.summary()
            assert row["reference_hardware"] is False and row["cost_usd"] == cost


def test_changed_submission_with_the_same_id_needs_replace(sub, data_dir, tmp_path):
    db = tmp_path / "board.duckdb"
    submissions.ingest(sub, db, data_dir=data_dir)
    edit_toml(sub, lambda d: d["model"].update(description="a new description"))
    with pytest.raises(NerbenchError, match="already stored with other content.*--replace"):
        submissions.ingest(sub, db, data_dir=data_dir)
    replaced = submissions.ingest(sub, db, data_dir=data_dir, replace=True)
    assert replaced.status == "replaced"
    with Store(db) as store:
        assert sorted(r["run_id"] for r in store.runs()) == sorted(replaced.run_ids)


def test_html_in_free_text_is_stored_as_text(sub, data_dir, tmp_path):
    script = "<script>alert('x')</script><b>bold</b>"
    edit_toml(sub, lambda d: (d["model"].update(description=script), d.update(submitted_by=script)))
    db = tmp_path / "board.duckdb"
    outcome = submissions.ingest(sub, db, data_dir=data_dir)
    with Store(db) as store:
        assert store.model("test-encoder")["meta"]["description"] == script
        assert store.run(outcome.run_ids[0])["details"]["submitted_by"] == script


# ----------------------------------------------------------------------------- dev predictions

DEV_FILE = "predictions/biored.dev.tags"  # biored's dev split is the smallest (269 sentences)


@pytest.fixture(scope="module")
def biored_dev(data_dir):
    """The biored dev split's gold tags and the test-data predictions made from them."""
    split = load_split("biored", "dev", data_dir)
    gold = [list(s.tags) for s in split.sentences]
    return split, gold, _predictions(gold)


def with_dev(folder, predictions, **fields):
    """Add biored dev predictions (tags only) and their fields to a submission."""
    (folder / DEV_FILE).write_text(predictions_text(predictions))
    registered = REGISTRY["biored"].split("dev").sha256
    entry = {"dev_predictions": DEV_FILE, "dev_sha256": registered} | fields
    edit_toml(folder, lambda d: d["datasets"]["biored"].update({k: v for k, v in entry.items() if v is not None}))


def test_dev_predictions_are_rescored_into_the_runs_details(sub, data_dir, tmp_path, biored_dev):
    split, gold, pred = biored_dev
    without = submissions.validate(sub, data_dir).content_sha256
    with_dev(sub, pred)
    result = submissions.validate(sub, data_dir)
    assert result.ok, result.problems
    assert result.content_sha256 != without  # the dev file is part of the submission's identity
    expected = scoring.score(gold, pred, types=REGISTRY["biored"].entity_types, bootstrap=0)
    assert 0 < expected.strict.f1 < 1 and len(split.sentences) == 269
    db = tmp_path / "board.duckdb"
    outcome = submissions.ingest(sub, db, data_dir=data_dir)
    with Store(db) as store:
        details = {run["dataset"]: run["details"] for run in store.runs()}
    assert details["biored"]["dev"] == {
        "strict_f1": expected.strict.f1,
        "long_f1": expected.long_f1,
        "sentences": 269,
        "sha256": REGISTRY["biored"].split("dev").sha256,
        "source": "submission dev predictions, re-scored by nerbench",
    }
    assert "dev" not in details["ncbi_disease"] and len(outcome.run_ids) == 2
    # A changed dev file is a changed submission.
    (sub / DEV_FILE).write_text(predictions_text(gold))
    with pytest.raises(NerbenchError, match="already stored with other content"):
        submissions.ingest(sub, db, data_dir=data_dir)
    submissions.ingest(sub, db, data_dir=data_dir, replace=True)
    with Store(db) as store:
        (run,) = [r for r in store.runs() if r["dataset"] == "biored"]
        assert run["details"]["dev"]["strict_f1"] == 1.0


def test_dev_predictions_for_another_split_sha256_are_refused(sub, data_dir, tmp_path, biored_dev):
    test_sha = REGISTRY["biored"].split("test").sha256
    with_dev(sub, biored_dev[2], dev_sha256=test_sha)
    refused(sub, data_dir, tmp_path, f"field datasets.biored.dev_sha256: {test_sha} is not the registered dev split")


def test_a_missing_dev_file_is_refused_by_name(sub, data_dir, tmp_path, biored_dev):
    with_dev(sub, biored_dev[2])
    (sub / DEV_FILE).unlink()
    refused(
        sub,
        data_dir,
        tmp_path,
        "predictions/biored.dev.tags: missing (named in submission.toml, field datasets.biored.dev_predictions)",
    )


def test_a_dev_file_with_the_wrong_number_of_sentences_is_refused(sub, data_dir, tmp_path, biored_dev):
    with_dev(sub, biored_dev[2][:-1])
    refused(sub, data_dir, tmp_path, "biored.dev.tags:269: 268 lines, but the dev split has 269 sentences (1 missing)")
    with_dev(sub, biored_dev[2] + [["O"]])
    refused(sub, data_dir, tmp_path, "biored.dev.tags:270: 270 lines, but the dev split has 269 sentences (1 extra)")


def test_dev_fields_come_together_and_name_their_own_file(sub, data_dir, tmp_path, biored_dev):
    with_dev(sub, biored_dev[2])
    edit_toml(sub, lambda d: d["datasets"]["biored"].pop("dev_sha256"))
    refused(sub, data_dir, tmp_path, "field datasets.biored.dev_sha256: missing (dev_predictions is given")
    with_dev(sub, biored_dev[2])
    edit_toml(sub, lambda d: d["datasets"]["biored"].pop("dev_predictions"))
    refused(
        sub,
        data_dir,
        tmp_path,
        "field datasets.biored.dev_predictions: missing (dev_sha256 is given",
        "predictions/biored.dev.tags: unexpected file: no dataset in submission.toml names it",
    )
    with_dev(sub, biored_dev[2], dev_predictions="predictions/ncbi_disease.dev.tags")
    refused(sub, data_dir, tmp_path, "field datasets.biored.dev_predictions: must be 'predictions/biored.dev.tags'")
    with_dev(sub, biored_dev[2], dev_predictions="predictions/biored.tags")
    refused(
        sub,
        data_dir,
        tmp_path,
        "field datasets.biored.dev_predictions: 'predictions/biored.tags' is not 'predictions/<dataset>.dev.tags'",
    )


def test_dev_tags_are_checked_like_test_tags(sub, data_dir, tmp_path, biored_dev):
    pred = [list(tags) for tags in biored_dev[2]]
    pred[4] = ["B-NotALabel"] + pred[4][1:]
    pred[9] = pred[9][:-1]
    with_dev(sub, pred)
    refused(
        sub,
        data_dir,
        tmp_path,
        "biored.dev.tags:5: tag 'B-NotALabel' is not one of the dataset's labels",
        "biored.dev.tags:10: ",
    )


# ----------------------------------------------------------------------------- hostile file sets


def test_invalid_folder_name(sub, data_dir, tmp_path):
    bad = sub.parent / "Bad..Name"
    sub.rename(bad)
    refused(bad, data_dir, tmp_path, "folder name: 'Bad..Name' is not a valid id", "differs from the folder name")


def test_path_traversal_in_fields(sub, data_dir, tmp_path):
    def change(d):
        d["id"] = "../../etc"
        d["datasets"]["ncbi_disease"]["predictions"] = "../../../etc/passwd"

    edit_toml(sub, change)
    refused(
        sub,
        data_dir,
        tmp_path,
        "field id: '../../etc' is not a valid id",
        "field datasets.ncbi_disease.predictions: '../../../etc/passwd' is not 'predictions/<dataset>.tags'",
    )
    edit_toml(
        sub,
        lambda d: (d.update(id=sub.name), d["datasets"]["ncbi_disease"].update(predictions="predictions/biored.tags")),
    )
    refused(sub, data_dir, tmp_path, "field datasets.ncbi_disease.predictions: must be 'predictions/ncbi_disease.tags'")


def test_symlink_to_a_file(sub, data_dir, tmp_path):
    (sub / "predictions" / "biored.tags").unlink()
    os.symlink("/etc/passwd", sub / "predictions" / "biored.tags")
    refused(sub, data_dir, tmp_path, "biored.tags: is a symbolic link", "biored.tags: missing")


def test_symlink_to_a_folder_and_dangling(sub, data_dir, tmp_path):
    shutil.rmtree(sub / "predictions")
    os.symlink(tmp_path, sub / "predictions")
    os.symlink(tmp_path / "nothing-here", sub / "README.md")
    refused(sub, data_dir, tmp_path, "predictions: is a symbolic link", "README.md: is a symbolic link")


def test_the_folder_itself_a_symlink(sub, data_dir, tmp_path):
    link = tmp_path / "linked-sub"
    os.symlink(sub, link)
    refused(link, data_dir, tmp_path, "is a symbolic link: a submission is a plain folder")


def test_hidden_and_extra_files(sub, data_dir, tmp_path):
    (sub / ".hidden").write_text("x")
    (sub / "notes.txt").write_text("x")
    (sub / "predictions" / "bc5cdr.tags").write_text("O\n")
    refused(
        sub,
        data_dir,
        tmp_path,
        ".hidden: hidden files are not allowed",
        "notes.txt: unexpected file",
        "bc5cdr.tags: unexpected file: no dataset in submission.toml names it",
    )


def test_file_larger_than_the_limit(sub, data_dir, tmp_path):
    with open(sub / "predictions" / "biored.tags", "r+b") as handle:
        handle.truncate(submissions.MAX_TAGS_BYTES + 1)  # sparse: no real 16 MB written
    refused(sub, data_dir, tmp_path, f"is {submissions.MAX_TAGS_BYTES + 1} bytes, more than the limit")


def test_deeply_nested_folder(sub, data_dir, tmp_path):
    deep = sub / "predictions" / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "x.tags").write_text("O\n")
    refused(sub, data_dir, tmp_path, "predictions/a: unexpected folder")


def test_binary_garbage(sub, data_dir, tmp_path):
    (sub / "predictions" / "biored.tags").write_bytes(os.urandom(2000) + b"\x00")
    refused(sub, data_dir, tmp_path, "biored.tags:")


def test_invalid_utf8(sub, data_dir, tmp_path):
    path = sub / "predictions" / "ncbi_disease.tags"
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"O \xff\xfe O"
    path.write_bytes(b"\n".join(lines))
    refused(sub, data_dir, tmp_path, "ncbi_disease.tags:3: not valid UTF-8 (byte 0xff)")


def test_toml_bomb_and_huge_strings(sub, data_dir, tmp_path):
    toml = sub / "submission.toml"
    original = toml.read_text()
    toml.write_text(original + "\n# " + "x" * submissions.MAX_TOML_BYTES)
    refused(sub, data_dir, tmp_path, "submission.toml: is", "more than the limit of 65536")
    toml.write_text(original)
    edit_toml(sub, lambda d: d["model"].update(description="x" * 5000))
    refused(sub, data_dir, tmp_path, "field model.description: String should have at most 2000 characters")
    toml.write_text(original.replace("schema_version = 1", "schema_version = 1\nnest = " + "[" * 3000 + "]" * 3000))
    text = refused(sub, data_dir, tmp_path, "submission.toml")
    assert "nested too deeply" in text or "unknown field" in text or "not valid TOML" in text


def test_control_characters_and_bad_toml(sub, data_dir, tmp_path):
    edit_toml(sub, lambda d: d.update(submitted_by="evil\x1b[31m"))
    refused(sub, data_dir, tmp_path, r"field submitted_by: character '\x1b' (U+001B) at position 5 is not allowed")
    (sub / "submission.toml").write_text("id = 'a'\n[model\n")
    refused(sub, data_dir, tmp_path, "submission.toml:2: not valid TOML")


def test_unknown_schema_fields(sub, data_dir, tmp_path):
    edit_toml(sub, lambda d: (d["model"].update(backdoor=1), d.update(extra_table={"a": 1})))
    refused(sub, data_dir, tmp_path, "field model.backdoor: unknown field", "field extra_table: unknown field")


def test_wrong_split_sha256(sub, data_dir, tmp_path):
    edit_toml(sub, lambda d: d["datasets"]["biored"].update(sha256="0" * 64))
    refused(sub, data_dir, tmp_path, "field datasets.biored.sha256: 0000", "is not the registered test split")


def test_unknown_dataset(sub, data_dir, tmp_path):
    def change(d):
        d["datasets"]["no_such_set"] = dict(d["datasets"]["biored"], predictions="predictions/no_such_set.tags")

    edit_toml(sub, change)
    (sub / "predictions" / "no_such_set.tags").write_text("O\n")
    refused(sub, data_dir, tmp_path, "field datasets.no_such_set: unknown dataset")


def test_missing_and_extra_sentence_lines(sub, data_dir, tmp_path):
    path = sub / "predictions" / "biored.tags"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    refused(sub, data_dir, tmp_path, "biored.tags:273: 272 lines, but the test split has 273 sentences (1 missing)")
    path.write_text("\n".join(lines + ["O"]) + "\n")
    refused(sub, data_dir, tmp_path, "274 lines, but the test split has 273 sentences (1 extra)")


def test_wrong_tag_count_and_unknown_labels(sub, data_dir, tmp_path):
    path = sub / "predictions" / "ncbi_disease.tags"
    lines = path.read_text().splitlines()
    lines[4] = lines[4] + " O"
    lines[9] = lines[9].replace("O", "B-Gene", 1)
    path.write_text("\n".join(lines) + "\n")
    n = len(load_split("ncbi_disease", "test", data_dir).sentences[4].tokens)
    refused(
        sub,
        data_dir,
        tmp_path,
        f"ncbi_disease.tags:5: {n + 1} tags, but sentence 5 has {n} tokens",
        "ncbi_disease.tags:10: tag 'B-Gene' is not one of the dataset's labels",
    )


def test_claimed_scores_that_differ(sub, data_dir, tmp_path):
    edit_toml(sub, lambda d: d["datasets"]["ncbi_disease"]["claimed"].update(strict_f1=0.99))
    refused(
        sub,
        data_dir,
        tmp_path,
        "field datasets.ncbi_disease.claimed.strict_f1: claims 0.990000, but the predictions re-score to",
    )


def test_all_problems_are_reported_at_once(sub, data_dir, tmp_path):
    (sub / ".git").mkdir()
    edit_toml(sub, lambda d: d["datasets"]["biored"].update(sha256="1" * 64))
    (sub / "predictions" / "ncbi_disease.tags").write_text("O\n")
    text = refused(
        sub,
        data_dir,
        tmp_path,
        ".git: hidden files",
        "datasets.biored.sha256",
        "ncbi_disease.tags:2: 1 lines, but the test split has 940 sentences",
    )
    assert len(text.splitlines()) >= 3


# ----------------------------------------------------------------------------- command line


def test_cli_validate_and_ingest(sub, data_dir, tmp_path):
    cli._register()
    runner = CliRunner()
    summary = tmp_path / "summary.md"
    result = runner.invoke(cli.app, ["validate", str(sub), "--summary", str(summary), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "valid (2 datasets re-scored)" in result.output
    assert "test-encoder-quick" in summary.read_text() and "ncbi" in summary.read_text()
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(cli.app, ["ingest", str(sub), "--db", str(db), "--data-dir", str(data_dir)])
    assert result.exit_code == 0 and "stored (2 runs)" in result.output
    (sub / "extra.bin").write_bytes(b"\x00")
    result = runner.invoke(cli.app, ["validate", str(sub), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "extra.bin: unexpected file" in result.output


def test_submit_names_the_leaderboard_entry(source_store, tmp_path, data_dir):
    db, run_ids = source_store
    folder = submissions.package(run_ids, tmp_path / "test-encoder-full", db, model_id="test-encoder-full-recipe")
    assert 'id = "test-encoder-full-recipe"' in (folder / "submission.toml").read_text()
    store_db = tmp_path / "entries.duckdb"
    submissions.ingest(folder, store_db, data_dir=data_dir)
    with Store(store_db) as store:
        assert {r["model_id"] for r in store.runs_of_submission("test-encoder-full")} == {"test-encoder-full-recipe"}
    with pytest.raises(NerbenchError, match="--model-id: 'Bad Id' is not a valid id"):
        submissions.package(run_ids, tmp_path / "other", db, model_id="Bad Id")


def _results_table(db):
    cli._register()
    return CliRunner().invoke(cli.app, ["results", "--db", str(db)], env={"COLUMNS": "250"})


def test_submit_carries_an_llm_runs_lora_and_decoding_settings(data_dir, tmp_path):
    from nerbench.models.generative import ParseCounts

    parse = ParseCounts(sentences=940, lines=9000, matched=8000, missing=120, extra=700, malformed=300).to_dict()
    generation = {
        "generated_tokens_per_sentence": [150, 170],
        "generated_tokens_per_sentence_mean": 160.0,
        "sentence_latency_p50_s": 2.5,
        "sentence_latency_p95_s": 7.0,
        "stopped_at_limit": 3,
        "parse": parse,
    }
    split = load_split("ncbi_disease", "test", data_dir)
    pred = _predictions([list(s.tags) for s in split.sentences])
    db = tmp_path / "llm.duckdb"
    with Store(db) as store:
        run_id = store.save_run(
            RunResult(
                model={
                    "id": "test-llm",
                    "family": "llm",
                    "hf_id": "org/test-llm",
                    "parameters": 1000,
                    "licence": "mit",
                },
                record=run_record(
                    "test-llm",
                    family="llm",
                    dataset="ncbi_disease",
                    dataset_sha256=split.sha256,
                    head="generative",
                    quantization="nf4",
                    profile="quick",
                    epochs=1,
                    lora=Lora(r=16, alpha=32, dropout=0.05, target_modules=("q_proj",)),
                    decoding=Decoding(
                        max_new_tokens="per sentence: ceil(1.1 x longest single-label answer in tokens) + 8",
                        prompt="the paper's prompt",
                    ),
                ),
                predictions=pred,
                predictions_sha256=predictions_sha256(pred),
                metrics=scoring.score([list(s.tags) for s in split.sentences], pred, bootstrap=20).metric_rows(),
                timing=dict(timing_for(split), generation=generation),
            )
        )
    folder = submissions.package([run_id], tmp_path / "test-llm-generative", db)
    data = tomllib.loads((folder / "submission.toml").read_text())
    assert data["training"] == {
        "regime": "qlora",
        "head": "generative",
        "profile": "quick",
        "epochs": 1,
        "lora_rank": 16,
        "lora_alpha": 32,
        "quantization_bits": 4,
    }
    assert data["generation"]["decoding"] == "greedy"
    assert data["generation"]["max_new_tokens_rule"].startswith("per sentence: ceil(")
    assert data["datasets"]["ncbi_disease"]["generation"] == {
        "generated_tokens_per_sentence": 160.0,
        "sentence_latency_p50_s": 2.5,
        "sentence_latency_p95_s": 7.0,
        "stopped_at_limit": 3,
        "parse": parse,
    }
    entries = tmp_path / "entries.duckdb"
    submissions.ingest(folder, entries, data_dir=data_dir)
    with Store(entries) as store:
        (stored,) = store.runs_of_submission("test-llm-generative")
        run = store.run(stored["run_id"])
        assert run["record"].submission.generation == data["generation"]
        assert run["details"]["generation"]["parse"] == parse and run["details"]["generation"]["self_reported"]
    result = _results_table(entries)
    assert result.exit_code == 0 and "120/700/0/300" in result.output, result.output


def test_a_submissions_partial_parse_counts_are_shown_not_a_crash(sub, tmp_path, data_dir):
    def add_generation(data):
        data["training"]["head"] = "generative"
        data["datasets"]["ncbi_disease"]["generation"] = {
            "generated_tokens_per_sentence": 12.5,
            "parse": {"missing": 4},
        }

    edit_toml(sub, add_generation)
    entries = tmp_path / "partial.duckdb"
    submissions.ingest(sub, entries, data_dir=data_dir)
    result = _results_table(entries)
    assert result.exit_code == 0 and "4/?/?/?" in result.output, result.output


@pytest.mark.parametrize(
    "generation, field",
    [
        ({"generated_tokens_per_sentence": -1.0}, "generated_tokens_per_sentence"),
        ({"generated_tokens_per_sentence": 3.0, "parse": {"<b>": 1}}, "parse"),
        ({"generated_tokens_per_sentence": 3.0, "parse": {"missing": -2}}, "parse.missing"),
        ({"generated_tokens_per_sentence": 3.0, "text": "the generated answers"}, "text"),
    ],
)
def test_a_hostile_generation_section_is_refused_by_field(sub, data_dir, generation, field):
    edit_toml(sub, lambda data: data["datasets"]["ncbi_disease"].update(generation=generation))
    v = submissions.validate(sub, data_dir=data_dir)
    text = "\n".join(str(p) for p in v.problems)
    assert f"field datasets.ncbi_disease.generation.{field}" in text, text


def test_cli_submit_refuses_mixed_models(source_store, tmp_path):
    db, run_ids = source_store
    with pytest.raises(NerbenchError, match="already exists"):
        submissions.package(run_ids, tmp_path, db)
    with pytest.raises(NerbenchError, match="two runs on the same dataset"):
        submissions.package([run_ids[0], run_ids[0]], tmp_path / "dup", db)


# ----------------------------------------------------------------------------- reliability

_HOLD = """
import sys, time
from nerbench.store import Store
with Store(sys.argv[1]):
    print("holding", flush=True)
    time.sleep(60)
"""

_SLOW_INGEST = """
import sys, time
from pathlib import Path
from nerbench import store, submissions
real = store.Store._insert_predictions
def slow(self, run_id, predictions):
    real(self, run_id, predictions)
    Path(sys.argv[3]).write_text("inside the transaction")
    time.sleep(60)
store.Store._insert_predictions = slow
submissions.ingest(sys.argv[1], Path(sys.argv[2]), data_dir=Path(sys.argv[4]))
"""


def _python(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)], stdout=subprocess.PIPE, text=True
    )


def test_a_second_ingest_while_the_store_is_busy_fails_clearly(sub, data_dir, tmp_path):
    db = tmp_path / "busy.duckdb"
    Store(db).close()
    holder = _python(_HOLD, db)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(NerbenchError, match="in use by another process"):
            submissions.ingest(sub, db, data_dir=data_dir)
    finally:
        holder.kill()
        holder.wait()
    assert submissions.ingest(sub, db, data_dir=data_dir).status == "stored"


def test_a_killed_ingest_stores_nothing(sub, data_dir, tmp_path):
    db, marker = tmp_path / "killed.duckdb", tmp_path / "marker"
    process = _python(_SLOW_INGEST, sub, db, marker, data_dir)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the ingest ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    with Store(db) as store:
        assert store.runs() == [] and store._conn.execute("SELECT count(*) FROM predictions").fetchone() == (0,)
    assert submissions.ingest(sub, db, data_dir=data_dir).status == "stored"
