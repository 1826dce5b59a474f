"""`nerbench reproduce --shards`: a re-run comes back as a shard file that a maintainer commits under
leaderboard/reproduced/, and a fresh store (the site workflow's) ingests it after the submissions,
checking it against the stored submission and re-scoring it rather than taking its numbers on trust."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nerbench import scoring
from nerbench import shards as sh
from nerbench.cli import _register, app
from nerbench.datasets import load_split
from nerbench.pipeline import reproduce as rp
from nerbench.record import RunRecord
from nerbench.site import build_site
from nerbench.store import Store, predictions_sha256
from nerbench.submissions import ingest
from tests._submitted import naming_local_weights, packaged
from tests._tiny_models import NCBI_LABELS, save_tiny_bert
from tests.test_workflows import _fake_checkout, _outputs, _run_step, _step, _workflow

SUBMISSION = "minilm-shards-cpu"
MODEL = "minilm-shards"


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, data_dir) -> Path:
    """A submission of a tiny local checkpoint (MiniLM's tokenizer, random weights) that names it,
    copied into its weights/ folder, as its weights: reproducible on a CPU in seconds."""
    root = tmp_path_factory.mktemp("submitted")
    checkpoint = save_tiny_bert(root / "minilm-token", NCBI_LABELS)
    folder = packaged(root, str(checkpoint), SUBMISSION, MODEL, data_dir)
    return naming_local_weights(folder, checkpoint)


@pytest.fixture(scope="module")
def reference(submitted, data_dir, tmp_path_factory) -> dict[str, Any]:
    """What the reference workflow does: ingest the submission, reproduce it with --shards."""
    root = tmp_path_factory.mktemp("reference")
    db = root / "reference.duckdb"
    assert ingest(submitted, db, data_dir=data_dir).status == "stored"
    folder = root / "reproduced" / SUBMISSION
    (done,) = rp.reproduce(
        submitted,
        db=db,
        data_dir=data_dir,
        device="cpu",
        runs_dir=root / "runs",
        shards=folder,
        allow_random_init=True,
    )
    return {"db": db, "folder": folder, "done": done}


def test_reproduce_writes_one_shard_per_dataset_holding_the_linked_run(reference):
    done, folder = reference["done"], reference["folder"]
    assert done.status == "stored" and done.link["reproduced"] is True
    assert done.shard == folder / f"ncbi_disease-{done.run_id}.shard.json"
    assert sorted(folder.iterdir()) == [done.shard]  # atomic: no temporary file left beside it
    shard = sh.read_shard(done.shard)
    assert shard.run_id == done.run_id and shard.result.details["reproduces"] == done.link
    assert shard.cell == {"reproduces": SUBMISSION, "dataset": "ncbi_disease"}
    with Store(reference["db"]) as store:
        run = store.run(done.run_id)
        assert shard.result.created_at == run["created_at"]  # the measurement's time, in the store and the shard
        assert shard.result.timing == store.timing(done.run_id)


def test_a_stored_rerun_is_written_as_a_shard_from_the_store(reference, submitted, data_dir, tmp_path):
    again = tmp_path / "again"
    (done,) = rp.reproduce(
        submitted,
        db=reference["db"],
        data_dir=data_dir,
        device="cpu",
        runs_dir=tmp_path / "runs",
        shards=again,
        allow_random_init=True,
    )
    assert done.status == "skipped" and done.run_id == reference["done"].run_id and done.shard is not None
    first, second = (json.loads(p.read_text("utf-8")) for p in (reference["done"].shard, done.shard))
    for data in (first, second):  # the store lists metric rows in its own order
        data["run"]["metrics"].sort(key=lambda row: (row["scheme"], row["entity_type"], row["length_bucket"]))
    assert first == second


def _ingest_submission(submitted: Path, db: Path, data_dir: Path) -> list[str]:
    assert ingest(submitted, db, data_dir=data_dir).status == "stored"
    with Store(db) as store:
        return [r["run_id"] for r in store.runs()]


def test_a_fresh_store_shows_the_committed_reproduction_on_the_site(reference, submitted, data_dir, tmp_path):
    """The site workflow's order, through the command line: the submission, then the shards."""
    _register()
    db, runner = tmp_path / "site.duckdb", CliRunner()
    common = ["--db", str(db), "--data-dir", str(data_dir)]
    result = runner.invoke(app, ["ingest", *common, str(submitted)])
    assert result.exit_code == 0, result.output
    committed = shutil.copytree(reference["folder"], tmp_path / "leaderboard" / "reproduced" / SUBMISSION)
    result = runner.invoke(app, ["ingest", "--reproductions-only", *common, str(committed)])
    assert result.exit_code == 0, result.output
    run_id = reference["done"].run_id
    assert f"stored run {run_id}" in result.output
    result = runner.invoke(app, ["ingest", "--reproductions-only", *common, str(committed)])  # idempotent
    assert result.exit_code == 0 and "skipped" in result.output and "already stored" in result.output

    with Store(db) as store, Store(reference["db"]) as measured:
        run = store.run(run_id)
        assert run["details"]["reproduces"] == reference["done"].link
        assert store.metrics(run_id) == measured.metrics(run_id)
        assert not run["self_reported"] and run["source"] == "local"
    out = tmp_path / "site"
    build_site(db, out, data_dir=data_dir, parallel=False)
    (page,) = (out / "models").glob(f"{MODEL}-*.html")
    html = page.read_text(encoding="utf-8")
    assert "reproduced on a CPU (CPU" in html and "agreement 100.0%, ΔF1 +0.000" in html
    assert f"by run {run_id}" in html  # the submission's own run card points at the re-run
    assert '<span class="mark ref" title=' not in html and "not ref · CPU" in html  # reproduced, not reference
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'class="mark repro"' in index and "reproduced on a CPU" in index


def test_the_command_line_refuses_what_is_not_a_reproduction_shard(submitted, data_dir, tmp_path):
    _register()
    result = CliRunner().invoke(
        app, ["ingest", "--reproductions-only", "--db", str(tmp_path / "x.duckdb"), str(submitted)]
    )
    assert result.exit_code != 0 and "not a shard file, nor a folder of them" in str(result.exception)


# ----------------------------------------------------------------------------- tampered shards


def _strict_row(data: dict) -> int:
    rows = data["run"]["metrics"]
    return next(
        i for i, r in enumerate(rows) if (r["scheme"], r["entity_type"], r["length_bucket"]) == ("strict", "*", "*")
    )


def _flip(data: dict, sentences: int = 30) -> None:
    """Tag the first words of some sentences as diseases: other predictions (the hash made to match)."""
    predictions = data["run"]["predictions"]
    for tags in predictions[:sentences]:
        tags[0] = "B-Disease" if tags[0] != "B-Disease" else "O"
    data["run"]["predictions_sha256"] = predictions_sha256(predictions)


def _rescored(data: dict, data_dir: Path) -> None:
    """The metrics of the (changed) predictions, as nerbench's scorer gives them."""
    split = load_split("ncbi_disease", "test", data_dir)
    scores = scoring.score(
        [list(s.tags) for s in split.sentences],
        data["run"]["predictions"],
        types=("Disease",),
        units=split.documents,
    )
    data["run"]["metrics"] = [asdict(row) for row in scores.metric_rows()]


def _rerecorded(data: dict, **changes: Any) -> None:
    """A changed record, with the run id it hashes to (so that it reads as a whole shard)."""
    record = RunRecord.model_validate(data["run"]["record"] | changes)
    data["run"]["record"] = record.model_dump(mode="json")
    data["run_id"] = record.run_id


def _link(data: dict) -> dict:
    return data["run"]["details"]["reproduces"]


def _other_model(data: dict) -> None:
    _rerecorded(data, model_id="someone-else")
    data["run"]["model"]["id"] = "someone-else"


def _bootstrap(data: dict) -> None:
    _rerecorded(data, bootstrap=data["run"]["record"]["bootstrap"] | {"resamples": 5})


def _predictions_and_metrics(data: dict, data_dir: Path, sentences: int = 30) -> None:
    _flip(data, sentences)
    _rescored(data, data_dir)


TAMPERED: list[tuple[str, Callable[..., None], str]] = [
    (
        "F1 raised in the metrics",
        lambda d, _: d["run"]["metrics"][_strict_row(d)].update(f1=d["run"]["metrics"][_strict_row(d)]["f1"] + 0.1),
        "run.metrics[{strict}].f1 (strict/*/*)",
    ),
    (
        "predictions changed, the hash kept",
        lambda d, _: d["run"]["predictions"][0].__setitem__(0, "B-Disease"),
        "run.predictions_sha256",
    ),
    ("predictions changed, the hash made to match", lambda d, _: _flip(d), "run.metrics[{strict}].f1 (strict/*/*)"),
    ("predictions and metrics changed", _predictions_and_metrics, "run.details.reproduces.agreement"),
    ("agreement raised", lambda d, _: _link(d).update(agreement=1.5), "run.details.reproduces.agreement: 1.5"),
    (
        "wrong content digest",
        lambda d, _: _link(d).update(content_sha256="0" * 64),
        "run.details.reproduces.content_sha256",
    ),
    ("unknown submission", lambda d, _: _link(d).update(submission="nobody"), "'nobody' is not a stored submission"),
    ("not a reproduction", lambda d, _: d["run"]["details"].pop("reproduces"), "run.details.reproduces: missing"),
    ("stored as a submission's", lambda d, _: d["run"].update(source="submission"), "run.source: 'submission'"),
    ("self-reported", lambda d, _: d["run"].update(self_reported=True), "run.self_reported: true"),
    ("another model id", lambda d, _: _other_model(d), "run.record.model_id: 'someone-else'"),
    ("fewer resamples", lambda d, _: _bootstrap(d), "run.record.bootstrap"),
    (
        "a tag outside the labels",
        lambda d, _: (
            d["run"]["predictions"][0].__setitem__(0, "B-Gene"),
            d["run"].update(predictions_sha256=predictions_sha256(d["run"]["predictions"])),
        ),
        "run.predictions[0]: 'B-Gene' is not a ncbi_disease label",
    ),
]


def _tampered(shard: Path, folder: Path, change: Callable[..., None], data_dir: Path) -> Path:
    data = json.loads(shard.read_text("utf-8"))
    change(data, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shard.name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(("what", "change", "expected"), TAMPERED, ids=[t[0] for t in TAMPERED])
def test_a_tampered_shard_is_refused_naming_the_file_and_field(
    reference, submitted, data_dir, tmp_path, what, change, expected
):
    db = tmp_path / "site.duckdb"
    before = _ingest_submission(submitted, db, data_dir)
    original = json.loads(reference["done"].shard.read_text("utf-8"))
    path = _tampered(reference["done"].shard, tmp_path / "bad", change, data_dir)
    (outcome,) = sh.ingest_shards([path.parent], db, data_dir=data_dir, reproductions_only=True)
    assert outcome.status == "failed", what
    assert outcome.message.startswith(f"{path}: ") and expected.format(strict=_strict_row(original)) in outcome.message
    with Store(db) as store:  # nothing stored, nothing lost
        assert [r["run_id"] for r in store.runs()] == before


def test_a_reproduction_of_an_older_version_of_the_submission_is_refused(reference, submitted, data_dir, tmp_path):
    changed = shutil.copytree(submitted, tmp_path / "changed" / SUBMISSION)
    (changed / "README.md").write_text("Now with a README.\n", encoding="utf-8")
    db = tmp_path / "site.duckdb"
    before = _ingest_submission(changed, db, data_dir)
    (outcome,) = sh.ingest_shards([reference["folder"]], db, data_dir=data_dir, reproductions_only=True)
    assert outcome.status == "failed"
    assert f"{reference['done'].shard}: run.details.reproduces.content_sha256" in outcome.message
    assert "the submission changed since it was re-run" in outcome.message
    with Store(db) as store:
        assert [r["run_id"] for r in store.runs()] == before


def test_what_can_be_recomputed_is_stored_recomputed(reference, submitted, data_dir, tmp_path):
    """A consistent shard of other tags, claiming to be reproduced, with its own model description:
    stored as nerbench finds it (not reproduced), under the submission's model record."""

    def other_tags(data: dict, data_dir: Path) -> None:
        _predictions_and_metrics(data, data_dir, sentences=300)  # 300 of 24,497 tags: 98.8% identical
        data["run"]["model"]["description"] = "the best model ever"
        with Store(reference["db"]) as store:
            (run,) = store.runs_of_submission(SUBMISSION)
            submitted_tags, submitted_f1 = store.predictions(run["run_id"]), sh.strict_f1(store.metrics(run["run_id"]))
        found = sh.agreement(
            submitted_tags, data["run"]["predictions"], submitted_f1, sh.strict_f1(data["run"]["metrics"])
        )
        _link(data).update({k: v for k, v in asdict(found).items() if k in ("tokens", "submitted_f1", "reproduced_f1")})
        _link(data).update(agreement=found.share, f1_delta=found.f1_delta, differing_tags=found.differing)
        assert not found.reproduced and _link(data)["reproduced"] is True  # the claimed verdict is left as it was

    db = tmp_path / "site.duckdb"
    _ingest_submission(submitted, db, data_dir)
    path = _tampered(reference["done"].shard, tmp_path / "other", other_tags, data_dir)
    (outcome,) = sh.ingest_shards([path], db, data_dir=data_dir, reproductions_only=True)
    assert outcome.status == "stored", outcome.message
    with Store(db) as store:
        run = store.run(outcome.run_id)
        link = run["details"]["reproduces"]
        assert link["reproduced"] is False and link["rule"] == sh.REPRODUCED_RULE and link["differing_tags"] == 300
        model = store.model(MODEL)
        assert model is not None and model["meta"]["description"] != "the best model ever"
        assert model["meta"]["submission"] == SUBMISSION


# ----------------------------------------------------------------------------- the site workflow


def test_pages_ingests_the_committed_reproductions_and_names_a_refused_one(reference, submitted, data_dir, tmp_path):
    jobs = _workflow("pages.yml")["jobs"]
    steps = {
        name: _step(jobs["build"], name)["run"]
        for name in (
            "Ingest each submission folder on its own",
            "Ingest the reproductions, one folder per submission",
            "Build the site from the valid submissions",
        )
    }
    checkout = _fake_checkout(tmp_path, {})
    shutil.copytree(submitted, checkout / "submissions" / SUBMISSION)
    reproduced = checkout / "leaderboard" / "reproduced"
    shutil.copytree(reference["folder"], reproduced / SUBMISSION)
    # Sorted before the good one, so that it is checked (a stored run id is skipped, not re-checked).
    _tampered(
        reference["done"].shard, reproduced / "a-stale", lambda d, _: _link(d).update(content_sha256="0" * 64), data_dir
    )

    ingest, repro, build = steps.values()
    result = _run_step(ingest, checkout, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    (checkout / "output.txt").write_text("")
    result = _run_step(repro, checkout, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _outputs(checkout) == {"invalid": "1", "folders": '["leaderboard/reproduced/a-stale"]'}
    assert "::error title=Unchecked reproduction::leaderboard/reproduced/a-stale" in result.stdout
    assert "run.details.reproduces.content_sha256" in result.stdout + result.stderr
    assert f"stored run {reference['done'].run_id}" in result.stdout
    result = _run_step(build, checkout, data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    index = (checkout / "leaderboard" / "_site" / "index.html").read_text(encoding="utf-8")
    assert 'class="mark repro"' in index and "reproduced on a CPU" in index

    report = jobs["report"]["steps"][-1]["run"]
    env = {"INVALID": "0", "FOLDERS": "[]", "UNCHECKED": "1", "UNCHECKED_FOLDERS": '["leaderboard/reproduced/a-stale"]'}
    result = _run_step(report, checkout, data_dir, **env)
    assert result.returncode == 1 and "::error::1 reproduction folders hold refused shards" in result.stdout
    assert '- "leaderboard/reproduced/a-stale"' in (checkout / "summary.md").read_text()
    result = _run_step(report, checkout, data_dir, **(env | {"UNCHECKED": "0", "UNCHECKED_FOLDERS": "[]"}))
    assert result.returncode == 0, result.stdout + result.stderr
