"""The CPU estimate `eval` and `train` print before the paper profile trains: work in sentences
divided by a measured speed, scaled by parameter count."""

import pytest

from nerbench.conll import Sentence
from nerbench.pipeline.estimate import (
    MEASURED,
    SplitSizes,
    about,
    describe,
    duration,
    estimate,
    for_registry_model,
    paper_on_cpu_notice,
    split_sizes,
)
from nerbench.record import Budget

MINILM = MEASURED[("encoder", "token")]


def sentences(n: int, words: int = 10) -> list[Sentence]:
    return [Sentence(tokens=("w",) * words, tags=("O",) * words, line=1 + i * (words + 1)) for i in range(n)]


def test_paper_budget_trains_every_sentence_for_the_recipe_epochs():
    sizes = [SplitSizes("a", sentences(600), dev=320, test=160)]
    e = estimate("minilm-l6", MINILM.parameters, "encoder", "token", Budget(name="paper"), 20, sizes, test_passes=3)
    (d,) = e.datasets
    assert (d.epochs, d.train_sentences, d.dev_sentences, d.test_sentences, d.test_passes) == (20, 600, 320, 160, 3)
    expected = 20 * (600 / MINILM.train + 320 / MINILM.predict) + 3 * 160 / MINILM.predict
    assert d.seconds == pytest.approx(expected) and e.seconds == pytest.approx(expected)
    assert e.up_to and not e.scaled


def test_a_budget_caps_sentences_words_dev_and_epochs():
    budget = Budget(name="quick", epochs=1, max_train_sentences=50, max_train_tokens=200, max_dev_sentences=30)
    sizes = [SplitSizes("a", sentences(600, words=10), dev=320, test=0), SplitSizes("b", sentences(10), 5, 0)]
    e = estimate("m", MINILM.parameters, "encoder", "token", budget, 20, sizes, test_passes=0)
    assert [(d.train_sentences, d.dev_sentences, d.epochs) for d in e.datasets] == [(20, 30, 1), (10, 5, 1)]
    assert not e.up_to  # the budget fixes the epochs
    assert e.seconds == pytest.approx((20 + 10) / MINILM.train + (30 + 5) / MINILM.predict)


def test_bigger_models_are_scaled_by_parameter_count():
    sizes = [SplitSizes("a", sentences(300), dev=0, test=0)]
    small = estimate("s", MINILM.parameters, "encoder", "token", Budget(name="paper"), 2, sizes, test_passes=0)
    big = estimate("b", 10 * MINILM.parameters, "encoder", "token", Budget(name="paper"), 2, sizes, test_passes=0)
    assert big.seconds == pytest.approx(10 * small.seconds)
    assert big.train_rate == pytest.approx(MINILM.train / 10) and big.scaled
    text = " ".join(describe(big, "training"))
    assert "scaled by parameter count from MiniLM-L6" in text and "ENVIRONMENT.md" in text


def test_each_way_of_tagging_has_its_own_measured_speed():
    sizes = [SplitSizes("a", sentences(100), dev=10, test=50)]
    token = estimate("x", 134_515_008, "llm", "token", Budget(name="paper"), 1, sizes)
    generative = estimate("x", 134_515_008, "llm", "generative", Budget(name="paper"), 1, sizes)
    assert generative.seconds > 10 * token.seconds
    assert not token.scaled and "SmolLM2-135M" in token.reference.model
    with pytest.raises(ValueError):
        estimate("x", 0, "encoder", "token", Budget(name="paper"), 1, sizes)


def test_durations():
    assert [duration(s) for s in (20, 90, 59 * 60, 3 * 3600 + 5 * 60, 50 * 3600)] == [
        "under a minute",
        "2 min",
        "59 min",
        "3 h 05 min",
        "2 days 2 h",
    ]
    assert about(20) == "under a minute" and about(600) == "about 10 min"


def test_describe_gives_a_line_per_dataset_a_total_and_the_speed():
    sizes = [SplitSizes("a", sentences(3000), dev=100, test=100), SplitSizes("b", sentences(1500), 100, 100)]
    e = estimate("minilm-l6", MINILM.parameters, "encoder", "token", Budget(name="paper"), 20, sizes)
    lines = describe(e, "training and prediction")
    assert lines[0].startswith("  a: 3,000 train + 100 dev sentences x 20 epochs + 100 test sentences x 3 timed")
    assert lines[0].endswith(f"up to {about(e.datasets[0].seconds)}")
    assert lines[2] == f"  in all: up to {about(e.seconds)} of training and prediction"
    assert "30 train and 160 predicted sentences/s" in lines[3] and "early stopping" in lines[3]


def test_registry_models_only(data_dir):
    sizes = split_sizes(["ncbi_disease"], data_dir)
    assert [(s.dataset, len(s.train), s.dev, s.test) for s in sizes] == [("ncbi_disease", 5424, 923, 940)]
    assert for_registry_model("org/unknown", "paper", sizes) is None
    assert paper_on_cpu_notice("org/unknown", sizes) == []
    paper = for_registry_model("minilm-l6", "paper", sizes)
    quick = for_registry_model("minilm-l6", "quick", sizes)
    assert paper.datasets[0].train_sentences == 5424 and paper.datasets[0].epochs == 20
    assert quick.datasets[0].epochs == 1 and quick.datasets[0].train_sentences < 2000
    assert quick.seconds < paper.seconds / 10
    notice = paper_on_cpu_notice("minilm-l6", sizes)
    assert notice[0].startswith("No GPU here (device cpu): the paper profile fine-tunes minilm-l6")
    assert notice[1].startswith("  ncbi_disease: 5,424 train + 923 dev sentences x 20 epochs")
    assert notice[-1].startswith("For a CPU-sized budget add --profile quick (1 epoch, train capped at 2,000")
    assert notice[-1].endswith(f"{about(quick.seconds)}.")
    seeded = paper_on_cpu_notice("minilm-l6", sizes, seeds=3)
    assert f"  x 3 seeds (each trains anew): up to {about(3 * paper.seconds)} in all" in seeded
    assert seeded[-1].endswith(f"{about(3 * quick.seconds)} in all.")
    # A generative LLM is estimated at its own, much lower, speed.
    generative = for_registry_model("smollm2-135m", "paper", sizes, head="generative")
    assert generative.reference is MEASURED[("llm", "generative")]


def test_unreadable_splits_are_left_out(tmp_path):
    assert split_sizes(["ncbi_disease"], tmp_path) == []
