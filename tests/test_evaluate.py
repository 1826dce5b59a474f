"""`nerbench eval` end to end on CPU: training, prediction under the timing protocol, scoring,
one transaction per dataset, resume. Small slices of real data; random-weight models only prove
the plumbing (their scores live in temporary stores and are never reported)."""

import pytest

from nerbench.conll import Sentence, read_conll, write_conll
from nerbench.errors import NerbenchError
from nerbench.pipeline import evaluate as ev
from nerbench.pipeline import profiles
from nerbench.pipeline.checkpoints import weights_sha256
from nerbench.record import Budget
from nerbench.store import Store, predictions_sha256

from _tiny_models import save_tiny_bert

TINY = Budget(name="tiny", epochs=1, max_train_sentences=24, max_dev_sentences=12)


@pytest.fixture(autouse=True)
def tiny_profile(monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "tiny", TINY)


@pytest.fixture(scope="module")
def small_data(data_dir, tmp_path_factory):
    """The first sentences of two real sets: sha256 differs from the registry, so allow_modified."""
    root = tmp_path_factory.mktemp("data")
    for name in ("ncbi_disease", "bc5cdr"):
        (root / name).mkdir()
        for split, n in (("train", 40), ("dev", 20), ("test", 30)):
            write_conll(root / name / f"{split}.conll", read_conll(data_dir / name / f"{split}.conll")[:n])
    return root


def options(tmp_path, data, **kw):
    base = dict(
        datasets=("ncbi_disease",),
        profile="tiny",
        data_dir=data,
        db=tmp_path / "r.duckdb",
        runs_dir=tmp_path / "runs",
        allow_modified=True,
        price_per_hour=2.0,
    )
    base.update(kw)
    return ev.EvalOptions(**base)


def test_registry_model_is_trained_then_a_complete_run_is_stored(tmp_path, small_data):
    messages, steps, phases = [], [], []
    (outcome,) = ev.evaluate(
        "minilm-l6",
        options(tmp_path, small_data),
        say=messages.append,
        training_progress=steps.append,
        prediction_progress=lambda *event: phases.append(event),
    )
    assert outcome.status == "stored" and outcome.trained and outcome.profile == "tiny"
    assert steps[-1].dev_f1 is not None  # the training's steps and its epoch's dev score were heard
    # every phase of the protocol, each ending with the whole of its sentences
    finished = [(phase, done) for phase, done, total in phases if done == total]
    assert [phase for phase, _ in finished] == ["warm-up", "timed pass 1/3", "timed pass 2/3", "timed pass 3/3"]
    assert all(done == 30 for _, done in finished[1:])
    assert any("no fine-tuned token-head checkpoint" in m for m in messages)
    with Store(tmp_path / "r.duckdb") as store:
        run = store.run(outcome.run_id)
        assert run["model_id"] == "minilm-l6" and run["family"] == "encoder" and run["modified"]
        assert run["record"].budget.name == "tiny" and run["record"].modified_dataset
        # a registry base is pinned by the catalogue, not hashed; its training identity names the same weights
        assert run["record"].weights.sha256 is None and run["record"].training.base == run["record"].weights
        predictions = store.predictions(outcome.run_id)
        assert len(predictions) == 30 and run["predictions_sha256"] == predictions_sha256(predictions)
        gold = read_conll(small_data / "ncbi_disease" / "test.conll")
        assert [len(p) for p in predictions] == [len(s.tokens) for s in gold]
        keys = {(m["scheme"], m["entity_type"], m["length_bucket"]) for m in store.metrics(outcome.run_id)}
        assert {("strict", "*", "*"), ("strict", "*", "3+"), ("partial", "*", "*"), ("strict", "Disease", "*")} <= keys
        timing = store.timing(outcome.run_id)
        assert timing["repeats"] == 3 and timing["sentences"] == 30 and not timing["reference_hardware"]
        assert timing["cost_usd"] == pytest.approx(timing["device_hours"] * 2.0)
        assert store.environment(outcome.run_id)["torch"]
        training = run["details"]["training"]
        assert training["sentences"]["train"] == 24 and len(training["dev_f1"]) == 1
        assert run["details"]["alignment"]["sentences"] == 30


def test_resume_skips_stored_datasets_and_force_replaces(tmp_path, small_data):
    (first,) = ev.evaluate("minilm-l6", options(tmp_path, small_data))
    messages = []
    (again,) = ev.evaluate("minilm-l6", options(tmp_path, small_data), say=messages.append)
    assert again.status == "skipped" and again.run_id == first.run_id and not again.trained
    assert again.profile == "tiny"
    assert any("skipped" in m for m in messages)
    (forced,) = ev.evaluate("minilm-l6", options(tmp_path, small_data, force=True))
    # the same identity, so the same run id: retrained and replaced, never stored twice
    assert forced.status == "stored" and forced.run_id == first.run_id and forced.trained
    with Store(tmp_path / "r.duckdb") as store:
        assert [r["run_id"] for r in store.runs()] == [forced.run_id]


def test_another_seed_or_label_policy_trains_anew_and_is_never_relabelled(tmp_path, small_data):
    (first,) = ev.evaluate("minilm-l6", options(tmp_path, small_data))
    messages = []
    (seeded,) = ev.evaluate("minilm-l6", options(tmp_path, small_data, seed=7), say=messages.append)
    assert seeded.trained and seeded.run_id != first.run_id
    assert any("no fine-tuned token-head checkpoint" in m for m in messages)
    (majority,) = ev.evaluate("minilm-l6", options(tmp_path, small_data, label_policy="majority"))
    assert majority.trained and majority.run_id not in (first.run_id, seeded.run_id)
    with Store(tmp_path / "r.duckdb") as store:
        records = {r["run_id"]: r["record"] for r in store.runs()}
        folders = {r["run_id"]: r["details"]["checkpoint"] for r in store.runs()}
    assert records[seeded.run_id].training.seed == 7 and records[first.run_id].training.seed == 0
    assert records[majority.run_id].training.recipe.label_policy == "majority"
    assert records[majority.run_id].label_policy == "majority"
    assert len(set(folders.values())) == 3  # three trainings, three checkpoints
    # the checkpoint's training record says what it was trained with
    import json
    from pathlib import Path

    trained = json.loads((Path(folders[majority.run_id]) / "training.json").read_text())
    assert trained["recipe"]["label_policy"] == "majority" and trained["seed"] == 0
    seeded_record = json.loads((Path(folders[seeded.run_id]) / "training.json").read_text())
    assert seeded_record["seed"] == 7


def test_seeds_trains_and_stores_one_run_per_seed(tmp_path, small_data):
    outcomes = ev.evaluate("minilm-l6", options(tmp_path, small_data, seed=3, seeds=2))
    assert [(o.seed, o.status, o.trained) for o in outcomes] == [(3, "stored", True), (4, "stored", True)]
    with Store(tmp_path / "r.duckdb") as store:
        seeds = sorted(r["record"].training.seed for r in store.runs())
    assert seeds == [3, 4]
    # rerun: both seeds are stored already
    again = ev.evaluate("minilm-l6", options(tmp_path, small_data, seed=3, seeds=2))
    assert [o.status for o in again] == ["skipped", "skipped"]


def test_seeds_of_a_model_evaluated_as_it_is_are_refused(tmp_path, data_dir):
    folder = save_tiny_bert(tmp_path / "tagger", labels=("O", "B-Disease", "I-Disease"))
    with pytest.raises(NerbenchError, match="--seeds 2: .* is evaluated as it is"):
        ev.evaluate(str(folder), options(tmp_path, data_dir, seeds=2, allow_random_init=True))


def test_failure_in_a_later_dataset_keeps_the_finished_one(tmp_path, small_data, monkeypatch):
    real_run_timed = ev.run_timed
    calls = []

    def failing_second(*args, **kw):  # the second dataset dies while it is being predicted
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return real_run_timed(*args, **kw)

    monkeypatch.setattr(ev, "run_timed", failing_second)
    opts = options(tmp_path, small_data, datasets=("ncbi_disease", "bc5cdr"))
    with pytest.raises(RuntimeError, match="interrupted"):
        ev.evaluate("minilm-l6", opts)
    with Store(tmp_path / "r.duckdb") as store:
        assert [r["dataset"] for r in store.runs()] == ["ncbi_disease"]
    monkeypatch.setattr(ev, "run_timed", real_run_timed)
    outcomes = ev.evaluate("minilm-l6", opts)
    assert [(o.dataset, o.status) for o in outcomes] == [("ncbi_disease", "skipped"), ("bc5cdr", "stored")]
    # bc5cdr was trained before the failure: its checkpoint is reused, not trained again.
    assert not outcomes[1].trained


def test_local_checkpoint_folder_on_the_real_test_split(tmp_path, data_dir):
    folder = save_tiny_bert(tmp_path / "my-ncbi-tagger", labels=("O", "B-Disease", "I-Disease"))
    (outcome,) = ev.evaluate(str(folder), options(tmp_path, data_dir, allow_modified=False, allow_random_init=True))
    assert outcome.status == "stored" and not outcome.trained
    assert outcome.profile is None  # evaluated as it is: no training profile applies
    with Store(tmp_path / "r.duckdb") as store:
        run = store.run(outcome.run_id)
        assert run["model_id"] == "my-ncbi-tagger" and not run["modified"]
        assert run["record"].weights.sha256 == weights_sha256(folder) and run["record"].training is None
        assert run["record"].weights.name == "my-ncbi-tagger"  # no machine path in the identity
        assert len(store.predictions(outcome.run_id)) == 940


def test_label_map_mismatch_is_a_clear_error(tmp_path, small_data):
    folder = save_tiny_bert(tmp_path / "cdr-tagger", labels=("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"))
    with pytest.raises(NerbenchError, match="label map mismatch"):
        ev.evaluate(str(folder), options(tmp_path, small_data, allow_random_init=True))
    with Store(tmp_path / "r.duckdb") as store:
        assert store.runs() == []


def test_a_random_weight_model_is_never_stored(tmp_path, small_data):
    folder = save_tiny_bert(tmp_path / "random-tagger", labels=("O", "B-Disease", "I-Disease"))
    with pytest.raises(NerbenchError, match="nerbench_random_init is set"):
        ev.evaluate(str(folder), options(tmp_path, small_data))
    assert not (tmp_path / "r.duckdb").exists() or Store(tmp_path / "r.duckdb").runs() == []


def test_bad_names_fail_before_any_work(tmp_path, small_data):
    with pytest.raises(NerbenchError, match="unknown model 'no-such-model'.*minilm-l6"):
        ev.evaluate("no-such-model", options(tmp_path, small_data))
    with pytest.raises(NerbenchError, match="unknown profile"):
        ev.evaluate("minilm-l6", options(tmp_path, small_data, profile="fast"))
    with pytest.raises(NerbenchError, match="no-such-set"):
        ev.evaluate("minilm-l6", options(tmp_path, small_data, datasets=("no-such-set",)))
    with pytest.raises(NerbenchError, match="does not exist"):
        ev.evaluate(str(tmp_path / "missing-folder"), options(tmp_path, small_data))


def test_the_store_is_not_locked_while_a_dataset_is_predicted(tmp_path, small_data, monkeypatch):
    """Another process can read the store while eval predicts (DuckDB locks the file per process)."""
    import subprocess
    import sys

    seen = []
    real_run_timed = ev.run_timed
    read = "import sys; from nerbench.store import Store; print(len(Store(sys.argv[1]).runs()))"

    def reading_meanwhile(*args, **kw):
        out = subprocess.run(
            [sys.executable, "-c", read, str(tmp_path / "r.duckdb")], capture_output=True, text=True, check=True
        )
        seen.append(int(out.stdout))
        return real_run_timed(*args, **kw)

    monkeypatch.setattr(ev, "run_timed", reading_meanwhile)
    ev.evaluate("minilm-l6", options(tmp_path, small_data, datasets=("ncbi_disease", "bc5cdr")))
    assert seen == [0, 1]  # the first dataset was committed and visible before the second was predicted


def _sentences(lengths):
    return [Sentence(tuple("w" * n), tuple("O" * n), 0) for n in lengths]


@pytest.mark.parametrize(
    "profile, lengths, expected",
    [
        (Budget(name="p", max_train_tokens=10), [4, 4, 4, 4], 2),  # the third would reach 12
        (Budget(name="p", max_train_tokens=8), [4, 4, 4], 2),  # exactly on the budget
        (Budget(name="p", max_train_tokens=3), [50, 1], 1),  # one long sentence is still kept
        (Budget(name="p", max_train_tokens=100, max_train_sentences=2), [1, 1, 1, 1], 2),
        (Budget(name="p", max_train_tokens=100), [30, 30], 2),  # fewer sentences than the budget
        (Budget(name="p", max_train_sentences=3), [100, 100, 100, 100], 3),
        (Budget(name="p"), [5, 5], None),
    ],
)
def test_training_budget_in_sentences_and_word_tokens(profile, lengths, expected):
    assert profile.train_sentence_count(_sentences(lengths)) == expected


def test_quick_profile_budget_on_biored_is_by_tokens(data_dir):
    train = ev.load_split("biored", "train", data_dir).sentences
    profile = profiles.PROFILES["quick"]
    count = profile.train_sentence_count(train)
    assert count < profile.max_train_sentences  # BioRED's long sentences end the budget first
    assert sum(len(s.tokens) for s in train[:count]) <= profile.max_train_tokens
    assert sum(len(s.tokens) for s in train[: count + 1]) > profile.max_train_tokens


def test_eval_reuses_the_checkpoint_nerbench_train_wrote_for_the_same_identity(tmp_path, data_dir, monkeypatch):
    """`train` and `eval` name a checkpoint with one function: the same budget finds the same folder."""
    from nerbench.pipeline.train import train_on_dataset

    budget = Budget(name="custom", epochs=1, max_train_sentences=8)
    monkeypatch.setitem(profiles.PROFILES, "custom", budget)
    _, folder = train_on_dataset(
        "minilm-l6", "ncbi_disease", data_dir=data_dir, runs_dir=tmp_path / "runs", epochs=1, max_train_sentences=8
    )
    assert folder.parent == tmp_path / "runs" / "minilm-l6" / "ncbi_disease"
    messages = []
    (outcome,) = ev.evaluate(
        "minilm-l6", options(tmp_path, data_dir, profile="custom", allow_modified=False), say=messages.append
    )
    assert outcome.status == "stored" and not outcome.trained
    assert any(f"using the fine-tuned checkpoint in {folder}" in m for m in messages)
    (other,) = ev.evaluate("minilm-l6", options(tmp_path, data_dir, profile="custom", seed=3, allow_modified=False))
    assert other.trained  # another seed is another identity: never the folder above
