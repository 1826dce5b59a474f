"""The LLM-vs-encoder verdict: like with like (tracks), reference means measured, selection on dev,
Holm-adjusted p-values with an honest floor, seeds pooled. Every run here is TEST DATA."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerbench import scoring
from nerbench.datasets import load_split
from nerbench.site import build_site
from nerbench.site_compare import Entry, PValue, Question, best, entries, holm, pages, verdict
from nerbench.site_data import Model, Run, StoreData, read_store
from nerbench.store import Store
from nerbench.tracks import Track, track_of

from _records import run_record
from _site_store import CPU_NAME, record, timing

H100 = "NVIDIA H100 80GB HBM3"


def _run(
    model: str,
    family: str,
    f1: float,
    *,
    long_f1: float = 0.5,
    cost: float | None = 0.01,
    profile: str | None = "quick",
    device: str = CPU_NAME,
    reference: bool = False,
    submission: str | None = None,
    dev_f1: float | None = None,
    seed: int = 0,
    dataset: str = "d",
    created: str = "2026-01-01T00:00:00",
) -> Run:
    record = run_record(model, family, dataset, "x", profile=profile, seed=seed, submission=submission)
    details = {"training": {"dev_f1": [dev_f1 / 2, dev_f1]}} if dev_f1 is not None else {"training": {}}
    run = Run(
        run_id=record.run_id,
        model_id=model,
        family=family,
        dataset=dataset,
        split="test",
        source="submission" if submission else "local",
        self_reported=submission is not None,
        modified=False,
        created_at=created,
        dataset_sha256="x",
        record=record,
        details=details,
        f1=f1,
        long_f1=long_f1,
    )
    run.timing = {"cost_per_1k_sentences_usd": cost, "reference_hardware": reference, "device_name": device}
    return run


def test_a_self_reported_reference_gpu_is_not_reference():
    """Old code: a submission whose device string named an H100 was flagged reference hardware."""
    claimed = _run("s", "encoder", 0.8, device=H100, reference=True, submission="sub", profile=None)
    assert not claimed.reference_hardware
    assert claimed.track == Track("not stated", "self-reported", "GPU")
    measured = _run("m", "encoder", 0.8, device=H100, reference=True)
    assert measured.reference_hardware and measured.track == Track("quick", "nerbench", "reference")


def test_tracks_follow_budget_timing_and_hardware():
    paper, quick = _run("a", "encoder", 0.8, profile="paper"), _run("b", "llm", 0.8)
    assert paper.track != quick.track and paper.track.budget == "paper" and quick.track.budget == "quick"
    untimed = _run("c", "llm", 0.8)
    untimed.timing = None
    assert untimed.track == Track("quick", "untimed", "none")
    # Authority: measured on the reference hardware first, the paper recipe before quick.
    tracks = [untimed.track, quick.track, paper.track, _run("d", "llm", 0.8, device=H100, reference=True).track]
    assert sorted(tracks, key=lambda t: t.authority)[0] == Track("quick", "nerbench", "reference")
    assert sorted(tracks, key=lambda t: t.authority)[-1] == untimed.track
    assert "quick budget · timed by nerbench · CPU" == quick.track.label
    record = run_record("x", "encoder", "d", "x", profile="custom", epochs=3)
    assert track_of(record, None, False).budget.startswith("other: 3 epochs")


def _data(runs: list[Run]) -> StoreData:
    models = {}
    for run in runs:
        model = models.setdefault(
            run.model_id, Model(run.model_id, run.family, {"parameters": 1_000_000}, run.model_id)
        )
        model.runs.append(run)
        model.shown.setdefault(run.dataset, run)
    return StoreData(models=models, datasets=sorted({r.dataset for r in runs}), runs=runs)


def test_runs_of_different_budgets_are_never_paired(tmp_path: Path):
    """Old code: the paper-recipe encoder was paired with the quick-budget LLM."""
    runs = [_run("enc-paper", "encoder", 0.85, profile="paper"), _run("llm-quick", "llm", 0.60)]
    out = pages(_data(runs), tmp_path / "none.duckdb", {"d": None}, datasets=["d"])
    assert len(out) == 2 and not any(q.comparable for p in out for q in p.questions)
    texts = [q.verdict for p in out for q in p.questions]
    assert any(
        "No LLM in this track on d, so no verdict" in t and "LLMs on d exist in other tracks" in t for t in texts
    )
    assert all("worse than" not in t and "better than" not in t for t in texts)


def test_the_verdict_names_the_track_sizes_and_budgets(tmp_path: Path):
    runs = [_run("enc", "encoder", 0.80, dev_f1=0.7), _run("llm", "llm", 0.83, dev_f1=0.75, cost=0.5)]
    (page,) = pages(_data(runs), tmp_path / "none.duckdb", {"d": None}, datasets=["d"])
    assert page.default and page.href == "compare.html"
    text = page.questions[0].verdict
    assert text.startswith(
        "[quick budget · timed by nerbench · CPU] On d the best LLM, llm (token head; 1.0M parameters;"
    )
    assert "quick budget: recipe epochs, all train sentences" in text and "the only candidate in this track" in text
    assert "is better than the best encoder, enc" in text and "(no paired test)" in text
    assert "the LLM costs 50x as much per 1k sentences (both timed by nerbench on CPU" in text


def test_each_family_is_chosen_on_dev_where_every_candidate_has_a_dev_f1():
    """Old code chose on test F1 (the winner's curse)."""
    lucky = _run("lucky", "encoder", 0.90, dev_f1=0.60)
    steady = _run("steady", "encoder", 0.85, dev_f1=0.70)
    chosen, on = best(entries([lucky, steady], {}), "encoder")
    assert chosen is not None and chosen.model_id == "steady" and on == "dev"
    chosen, on = best(entries([lucky, _run("nodev", "encoder", 0.85)], {}), "encoder")
    assert chosen is not None and chosen.model_id == "lucky" and on == "test"
    alone, on = best(entries([lucky], {}), "encoder")
    assert alone is not None and alone.model_id == "lucky" and on == "only"
    q = Question("d", Track("quick", "nerbench", "CPU"), chosen, None, chosen_on={"encoder": "test", "llm": ""})
    assert "chosen on test — optimistic" in verdict(q)


def test_holm_adjusts_across_the_datasets_of_a_page_and_a_floor_is_a_bound():
    ps = [PValue(0.01, 10000, False), PValue(0.04, 10000, False), PValue(0.03, 10000, False)]
    assert [round(p.value, 10) for p in holm(ps)] == [0.03, 0.06, 0.06]
    floor = PValue(1 / 10001, 10000, True)
    assert floor.text == "< 1/10001"
    adjusted = holm([floor, PValue(0.5, 10000, False)])
    assert adjusted[0].text == "< 2/10001" and adjusted[1].value == 0.5 and not adjusted[1].at_floor
    assert PValue(0.0123, 10000, False).text == "0.0123"


def test_seeds_of_one_model_are_one_entry_with_mean_and_spread():
    runs = [_run("m", "encoder", f1, seed=seed) for seed, f1 in ((0, 0.80), (1, 0.84), (2, 0.82))]
    rerun = _run("m", "encoder", 0.10, seed=0, created="2025-01-01T00:00:00")  # older run of seed 0: not used
    (entry,) = entries(runs + [rerun], {"m": 22_000_000})
    assert isinstance(entry, Entry) and entry.seeds == 3 and [r.seed for r in entry.runs] == [0, 1, 2]
    assert entry.f1 == pytest.approx(0.82) and entry.f1_sd == pytest.approx(0.02)
    assert entry.seed_text == "mean of 3 seeds, sd 0.020 F1" and entry.size == "22.0M parameters"
    assert len(entries(runs + [_run("other", "encoder", 0.5)], {})) == 2


def test_entries_are_configurations_whatever_the_order_of_the_runs():
    """A model's lone run is an entry of its own; a model with several runs gets one entry per
    configuration (its seeds pooled), however the runs of several models interleave."""
    a0, a1 = _run("a", "encoder", 0.80, seed=0), _run("a", "encoder", 0.82, seed=1)
    paper = _run("a", "encoder", 0.90, profile="paper")
    b, c = _run("b", "encoder", 0.85), _run("c", "llm", 0.70, created="2026-01-02T00:00:00")
    for runs in ([a0, b, a1, paper, c], [c, paper, a1, b, a0]):
        got = entries(runs, {"a": 110_000_000})
        assert sorted((e.model_id, e.seeds, e.f1, e.parameters) for e in got) == [
            ("a", 1, 0.90, 110_000_000),
            ("a", 2, pytest.approx(0.81), 110_000_000),
            ("b", 1, 0.85, None),
            ("c", 1, 0.70, None),
        ]


def test_paired_test_pools_seeds_over_documents(tmp_path: Path, data_dir):
    """Two seeds per side: the page's test is `compare_seeds` over the documents of the split."""
    split = load_split("biored", "test", data_dir)
    gold = [list(s.tags) for s in split.sentences]

    def damaged(every: int) -> list[list[str]]:
        return [["O"] * len(t) if i % every == 0 else list(t) for i, t in enumerate(gold)]

    runs, preds = [], {}
    for model, family, every in (("enc", "encoder", 3), ("llm", "llm", 7)):
        for seed in (0, 1):
            run = _run(model, family, 0.5, seed=seed, dataset="biored")
            run.dataset_sha256 = split.sha256
            runs.append(run)
            preds[run.run_id] = damaged(every + seed)
    db = tmp_path / "p.duckdb"
    with Store(db) as store:  # only the predictions table is read: the tags as the store packs them
        for run_id, tags in preds.items():
            store._insert_predictions(run_id, tags)
    (page,) = pages(_data(runs), db, {"biored": split}, datasets=["biored"], resamples=500)
    q = page.questions[0]
    assert q.paired is not None and q.paired.unit == "document" and q.paired.units == 100
    expected = scoring.compare_seeds(
        gold,
        [preds[r] for r in q.llm.run_ids],  # type: ignore[union-attr]
        [preds[r] for r in q.encoder.run_ids],  # type: ignore[union-attr]
        resamples=500,
        seed=0,
        units=split.documents,
    )
    assert (q.paired.delta, q.paired.ci95, q.paired.p.value) == (expected.delta, expected.ci95, expected.p_value)


def test_the_site_shows_the_spread_over_seeds_and_compares_their_pool(tmp_path: Path, data_dir):
    db = tmp_path / "seeds.duckdb"
    with Store(db) as store:
        for model, family, every, seed in (("enc", "encoder", 5, 0), ("enc", "encoder", 6, 1), ("llm", "llm", 4, 0)):
            rec, _ = record(
                model,
                family,
                "ncbi_disease",
                data_dir,
                every=every,
                offset=seed,
                head="token",
                timing_=timing(CPU_NAME, False, 940, 20.0, 0.1),
                seed=seed,
            )
            store.save_run(rec)
    data = read_store(db)
    shown = data.models["enc"].shown["ncbi_disease"]
    assert [r.seed for r in shown.seed_runs] == [0, 1]
    assert shown.seed_spread is not None and shown.seed_spread[2] == 2
    out = tmp_path / "site"
    build_site(db, out, data_dir=data_dir, resamples=200)
    mean, sd, _ = shown.seed_spread
    assert f"2 seeds: {mean:.3f} ± {sd:.3f}" in (out / "datasets" / "ncbi_disease-a70fcfd9.html").read_text("utf-8")
    compare = (out / "compare.html").read_text("utf-8")
    assert "mean of 2 seeds, sd" in compare and "nerbench compare" in compare and "2 seeds</span>" in compare


def _served(run: Run, serving: str, cost: float) -> Run:
    """The same configuration served another way: its record differs in the serving fields only."""
    record = run.record.model_copy(update={"serving": serving, "batch_size": 32, "quantization": "none"})
    other = Run(**{**run.__dict__, "record": record, "run_id": record.run_id})
    other.timing = dict(run.timing or {}, cost_per_1k_sentences_usd=cost)
    return other


def test_an_llm_served_both_ways_is_one_candidate_with_both_cost_ratios():
    encoder = _run("enc", "encoder", 0.80, cost=0.01, dev_f1=0.8)
    trained = _run("llm", "llm", 0.85, cost=0.50, dev_f1=0.85)
    deployed = _served(trained, "as-deployed", cost=0.10)
    candidates = entries([encoder, trained, deployed], {})
    assert len(candidates) == 2  # the deployed run is not a candidate of its own
    llm, on = best(candidates, "llm")
    assert llm.serving == "as-trained" and llm.deployed is not None and llm.deployed.first is deployed
    q = Question("d", trained.track, best(candidates, "encoder")[0], llm, chosen_on={"encoder": "dev", "llm": on})
    assert q.cost_ratio == pytest.approx(50) and q.cost_ratio_deployed == pytest.approx(10)
    text = verdict(q)
    assert "50x as much per 1k sentences served as trained; 10x served as deployed (adapter merged, batch 32" in text


def test_an_llm_stored_only_as_deployed_is_a_candidate_and_says_so():
    encoder = _run("enc", "encoder", 0.80, cost=0.01)
    deployed = _served(_run("llm", "llm", 0.85), "as-deployed", cost=0.10)
    candidates = entries([encoder, deployed], {})
    llm, on = best(candidates, "llm")
    assert llm is not None and llm.serving == "as-deployed" and llm.deployed is None
    q = Question("d", deployed.track, best(candidates, "encoder")[0], llm, chosen_on={"encoder": "only", "llm": on})
    assert q.cost_ratio == pytest.approx(10) and q.cost_ratio_deployed is None
    assert "10x as much per 1k sentences served as deployed" in verdict(q)
