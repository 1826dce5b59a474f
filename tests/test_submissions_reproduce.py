"""`nerbench reproduce`: a submission that names its weights is re-run under the timing protocol,
compared tag by tag with what it submitted, and stored as a measured run linked to it; its
[weights] section is checked like every other field of submission.toml."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerbench import shards as sh
from nerbench.cli import _register, app
from nerbench.errors import NerbenchError
from nerbench.pipeline import reproduce as rp
from nerbench.record import Submitted
from nerbench.site import build_site
from nerbench.store import Store
from nerbench.submissions import TOML_NAME, ingest, validate
from nerbench.tracks import track_of
from tests._submitted import naming_local_weights, packaged
from tests._tiny_models import NCBI_LABELS, save_tiny_bert

REVISION = "0123456789abcdef0123456789abcdef01234567"
SUBMISSION = "minilm-reproduce-cpu"


@pytest.fixture(scope="module")
def submitted(tmp_path_factory, data_dir) -> Path:
    """A submission packaged from a stored run of a local checkpoint on MiniLM's tokenizer, naming it
    (copied into its weights/ folder) as its weights."""
    root = tmp_path_factory.mktemp("reproduce")
    checkpoint = save_tiny_bert(root / "minilm-token", NCBI_LABELS)  # MiniLM's tokenizer, a tiny random BERT
    folder = packaged(root, str(checkpoint), SUBMISSION, "minilm-reproduce", data_dir)
    return naming_local_weights(folder, checkpoint)


def test_a_local_minilm_submission_is_reproduced_on_cpu_and_shown_as_such(submitted, data_dir, tmp_path):
    v = validate(submitted, data_dir)
    assert v.ok, v.problems
    db = tmp_path / "site.duckdb"
    assert ingest(submitted, db, data_dir=data_dir).status == "stored"

    (done,) = rp.reproduce(
        submitted, db=db, data_dir=data_dir, device="cpu", runs_dir=tmp_path / "runs", allow_random_init=True
    )
    assert done.status == "stored" and done.dataset == "ncbi_disease"
    link = done.link
    assert link["submission"] == SUBMISSION and link["content_sha256"] == v.content_sha256
    assert link["agreement"] == 1.0 and link["differing_tags"] == 0 and link["f1_delta"] == 0.0
    assert link["reproduced"] is True and link["rule"] == sh.REPRODUCED_RULE

    with Store(db) as store:
        run = store.run(done.run_id)
        timing = store.timing(done.run_id)
        (ingested,) = store.runs_of_submission(SUBMISSION)
    # nerbench's own measurement, under the submission's model id, never self-reported and never reference
    assert run["model_id"] == "minilm-reproduce" and run["source"] != "submission" and not run["self_reported"]
    assert run["record"].submission is None and run["record"].protocol is not None
    assert run["details"]["reproduces"] == link
    track = track_of(run["record"], timing, run["self_reported"])
    assert (track.timed_by, track.hardware) == ("nerbench", "CPU")
    assert ingested["run_id"] != done.run_id  # the submission's own run stays

    # A second reproduce finds the linked run and does not measure it again.
    (again,) = rp.reproduce(
        submitted, db=db, data_dir=data_dir, device="cpu", runs_dir=tmp_path / "runs", allow_random_init=True
    )
    assert (again.status, again.run_id, again.link) == ("skipped", done.run_id, link)

    # The re-run counts as the submission's: its model id is not taken from it, so a changed
    # submission can still replace its own runs.
    (submitted.parent / "changed").mkdir()
    changed = submitted.parent / "changed" / SUBMISSION
    shutil.copytree(submitted, changed)
    (changed / "README.md").write_text("Now with a README.\n", encoding="utf-8")
    assert ingest(changed, db, data_dir=data_dir, replace=True).status == "replaced"
    assert ingest(submitted, db, data_dir=data_dir, replace=True).status == "replaced"

    out = tmp_path / "site"
    build_site(db, out, data_dir=data_dir, parallel=False)
    (page,) = (out / "models").glob("minilm-reproduce-*.html")
    html = page.read_text(encoding="utf-8")
    assert "reproduced on a CPU (CPU" in html and "agreement 100.0%, ΔF1 +0.000" in html
    assert f"by run {done.run_id}" in html  # the submission's own run card points at the re-run
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'class="mark repro"' in index and "reproduced on a CPU" in index
    assert '<span class="mark ref" title=' not in html and "not ref · CPU" in html  # a CPU run is never reference


def test_the_cli_prints_the_comparison_and_exits_1_when_not_reproduced(submitted, data_dir, tmp_path, monkeypatch):
    # The tags of 30 sentences flipped to B-Disease: far below the 99.5% agreement the rule asks.
    flipped = tmp_path / SUBMISSION
    shutil.copytree(submitted, flipped)
    tags = (flipped / "predictions" / "ncbi_disease.tags").read_text(encoding="utf-8").split("\n")
    tags[:30] = [" ".join("B-Disease" for _ in line.split(" ")) if line else line for line in tags[:30]]
    (flipped / "predictions" / "ncbi_disease.tags").write_text("\n".join(tags), encoding="utf-8")
    toml = (flipped / TOML_NAME).read_text(encoding="utf-8")
    toml = (
        toml.split("[datasets.ncbi_disease.claimed]")[0]
        + "[datasets.ncbi_disease.timing]"
        + toml.split("[datasets.ncbi_disease.timing]")[1]
    )
    (flipped / TOML_NAME).write_text(toml, encoding="utf-8")
    assert validate(flipped, data_dir).ok
    real = rp.reproduce
    monkeypatch.setattr(rp, "reproduce", lambda *a, **kw: real(*a, **kw, allow_random_init=True))
    _register()
    db = tmp_path / "cli.duckdb"
    args = [
        "reproduce",
        str(flipped),
        "--db",
        str(db),
        "--data-dir",
        str(data_dir),
        "--device",
        "cpu",
        "--json",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--shards",
        str(tmp_path / "shards"),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    (row,) = json.loads(result.stdout)
    assert row["reproduced"] is False and row["agreement"] < sh.MIN_AGREEMENT and row["status"] == "stored"
    assert row["device_name"].startswith("CPU")
    with Store(db) as store:
        assert store.run(row["run_id"])["details"]["reproduces"]["reproduced"] is False
    # The shard says the same, and a store holding the submission takes it as not reproduced.
    assert row["shard"] == str(tmp_path / "shards" / f"ncbi_disease-{row['run_id']}.shard.json")
    fresh = tmp_path / "fresh.duckdb"
    assert ingest(flipped, fresh, data_dir=data_dir).status == "stored"
    (outcome,) = sh.ingest_shards([tmp_path / "shards"], fresh, data_dir=data_dir, reproductions_only=True)
    assert outcome.status == "stored", outcome.message
    with Store(fresh) as store:
        assert store.run(row["run_id"])["details"]["reproduces"]["reproduced"] is False


def test_the_rule():
    assert sh.is_reproduced(1.0, 0.0) and sh.is_reproduced(0.995, -0.005)
    assert not sh.is_reproduced(0.9949, 0.0) and not sh.is_reproduced(1.0, 0.0051)
    found = sh.agreement([["O", "B-Disease"], ["O"]], [["O", "I-Disease"], ["O"]], 0.5, 0.4)
    assert (found.tokens, found.differing, round(found.f1_delta, 6), found.reproduced) == (3, 1, -0.1, False)
    with pytest.raises(NerbenchError, match="sentence 1: 1 tags re-predicted, but 2 submitted"):
        sh.agreement([["O", "O"]], [["O"]], 0.0, 0.0)


def test_a_submission_without_weights_cannot_be_reproduced(data_dir, tmp_path):
    seed = Path(__file__).resolve().parent.parent / "submissions" / "minilm-l6-quick-cpu"
    with pytest.raises(NerbenchError, match="names no weights"):
        rp.reproduce(seed, db=tmp_path / "x.duckdb", data_dir=data_dir)


def test_submitted_without_weights_serialises_as_before():
    declared = Submitted(id="x", content_sha256="0" * 64, training={"regime": "full"}, hardware={"device": "CPU"})
    assert "weights" not in declared.model_dump(mode="json")
    named = declared.model_copy(update={"weights": {"hf_id": "org/name", "revision": REVISION}})
    assert named.model_dump(mode="json")["weights"] == {"hf_id": "org/name", "revision": REVISION}


# ----------------------------------------------------------------------------- [weights] schema


def _folder(tmp_path: Path, weights: str, *, weights_dir: bool = False) -> Path:
    """A copy of a seed submission (no weights) with a [weights] section appended."""
    seed = Path(__file__).resolve().parent.parent / "submissions" / "minilm-l6-quick-cpu"
    folder = tmp_path / "minilm-l6-quick-cpu"
    shutil.copytree(seed, folder)
    with open(folder / TOML_NAME, "a", encoding="utf-8") as toml:
        toml.write("\n" + weights)
    if weights_dir:
        (folder / "weights" / "m").mkdir(parents=True)
        (folder / "weights" / "m" / "config.json").write_text("{}", encoding="utf-8")
    return folder


def _problems(folder: Path, data_dir: Path) -> str:
    return "\n".join(str(p) for p in validate(folder, data_dir).problems)


def test_hub_weights_pinned_by_revision_are_valid(tmp_path, data_dir):
    folder = _folder(
        tmp_path,
        f'[weights]\nhf_id = "org/base"\nrevision = "{REVISION}"\nadapter_id = "org/adapter"\n'
        f'adapter_revision = "{REVISION}"\n',
    )
    v = validate(folder, data_dir)
    assert v.ok, v.problems
    assert v.submission is not None and v.submission.weights is not None
    assert v.submission.weights.adapter_id == "org/adapter"


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        ('hf_id = "org/base"\nrevision = "main"', "field weights.revision: 'main' is not a pinned revision"),
        ('hf_id = "org/base"\nrevision = "' + REVISION.upper() + '"', "is not a pinned revision"),
        ('hf_id = "org/base"', "hf_id needs revision"),
        (f'hf_id = "org/base"\nrevision = "{REVISION}"\ntrust_remote_code = true', "never runs a model's own code"),
        (f'hf_id = "org/base"\nrevision = "{REVISION}"\nadapter_id = "org/a"', "come together or not at all"),
        (f'hf_id = "../etc"\nrevision = "{REVISION}"', "is not a Hugging Face id"),
        (f'hf_id = "org/base"\nrevision = "{REVISION}"\nweights_format = "pickle"', "unknown field"),
        ('path = "../outside"', "is not a folder inside the submission's weights/ folder"),
        ('path = "weights/../../outside"', "is not a folder inside the submission's weights/ folder"),
        ('path = "/abs/weights"', "is not a folder inside the submission's weights/ folder"),
        ('path = "weights/.hidden"', "is not a folder inside the submission's weights/ folder"),
        ('path = "weights/missing"', "field weights.path: 'weights/missing' is not a folder in the submission"),
        (f'path = "weights/m"\nhf_id = "org/base"\nrevision = "{REVISION}"', "not both or neither"),
        ("trust_remote_code = false", "not both or neither"),
    ],
)
def test_bad_weights_are_refused_naming_the_field(tmp_path, data_dir, weights, expected):
    problems = _problems(_folder(tmp_path, "[weights]\n" + weights + "\n"), data_dir)
    assert expected in problems and "submission.toml" in problems


def test_a_weights_folder_must_be_named_and_may_not_link_out(tmp_path, data_dir):
    # Named: valid.
    named = _folder(tmp_path / "a", '[weights]\npath = "weights/m"\n', weights_dir=True)
    assert validate(named, data_dir).ok
    # Not named by [weights]: an unexpected folder.
    seed = Path(__file__).resolve().parent.parent / "submissions" / "minilm-l6-quick-cpu"
    unnamed = tmp_path / "b" / "minilm-l6-quick-cpu"
    shutil.copytree(seed, unnamed)
    (unnamed / "weights").mkdir()
    assert "weights: unexpected folder: no [weights].path names it" in _problems(unnamed, data_dir)
    # A link inside weights/ (to a folder outside the submission) is refused, like any link.
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = _folder(tmp_path / "c", '[weights]\npath = "weights/out"\n', weights_dir=True)
    os.symlink(outside, linked / "weights" / "out")
    problems = _problems(linked, data_dir)
    assert "weights/out: is a symbolic link: links are not allowed in a submission" in problems
