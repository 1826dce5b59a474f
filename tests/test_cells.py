"""Cells, shards and launchers without a cluster: the `--suite paper` plan, shards written atomically
and ingested once, corrupt shards named, the plan's estimate from stored GPU runs, and two real
tiny cells through submitit's local executor (one of them cancelled, then rerun alone). The same
through a real one-node Slurm cluster: tests/test_slurm_cells.py."""

import json
import os
import time
from types import SimpleNamespace

import pytest

from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.pipeline import cells as cl
from nerbench.pipeline import launchers as ln
from nerbench.scoring import MetricRow
from nerbench.shards import SHARD_SUFFIX, ingest_shards, read_shard, write_shard
from nerbench.store import RunResult, Store, predictions_sha256

from _cells import TINY, cli, tiny_cells, write_tiny_data
from _records import run_record


def result(dataset="bc5cdr", **changes):
    predictions = [["O", "B-Chemical"], ["O"]]
    return RunResult(
        model={"id": "test-model", "family": "encoder"},
        record=run_record(dataset=dataset, **changes),
        predictions=predictions,
        predictions_sha256=predictions_sha256(predictions),
        metrics=[MetricRow("strict", "*", "*", 1.0, 1, 1, 1.0, 1.0, 1.0, None, None)],
        details={"training": None},
    )


# --------------------------------------------------------------------------- the plan


def test_each_family_is_planned_in_the_serving_conditions_it_offers():
    models = [("bert-large-uncased", "token"), ("llama-3.1-8b-instruct", "token")]
    cells = cl.matrix(models, ["bc5cdr"], servings=("as-trained", "as-deployed", "onnx"))
    served = {(c.model, c.serving) for c in cells}
    assert served == {
        ("bert-large-uncased", "as-trained"),
        ("bert-large-uncased", "as-deployed"),
        ("bert-large-uncased", "onnx"),
        ("llama-3.1-8b-instruct", "as-trained"),
        ("llama-3.1-8b-instruct", "as-deployed"),  # ONNX Runtime serves encoders only
    }
    # the conditions of one checkpoint are one job: trained once, served in each condition
    assert len(cl.jobs_of(cells)) == 2


def test_the_paper_suite_is_the_papers_matrix(tmp_path):
    cells = cl.suite_cells("paper", data_dir=tmp_path)
    assert len(cells) == 40  # (4 encoders + 2 LLMs x 2 heads) x 5 datasets
    pairs = {(c.model, c.head) for c in cells}
    assert pairs == {
        ("bert-large-uncased", "token"),
        ("bert-large-cased", "token"),
        ("biomedbert-large-uncased-abstract", "token"),
        ("deberta-v3-large", "token"),
        ("mistral-7b-instruct-v0.3", "generative"),
        ("mistral-7b-instruct-v0.3", "token"),
        ("llama-3.1-8b-instruct", "generative"),
        ("llama-3.1-8b-instruct", "token"),
    }
    assert {c.dataset for c in cells} == {"jnlpba", "bc5cdr", "biored", "chemprot", "ncbi_disease"}
    assert {(c.profile, c.seed, c.serving) for c in cells} == {("paper", 0, "as-trained")}
    assert len({c.key for c in cells}) == 40 and len(cl.jobs_of(cells)) == 40
    # Reddit-Impacts replaces its public stand-in where the user has all of its splits
    for split in ("train", "dev", "test"):
        (tmp_path / "reddit_impacts").mkdir(exist_ok=True)
        (tmp_path / "reddit_impacts" / f"{split}.conll").write_text("a\tO\n\n")
    assert {c.dataset for c in cl.suite_cells("paper", data_dir=tmp_path)} == {
        "jnlpba",
        "bc5cdr",
        "biored",
        "chemprot",
        "reddit_impacts",
    }


def test_serving_conditions_of_one_checkpoint_are_one_job():
    cells = cl.matrix([("smollm2-135m", "token")], ["ncbi_disease"], servings=["as-trained", "as-deployed"])
    assert [c.serving for c in cells] == ["as-trained", "as-deployed"]
    assert len(cl.jobs_of(cells)) == 1 and cells[0].key != cells[1].key
    # an encoder's conditions are one job too (one checkpoint, bf16 as deployed beside fp32 as trained)
    encoder = cl.matrix([("minilm-l6", None)], ["ncbi_disease"], servings=["as-trained", "as-deployed"])
    assert [c.serving for c in encoder] == ["as-trained", "as-deployed"] and len(cl.jobs_of(encoder)) == 1


def test_dry_run_prints_the_plan_and_submits_nothing(tmp_path):
    db = tmp_path / "r.duckdb"
    out = cli("eval", "--suite", "paper", "--launcher", "slurm", "--dry-run", "--partition", "gpu",
              "--max-parallel", "8", "--db", str(db), "--cells-dir", str(tmp_path / "cells"),
              "--data-dir", str(tmp_path / "nodata"))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "40 cells: 40 to run" in out.output
    assert "mistral-7b-instruct-v0.3 on biored, generative head, paper profile, seed 0" in out.output
    # no data here: no sentence to count, so neither a measured estimate nor a floor
    assert "estimate: none (no measured GPU speed stored for deberta-v3-large (token head)" in out.output
    assert "not estimated: 40 of 40 cells to run" in out.output
    assert "slurm: one job array of 40 job(s), partition gpu, 1 GPU(s) per cell" in out.output
    assert "dry run: nothing submitted" in out.output
    assert not db.exists() and not (tmp_path / "cells").exists()


def test_bad_options_are_refused(tmp_path):
    assert "--time" in cli("eval", "minilm-l6", "--launcher", "slurm", "--time", "soon", "--dry-run").output
    out = cli("eval", "minilm-l6", "--suite", "paper", "--dry-run")
    assert out.exit_code != 0 and "give no MODEL" in out.output
    out = cli("eval", "minilm-l6", "--launcher", "cloud", "--dry-run")
    assert out.exit_code != 0 and "unknown launcher 'cloud'" in out.output
    assert ln.minutes("90") == 90 and ln.minutes("1:30:00") == 90 and ln.minutes("1-00:00:00") == 1440


def test_the_estimate_comes_from_stored_gpu_runs(tmp_path, data_dir):
    db = tmp_path / "r.duckdb"
    training = {"sentences": {"train": 100, "dev": 50}, "wall_seconds": 15.0, "dev_f1": [0.5, 0.6, 0.7]}
    gpu = RunResult(
        model={"id": "bert-large-cased", "family": "encoder"},
        record=run_record("bert-large-cased", dataset="bc5cdr", profile="paper", device="cuda"),
        predictions=[["O"]],
        predictions_sha256=predictions_sha256([["O"]]),
        metrics=[],
        timing={"sentences_per_second": 100.0, "sentences": 1, "repeats": 3},
        details={"training": training},
    )
    with Store(db) as store:
        store.save_run(gpu)
    cells = cl.matrix([("bert-large-cased", None), ("bert-large-uncased", None)], ["ncbi_disease"], device="cuda",
                      data_dir=str(data_dir))  # fmt: skip
    plan = cl.plan(cells, tmp_path / "shards", db)
    cased, uncased = plan.cells
    # (5,424 train + 923 dev) x up to 20 epochs at 30 sentences/s, then 940 test sentences x 3 passes at 100/s
    assert cased.seconds == pytest.approx((5424 + 923) * 20 / 30 + 940 * 3 / 100)
    assert "5,424 train + 923 dev sentences x up to 20 epochs" in cased.trains
    assert uncased.seconds is None and "no measured GPU speed stored for bert-large-uncased" in uncased.note
    assert plan.gpu_hours == pytest.approx(cased.seconds / 3600)


def test_the_floor_counts_each_cells_flops_at_the_reference_peak():
    from nerbench.models.prompt_text import build_prompt
    from nerbench.pipeline.compute_bound import REFERENCE_PEAK_FLOPS, compute_bound

    s = lambda *words: SimpleNamespace(tokens=list(words), tags=["O"] * len(words))  # noqa: E731
    train, dev, test = [s("a", "b", "c"), s("d", "e")], [s("f")], [s("g", "h")]
    # full fine-tuning: 6N per training token, 2N per forward token (dev each epoch, three test passes)
    bound = compute_bound(parameters=10, recipe_kind="encoder-full-finetune", head="token", entity_types=["X"],
                          train=train, dev=dev, test=test, epochs=2)  # fmt: skip
    assert bound.flops == 6 * 10 * 2 * 5 + 2 * 10 * (2 * 1 + 3 * 2)
    assert bound.seconds == bound.flops / REFERENCE_PEAK_FLOPS
    # QLoRA: 4N; a model evaluated as it is: the test passes only
    qlora = compute_bound(parameters=10, recipe_kind="llm-qlora", head="token", entity_types=["X"],
                          train=train, dev=dev, test=test, epochs=2)  # fmt: skip
    assert qlora.flops == 4 * 10 * 2 * 5 + 2 * 10 * (2 * 1 + 3 * 2)
    as_is = compute_bound(parameters=10, recipe_kind=None, head="token", entity_types=["X"],
                          train=train, dev=dev, test=test, epochs=0)  # fmt: skip
    assert as_is.flops == 2 * 10 * 3 * 2
    # the generative head reads the paper's prompt and writes one `word:TAG` line per word
    gen = compute_bound(parameters=1, recipe_kind=None, head="generative", entity_types=["X"],
                        train=[], dev=[], test=[test[0]], epochs=0, test_passes=1)  # fmt: skip
    assert gen.forward_tokens == len(build_prompt(["g", "h"], ["X"]).split()) + 2


def test_the_dry_run_gives_a_floor_in_gpu_hours_and_usd_where_no_gpu_run_is_stored(tmp_path, data_dir):
    cells = cl.matrix([("bert-large-cased", None)], ["ncbi_disease"], device="cuda", data_dir=str(data_dir))
    plan = cl.plan(cells, tmp_path / "shards", tmp_path / "none.duckdb")
    (cell,) = plan.cells
    words = {
        split: sum(len(x.tokens) for x in load_split("ncbi_disease", split, data_dir).sentences)
        for split in ("train", "dev", "test")
    }
    n = 332_529_664  # bert-large-cased, from the registry
    flops = 6 * n * 20 * words["train"] + 2 * n * (20 * words["dev"] + 3 * words["test"])
    assert cell.seconds is None and cell.peak_seconds == pytest.approx(flops / 989.5e12)
    assert plan.peak_gpu_hours == pytest.approx(cell.peak_seconds / 3600)
    text = "\n".join(ln.describe_plan(plan, "slurm", ln.ClusterSettings()))
    assert f"floor, at the GPU peak: {plan.peak_gpu_hours:.1f} GPU-hours, $" in text
    assert "at $3.20 per GPU-hour" in text and "price: Hyperstack" in text


def test_a_stored_run_of_the_cell_is_not_planned_again(tmp_path):
    db = tmp_path / "r.duckdb"
    record = run_record("bert-large-cased", dataset="bc5cdr", profile="paper", device="cuda")
    stored = result(model_id="bert-large-cased", profile="paper", device="cuda")
    stored.model["id"] = "bert-large-cased"
    with Store(db) as store:
        store.save_run(stored)
    cells = cl.matrix([("bert-large-cased", None)], ["bc5cdr", "jnlpba"], device="cuda")
    first, second = cl.plan(cells, tmp_path / "shards", db).cells
    assert (first.status, first.run_id) == ("stored", record.run_id) and second.status == "to run"
    # the same cell on a CPU is another run
    assert cl.plan(cl.matrix([("bert-large-cased", None)], ["bc5cdr"], device="cpu"), tmp_path, db).cells[0].status == (
        "to run"
    )


# --------------------------------------------------------------------------- shards


def test_a_shard_round_trips_and_ingests_once(tmp_path):
    path = write_shard(tmp_path / f"a{SHARD_SUFFIX}", result(), cell={"model": "test-model"}, job={"job_id": "7_1"})
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    shard = read_shard(path)
    assert shard.run_id == result().record.run_id and shard.job == {"job_id": "7_1"}
    assert shard.result.predictions == result().predictions
    write_shard(tmp_path / f"b{SHARD_SUFFIX}", result("jnlpba"), cell={})
    db = tmp_path / "r.duckdb"
    first = ingest_shards([tmp_path], db)
    assert [o.status for o in first] == ["stored", "stored"]
    again = ingest_shards([tmp_path], db)
    assert [o.status for o in again] == ["skipped", "skipped"]
    with Store(db) as store:
        assert len(store.runs()) == 2
        assert store.metrics(shard.run_id)[0]["f1"] == 1.0


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda text: text[: len(text) // 2], "invalid JSON"),
        (lambda text: text.replace('"dataset":"bc5cdr"', '"dataset":"jnlpba"'), "its record hashes to"),
        (lambda text: text.replace('"B-Chemical"', '"B Chemical"'), "holds whitespace"),
        (lambda text: text.replace('"family":"encoder"', '"family":"rnn"', 1), "run.model.family"),
        (lambda text: text.replace('"split":"test"', '"split":"dev"'), "run.record.split"),
        (lambda text: text.replace('"nerbench-shard"', '"other"'), "not a nerbench shard"),
    ],
)
def test_a_corrupt_shard_is_refused_naming_its_file(tmp_path, damage, problem):
    path = write_shard(tmp_path / f"x{SHARD_SUFFIX}", result(), cell={})
    text = json.dumps(json.loads(path.read_text()), separators=(",", ":"))
    path.write_text(damage(text))
    with pytest.raises(NerbenchError, match=problem) as caught:
        read_shard(path)
    assert str(path) in str(caught.value)
    good = write_shard(tmp_path / f"y{SHARD_SUFFIX}", result("jnlpba"), cell={})
    out = cli("ingest", str(tmp_path), "--db", str(tmp_path / "r.duckdb"))
    assert out.exit_code != 0 and str(path) in out.output and f"{good}: stored" in out.output
    assert "1 of 2 shard(s) not ingested" in out.output


def test_a_write_cut_short_leaves_no_shard(tmp_path, monkeypatch):
    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_shard(tmp_path / f"a{SHARD_SUFFIX}", result(), cell={})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- real cells, local executor


@pytest.fixture(scope="module")
def tiny_data(data_dir, tmp_path_factory):
    return write_tiny_data(data_dir, tmp_path_factory.mktemp("data"))


def test_cells_through_submitits_local_executor_one_cancelled_then_rerun(tmp_path, tiny_data):
    folder, db = tmp_path / "cells", tmp_path / "r.duckdb"
    settings = ln.ClusterSettings(gpus_per_cell=0, time="20")
    cells = tiny_cells(tiny_data, tmp_path / "runs")
    plan = cl.plan(cells, ln.shard_dir(folder), db, gpus_per_cell=0)
    report = ln.launch(plan, "local", folder, settings, db, wait=False)
    assert len(report.submitted) == 2
    # while they run, a second launch plans them as running (or done) and submits nothing
    replan = cl.plan(cells, ln.shard_dir(folder), db, gpus_per_cell=0, running=ln.running(folder))
    assert {p.status for p in replan.cells} <= {"running", "shard"}
    assert ln.submit(replan, "local", folder, settings).submitted == []
    killed = report.submitted[0].job
    for _ in range(600):  # killed once it runs (its log is open): no shard
        if killed.paths.stdout.is_file():
            break
        time.sleep(0.1)
    killed.cancel()
    ln.collect(report, db, poll_seconds=1, say=lambda _: None)
    (failure,) = report.failed
    assert failure.cells == [cells[0]] and failure.stderr.is_file() and failure.stdout.parent.is_dir()
    assert [i.status for i in report.ingested] == ["stored"]
    assert not cells[0].shard_path(ln.shard_dir(folder)).exists()
    assert ln.running(folder) == {} and not list(ln.ticket_dir(folder).iterdir())  # ended jobs leave no ticket
    # the rerun submits the cancelled cell only
    plan = cl.plan(cells, ln.shard_dir(folder), db, gpus_per_cell=0)
    assert [p.status for p in plan.cells] == ["to run", "stored"]
    again = ln.launch(plan, "local", folder, settings, db, poll_seconds=1, say=lambda _: None)
    assert [s.cells for s in again.submitted] == [[cells[0]]] and not again.failed
    with Store(db) as store:
        runs = store.runs()
        assert sorted(r["dataset"] for r in runs) == ["bc5cdr", "ncbi_disease"]
        for run in runs:
            assert run["record"].training.budget == TINY and run["record"].device == "cpu"
            assert run["details"]["scheduler"]["scheduler"] == "local" and run["details"]["scheduler"]["job_id"]
            assert run["details"]["training"]["sentences"]["train"] == 24
            assert len(store.predictions(run["run_id"])) == 30
    assert [p.status for p in cl.plan(cells, ln.shard_dir(folder), db).cells] == ["stored", "stored"]
