"""The scorer against seqeval (default mode) and nervaluate 1.2.1, which define what nerbench's
numbers mean, on every shared test set with systematic perturbations and on random sequences."""

import dataclasses
import math
import random
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nervaluate import Evaluator
from seqeval.metrics import classification_report
from seqeval.metrics.sequence_labeling import get_entities

from nerbench import scoring
from nerbench.conll import read_conll
from nerbench.errors import NerbenchError

TOL = 1e-12
TEST_SETS = ["jnlpba", "bc5cdr", "biored", "chemprot", "ncbi_disease", "bc2gm", "linnaeus"]


# ----------------------------------------------------------------------------- perturbations


def _spans(tags):
    """(type, start, end-exclusive) per entity, via seqeval's reader (inclusive ends)."""
    return [(t, s, e + 1) for t, s, e in get_entities(list(tags))]


def drop_entities(tags, rng):
    out = list(tags)
    for _, s, e in _spans(tags):
        if rng.random() < 0.3:
            out[s:e] = ["O"] * (e - s)
    return out


def spurious_entities(tags, rng, types):
    out = list(tags)
    for i, tag in enumerate(tags):
        if tag == "O" and rng.random() < 0.03:
            out[i] = "B-" + rng.choice(types)
    return out


def shift_boundaries(tags, rng):
    out = list(tags)
    for t, s, e in _spans(tags):
        r = rng.random()
        if r < 0.2 and e < len(out) and out[e] == "O":  # extend right
            out[e] = "I-" + t
        elif r < 0.4 and e - s > 1:  # shrink right
            out[e - 1] = "O"
        elif r < 0.6 and s > 0 and out[s - 1] == "O":  # extend left
            out[s - 1], out[s] = "B-" + t, "I-" + t
        elif r < 0.8 and e - s > 1:  # shrink left
            out[s], out[s + 1] = "O", "B-" + t
    return out


def swap_types(tags, rng, types):
    out = list(tags)
    for _type, s, e in _spans(tags):
        if rng.random() < 0.3:
            new = rng.choice(types)
            out[s:e] = ["B-" + new] + ["I-" + new] * (e - s - 1)
    return out


def ill_formed_starts(tags, rng):
    return [("I" + tag[1:] if tag.startswith("B-") and rng.random() < 0.3 else tag) for tag in tags]


def switch_type_inside(tags, rng, types):
    out = list(tags)
    for _type, s, e in _spans(tags):
        if e - s > 1 and rng.random() < 0.5:
            i = rng.randrange(s + 1, e)
            out[i] = "I-" + rng.choice(types)
    return out


def mixed(tags, rng, types):
    for step in (drop_entities, shift_boundaries, ill_formed_starts):
        tags = step(tags, rng)
    for step in (spurious_entities, swap_types, switch_type_inside):
        tags = step(tags, rng, types)
    return tags


PERTURBATIONS = {
    "identical": lambda tags, rng, types: list(tags),
    "dropped": lambda tags, rng, types: drop_entities(tags, rng),
    "spurious": spurious_entities,
    "shifted": lambda tags, rng, types: shift_boundaries(tags, rng),
    "swapped_types": swap_types,
    "ill_formed": lambda tags, rng, types: ill_formed_starts(tags, rng),
    "switch_inside": switch_type_inside,
    "mixed": mixed,
}


# ----------------------------------------------------------------------------- references


def assert_agrees(gold, pred):
    """Every scheme equals nervaluate, micro and per-type strict equal seqeval, to 1e-12."""
    types = sorted({t for seq in gold + pred for t, _, _ in _spans(seq)})
    ours = scoring.score(gold, pred, bootstrap=0)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(gold, pred, output_dict=True, zero_division=0) if types else {}
    if types:
        micro = report["micro avg"]
        assert ours.strict.precision == pytest.approx(micro["precision"], abs=TOL)
        assert ours.strict.recall == pytest.approx(micro["recall"], abs=TOL)
        assert ours.strict.f1 == pytest.approx(micro["f1-score"], abs=TOL)
        assert ours.macro_f1 == pytest.approx(report["macro avg"]["f1-score"], abs=TOL)
        assert set(ours.per_type) == set(types)
        for name in types:
            assert ours.per_type[name].precision == pytest.approx(report[name]["precision"], abs=TOL)
            assert ours.per_type[name].recall == pytest.approx(report[name]["recall"], abs=TOL)
            assert ours.per_type[name].f1 == pytest.approx(report[name]["f1-score"], abs=TOL)
            assert ours.per_type[name].n_gold == report[name]["support"]
    else:
        assert ours.strict.f1 == 0.0 and ours.per_type == {}

    if types:
        overall = Evaluator(gold, pred, tags=types, loader="list").evaluate()["overall"]
        schemes = (("strict", "strict"), ("exact", "exact"), ("partial", "partial"), ("type", "ent_type"))
        for ours_name, theirs in schemes:
            mine, ref = getattr(ours, ours_name), overall[theirs]
            assert mine.precision == pytest.approx(ref.precision, abs=TOL), ours_name
            assert mine.recall == pytest.approx(ref.recall, abs=TOL), ours_name
            assert mine.f1 == pytest.approx(ref.f1, abs=TOL), ours_name

    # Length buckets against a plain set-based definition.
    gold_spans = {(i, *s) for i, seq in enumerate(gold) for s in _spans(seq)}
    pred_spans = {(i, *s) for i, seq in enumerate(pred) for s in _spans(seq)}
    for name, keep in (("1", lambda n: n == 1), ("2", lambda n: n == 2), ("3+", lambda n: n >= 3)):
        g = {s for s in gold_spans if keep(s[3] - s[2])}
        p = {s for s in pred_spans if keep(s[3] - s[2])}
        expected = scoring.PRF.from_counts(len(g & p), len(p), len(g))
        assert ours.per_length[name] == expected, name
    assert ours.long_f1 == ours.per_length["3+"].f1
    return ours


# ----------------------------------------------------------------------------- the shared test sets


@pytest.fixture(scope="module")
def test_sets(data_dir):
    return {name: [list(s.tags) for s in read_conll(data_dir / name / "test.conll")] for name in TEST_SETS}


@pytest.mark.parametrize("perturbation", list(PERTURBATIONS))
def test_agrees_with_seqeval_and_nervaluate_on_every_test_set(test_sets, perturbation):
    for name, gold in test_sets.items():
        rng = random.Random(f"{name}/{perturbation}")
        # An extra type, so that single-type sets get wrong types too.
        types = sorted({t for seq in gold for t, _, _ in _spans(seq)}) + ["Other"]
        pred = [PERTURBATIONS[perturbation](seq, rng, types) for seq in gold]
        ours = assert_agrees(gold, pred)
        if perturbation == "identical":
            assert ours.strict.f1 == 1.0 and ours.partial.f1 == 1.0
        else:
            assert ours.strict.f1 < 1.0, (name, perturbation)


def test_spans_equal_seqeval_entities_on_every_test_set(test_sets):
    for name, gold in test_sets.items():
        spans = scoring.extract_spans(gold)
        ours = sorted(
            zip(
                spans.sentence.tolist(),
                (spans.types[t] for t in spans.type_id),
                spans.start.tolist(),
                spans.end.tolist(),
            )
        )
        theirs = sorted((i, *s) for i, seq in enumerate(gold) for s in _spans(seq))
        assert ours == theirs, name


def test_ill_formed_count_on_biored(test_sets):
    # The shared README: biored's test split keeps 6 I- tags that do not continue an entity.
    assert scoring.score(test_sets["biored"], test_sets["biored"], bootstrap=0).ill_formed == {"gold": 6, "pred": 6}
    assert scoring.extract_spans(test_sets["ncbi_disease"]).ill_formed == 0


# ----------------------------------------------------------------------------- random sequences

TAG = st.sampled_from(["O", "O", "O", "B-A", "I-A", "B-B", "I-B", "I-C"])


@st.composite
def corpora(draw):
    lengths = draw(st.lists(st.integers(0, 12), min_size=1, max_size=8))
    gold = [draw(st.lists(TAG, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(TAG, min_size=n, max_size=n)) for n in lengths]
    return gold, pred


@settings(max_examples=300, deadline=None)
@given(corpora())
def test_random_sequences_agree(corpus):
    gold, pred = corpus
    assert_agrees(gold, pred)


@settings(max_examples=200, deadline=None)
@given(corpora())
def test_random_spans_equal_seqeval(corpus):
    gold, _ = corpus
    spans = scoring.extract_spans(gold)
    ours = sorted(
        zip(spans.sentence.tolist(), (spans.types[t] for t in spans.type_id), spans.start.tolist(), spans.end.tolist())
    )
    assert ours == sorted((i, *s) for i, seq in enumerate(gold) for s in _spans(seq))


def test_long_gold_entity_needs_one_percent_overlap_for_partial_credit():
    # nervaluate counts an overlap only if it covers >= 1% of the gold span: 1 token of 150 does not.
    gold = [["B-A"] + ["I-A"] * 149]
    one_token = [["B-A"] + ["O"] * 149]
    two_tokens = [["B-A", "I-A"] + ["O"] * 148]
    assert scoring.score(gold, one_token, bootstrap=0).partial.tp == 0
    assert scoring.score(gold, two_tokens, bootstrap=0).partial.tp == 0.5
    assert_agrees(gold, one_token)
    assert_agrees(gold, two_tokens)


def test_more_tags_than_one_byte_codes_score_the_same():
    # Codes are one byte each while a corpus has under 256 distinct tags; past that they widen.
    # 200 types give 401 tags: the same entities, with the types renamed from gold's, score alike.
    gold = [[f"B-T{i}", f"I-T{i}", "O"] for i in range(200)]
    pred = [list(tags) for tags in gold]
    pred[7] = ["B-T8", "I-T8", "O"]  # wrong type
    pred[9] = ["B-T9", "O", "O"]  # short
    s = scoring.score(gold, pred, bootstrap=0)
    assert (s.strict.tp, s.strict.n_pred, s.strict.n_gold) == (198, 200, 200)
    assert len(s.per_type) == 200
    assert s.per_type["T7"] == scoring.PRF.from_counts(0, 0, 1)
    assert s.per_type["T8"] == scoring.PRF.from_counts(1, 2, 1)
    assert_agrees(gold, pred)
    with pytest.raises(NerbenchError, match=r"predictions: invalid tag 'X-1' at sentence 200, token 3"):
        scoring.score(gold, pred[:-1] + [["B-T199", "I-T199", "X-1"]])


# ----------------------------------------------------------------------------- hand-checked cases


def test_hand_checked_example():
    gold = [["B-A", "I-A", "O", "B-B", "O"], ["B-A", "I-A", "I-A", "O"]]
    pred = [["B-A", "I-A", "O", "B-A", "O"], ["B-A", "I-A", "O", "B-B"]]
    s = scoring.score(gold, pred, bootstrap=0)
    # strict: only sentence 1's A(0,2) matches; 4 predicted, 3 gold
    assert (s.strict.tp, s.strict.n_pred, s.strict.n_gold) == (1, 4, 3)
    # exact: also B(3,4) predicted as A
    assert s.exact.tp == 2
    # partial: 2 exact + A(0,2) overlapping A(0,3) half
    assert s.partial.tp == 2.5
    # type: A(0,2) correct, A(0,2) overlaps A(0,3) same type -> correct
    assert s.type.tp == 2
    assert s.per_length["3+"] == scoring.PRF.from_counts(0, 0, 1)
    assert s.per_length["2"] == scoring.PRF.from_counts(1, 2, 1)


def test_ill_formed_starts_are_counted_and_read_as_entities():
    s = scoring.score([["B-A", "I-A"]], [["I-A", "I-A"]], bootstrap=0)
    assert s.ill_formed == {"gold": 0, "pred": 1}
    assert s.strict.f1 == 1.0  # conlleval reading: I-A I-A is one entity A(0,2)


def test_length_mismatch_names_the_sentence():
    with pytest.raises(NerbenchError, match="sentence 2: predictions have 2 tags, gold has 3 tokens"):
        scoring.score([["O"], ["O", "O", "O"]], [["O"], ["O", "O"]])
    with pytest.raises(NerbenchError, match="predictions have 1 sentences, gold has 2"):
        scoring.score([["O"], ["O"]], [["O"]])


@pytest.mark.parametrize("bad", ["X-Foo", "B-", "I", "b-A", "", "B-A B"])
def test_invalid_tag_names_its_position(bad):
    with pytest.raises(NerbenchError, match=r"predictions: invalid tag .* at sentence 2, token 2"):
        scoring.score([["O"], ["O", "O"]], [["O"], ["O", bad]])


def test_json_shape():
    d = scoring.score([["B-A", "I-A", "O"]], [["B-A", "I-A", "O"]], bootstrap=50).to_dict()
    for scheme in ("strict", "exact", "partial", "type"):
        assert set(d[scheme]) >= {"precision", "recall", "f1"}
    assert set(d["per_length"]) == {"1", "2", "3+"}
    assert set(d["paper_buckets"]) == {"1", "2", "3+"} and d["paper_buckets"]["2"]["f1"] == 1.0
    assert d["paper_long_f1"] == d["long_f1"] == 0.0  # no entity of 3+ tokens
    assert d["ill_formed"] == {"gold": 0, "pred": 0}
    assert d["ci95"]["f1"] == [1.0, 1.0]


def test_metric_rows_cover_schemes_types_and_buckets():
    s = scoring.score([["B-A", "O", "B-B", "I-B", "I-B"]], [["B-A", "O", "B-B", "I-B", "O"]], bootstrap=10)
    keys = {(r.scheme, r.entity_type, r.length_bucket) for r in s.metric_rows()}
    assert keys == {
        ("strict", "*", "*"),
        ("exact", "*", "*"),
        ("partial", "*", "*"),
        ("type", "*", "*"),
        ("strict", "A", "*"),
        ("strict", "B", "*"),
        ("strict", "*", "1"),
        ("strict", "*", "2"),
        ("strict", "*", "3+"),
        ("paper-buckets", "*", "1"),
        ("paper-buckets", "*", "2"),
        ("paper-buckets", "*", "3+"),
    }


# ----------------------------------------------------------------------------- bootstrap and comparison


def _per_sentence_counts(gold, pred, min_length=1):
    rows = []
    for g, p in zip(gold, pred):
        gs, ps = ({s for s in _spans(tags) if s[2] - s[1] >= min_length} for tags in (g, p))
        rows.append((len(gs & ps), len(ps), len(gs)))
    return np.array(rows)


def _noisy_corpus(seed, n=400):
    rng = random.Random(seed)
    gold = [[rng.choice(["O", "O", "B-A", "I-A", "B-B"]) for _ in range(rng.randint(1, 15))] for _ in range(n)]
    pred = [mixed(seq, rng, ["A", "B"]) for seq in gold]
    return gold, pred


def test_grouped_bootstrap_matches_naive_resampling():
    gold, pred = _noisy_corpus(3)
    rows = _per_sentence_counts(gold, pred)
    low, high = scoring.bootstrap_f1_ci(rows, 20000, seed=1)
    rng = np.random.default_rng(2)
    f1 = []
    for _ in range(20000):
        t = rows[rng.integers(0, len(rows), len(rows))].sum(axis=0)
        f1.append(2 * t[0] / (t[1] + t[2]))
    naive_low, naive_high = np.percentile(f1, [2.5, 97.5])
    assert abs(low - naive_low) < 0.006 and abs(high - naive_high) < 0.006
    point = 2 * rows[:, 0].sum() / (rows[:, 1].sum() + rows[:, 2].sum())
    assert low < point < high


def test_bootstrap_is_seeded():
    gold, pred = _noisy_corpus(4)
    assert scoring.score(gold, pred, seed=7).ci95 == scoring.score(gold, pred, seed=7).ci95
    assert scoring.score(gold, pred, seed=7).ci95 != scoring.score(gold, pred, seed=8).ci95


def test_compare_identical_predictions():
    gold, pred = _noisy_corpus(5)
    c = scoring.compare(gold, pred, pred, resamples=2000)
    assert c.delta == 0 and c.ci95 == (0.0, 0.0) and c.p_value == 1.0


def test_compare_detects_a_real_difference_and_is_antisymmetric():
    gold, pred = _noisy_corpus(6)
    c = scoring.compare(gold, gold, pred, resamples=2000)
    assert c.f1_a == 1.0 and c.delta > 0 and c.ci95[0] > 0 and c.p_value < 0.01
    r = scoring.compare(gold, pred, gold, resamples=2000)
    assert r.delta == -c.delta and r.p_value == pytest.approx(c.p_value, abs=0.01)


@pytest.mark.parametrize("long_only", [False, True])
def test_randomization_matches_naive_sentence_swaps(long_only):
    # Long-entity F1 shares its draws with strict F1 (compare_metrics); each must still be its own test.
    gold, pred_a = _noisy_corpus(7, n=300)
    rng_py = random.Random(9)
    pred_b = [mixed(seq, rng_py, ["A", "B"]) for seq in gold]
    c = scoring.compare(gold, pred_a, pred_b, resamples=4000, seed=3, long_only=long_only)
    length = 3 if long_only else 1
    a, b = _per_sentence_counts(gold, pred_a, length), _per_sentence_counts(gold, pred_b, length)

    def f1(tp, n_pred, n_gold):
        return 2 * tp / (n_pred + n_gold)

    observed = f1(*a.sum(0)) - f1(*b.sum(0))
    assert c.delta == pytest.approx(observed, abs=TOL)
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(4000):
        swap = rng.random(len(a)) < 0.5
        a2 = np.where(swap[:, None], b, a).sum(0)
        b2 = np.where(swap[:, None], a, b).sum(0)
        hits += abs(f1(*a2) - f1(*b2)) >= abs(observed) - 1e-12
    assert c.p_value == pytest.approx((hits + 1) / 4001, abs=0.03)
    deltas = []
    for _ in range(4000):
        pick = rng.integers(0, len(a), len(a))
        deltas.append(f1(*a[pick].sum(0)) - f1(*b[pick].sum(0)))
    assert c.ci95 == pytest.approx(tuple(np.percentile(deltas, [2.5, 97.5])), abs=0.015)
    both = scoring.compare_metrics(gold, [pred_a], [pred_b], resamples=4000, seed=3)
    assert both["long_f1" if long_only else "f1"] == c  # the page's pair of tests and `compare` agree
    with pytest.raises(NerbenchError, match="compared are f1, long_f1"):
        scoring.compare_metrics(gold, [pred_a], [pred_b], metrics=("macro_f1",))


def test_fair_binomial_draws_follow_the_binomial_distribution():
    # The randomization test's swap counts: Binomial(n, 1/2) by counting fair bits (n <= 64) or
    # numpy's sampler (n > 64); each column's frequencies against the exact probabilities.
    n = np.array([0, 1, 3, 64, 65])
    draws = scoring._fair_binomial(np.random.default_rng(5), n, 40_000)
    assert draws.shape == (40_000, 5) and draws.min() >= 0 and (draws <= n).all()
    for column, trials in enumerate(n.tolist()):
        freq = np.bincount(draws[:, column], minlength=trials + 1) / len(draws)
        exact = np.array([math.comb(trials, k) / 2**trials for k in range(trials + 1)])
        assert np.abs(freq - exact).max() < 0.01, trials
    again = scoring._fair_binomial(np.random.default_rng(5), n, 40_000)
    assert (again == draws).all()


def test_compare_long_only_uses_long_entities():
    gold = [["B-A", "I-A", "I-A", "O", "B-A"]] * 20
    pred = [["B-A", "I-A", "O", "O", "B-A"]] * 20
    c = scoring.compare(gold, gold, pred, resamples=200, long_only=True)
    assert c.f1_a == 1.0 and c.f1_b == 0.0


# ----------------------------------------------------------------------------- documents and seeds


def _correlated_documents(n_docs=120, per_doc=10, seed=0, good_share=0.5):
    """Documents whose sentences are all right or all wrong together: one gold entity a sentence,
    found in every sentence of a 'good' document and in none of a 'bad' one."""
    rng = random.Random(seed)
    gold, pred, units = [], [], []
    for d in range(n_docs):
        good = rng.random() < good_share
        for _ in range(per_doc):
            gold.append(["B-A", "O", "O"])
            pred.append(["B-A", "O", "O"] if good else ["O", "O", "O"])
            units.append(f"doc{d}")
    return gold, pred, units


def test_document_intervals_are_wider_when_sentences_of_a_document_agree():
    gold, pred, units = _correlated_documents()
    by_sentence = scoring.score(gold, pred, bootstrap=2000)
    by_document = scoring.score(gold, pred, bootstrap=2000, units=units)
    assert by_document.strict == by_sentence.strict and by_document.per_type == by_sentence.per_type
    assert by_sentence.bootstrap == {"resamples": 2000, "seed": 0, "unit": "sentence", "units": 1200}
    assert by_document.bootstrap == {"resamples": 2000, "seed": 0, "unit": "document", "units": 120}
    assert by_document.to_dict()["bootstrap"]["unit"] == "document"

    def width(ci):
        return ci[1] - ci[0]

    # Ten perfectly correlated sentences a document: about sqrt(10) times as wide.
    assert width(by_document.ci95["f1"]) > 2 * width(by_sentence.ci95["f1"])
    assert width(by_document.ci95_per_type["A"]) > 2 * width(by_sentence.ci95_per_type["A"])
    low, high = by_document.ci95["f1"]
    assert low < by_document.strict.f1 < high


def test_one_document_per_sentence_is_the_sentence_bootstrap():
    gold, pred = _noisy_corpus(11, n=200)
    units = [f"s{i}" for i in range(len(gold))]
    s, d = scoring.score(gold, pred, bootstrap=500), scoring.score(gold, pred, bootstrap=500, units=units)
    assert (d.ci95, d.ci95_per_type, d.ci95_per_length) == (s.ci95, s.ci95_per_type, s.ci95_per_length)
    c, cd = (
        scoring.compare(gold, gold, pred, resamples=500),
        scoring.compare(gold, gold, pred, resamples=500, units=units),
    )
    assert (cd.ci95, cd.p_value, cd.unit, cd.units) == (c.ci95, c.p_value, "document", 200)
    assert (c.unit, c.units) == ("sentence", 200)


def test_document_rows_need_not_be_contiguous():
    gold, pred, units = _correlated_documents(n_docs=30, per_doc=4)
    order = random.Random(1).sample(range(len(gold)), len(gold))
    shuffled = scoring.score(
        [gold[i] for i in order], [pred[i] for i in order], bootstrap=300, units=[units[i] for i in order]
    )
    assert shuffled.bootstrap["units"] == 30
    assert shuffled.ci95 == scoring.score(gold, pred, bootstrap=300, units=units).ci95


def test_units_must_name_every_sentence():
    gold, pred, units = _correlated_documents(n_docs=3, per_doc=2)
    with pytest.raises(NerbenchError, match="units: 5 ids, but gold has 6 sentences"):
        scoring.score(gold, pred, units=units[:5])
    with pytest.raises(NerbenchError, match="units: 7 ids, but gold has 6 sentences"):
        scoring.compare(gold, pred, pred, units=units + ["x"])


def test_randomization_swaps_whole_documents():
    gold, pred_a, units = _correlated_documents(n_docs=60, per_doc=5, seed=6, good_share=0.6)
    _, pred_b, _ = _correlated_documents(n_docs=60, per_doc=5, seed=7, good_share=0.4)
    same = scoring.compare(gold, pred_a, pred_a, resamples=1000, units=units)
    assert same.delta == 0 and same.ci95 == (0.0, 0.0) and same.p_value == 1.0 and same.units == 60
    c = scoring.compare(gold, pred_a, pred_b, resamples=4000, seed=5, units=units)
    by_sentence = scoring.compare(gold, pred_a, pred_b, resamples=4000, seed=5)
    assert c.delta == by_sentence.delta > 0
    # Swapping sentences calls the difference significant; swapping whole documents does not.
    assert by_sentence.p_value < 0.05 < 0.3 < c.p_value
    assert by_sentence.ci95[0] > 0 > c.ci95[0]

    def f1(tp, n_pred, n_gold):
        return 2 * tp / (n_pred + n_gold)

    index = {u: i for i, u in enumerate(dict.fromkeys(units))}
    a = np.zeros((len(index), 3))
    b = np.zeros((len(index), 3))
    for u, row_a, row_b in zip(units, _per_sentence_counts(gold, pred_a), _per_sentence_counts(gold, pred_b)):
        a[index[u]] += row_a
        b[index[u]] += row_b
    observed = f1(*a.sum(0)) - f1(*b.sum(0))
    assert c.delta == pytest.approx(observed, abs=TOL)
    rng = np.random.default_rng(4)
    hits = 0
    for _ in range(4000):
        swap = rng.random(len(a)) < 0.5
        a2 = np.where(swap[:, None], b, a).sum(0)
        b2 = np.where(swap[:, None], a, b).sum(0)
        hits += abs(f1(*a2) - f1(*b2)) >= abs(observed) - 1e-12
    assert c.p_value == pytest.approx((hits + 1) / 4001, abs=0.03)


def test_compare_is_compare_seeds_with_one_seed_a_side():
    gold, pred_a = _noisy_corpus(12, n=200)
    pred_b = [mixed(seq, random.Random(i), ["A", "B"]) for i, seq in enumerate(gold)]
    units = [f"d{i // 7}" for i in range(len(gold))]
    for kwargs in ({}, {"units": units}, {"long_only": True, "units": units}):
        c = scoring.compare(gold, pred_a, pred_b, resamples=700, seed=2, **kwargs)
        assert c == scoring.compare_seeds(gold, [pred_a], [pred_b], resamples=700, seed=2, **kwargs)
        assert (c.seeds_a, c.seeds_b) == (1, 1)
    assert c.to_dict()["unit"] == "document" and c.to_dict()["units"] == 29 and c.to_dict()["seeds_a"] == 1


def test_compare_seeds_pools_the_seeds():
    gold, a1 = _noisy_corpus(14, n=150)
    a2 = [mixed(seq, random.Random(100 + i), ["A", "B"]) for i, seq in enumerate(gold)]
    b1 = [mixed(seq, random.Random(200 + i), ["A", "B"]) for i, seq in enumerate(gold)]
    units = [f"d{i // 5}" for i in range(len(gold))]
    one = scoring.compare_seeds(gold, [a1], [b1], resamples=500, units=units)
    twice = scoring.compare_seeds(gold, [a1, a1], [b1], resamples=500, units=units)
    assert dataclasses.replace(twice, seeds_a=1) == one and twice.seeds_a == 2
    pooled = scoring.compare_seeds(gold, [a1, a2], [b1], resamples=500, units=units)
    rows = _per_sentence_counts(gold, a1).sum(0) + _per_sentence_counts(gold, a2).sum(0)
    n_gold = _per_sentence_counts(gold, a1)[:, 2].sum()
    assert pooled.f1_a == pytest.approx(2 * rows[0] / (rows[1] + 2 * n_gold), abs=TOL)
    assert pooled.f1_b == one.f1_b and (pooled.seeds_a, pooled.seeds_b, pooled.units) == (2, 1, 30)
    same = scoring.compare_seeds(gold, [a1, a2], [a2, a1], resamples=500, units=units)
    assert same.delta == 0 and same.p_value == 1.0


def test_compare_seeds_wants_a_list_of_runs_a_side():
    gold, pred = _noisy_corpus(15, n=20)
    with pytest.raises(NerbenchError, match="seeds_a: no predictions"):
        scoring.compare_seeds(gold, [], [pred])
    with pytest.raises(NerbenchError, match="seeds_b: give one list of tag sequences per seed"):
        scoring.compare_seeds(gold, [pred], pred)
    with pytest.raises(NerbenchError, match="predictions have 19 sentences, gold has 20"):
        scoring.compare_seeds(gold, [pred], [pred, pred[:-1]])


# ----------------------------------------------------------------------------- the unit in the run record


def test_the_bootstrap_unit_is_recorded_and_old_records_keep_their_run_id():
    import hashlib

    from nerbench.record import Bootstrap, RunRecord

    # A record as stored before the unit existed: canonical JSON with no "unit".
    old = (
        '{"batch_size":null,"bootstrap":{"resamples":1000,"seed":0},"dataset":"bc5cdr","dataset_sha256":"'
        + "f" * 64
        + '","decoding":null,"device":null,"family":"encoder","head":"token","label_policy":null,"lora":null,'
        '"model_id":"m","modified_dataset":false,"nerbench_version":"test","precision":null,"protocol":null,'
        '"quantization":"none","record_version":1,"serving":"as-trained","split":"test","submission":null,'
        '"task":"ner-bio","training":null,"weights":{"base":null,"hf_id":"t/m","name":"t/m","package":null,'
        '"registry_id":null,"revision":null,"sha256":null,"source":"hub"}}'
    )
    record = RunRecord.model_validate_json(old)
    assert record.bootstrap.unit == "sentence"
    assert record.canonical_json() == old
    assert record.run_id == hashlib.sha256(old.encode()).hexdigest()[:12]
    by_document = record.model_copy(update={"bootstrap": Bootstrap(resamples=1000, seed=0, unit="document")})
    assert '"bootstrap":{"resamples":1000,"seed":0,"unit":"document"}' in by_document.canonical_json()
    assert by_document.run_id != record.run_id
    assert RunRecord.model_validate_json(by_document.canonical_json()) == by_document
