import json

import pytest
import torch

from nerbench.errors import NerbenchError
from nerbench.models import encoder as encoder_module
from nerbench.models.encoder import ENCODER_BATCH_SIZE, EncoderPredictor
from nerbench.models.predictor import length_sorted_batches, predict_all
from nerbench.protocol import PROTOCOL
from nerbench.timing import Predictor

from _tiny_models import NCBI_LABELS, save_tiny_bert

SENTENCES = [
    ["Familial", "adenomatous", "polyposis", "is", "inherited", "."],
    ["Ataxia", "-", "telangiectasia"],
    ["The", "\u200b", "gene"],
    [],
    [
        "Mutations",
        "in",
        "BRCA1",
        "cause",
        "breast",
        "and",
        "ovarian",
        "cancer",
        "in",
        "families",
        "with",
        "a",
        "history",
        "of",
        "early",
        "onset",
        "disease",
        ".",
    ],
    ["a"],
]


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny") / "ckpt", labels=NCBI_LABELS)


@pytest.fixture(scope="module")
def predictor(tiny_classifier):
    return EncoderPredictor.load(str(tiny_classifier), NCBI_LABELS, batch_size=2)


def test_predictor_follows_the_protocol(predictor):
    assert isinstance(predictor, Predictor)
    assert predictor.device == "cpu" and predictor.labels == NCBI_LABELS
    assert next(predictor.model.parameters()).dtype == torch.float32  # fp32 on CPU
    assert not predictor.model.training
    predictor.synchronize()  # no-op on CPU


def test_default_batch_size_is_the_timing_protocols():
    assert ENCODER_BATCH_SIZE == PROTOCOL.encoder_batch_size


def test_batches_are_length_sorted_and_cover_every_sentence(predictor):
    groups = predictor.batches(SENTENCES)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(SENTENCES)))
    assert all(len(g) <= 2 for g in groups)
    lengths = predictor.sub_token_lengths(SENTENCES)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_length_sorted_batches_refuses_zero():
    with pytest.raises(ValueError):
        length_sorted_batches([1, 2], 0)


def test_predict_all_restores_order_and_matches_one_at_a_time(predictor):
    tags = predict_all(predictor, SENTENCES)
    assert [len(t) for t in tags] == [len(s) for s in SENTENCES]
    assert all(t in NCBI_LABELS for row in tags for t in row)
    one_by_one = [predictor.predict_batch([s])[0] for s in SENTENCES]
    assert tags == one_by_one  # padding to the batch's longest changes nothing
    assert tags[2][1] == "O"  # the zero-width word has no sub-token


def test_long_sentence_is_predicted_through_several_windows(tiny_classifier):
    small = EncoderPredictor.load(str(tiny_classifier), NCBI_LABELS, max_length=8)
    long_sentence = [f"word{i}" for i in range(40)]
    before = small.stats.windows
    (tags,) = small.predict_batch([long_sentence])
    assert len(tags) == 40 and small.stats.windows - before > 3


def test_predictions_depend_on_the_weights(tiny_classifier, tmp_path):
    other = save_tiny_bert(tmp_path / "other", labels=NCBI_LABELS, seed=1)
    a = predict_all(EncoderPredictor.load(str(tiny_classifier), NCBI_LABELS), SENTENCES)
    b = predict_all(EncoderPredictor.load(str(other), NCBI_LABELS), SENTENCES)
    assert a != b


def test_label_policy_comes_from_training_json(tiny_classifier, tmp_path):
    folder = save_tiny_bert(tmp_path / "trained", labels=NCBI_LABELS)
    (folder / "training.json").write_text(json.dumps({"recipe": {"label_policy": "majority", "max_length": 128}}))
    p = EncoderPredictor.load(str(folder), NCBI_LABELS)
    assert (p.label_policy, p.max_length) == ("majority", 128)
    assert EncoderPredictor.load(str(folder), NCBI_LABELS, label_policy="first").label_policy == "first"


def test_label_map_mismatch_names_both(tiny_classifier):
    chem = ("O", "B-Chemical", "I-Chemical")
    with pytest.raises(NerbenchError) as err:
        EncoderPredictor.load(str(tiny_classifier), chem)
    message = str(err.value)
    assert "label map mismatch" in message and "B-Disease" in message and "B-Chemical" in message


def test_untrained_head_is_a_label_mismatch(tmp_path):
    folder = save_tiny_bert(tmp_path / "bare")  # config has no task labels
    with pytest.raises(NerbenchError, match="label map mismatch.*no task labels.*nerbench train"):
        EncoderPredictor.load(str(folder), NCBI_LABELS)
    with pytest.raises(NerbenchError, match="no task labels"):
        EncoderPredictor.load("minilm-l6", NCBI_LABELS)


def test_remote_code_only_when_asked(tiny_classifier, monkeypatch):
    seen = []
    from transformers import AutoModelForTokenClassification

    original = AutoModelForTokenClassification.from_pretrained

    def spy(*args, **kwargs):
        seen.append((kwargs.get("trust_remote_code"), kwargs.get("use_safetensors")))
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForTokenClassification, "from_pretrained", spy)
    EncoderPredictor.load(str(tiny_classifier), NCBI_LABELS)
    assert seen == [(False, True)]


def test_bf16_on_cuda_fp32_on_cpu():
    assert encoder_module.inference_dtype("cuda:0") == torch.bfloat16
    assert encoder_module.inference_dtype("cpu") == torch.float32


def test_corrupt_training_json_is_named(tmp_path):
    folder = save_tiny_bert(tmp_path / "bad", labels=NCBI_LABELS)
    (folder / "training.json").write_text("{oops")
    with pytest.raises(NerbenchError, match="training.json"):
        EncoderPredictor.load(str(folder), NCBI_LABELS)
