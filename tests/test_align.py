import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from nerbench.models.align import (
    EMPTY_WORD_TAG,
    IGNORE,
    decode,
    encode,
    needs_leading_spaces,
    special_tokens,
    tokenize_words,
    training_labels,
    words_with_spaces,
)
from nerbench.models.registry import resolve_model

from _tiny_llm import byte_level_tokenizer, sentencepiece_tokenizer

LABELS = ("O", "B-X", "I-X")


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(resolve_model("minilm-l6").path)


def _word_pieces(tok, words):
    return [tok(w, add_special_tokens=False)["input_ids"] for w in words]


def test_special_tokens_are_cls_and_sep(tok):
    assert special_tokens(tok) == ([tok.cls_token_id], [tok.sep_token_id])


def test_short_sentence_one_window_first_subtoken_positions(tok):
    words = ["Naloxone", "reverses", "hypotension", "."]
    enc = encode([words], tok, max_length=64)
    assert enc.n_windows == 1 and enc.empty_words == () and enc.clipped_words == ()
    window = enc.windows[0]
    pieces = _word_pieces(tok, words)
    assert list(window.input_ids) == [tok.cls_token_id] + sum(pieces, []) + [tok.sep_token_id]
    assert [w for w, _ in window.owned] == [0, 1, 2, 3]
    assert [len(p) for _, p in window.owned] == [len(p) for p in pieces]
    assert window.owned[0][1][0] == 1  # after [CLS]
    assert any(len(p) > 2 for p in pieces)  # the test covers words of many sub-tokens


def test_training_labels_first_and_majority(tok):
    words = ["supercalifragilistic", "disease"]
    enc = encode([words], tok, max_length=64)
    window = enc.windows[0]
    (_, first), (_, second) = window.owned
    assert len(first) > 2
    first_labels = training_labels(window, [1, 2], "first")
    assert first_labels[first[0]] == 1 and all(first_labels[p] == IGNORE for p in first[1:])
    assert first_labels[second[0]] == 2
    assert first_labels[0] == IGNORE and first_labels[-1] == IGNORE  # special tokens
    majority = training_labels(window, [1, 2], "majority")
    assert all(majority[p] == 1 for p in first) and all(majority[p] == 2 for p in second)


def test_decode_first_and_majority_with_ties(tok):
    words = ["supercalifragilistic"]  # many sub-tokens
    enc = encode([words], tok, max_length=64)
    ((_, pos),) = enc.windows[0].owned
    n = len(enc.windows[0].input_ids)

    def preds(per_piece):
        row = [0] * n
        for p, label in zip(pos, per_piece):
            row[p] = label
        return [row]

    rest = [2] * (len(pos) - 1)
    assert decode(enc, preds([1] + rest), LABELS, "first") == [["B-X"]]
    assert decode(enc, preds([1] + rest), LABELS, "majority") == [["I-X"]]
    # A tie goes to the label seen first: the first sub-token's.
    half = len(pos) // 2
    tail = [0] * (len(pos) - 2 * half)
    assert decode(enc, preds([1] * half + [2] * half + tail), LABELS, "majority") == [["B-X"]]
    assert decode(enc, preds([2] * half + [1] * half + tail), LABELS, "majority") == [["I-X"]]


ZERO_PIECE_WORDS = ["\u200b", "\u0301", "\ufeff", "\x00", "\u00ad"]


def test_words_without_subtokens_are_tagged_o_and_counted(tok):
    for odd in ZERO_PIECE_WORDS:
        assert tok(odd, add_special_tokens=False)["input_ids"] == []
    words = ["aspirin", *ZERO_PIECE_WORDS, "toxicity"]
    enc = encode([words, ["\u200b"]], tok, max_length=32)
    assert enc.empty_words == tuple((0, i) for i in range(1, 6)) + ((1, 0),)
    assert enc.n_words == (7, 1)
    preds = [[1] * len(w.input_ids) for w in enc.windows]
    tags = decode(enc, preds, LABELS, "first")
    assert tags[0] == ["B-X"] + [EMPTY_WORD_TAG] * 5 + ["B-X"]
    assert tags[1] == [EMPTY_WORD_TAG]  # never lost: one tag per word


def test_empty_sentence_gives_no_window_and_no_tags(tok):
    enc = encode([[], ["fever"]], tok, max_length=16)
    assert [w.sentence for w in enc.windows] == [1]
    assert decode(enc, [[0] * len(enc.windows[0].input_ids)], LABELS, "first") == [[], ["O"]]


def _check_windows(enc, tok, sentences, max_length):
    owned = {}
    for window in enc.windows:
        assert len(window.input_ids) <= max_length
        assert window.input_ids[0] == tok.cls_token_id and window.input_ids[-1] == tok.sep_token_id
        for w, positions in window.owned:
            assert (window.sentence, w) not in owned  # predicted once
            owned[(window.sentence, w)] = (window, positions)
    for s, words in enumerate(sentences):
        pieces = _word_pieces(tok, words)
        for w, p in enumerate(pieces):
            if p:
                window, positions = owned[(s, w)]
                got = [window.input_ids[i] for i in positions]
                assert got == (p[: len(got)] if (s, w) in enc.clipped_words else p)
            else:
                assert (s, w) in enc.empty_words
    return owned


def test_long_sentence_is_split_into_overlapping_windows_never_truncated(tok):
    words = [f"word{i}" for i in range(300)]  # 2+ sub-tokens each: far beyond 64
    enc = encode([words], tok, max_length=64)
    assert enc.n_windows > 5
    owned = _check_windows(enc, tok, [words], 64)
    assert len(owned) == 300
    spans = []
    for window in enc.windows:
        ws = [w for w, _ in window.owned]
        spans.append((min(ws), max(ws)))
    # windows share words (overlap) but each word is owned by the window centred nearest it
    assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:]))
    assert len(enc.windows[1].input_ids) > 40  # the windows are not trivially short


def test_owned_words_sit_away_from_cut_edges(tok):
    words = [f"w{i}" for i in range(200)]
    enc = encode([words], tok, max_length=34, overlap=16)
    for k, window in enumerate(enc.windows):
        content = len(window.input_ids) - 2
        for _word, positions in window.owned:
            left = positions[0] - 1
            right = content - (positions[-1])
            if k > 0:
                assert left >= 4
            if k < enc.n_windows - 1:
                assert right >= 4


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.sampled_from(["a", "fever", "hydroxychloroquine", "\u200b", "IL-2", "ß", "Na+", "x" * 30]), max_size=60
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(min_value=6, max_value=40),
)
def test_every_word_gets_exactly_one_prediction(tok, sentences, max_length):
    enc = encode(sentences, tok, max_length=max_length)
    _check_windows(enc, tok, sentences, max_length)
    tags = decode(enc, [[0] * len(w.input_ids) for w in enc.windows], LABELS, "majority")
    assert [len(t) for t in tags] == [len(s) for s in sentences]


def test_word_longer_than_a_window_is_clipped_and_counted(tok):
    words = ["a", "supercalifragilisticexpialidocious", "b"]
    assert len(tok(words[1], add_special_tokens=False)["input_ids"]) > 6
    enc = encode([words], tok, max_length=8)
    assert enc.clipped_words == ((0, 1),)
    assert all(len(w.input_ids) <= 8 for w in enc.windows)
    assert sorted(w for win in enc.windows for w, _ in win.owned) == [0, 1, 2]


def test_bad_window_settings_are_refused(tok):
    with pytest.raises(ValueError):
        encode([["a"]], tok, max_length=3)
    with pytest.raises(ValueError):
        encode([["a"]], tok, max_length=16, overlap=14)


# --------------------------------------------------------------------------- word tokenization

WORDED = [
    ["Naloxone", "reverses", "the", "antihypertensive", "effect", "of", "clonidine", "."],
    ["IL-2", "and", "1:2", "α-tocopherol", "(", "10", "mg", "/", "kg", ")", "."],
    ["Hypotension"],
]


def test_byte_level_words_get_their_leading_space_and_word_ids_map_back():
    tokenizer = byte_level_tokenizer()  # Llama-3 / SmolLM2 style
    for words in WORDED:
        assert "".join(words_with_spaces(words)) == " ".join(words)
        enc = tokenize_words(tokenizer, [words], add_special_tokens=False)
        ids, word_ids = enc["input_ids"][0], enc.word_ids(0)
        # same sub-tokens as the running text
        assert ids == tokenizer(" ".join(words), add_special_tokens=False)["input_ids"]
        assert sorted(set(word_ids)) == list(range(len(words)))
        for w, word in enumerate(words):
            piece = [t for t, k in zip(ids, word_ids) if k == w]
            assert tokenizer.decode(piece) == (" " if w else "") + word
    # the quirk the helper exists for: bare words are split as if glued together
    bare = tokenizer([WORDED[0]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
    assert bare != tokenizer(" ".join(WORDED[0]), add_special_tokens=False)["input_ids"]


def test_leading_spaces_only_where_the_tokenizer_needs_them(tok):
    assert needs_leading_spaces(byte_level_tokenizer())
    words = WORDED[0]
    for other in (tok, sentencepiece_tokenizer()):  # WordPiece, SentencePiece-style
        assert not needs_leading_spaces(other)
        assert tokenize_words(other, [words])["input_ids"] == other([words], is_split_into_words=True)["input_ids"]
