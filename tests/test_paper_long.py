"""The paper's gold-span length buckets (scheme "paper-buckets") beside nerbench's own length
buckets: hand-worked examples, a plain re-reading of the paper's `entity_size` walk, invariants,
the stored rows (a schema-4 store migrated keeps its rows and takes the new ones) and the site."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics.sequence_labeling import get_entities

from nerbench import scoring
from nerbench.conll import read_conll
from nerbench.errors import NerbenchError
from nerbench.site_data import read_store, score_cells
from nerbench.store import MIGRATIONS, Store

from _site_store import ENCODER, make_store

BUCKETS = scoring.LENGTH_BUCKETS


def counts(prf: scoring.PRF) -> tuple[float, int, int]:
    return (prf.tp, prf.n_pred, prf.n_gold)


def paper(gold, pred) -> dict[str, tuple[float, int, int]]:
    s = scoring.score(gold, pred, bootstrap=0)
    return {name: counts(prf) for name, prf in s.paper_buckets.items()}


def ours(gold, pred) -> dict[str, tuple[float, int, int]]:
    s = scoring.score(gold, pred, bootstrap=0)
    return {name: counts(prf) for name, prf in s.per_length.items()}


# ----------------------------------------------------------------------------- hand-worked examples

GOLD = [["O", "B-X", "I-X", "I-X", "O"]]


def test_long_entity_predicted_exactly():
    pred = [["O", "B-X", "I-X", "I-X", "O"]]
    assert paper(GOLD, pred) == {"1": (0, 0, 0), "2": (0, 0, 0), "3+": (1, 1, 1)}
    assert ours(GOLD, pred)["3+"] == (1, 1, 1)
    assert scoring.score(GOLD, pred, bootstrap=0).paper_long_f1 == 1.0


def test_a_prediction_running_past_the_gold_span_is_cut_and_matches():
    # The predicted X covers positions 1..4; the 3+ segment holds positions 1..3 only, where it reads
    # exactly as the gold entity. Position 4 (gold O) is a bucket-1 segment whose I-X is a spurious
    # one-token entity. nerbench's own buckets see one wrong 4-token prediction instead.
    pred = [["O", "B-X", "I-X", "I-X", "I-X"]]
    assert paper(GOLD, pred) == {"1": (0, 1, 0), "2": (0, 0, 0), "3+": (1, 1, 1)}
    assert ours(GOLD, pred) == {"1": (0, 0, 0), "2": (0, 0, 0), "3+": (0, 1, 1)}


def test_a_prediction_starting_early_opens_at_the_boundary():
    # Positions 0..3 predicted X: the segment 1..3 starts with I-X, read as the start of an entity.
    pred = [["B-X", "I-X", "I-X", "I-X", "O"]]
    assert paper(GOLD, pred) == {"1": (0, 1, 0), "2": (0, 0, 0), "3+": (1, 1, 1)}
    assert scoring.paper_bucket_segments(GOLD, pred)["3+"] == [(["B-X", "I-X", "I-X"], ["I-X", "I-X", "I-X"])]


def test_a_prediction_too_short_is_a_wrong_long_prediction_in_the_paper_buckets():
    # Two of three tokens: in the 3+ segment a predicted entity that misses the end. nerbench files
    # the 2-token prediction under bucket 2 instead (a false positive there, none in 3+).
    pred = [["O", "B-X", "I-X", "O", "O"]]
    assert paper(GOLD, pred) == {"1": (0, 0, 0), "2": (0, 0, 0), "3+": (0, 1, 1)}
    assert ours(GOLD, pred) == {"1": (0, 0, 0), "2": (0, 1, 0), "3+": (0, 0, 1)}


def test_a_wrong_type_and_a_split_prediction():
    assert paper(GOLD, [["O", "B-Y", "I-Y", "I-Y", "O"]])["3+"] == (0, 1, 1)
    gold = [["B-X", "I-X", "I-X", "I-X"]]
    assert paper(gold, [["B-X", "I-X", "B-X", "I-X"]])["3+"] == (0, 2, 1)
    assert paper(gold, [["B-X", "I-X", "I-Y", "I-Y"]])["3+"] == (0, 2, 1)


def test_spurious_predictions_over_gold_o_tokens_count_in_bucket_1_only():
    # A spurious 3-token X over gold O tokens: three one-token spurious entities in bucket 1 (one per
    # gold O segment), nothing in 3+; nerbench's buckets see one spurious 3-token entity.
    gold = [["O", "O", "O", "O", "B-Y"]]
    pred = [["B-X", "I-X", "I-X", "O", "B-Y"]]
    assert paper(gold, pred) == {"1": (1, 4, 1), "2": (0, 0, 0), "3+": (0, 0, 0)}
    assert ours(gold, pred) == {"1": (1, 1, 1), "2": (0, 0, 0), "3+": (0, 1, 0)}
    segments = scoring.paper_bucket_segments(gold, pred)
    assert segments["1"] == [(["O"], ["B-X"]), (["O"], ["I-X"]), (["O"], ["I-X"]), (["O"], ["O"]), (["B-Y"], ["B-Y"])]
    assert segments["3+"] == []


def test_two_token_bucket_and_scores():
    gold = [["B-A", "I-A", "O", "B-A", "I-A"], ["B-B", "I-B", "I-B", "O"]]
    pred = [["B-A", "I-A", "O", "B-A", "O"], ["B-B", "I-B", "I-B", "B-A"]]
    s = scoring.score(gold, pred, bootstrap=0)
    assert counts(s.paper_buckets["2"]) == (1, 2, 2)
    assert counts(s.paper_buckets["1"]) == (0, 1, 0)
    assert counts(s.paper_buckets["3+"]) == (1, 1, 1)
    assert s.paper_buckets["2"].precision == 0.5 and s.paper_buckets["2"].f1 == 0.5


# ----------------------------------------------------------------------------- a plain re-reading of the paper


def paper_walk(gold, pred):
    """The paper's `entity_size` walk, written again from its description: B- opens a gold segment,
    I- extends it, O closes it and is a one-token segment of its own; segments are then read with
    seqeval's reader (an I-X first opens an entity) and matched strictly, bucket by bucket."""
    buckets = {name: [] for name in BUCKETS}

    def flush(g, p):
        if g:
            buckets[BUCKETS[min(len(g), 3) - 1]].append((g, p))

    for sentence_gold, sentence_pred in zip(gold, pred):
        g_seg, p_seg = [], []
        for g, p in zip(sentence_gold, sentence_pred):
            if g.startswith("B-"):
                flush(g_seg, p_seg)
                g_seg, p_seg = [g], [p]
            elif g.startswith("I-"):
                g_seg, p_seg = g_seg + [g], p_seg + [p]
            else:
                flush(g_seg, p_seg)
                g_seg, p_seg = [], []
                buckets["1"].append(([g], [p]))
        flush(g_seg, p_seg)
    out = {}
    for name, segments in buckets.items():
        tp = n_pred = n_gold = 0
        for g, p in segments:
            g_ents, p_ents = set(get_entities(g)), set(get_entities(p))
            tp, n_pred, n_gold = tp + len(g_ents & p_ents), n_pred + len(p_ents), n_gold + len(g_ents)
        out[name] = (tp, n_pred, n_gold)
    return out, buckets


def well_formed(rng, n):
    """Random well-formed IOB2 gold (entities of 1 to 5 tokens, types A and B)."""
    corpus = []
    for _ in range(n):
        tags: list[str] = []
        while len(tags) < rng.randint(1, 20):
            if rng.random() < 0.5:
                tags.append("O")
            else:
                t = rng.choice("AB")
                tags += [f"B-{t}"] + [f"I-{t}"] * rng.randint(0, 4)
        corpus.append(tags)
    return corpus


def noisy(tags, rng):
    return [rng.choice(["O", "B-A", "I-A", "B-B", "I-B"]) if rng.random() < 0.2 else t for t in tags]


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_paper_walk_on_random_corpora(seed):
    rng = random.Random(seed)
    gold = well_formed(rng, 300)
    pred = [noisy(tags, rng) for tags in gold]
    expected, segments = paper_walk(gold, pred)
    assert paper(gold, pred) == expected
    assert scoring.paper_bucket_segments(gold, pred) == segments


@pytest.fixture(scope="module")
def ncbi_test(data_dir):
    return [list(s.tags) for s in read_conll(data_dir / "ncbi_disease" / "test.conll")]


def test_agrees_with_the_paper_walk_on_a_test_set(ncbi_test):
    rng = random.Random(7)
    pred = [noisy(tags, rng) for tags in ncbi_test]
    expected, _ = paper_walk(ncbi_test, pred)
    assert paper(ncbi_test, pred) == expected


# ----------------------------------------------------------------------------- invariants


def test_perfect_predictions_score_one_in_every_non_empty_bucket(ncbi_test):
    for gold in (ncbi_test, well_formed(random.Random(1), 200)):
        s = scoring.score(gold, gold, bootstrap=20)
        for name in BUCKETS:
            prf = s.paper_buckets[name]
            if prf.n_gold:
                assert (prf.precision, prf.recall, prf.f1) == (1.0, 1.0, 1.0)
                assert s.ci95_paper_buckets[name] == (1.0, 1.0)


def test_gold_counts_equal_nerbench_bucket_gold_counts(ncbi_test):
    # Both schemes file a gold entity by its own length: only predictions are read differently.
    rng = random.Random(3)
    pred = [noisy(tags, rng) for tags in ncbi_test]
    s = scoring.score(ncbi_test, pred, bootstrap=0)
    assert [s.paper_buckets[b].n_gold for b in BUCKETS] == [s.per_length[b].n_gold for b in BUCKETS]


def test_every_other_metric_is_unchanged():
    rng = random.Random(11)
    gold = well_formed(rng, 200)
    pred = [noisy(tags, rng) for tags in gold]
    s = scoring.score(gold, pred, bootstrap=50)
    rows = s.metric_rows()
    paper_rows = [r for r in rows if r.scheme == scoring.PAPER_BUCKETS]
    assert [(r.entity_type, r.length_bucket) for r in paper_rows] == [(scoring.ALL, b) for b in BUCKETS]
    assert rows[-3:] == paper_rows  # appended after every earlier row, which keep their order
    # nerbench's own buckets: each side's entities by their own length, as before.
    g = {(i, *e) for i, tags in enumerate(gold) for e in get_entities(tags)}
    p = {(i, *e) for i, tags in enumerate(pred) for e in get_entities(tags)}
    for name, keep in (("1", lambda n: n == 1), ("2", lambda n: n == 2), ("3+", lambda n: n >= 3)):
        gb = {e for e in g if keep(e[3] - e[2] + 1)}
        pb = {e for e in p if keep(e[3] - e[2] + 1)}
        assert s.per_length[name] == scoring.PRF.from_counts(len(gb & pb), len(pb), len(gb))
    assert s.long_f1 == s.per_length["3+"].f1 and s.paper_long_f1 == s.paper_buckets["3+"].f1
    d = s.to_dict()
    assert d["long_f1"] == s.long_f1 and d["paper_long_f1"] == s.paper_long_f1
    assert set(d["paper_buckets"]) == set(BUCKETS) and set(d["ci95_paper_buckets"]) == set(BUCKETS)


def test_document_units_resample_the_paper_buckets_too():
    rng = random.Random(5)
    gold = well_formed(rng, 120)
    pred = [noisy(tags, rng) for tags in gold]
    by_sentence = scoring.score(gold, pred, bootstrap=200)
    by_document = scoring.score(gold, pred, bootstrap=200, units=[str(i // 6) for i in range(len(gold))])
    assert by_sentence.paper_buckets == by_document.paper_buckets
    low, high = by_document.ci95_paper_buckets["3+"]
    assert low <= by_document.paper_long_f1 <= high


def test_mismatched_lengths_are_refused():
    with pytest.raises(NerbenchError, match="sentence 1"):
        scoring.paper_bucket_segments([["O", "O"]], [["O"]])
    with pytest.raises(NerbenchError, match="sentences"):
        scoring.paper_bucket_segments([["O"]], [])


# ----------------------------------------------------------------------------- the store and the site


def test_a_schema_4_store_migrates_and_takes_the_new_rows(tmp_path):
    from test_store import V1_TIMING, record

    path = tmp_path / "old.duckdb"
    with Store(path, migrations=MIGRATIONS[:4]) as s:
        run_id = s.save_run(record(timing=dict(V1_TIMING)))
        before = s.metrics(run_id)
        with pytest.raises(Exception, match="(?i)check"):
            s._conn.execute(
                "INSERT INTO metrics VALUES (?, 'paper-buckets', '*', '3+', 1, 1, 1, 1, 1, 1, NULL, NULL)", [run_id]
            )
    gold = [["O", "B-X", "I-X", "I-X"], ["B-Y", "O"]]
    pred = [["O", "B-X", "I-X", "I-X"], ["O", "B-Y"]]
    rows = scoring.score(gold, pred, bootstrap=10).metric_rows()
    with Store(path) as s:
        assert s.schema_version == len(MIGRATIONS) == 7
        assert s.metrics(run_id) == before
        new = s.save_run(record(seed=1, metrics=rows))
        assert new != run_id
        stored = {(m["scheme"], m["length_bucket"]): m for m in s.metrics(new) if m["entity_type"] == "*"}
    assert stored[("paper-buckets", "3+")]["f1"] == 1.0
    assert (stored[("paper-buckets", "1")]["tp"], stored[("paper-buckets", "1")]["n_pred"]) == (0, 1)
    assert stored[("strict", "3+")]["f1"] == 1.0


def test_the_site_reads_the_paper_buckets(tmp_path, data_dir):
    expected = make_store(tmp_path / "site.duckdb", data_dir)
    data = read_store(tmp_path / "site.duckdb")
    run = next(r for r in data.runs if r.model_id == ENCODER and r.dataset == "ncbi_disease")
    scores = expected[(ENCODER, "ncbi_disease")]
    assert run.paper_long_f1 == pytest.approx(scores.paper_long_f1)
    assert run.paper_long_f1_ci == pytest.approx(scores.ci95_paper_buckets["3+"])
    assert run.long_f1 == pytest.approx(scores.long_f1)  # nerbench's own, read as before
    # the dataset page's per-length and paper-bucket tables: one cell per bucket, each its F1
    ((_, cells),) = score_cells(tmp_path / "site.duckdb", [([run], ("Disease",))])
    _, per_length, paper = cells[run.run_id]
    for row, prfs in ((per_length, scores.per_length), (paper, scores.paper_buckets)):
        assert row.count("<td") == len(BUCKETS)
        assert all(f">{prfs[b].f1:.3f}</td>" in row for b in BUCKETS)
