"""DeBERTa-v3 style checkpoints load: a folder that ships only a SentencePiece model (spm.model, as
microsoft/deberta-v3-large does) gets a fast tokenizer, converted on load, which needs the declared
`sentencepiece` and `protobuf`; words align through nerbench's encoder path, one tag per word.

The SentencePiece model is trained here on a few hundred words and the DeBERTa-v2 token classifier
has random weights: plumbing only, never a score.
"""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

import pytest
import sentencepiece
import torch
from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForTokenClassification

from nerbench.models.align import decode, encode, needs_leading_spaces, training_labels
from nerbench.models.encoder import EncoderPredictor

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("O", "B-Disease", "I-Disease")
WORDS = (
    "the patient developed acute renal failure after treatment with cisplatin and a tumour suppressor gene "
    "was mutated in familial adenomatous polyposis colorectal cancer breast ovarian hereditary nonpolyposis "
    "deficiency of the enzyme caused severe hypertension in mice carriers showed early onset disease while "
    "controls remained healthy throughout follow up of several years hepatic toxicity occurred rarely"
).split()
SENTENCES = [
    ["The", "patient", "developed", "acute", "renal", "failure", "."],
    ["Familial", "adenomatous", "polyposis", "(", "FAP", ")", "is", "hereditary", "."],
    ["Hypertensive", "mice", "showed", "hepatotoxicity", "and", "Ω-shaped", "lesions"],
    ["deficiency"],
]


@pytest.fixture(scope="module")
def deberta_folder(tmp_path_factory) -> Path:
    """A checkpoint folder laid out like microsoft/deberta-v3-large: config.json, spm.model and
    tokenizer_config.json only (no tokenizer.json), plus random-weight safetensors."""
    work = tmp_path_factory.mktemp("spm")
    rng = random.Random(0)
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(15)) for _ in range(300)), encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(work / "spm"),
        vocab_size=150,
        hard_vocab_limit=False,  # at most 150: a few hundred words may not hold that many pieces
        model_type="unigram",
        character_coverage=1.0,
        # DeBERTa-v3's ids: [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3
        pad_id=0,
        bos_id=1,
        eos_id=2,
        unk_id=3,
        pad_piece="[PAD]",
        bos_piece="[CLS]",
        eos_piece="[SEP]",
        unk_piece="[UNK]",
        minloglevel=2,
    )
    folder = work / "deberta-v3-tiny"
    folder.mkdir()
    (folder / "spm.model").write_bytes((work / "spm.model").read_bytes())
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": False, "vocab_type": "spm"}))
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(folder / "spm.model")).get_piece_size()
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=pieces + 8,  # room for [MASK], which the tokenizer adds after the pieces
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=16,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        norm_rel_ebd="layer_norm",
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model = DebertaV2ForTokenClassification(config)
    model.config.nerbench_random_init = True  # `nerbench eval` refuses to store its scores
    model.save_pretrained(folder)
    assert not (folder / "tokenizer.json").exists()
    return folder


def test_sentencepiece_and_protobuf_are_declared():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = {d.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for d in deps}
    assert {"sentencepiece", "protobuf"} <= names
    assert "torch==2.13.0" in deps  # still pinned


def test_the_spm_only_folder_gets_a_fast_tokenizer_with_its_vocabulary(deberta_folder):
    tokenizer = AutoTokenizer.from_pretrained(deberta_folder)
    assert tokenizer.is_fast  # word_ids() need it
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(deberta_folder / "spm.model")).get_piece_size()
    assert len(tokenizer) >= pieces  # the pieces were read, not an empty vocabulary
    ids = tokenizer("the patient developed acute renal failure", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.cls_token == "[CLS]" and tokenizer.sep_token == "[SEP]"
    # SentencePiece marks word starts itself: words go in bare, with no added leading space.
    assert not needs_leading_spaces(tokenizer)


def test_every_word_gets_its_first_sub_token(deberta_folder):
    tokenizer = AutoTokenizer.from_pretrained(deberta_folder)
    for max_length in (512, 16):  # one window per sentence; overlapping windows over long sentences
        enc = encode(SENTENCES, tokenizer, max_length)
        assert (enc.n_windows == len(SENTENCES)) == (max_length == 512)
        owners: dict[tuple[int, int], int] = {}
        for window in enc.windows:
            assert window.input_ids[0] == tokenizer.cls_token_id and window.input_ids[-1] == tokenizer.sep_token_id
            assert len(window.input_ids) <= max_length
            for w, positions in window.owned:
                assert (window.sentence, w) not in owners  # each word owned by one window only
                owners[(window.sentence, w)] = positions[0]
                word = SENTENCES[window.sentence][w]
                alone = tokenizer([[word]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
                if (window.sentence, w) in enc.clipped_words:  # longer than a whole window: its first part
                    alone = alone[: len(positions)]
                assert [window.input_ids[p] for p in positions] == alone  # its sub-tokens, first one first
        expected = {(s, w) for s, sentence in enumerate(SENTENCES) for w in range(len(sentence))}
        assert set(owners) == expected - set(enc.empty_words)
        assert enc.empty_words == ()
        assert (enc.clipped_words == ()) == (max_length == 512)
        # Training labels sit on the first sub-token of each word ("first" policy).
        tags = {s: [i % len(LABELS) for i in range(len(sentence))] for s, sentence in enumerate(SENTENCES)}
        for window in enc.windows:
            labels = training_labels(window, tags[window.sentence], "first")
            for w, positions in window.owned:
                assert labels[positions[0]] == tags[window.sentence][w]
                assert all(labels[p] == -100 for p in positions[1:])
        # Decoding the labels put on the first sub-tokens gives them back, one per word.
        predicted = [training_labels(window, tags[window.sentence], "first") for window in enc.windows]
        back = decode(enc, [[max(label, 0) for label in row] for row in predicted], LABELS, "first")
        assert back == [[LABELS[t] for t in tags[s]] for s in range(len(SENTENCES))]


def test_the_predictor_loads_the_folder_and_gives_one_tag_per_word(deberta_folder):
    # The loader `nerbench eval` uses for an encoder checkpoint folder (pipeline/taggers/encoder_token.py).
    predictor = EncoderPredictor.load(deberta_folder, LABELS, device="cpu", batch_size=2)
    assert type(predictor.model).__name__ == "DebertaV2ForTokenClassification"
    assert predictor.tokenizer.is_fast
    tags = predictor.predict_batch(SENTENCES)
    assert [len(t) for t in tags] == [len(s) for s in SENTENCES]
    assert all(tag in LABELS for sentence in tags for tag in sentence)
    assert predictor.stats.words == sum(map(len, SENTENCES)) and predictor.stats.empty_words == 0
    # A small window cuts the long sentences into overlapping windows; still one tag per word.
    small = EncoderPredictor.load(deberta_folder, LABELS, device="cpu", max_length=8)
    windowed = small.predict_batch(SENTENCES)
    assert [len(t) for t in windowed] == [len(s) for s in SENTENCES]
    assert small.stats.windows > len(SENTENCES)
