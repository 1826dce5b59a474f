"""LoRA / QLoRA training of tiny random Llama and Mistral models in both modes (plumbing only:
their scores are never results)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from nerbench.conll import Sentence
from nerbench.errors import NerbenchError
from nerbench.models.llm import check_lora_gradients, load_llm_predictor
from nerbench.models.llm_training import effective_quantization, train_llm
from nerbench.models.predictor import predict_all
from nerbench.models.registry import resolve_model
from nerbench.recipes import LLMRecipe

from _tiny_llm import ENTITY_TYPES, LABELS, SENTENCES, save_tiny

RECIPE = LLMRecipe(lora_r=4, lora_alpha=8)
SENTS = [Sentence(tuple(t), tuple(g), i + 1) for i, (t, g) in enumerate(SENTENCES)]


@pytest.fixture(scope="module", params=["llama", "mistral"])
def base(request, tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp(request.param) / "base", request.param)


def _train(base, out, **kw):
    args = dict(head="token", epochs=2, batch_size=2, gradient_accumulation_steps=1, lr=1e-3)
    args.update(kw)
    return train_llm(str(base), SENTS, SENTS[:2], LABELS, ENTITY_TYPES, RECIPE, out, **args)


def test_token_mode_trains_saves_the_best_epoch_and_reloads(base, tmp_path, monkeypatch):
    # Dev F1 rises then falls: the saved adapter must be epoch 2's of 3.
    scores = iter([0.2, 0.9, 0.1])

    record = _train(base, tmp_path / "out", epochs=3, dev_evaluator=lambda g, p: next(scores))
    assert record.best_epoch == 2 and record.dev_f1 == [0.2, 0.9, 0.1]
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "training.json", "tokenizer.json"} <= files
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["task_type"] == "TOKEN_CLS" and config["r"] == 4
    weights = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert any("score" in k for k in weights) and any("lora_A" in k for k in weights)
    saved_record = json.loads((tmp_path / "out" / "training.json").read_text())
    assert saved_record["llm"]["head"] == "token" and saved_record["llm"]["quantization"] == "none"
    assert saved_record["llm"]["optimizer"] == "adamw" and saved_record["labels"] == list(LABELS)
    assert saved_record["data"]["train_sentences_sha256"] and saved_record["seed"] == 0
    ref = resolve_model(tmp_path / "out")
    assert ref.source == "adapter" and ref.base.path == base
    predictor = load_llm_predictor(ref, LABELS, ENTITY_TYPES)
    tags = predict_all(predictor, [s.tokens for s in SENTS])
    assert [len(t) for t in tags] == [len(s.tokens) for s in SENTS]
    assert predictor.precision == "fp32" and set(sum(tags, [])) <= set(LABELS)


def test_reloaded_adapter_predicts_what_the_trained_model_predicted(base, tmp_path):
    preds = {}

    def remember(gold, pred):
        preds["dev"] = pred
        return 0.5

    _train(base, tmp_path / "out", epochs=1, dev_evaluator=remember)
    predictor = load_llm_predictor(str(tmp_path / "out"), LABELS, ENTITY_TYPES)
    assert predict_all(predictor, [s.tokens for s in SENTS[:2]]) == preds["dev"]


def test_generative_mode_trains_on_the_answer_and_reloads(base, tmp_path):
    record = _train(base, tmp_path / "gen", head="generative", epochs=1)
    assert record.llm["head"] == "generative" and record.llm["loss"] == "answer tokens and EOS only"
    assert json.loads((tmp_path / "gen" / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"
    predictor = load_llm_predictor(str(tmp_path / "gen"), LABELS, ENTITY_TYPES)
    assert type(predictor).__name__ == "GenerativePredictor"
    tags = predict_all(predictor, [SENTS[3].tokens])
    assert len(tags[0]) == len(SENTS[3].tokens) and predictor.generation_stats()["sentences"] == 1
    with pytest.raises(NerbenchError, match="trained for the generative head"):
        load_llm_predictor(str(tmp_path / "gen"), LABELS, ENTITY_TYPES, head="token")


def test_nf4_on_cpu_with_the_head_skipped_trains_through_a_dev_pass(base, tmp_path):
    # Two epochs: the dev pass after epoch 1 would repack the 4-bit weights without the guard,
    # and epoch 2's first step checks that every LoRA parameter still gets a gradient.
    record = _train(base, tmp_path / "q", quantize="nf4", epochs=2)
    assert record.llm["quantization"] == "nf4" and record.llm["four_bit_cpu_kernel_disabled_layers"] > 0
    assert len(record.dev_f1) == 2
    assert record.overrides["quantize"] == "nf4"


def test_gradient_guard_names_the_missing_parameters():
    from peft import LoraConfig, get_peft_model

    from _tiny_llm import tiny_llama

    model = get_peft_model(tiny_llama()[0], LoraConfig(r=2, target_modules=["q_proj"]))
    ids = torch.tensor([[5, 6, 7]])
    model(input_ids=ids, labels=ids).loss.backward()
    check_lora_gradients(model)
    next(p for n, p in model.named_parameters() if "lora_A" in n).grad = None
    with pytest.raises(NerbenchError, match="1 of .* LoRA parameters got no gradient"):
        check_lora_gradients(model)


def test_cpu_defaults_to_plain_lora_and_cuda_to_the_recipes_nf4():
    assert effective_quantization(LLMRecipe(), None, "cpu") == "none"
    assert effective_quantization(LLMRecipe(), None, "cuda") == "nf4"
    assert effective_quantization(LLMRecipe(), "nf4", "cpu") == "nf4"
    with pytest.raises(NerbenchError, match="--quantize"):
        effective_quantization(LLMRecipe(), "int8", "cpu")


def test_cli_train_an_llm_folder_writes_the_adapter(data_dir, tmp_path, monkeypatch):
    import dataclasses

    from typer.testing import CliRunner

    import nerbench.cli
    import nerbench.datasets

    real_load = nerbench.datasets.load_split

    def first_sentences(*args, **kw):  # the real splits, cut short: the dev pass stays quick
        split = real_load(*args, **kw)
        return dataclasses.replace(split, sentences=split.sentences[:6])

    monkeypatch.setattr(nerbench.datasets, "load_split", first_sentences)

    if "train" not in [c.name for c in nerbench.cli.app.registered_commands]:
        nerbench.cli._register()
    base = save_tiny(tmp_path / "tiny-llama", "llama")
    out = tmp_path / "adapter"
    args = [
        "train",
        str(base),
        "--dataset",
        "ncbi_disease",
        "--epochs",
        "1",
        "--max-train-sentences",
        "8",
        "--head",
        "token",
        "--quantize",
        "none",
        "--gradient-accumulation-steps",
        "2",
        "--out",
        str(out),
        "--data-dir",
        str(data_dir),
        "--json",
    ]
    result = CliRunner().invoke(nerbench.cli.app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "training.json").read_text())
    assert record["llm"]["head"] == "token" and record["recipe"]["gradient_accumulation_steps"] == 2
    assert record["recipe"]["lora_r"] == 128 and record["sentences"]["train"] == 6
    assert (out / "adapter_model.safetensors").is_file()
    encoder = CliRunner().invoke(
        nerbench.cli.app,
        ["train", "minilm-l6", "--dataset", "ncbi_disease", "--head", "generative", "--data-dir", str(data_dir)],
    )
    assert isinstance(encoder.exception, NerbenchError) and "LLMs only" in str(encoder.exception)
