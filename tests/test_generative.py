"""GenerativePredictor on tiny random Llama / Mistral models: plumbing only, never quality."""

import json

import pytest
import torch

from nerbench.models.generative import GenerativePredictor, build_prompt, target_text
from nerbench.models.predictor import predict_all
from nerbench.timing import Predictor

from _tiny_llm import ENTITY_TYPES, LABELS, SENTENCES, tiny_llama, tiny_mistral

WORDS = [s for s, _ in SENTENCES]
MAKERS = {"llama": tiny_llama, "mistral": tiny_mistral}


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models spend their time in thread hand-offs; one thread is ~30x faster on a busy machine.
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(params=sorted(MAKERS))
def predictor(request) -> GenerativePredictor:
    model, tokenizer = MAKERS[request.param]()
    return GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES, batch_size=3)


def _manual_greedy(model, prompt: list[int], budget: int, eos: tuple[int, ...]) -> list[int]:
    """Argmax of a full forward pass per step: what greedy decoding means, without generate()."""
    ids = list(prompt)
    new: list[int] = []
    with torch.inference_mode():
        while len(new) < budget:
            token = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            new.append(token)
            ids.append(token)
            if token in eos:
                break
    return new


def test_is_a_predictor(predictor):
    assert isinstance(predictor, Predictor)
    batches = predictor.batches(WORDS)
    assert sorted(i for b in batches for i in b) == list(range(len(WORDS)))
    assert all(len(b) <= 3 for b in batches)
    budgets = [predictor.answer_budget(WORDS[b[0]]) for b in batches]
    assert budgets == sorted(budgets, reverse=True)


def test_every_sentence_gets_one_label_per_word_and_counts_are_recorded(predictor):
    tags = predict_all(predictor, WORDS)
    assert [len(t) for t in tags] == [len(w) for w in WORDS]
    assert {tag for row in tags for tag in row} <= set(LABELS)
    stats = predictor.generation_stats()
    parse = stats["parse"]
    assert stats["sentences"] == parse["sentences"] == len(WORDS)
    assert stats["words"] == sum(map(len, WORDS))
    assert parse["matched"] + parse["renamed"] + parse["missing"] == stats["words"]
    assert sum(stats["generated_tokens_per_sentence"]) == stats["generated_tokens"] > 0
    assert all(0 < g <= b for g, b in zip(stats["generated_tokens_per_sentence"], stats["budget_per_sentence"]))
    assert stats["max_new_tokens"] == max(stats["budget_per_sentence"])
    assert stats["prompt_tokens"] == sum(len(predictor.prompt_ids(w)) for w in WORDS)
    predictor.reset_stats()
    assert predictor.generation_stats()["sentences"] == 0


def test_greedy_decoding_is_argmax_and_deterministic(predictor):
    prompts = [predictor.prompt_ids(w) for w in WORDS]
    budgets = [predictor.answer_budget(w) for w in WORDS]
    batched = predictor._generate(prompts, budgets)
    assert batched == predictor._generate(prompts, budgets)
    for prompt, budget, got in zip(prompts, budgets, batched):
        expected = _manual_greedy(predictor.model, prompt, budget, predictor.eos_ids)
        assert got[: len(expected)] == expected
        if not set(expected) & set(predictor.eos_ids):
            # each row stops at its own budget, whatever the batch's longest budget
            assert len(got) == budget


def test_checkpoint_sampling_defaults_are_recorded_and_not_applied():
    model, tokenizer = tiny_llama()
    prompt = tokenizer(build_prompt(WORDS[0], ENTITY_TYPES))["input_ids"]
    clean = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES)._generate([prompt], [12])
    model.generation_config.update(
        do_sample=True, temperature=0.3, top_k=2, top_p=0.5, repetition_penalty=3.0, no_repeat_ngram_size=1
    )
    p = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES)
    assert p.ignored_defaults["do_sample"] is True and p.ignored_defaults["repetition_penalty"] == 3.0
    torch.manual_seed(1)
    first = p._generate([prompt], [12])
    torch.manual_seed(2)
    assert p._generate([prompt], [12]) == first == clean
    assert model.generation_config.do_sample is True  # restored after generating
    assert p.generation_stats()["ignored_generation_defaults"]["temperature"] == 0.3
    json.dumps(p.generation_stats())


def test_a_sentence_too_long_for_the_model_is_refused():
    from nerbench.errors import NerbenchError

    model, tokenizer = tiny_llama()
    model.config.max_position_embeddings = 64
    p = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES)
    with pytest.raises(NerbenchError, match="exceeds the model's 64 positions"):
        p.predict_batch([WORDS[0]])


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_answer_text_is_recovered_from_generated_ids(family):
    """The decoded continuation of a trained-format sequence is exactly the target text."""
    model, tokenizer = MAKERS[family]()
    p = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES)
    for words, tags in SENTENCES:
        prompt = p.prompt_ids(words)
        whole = tokenizer(build_prompt(words, ENTITY_TYPES) + target_text(words, tags))["input_ids"]
        assert whole[: len(prompt)] == prompt
        assert p.continuation_text(prompt, whole[len(prompt) :]) == target_text(words, tags)


def _overfit(model, tokenizer, steps: int) -> None:
    """Teach a tiny model the four training answers (prompt + answer + EOS, as training will)."""
    texts = [build_prompt(w, ENTITY_TYPES) + target_text(w, t) + tokenizer.eos_token for w, t in SENTENCES]
    tokenizer.padding_side = "right"
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


@pytest.mark.parametrize("family", sorted(MAKERS))
def test_a_model_that_learned_the_format_tags_exactly(family):
    """End to end: prompt, left-padded batches, EOS stop, decoding and parsing fit together."""
    torch.manual_seed(0)
    model, tokenizer = MAKERS[family]()
    _overfit(model, tokenizer, steps=200)
    p = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES, batch_size=4)
    tags = predict_all(p, WORDS)
    assert tags == [t for _, t in SENTENCES]
    stats = p.generation_stats()
    assert stats["parse"]["matched"] == stats["words"] and stats["stopped_at_limit"] == 0
    answers = [len(tokenizer(target_text(w, t), add_special_tokens=False)["input_ids"]) for w, t in SENTENCES]
    assert all(g <= b for g, b in zip(stats["generated_tokens_per_sentence"], stats["budget_per_sentence"]))
    assert sum(stats["generated_tokens_per_sentence"]) <= sum(answers) + 2 * len(SENTENCES)


def test_load_from_folder_with_a_lora_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = tiny_llama()
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    peft_model = get_peft_model(
        model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    plain = GenerativePredictor.load(tmp_path / "base", LABELS, ENTITY_TYPES, device="cpu")
    adapted = GenerativePredictor.load(
        tmp_path / "base", LABELS, ENTITY_TYPES, device="cpu", adapter_path=tmp_path / "adapter"
    )
    assert adapted.model.__class__.__name__.startswith("Peft")
    prompts, budgets = [plain.prompt_ids(WORDS[0])], [10]
    # the adapter is active: its (non-zero) LoRA weights change the greedy answer's logits
    with torch.inference_mode():
        x = torch.tensor(prompts)
        assert not torch.allclose(plain.model(x).logits, adapted.model(x).logits)
    assert len(adapted._generate(prompts, budgets)[0]) == 10
    tags = adapted.predict_batch(WORDS[:2])
    assert [len(t) for t in tags] == [len(w) for w in WORDS[:2]]


def test_an_empty_sentence_gets_no_tags(predictor):
    assert predictor.predict_batch([[], WORDS[3]])[0] == []
    stats = predictor.generation_stats()
    assert stats["sentences"] == 2 and stats["budget_per_sentence"][0] == predictor.budget_extra


def test_the_budget_covers_every_gold_answer(predictor):
    for words, tags in SENTENCES:
        answer = predictor.tokenizer(target_text(words, tags), add_special_tokens=False)["input_ids"]
        assert len(answer) + 1 <= predictor.answer_budget(words)  # + the end-of-sequence token


def test_a_leading_space_the_model_writes_is_kept_not_decoded_away():
    # SentencePiece decoders strip the first token's word marker when decoding it alone; in the
    # context of the prompt, a "▁Acute" the model wrote shows as " Acute" (and is counted).
    model, tokenizer = tiny_mistral()
    p = GenerativePredictor(model, tokenizer, LABELS, ENTITY_TYPES)
    words, tags = SENTENCES[2]
    answer = tokenizer(target_text(words, tags), add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(answer[0]).startswith("▁")
    assert p.continuation_text(p.prompt_ids(words), answer) == " " + target_text(words, tags)
