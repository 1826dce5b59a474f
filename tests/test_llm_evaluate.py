"""`nerbench eval` for LLMs end to end on CPU: tiny random Llama / Mistral bases trained with LoRA
in both heads, timed, scored and stored in a temporary store (plumbing only: `allow_random_init`
is the tests' flag; such scores are never results)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nerbench.conll import read_conll, write_conll
from nerbench.errors import NerbenchError
from nerbench.pipeline import evaluate as ev
from nerbench.pipeline import profiles
from nerbench.record import Budget
from nerbench.store import Store

from _tiny_llm import save_tiny, train_tiny_adapter

TINY = Budget(
    name="tiny", epochs=1, learning_rate=1e-3, max_train_sentences=8, max_dev_sentences=3, gradient_accumulation_steps=1
)


@pytest.fixture(autouse=True)
def tiny_profile(monkeypatch):
    monkeypatch.setitem(profiles.PROFILES, "tiny", TINY)


@pytest.fixture(scope="module")
def small_data(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "ncbi_disease").mkdir()
    for split, n in (("train", 8), ("dev", 3), ("test", 6)):
        sentences = [s for s in read_conll(data_dir / "ncbi_disease" / f"{split}.conll") if len(s.tokens) < 25][:n]
        write_conll(root / "ncbi_disease" / f"{split}.conll", sentences)
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
        allow_random_init=True,
    )
    return ev.EvalOptions(**(base | kw))


def _adapter(tmp_path, family, head, data):
    from nerbench.datasets import load_split

    base = save_tiny(tmp_path / f"{family}-base", family)
    train = load_split("ncbi_disease", "train", data, allow_modified=True).sentences
    dev = load_split("ncbi_disease", "dev", data, allow_modified=True).sentences
    return train_tiny_adapter(str(base), tmp_path / f"{family}-{head}-adapter", train, dev, head)


@pytest.mark.parametrize("family, head", [("llama", "token"), ("mistral", "generative")])
def test_an_adapter_folder_goes_through_the_whole_pipeline(tmp_path, small_data, family, head):
    adapter = _adapter(tmp_path, family, head, small_data)
    (outcome,) = ev.evaluate(str(adapter), options(tmp_path, small_data))
    assert outcome.status == "stored" and not outcome.trained
    with Store(tmp_path / "r.duckdb") as store:
        run = store.run(outcome.run_id)
        record = run["record"]
        assert run["family"] == "llm" and record.head == head
        assert record.quantization == "none" and record.precision == "fp32"
        assert record.batch_size == 8 and record.weights.source == "adapter" and record.weights.base is not None
        assert len(store.predictions(outcome.run_id)) == 6
        timing = store.timing(outcome.run_id)
        assert timing["repeats"] == 3 and timing["cost_usd"] == pytest.approx(timing["device_hours"] * 2.0)
        if head == "generative":
            generation = timing["generation"]
            # exactly one pass: one record per test sentence
            assert generation["sentences"] == 6 and len(generation["generated_tokens_per_sentence"]) == 6
            assert len(generation["sentence_latency_s"]) == 6 and generation["decoding"] == "greedy"
            parse = run["details"]["generation"]["parse"]
            assert parse["sentences"] == 6 and parse == generation["parse"]
            assert record.decoding.decoding == "greedy"
        else:
            assert run["details"]["alignment"]["sentences"] == 6 and timing["generation"] is None
            assert record.lora.r == 4


def test_a_registry_style_base_is_trained_per_head_then_resumed(tmp_path, small_data, monkeypatch):
    # A random tiny Llama stands in for a registry LLM: same flow (train, then evaluate the adapter).
    from nerbench.models import catalogue, registry

    base = save_tiny(tmp_path / "base", "llama")
    meta = catalogue.REGISTRY["smollm2-135m"]
    real_resolve = registry.resolve_model

    def resolve(arg, revision=None):
        if str(arg) == "smollm2-135m":
            return registry.ResolvedModel("smollm2-135m", "registry", base, meta.hf_id, None, meta)
        return real_resolve(arg, revision)

    monkeypatch.setattr(registry, "resolve_model", resolve)
    messages = []
    (first,) = ev.evaluate("smollm2-135m", options(tmp_path, small_data), say=messages.append)
    assert first.trained and any("no fine-tuned token-head checkpoint" in m for m in messages)
    with Store(tmp_path / "r.duckdb") as store:
        run = store.run(first.run_id)
        assert run["details"]["training"]["llm"]["head"] == "token" and run["record"].budget.name == "tiny"
        folder = Path(run["details"]["checkpoint"])
    assert (folder / "adapter_model.safetensors").is_file()
    assert folder.parent == tmp_path / "runs" / "smollm2-135m" / "ncbi_disease" and folder.name.startswith(
        "token-tiny-"
    )
    (again,) = ev.evaluate("smollm2-135m", options(tmp_path, small_data))
    assert again.status == "skipped" and again.run_id == first.run_id


def test_random_weight_bases_and_bad_heads_are_refused(tmp_path, small_data):
    adapter = _adapter(tmp_path, "llama", "token", small_data)
    with pytest.raises(NerbenchError, match="nerbench_random_init"):
        ev.evaluate(str(adapter), options(tmp_path, small_data, allow_random_init=False))
    with pytest.raises(NerbenchError, match="trained for the token head"):
        ev.evaluate(str(adapter), options(tmp_path, small_data, head="generative"))
    with pytest.raises(NerbenchError, match="apply to LLMs only"):
        ev.evaluate("minilm-l6", options(tmp_path, small_data, head="generative"))


def test_results_show_the_head_and_parse_counts(tmp_path, small_data):
    import nerbench.cli

    adapter = _adapter(tmp_path, "mistral", "generative", small_data)
    ev.evaluate(str(adapter), options(tmp_path, small_data))
    if "results" not in [c.name for c in nerbench.cli.app.registered_commands]:
        nerbench.cli._register()
    out = CliRunner().invoke(nerbench.cli.app, ["results", "--db", str(tmp_path / "r.duckdb"), "--json"])
    assert out.exit_code == 0, out.output
    (row,) = json.loads(out.output)
    assert row["head"] == "generative" and row["parse"]["sentences"] == 6
    table = CliRunner().invoke(
        nerbench.cli.app, ["results", "--db", str(tmp_path / "r.duckdb")], env={"COLUMNS": "250"}
    )
    assert table.exit_code == 0 and "generative" in table.output and "parse" in table.output
