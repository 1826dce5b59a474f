"""Where the LLM token head reads each word (`LLMRecipe.word_position`): the positions each variant
picks, training and prediction with each, and the setting in the training identity and the run
record. Tiny random-weight models only (plumbing: their scores are never results)."""

import json

import pytest

from nerbench.conll import Sentence
from nerbench.errors import NerbenchError
from nerbench.models.align import encode
from nerbench.models.llm import copy_separator, head_encode, load_llm_predictor
from nerbench.models.llm_training import token_rows, train_llm
from nerbench.models.predictor import predict_all
from nerbench.models.registry import resolve_model
from nerbench.pipeline.evaluate import training_identity, weights_of
from nerbench.pipeline.taggers import Request, select_tagger
from nerbench.recipes import LLMRecipe
from nerbench.record import Budget, Training

from _tiny_llm import ENTITY_TYPES, LABELS, SENTENCES, byte_level_tokenizer, save_tiny, sentencepiece_tokenizer

RECIPE = LLMRecipe(lora_r=4, lora_alpha=8)
SENTS = [Sentence(tuple(t), tuple(g), i + 1) for i, (t, g) in enumerate(SENTENCES)]
# "SCN5A" and "xyzzyq" are split into several pieces by both tiny tokenizers, the first of which
# is the bare word marker ("Ġ" / "▁"): the whitespace-only first piece of the issue.
WORDS = ["Naloxone", "reverses", "SCN5A", "xyzzyq", "."]


@pytest.fixture(scope="module", params=["llama", "mistral"])
def tokenizer(request):
    return byte_level_tokenizer() if request.param == "llama" else sentencepiece_tokenizer()


def _pieces(tokenizer, words, max_length=64):
    """Each word's sub-token positions in the encoders' alignment."""
    (window,) = encode([words], tokenizer, max_length).windows
    return window, dict(window.owned)


def test_first_and_last_pick_the_first_and_last_sub_token_of_each_word(tokenizer):
    window, pieces = _pieces(tokenizer, WORDS)
    split = pieces[2]
    assert len(split) > 2 and tokenizer.convert_ids_to_tokens(window.input_ids[split[0]]).strip("Ġ▁") == ""
    for position, index in (("first", 0), ("last", -1)):
        (got,) = head_encode([WORDS], tokenizer, 64, position).windows
        assert got.input_ids == window.input_ids  # the same input, one read position per word
        assert dict(got.owned) == {w: (p[index],) for w, p in pieces.items()}
    (last,) = head_encode([WORDS], tokenizer, 64, "last").windows
    read = tokenizer.convert_ids_to_tokens(last.input_ids[dict(last.owned)[2][0]])
    assert read == "A"  # SCN5A is read where it has been read whole, not at its bare word marker


def test_sentence_twice_reads_the_last_sub_token_in_the_second_copy(tokenizer):
    window, pieces = _pieces(tokenizer, WORDS)
    (twice,) = head_encode([WORDS], tokenizer, 64, "sentence-twice").windows
    start = min(p[0] for p in pieces.values())
    end = max(p[-1] for p in pieces.values()) + 1
    words = window.input_ids[start:end]
    separator = tuple(copy_separator(tokenizer))
    prefix, suffix = window.input_ids[:start], window.input_ids[end:]
    assert twice.input_ids == prefix + words + separator + words + suffix
    shift = len(words) + len(separator)
    assert dict(twice.owned) == {w: (p[-1] + shift,) for w, p in pieces.items()}
    for w, (p,) in twice.owned:  # the second copy's token is the word's last one
        assert twice.input_ids[p] == window.input_ids[pieces[w][-1]] and p > shift


def test_sentence_twice_halves_the_window_and_still_reads_every_word_once(tokenizer):
    words = WORDS * 6
    max_length = 40
    enc = head_encode([words], tokenizer, max_length, "sentence-twice")
    assert enc.n_windows > 1 and all(len(w.input_ids) <= max_length for w in enc.windows)
    owned = sorted(w for window in enc.windows for w, _ in window.owned)
    assert owned == list(range(len(words)))
    assert all(len(p) == 1 for window in enc.windows for _, p in window.owned)


def test_training_rows_label_the_read_position_only(tokenizer):
    sentence = [Sentence(tuple(WORDS), ("O", "O", "B-Disease", "O", "O"), 1)]
    for position in ("first", "last", "sentence-twice"):
        rows, enc = token_rows(sentence, tokenizer, LABELS, 64, position)
        ((ids, labels),) = rows
        read = {p[0]: w for w, p in enc.windows[0].owned}
        assert {i for i, label in enumerate(labels) if label != -100} == set(read)
        assert labels[next(p for p, w in read.items() if w == 2)] == LABELS.index("B-Disease")


def test_an_unknown_word_position_is_refused(tokenizer):
    with pytest.raises(NerbenchError, match="--word-position"):
        head_encode([WORDS], tokenizer, 64, "middle")


def test_first_is_left_out_of_the_recipe_so_old_run_ids_stay(tmp_path):
    assert "word_position" not in LLMRecipe().model_dump()
    assert LLMRecipe.model_validate(LLMRecipe().model_dump()).word_position == "first"
    last = LLMRecipe(word_position="last")
    assert last.model_dump(mode="json")["word_position"] == "last"
    assert LLMRecipe.model_validate(last.model_dump(mode="json")) == last


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("llama") / "base", "llama")


@pytest.mark.parametrize("position", ["first", "last", "sentence-twice"])
def test_each_variant_trains_records_itself_and_predicts_one_tag_per_word(base, tmp_path, position):
    out = tmp_path / "out"
    record = train_llm(
        str(base), SENTS, SENTS[:2], LABELS, ENTITY_TYPES, RECIPE, out,
        head="token", word_position=position, epochs=1, batch_size=2, gradient_accumulation_steps=1, lr=1e-3,
    )  # fmt: skip
    saved = json.loads((out / "training.json").read_text())
    assert saved["llm"]["word_position"] == position and record.llm["word_position"] == position
    assert saved["recipe"].get("word_position", "first") == position
    predictor = load_llm_predictor(resolve_model(out), LABELS, ENTITY_TYPES)
    assert predictor.word_position == position  # read where it was trained to read
    # the adapter evaluated as it is names its word position in the run record
    assert select_tagger(resolve_model(out), Request(device="cpu"), fine_tune=False).label_policy == position
    tags = predict_all(predictor, [s.tokens for s in SENTS])
    assert [len(t) for t in tags] == [len(s.tokens) for s in SENTS]
    assert set(sum(tags, [])) <= set(LABELS)


def test_the_word_position_of_a_generative_head_is_refused(base, tmp_path):
    with pytest.raises(NerbenchError, match="token head"):
        train_llm(
            str(base), SENTS, SENTS[:2], LABELS, ENTITY_TYPES, RECIPE, tmp_path / "out",
            head="generative", word_position="last", epochs=1,
        )  # fmt: skip


def _identity(base, position):
    ref = resolve_model(str(base))
    tagger = select_tagger(ref, Request(device="cpu", head="token", word_position=position), fine_tune=True)
    return training_identity(tagger, weights_of(ref), "bc5cdr", Budget(name="quick", epochs=1), 0)


def test_the_word_position_is_part_of_the_training_identity(base):
    default, first, last, twice = (_identity(base, p) for p in (None, "first", "last", "sentence-twice"))
    assert default.digest == first.digest  # asking for today's position is today's checkpoint
    assert len({first.digest, last.digest, twice.digest}) == 3
    dumped = last.model_dump(mode="json")
    assert dumped["recipe"]["word_position"] == "last" and "word_position" not in first.model_dump()["recipe"]
    assert Training.model_validate(dumped).recipe.word_position == "last"


def test_a_generative_tagger_refuses_a_word_position(base):
    ref = resolve_model(str(base))
    with pytest.raises(NerbenchError, match="token head"):
        select_tagger(ref, Request(device="cpu", head="generative", word_position="last"), fine_tune=True)


def test_the_run_record_names_the_word_position_as_its_label_policy(base):
    ref = resolve_model(str(base))
    for asked, named in ((None, "first"), ("first", "first"), ("last", "last"), ("sentence-twice", "sentence-twice")):
        tagger = select_tagger(ref, Request(device="cpu", head="token", word_position=asked), fine_tune=True)
        assert tagger.label_policy == named
    generative = select_tagger(ref, Request(device="cpu", head="generative"), fine_tune=True)
    assert generative.label_policy is None
