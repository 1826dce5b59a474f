"""One joint bootstrap for every interval of a score: the same distribution per metric as a draw
of its own, the old per-metric draw still reproducible, and the run record saying which was used."""

import random

import numpy as np
import pytest

from nerbench import scoring
from nerbench.errors import NerbenchError


def _corpus(seed, n=600):
    rng = random.Random(seed)
    gold, pred = [], []
    for _ in range(n):
        g = [rng.choice(["O", "O", "O", "B-A", "I-A", "B-B", "I-B"]) for _ in range(rng.randint(1, 14))]
        p = [tag if rng.random() < 0.85 else rng.choice(["O", "B-A", "I-A", "B-B"]) for tag in g]
        gold.append(g)
        pred.append(p)
    return gold, pred


def _intervals(scores):
    out = {("f1",): scores.ci95["f1"]}
    for field in ("ci95_per_type", "ci95_per_length", "ci95_paper_buckets"):
        out |= {(field, name): ci for name, ci in getattr(scores, field).items()}
    return out


def test_each_joint_interval_has_the_distribution_of_its_own_draw():
    gold, pred = _corpus(1)
    units = [f"d{i // 5}" for i in range(len(gold))]
    joint = scoring.score(gold, pred, bootstrap=20000, units=units)
    alone = scoring.score(gold, pred, bootstrap=20000, units=units, draw="per-metric")
    a, b = _intervals(joint), _intervals(alone)
    assert a.keys() == b.keys() and len(a) == 1 + 2 + 3 + 3
    assert a[("f1",)] != b[("f1",)]  # other random numbers...
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=0.006), key  # ...the same interval
    # Everything else is the same whichever draw.
    assert {k: v for k, v in joint.to_dict().items() if not k.startswith("ci95")} == {
        k: v for k, v in alone.to_dict().items() if not k.startswith("ci95")
    }


def test_the_joint_draw_is_one_draw_shared_by_every_metric():
    gold, pred = _corpus(2, n=300)
    rows = scoring.sentence_counts(gold, pred)
    # Two copies of one metric's columns: one draw gives both the same interval.
    twice = scoring.joint_bootstrap_f1_ci(np.hstack([rows, rows]), 500, seed=3)
    assert twice[0] == twice[1]
    # One metric alone: the single draw's interval, by either sampler (unit draws here, where
    # sentences share few rows; the multinomial where many do).
    for table in (rows, np.repeat(rows, 10, axis=0)):
        (joint,) = scoring.joint_bootstrap_f1_ci(table, 20000, seed=3)
        assert joint == pytest.approx(scoring.bootstrap_f1_ci(table, 20000, seed=3), abs=0.004)
    scores = scoring.score(gold, pred, bootstrap=500, seed=3)
    assert scores.ci95["f1"] == scoring.score(gold, pred, bootstrap=500, seed=3).ci95["f1"]
    assert scores.ci95 != scoring.score(gold, pred, bootstrap=500, seed=4).ci95


def test_the_per_metric_draw_reproduces_each_interval_on_its_own():
    gold, pred = _corpus(3, n=300)
    scores = scoring.score(gold, pred, bootstrap=400, seed=5, draw="per-metric")
    assert scores.ci95["f1"] == scoring.bootstrap_f1_ci(scoring.sentence_counts(gold, pred), 400, seed=5)


def test_no_resamples_give_the_point_f1_for_every_metric():
    gold, pred = _corpus(4, n=100)
    for draw in scoring.DRAWS:
        scores = scoring.score(gold, pred, bootstrap=0, draw=draw)
        assert scores.ci95["f1"] == pytest.approx((scores.strict.f1,) * 2)
        for name, prf in scores.per_type.items():
            assert scores.ci95_per_type[name] == pytest.approx((prf.f1,) * 2)
    empty = scoring.score([], [], bootstrap=100)
    assert empty.ci95["f1"] == (0.0, 0.0)


def test_an_unknown_draw_is_refused():
    with pytest.raises(NerbenchError, match="draw"):
        scoring.score([["O"]], [["O"]], draw="separate")


def test_the_record_names_the_joint_draw_and_old_records_keep_their_run_id():
    from nerbench.record import Bootstrap

    old = Bootstrap(resamples=1000, seed=0)
    assert old.draw == "per-metric" and old.model_dump() == {"resamples": 1000, "seed": 0}
    joint = Bootstrap(resamples=1000, seed=0, unit="document", draw=scoring.BOOTSTRAP_DRAW)
    assert joint.model_dump() == {"resamples": 1000, "seed": 0, "unit": "document", "draw": "joint"}
    assert Bootstrap.model_validate(joint.model_dump()) == joint


def test_both_samplers_draw_the_same_multiplicities():
    rng = np.random.default_rng(0)
    counts = np.array([5, 3, 1, 1])
    by_units = scoring._resample_weights(counts, 40000, rng)  # n = 10 <= 4 x 4 rows: unit draws
    assert by_units.shape == (40000, 4) and (by_units.sum(axis=1) == 10).all()
    by_rows = rng.multinomial(10, counts / 10, size=40000)
    assert by_units.mean(axis=0) == pytest.approx(by_rows.mean(axis=0), abs=0.05)
    assert by_units.var(axis=0) == pytest.approx(by_rows.var(axis=0), abs=0.08)
    many = scoring._resample_weights(np.array([90, 10]), 5, rng)  # n = 100 > 4 x 2: multinomial
    assert many.shape == (5, 2) and (many.sum(axis=1) == 100).all()
    # Chunks of resamples (memory) give the same kind of draws.
    chunked = scoring._resample_weights(np.ones(3_000_000, dtype=np.int64), 3, rng)
    assert chunked.shape == (3, 3_000_000) and (chunked.sum(axis=1) == 3_000_000).all()
