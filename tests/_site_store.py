"""TEST DATA for the site tests: a tiny results store filled with made-up runs (never published).

Predictions are the gold tags of real test splits with deterministic damage, so that the paired
LLM-vs-encoder test has real numbers to work on; models, timings and costs are invented.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from nerbench import scoring
from nerbench.datasets import get_dataset, load_split
from nerbench.store import RunResult, Store, predictions_sha256
from nerbench.submissions import ingest_all

from _records import run_record

SUBMISSIONS = Path(__file__).resolve().parent.parent / "submissions"
XSS_MODEL = '<script>alert(1)</script><b>bold</b> & "quoted"'
ENCODER, LLM = "test-data-encoder", "test-data-llm"
H100 = "NVIDIA H100 80GB HBM3"
CPU_NAME = "CPU: Test CPU (2 threads)"


def damaged(gold: list[list[str]], every: int, offset: int) -> list[list[str]]:
    """Gold tags with every `every`-th entity-bearing sentence (from `offset`) changed to all O,
    and every other such sentence's last entity tag turned into O (a boundary error)."""
    out, seen = [], 0
    for tags in gold:
        tags = list(tags)
        if any(t != "O" for t in tags):
            seen += 1
            if (seen + offset) % every == 0:
                tags = ["O"] * len(tags)
            elif (seen + offset) % every == 1:
                last = max(i for i, t in enumerate(tags) if t != "O")
                tags[last] = "O"
                if last + 1 < len(tags) and tags[last + 1].startswith("I-"):
                    tags[last + 1] = "B-" + tags[last + 1][2:]
        out.append(tags)
    return out


def timing(device_name: str, reference: bool, sentences: int, seconds: float, price: float | None) -> dict:
    cost = seconds / 3600 * price if price is not None else None
    return {
        "wall_seconds": seconds,
        "pass_seconds": [seconds, seconds, seconds],
        "repeats": 3,
        "warmup_batches": 3,
        "batch_size": 8,
        "precision": "bf16",
        "sentences": sentences,
        "word_tokens": sentences * 25,
        "sentences_per_second": sentences / seconds,
        "tokens_per_second": sentences * 25 / seconds,
        "batch_latency_p50_s": 0.01,
        "batch_latency_p95_s": 0.02,
        "peak_memory_bytes": 2**30,
        "memory_kind": "test",
        "device": "cuda" if reference else "cpu",
        "device_name": device_name,
        "num_devices": 1,
        "reference_hardware": reference,
        "device_hours": seconds / 3600,
        "price_per_device_hour": price,
        "price_source": "test data" if price is not None else None,
        "cost_usd": cost,
        "cost_per_1k_sentences_usd": cost * 1000 / sentences if cost is not None else None,
    }


def record(
    model_id: str,
    family: str,
    dataset: str,
    data_dir: Path,
    *,
    every: int,
    offset: int,
    head: str,
    timing_: dict | None,
    source: str = "local",
    day: int = 1,
    seed: int = 0,
) -> tuple[RunResult, scoring.Scores]:
    split = load_split(dataset, "test", data_dir)
    gold = [list(s.tags) for s in split.sentences]
    pred = damaged(gold, every, offset)
    scores = scoring.score(gold, pred, types=get_dataset(dataset).entity_types, bootstrap=200, seed=0)
    submission = "test-data-submission" if source == "submission" else None
    rec = RunResult(
        model={
            "id": model_id,
            "family": family,
            "hf_id": f"test/{model_id}",
            "parameters": 1000,
            "licence": "test data",
            "links": ["https://example.org/test-model", "javascript:alert(2)"],
        },
        record=run_record(
            model_id,
            family,
            dataset,
            split.sha256,
            head=head,
            submission=submission,
            profile=None if submission else "quick",
            seed=seed,
        ),
        predictions=pred,
        predictions_sha256=predictions_sha256(pred),
        metrics=scores.metric_rows(),
        timing=timing_,
        environment={"test_data": True, "torch": "test"},
        source=source,
        self_reported=source == "submission",
        created_at=datetime(2026, 1, day, 12, 0, 0),
        # The parts of nerbench's training record (models.training.TrainingRecord) the site reads.
        details={"training": {"sentences": {"train": 300, "dev": 50}, "train_loss": [0.5], "best_epoch": 1}},
    )
    return rec, scores


def make_store(path: Path, data_dir: Path) -> dict[tuple[str, str], scoring.Scores]:
    """Three models on ncbi_disease (an encoder and an LLM trained on the quick budget and timed by
    nerbench on a CPU: one track; a submitted encoder whose name is an HTML injection and whose
    self-reported timing claims the reference GPU: another track), and the quick encoder on biored.
    Returns the scores by run."""
    runs = [
        (ENCODER, "encoder", "ncbi_disease", 5, 0, "token", timing(CPU_NAME, False, 940, 20.0, 0.1), "local"),
        (LLM, "llm", "ncbi_disease", 11, 3, "generative", timing(CPU_NAME, False, 940, 60.0, 0.1), "local"),
        (XSS_MODEL, "encoder", "ncbi_disease", 4, 1, "token", timing(H100, True, 940, 5.0, 3.2), "submission"),
        (ENCODER, "encoder", "biored", 6, 2, "token", timing(CPU_NAME, False, 273, 8.0, 0.1), "local"),
    ]
    expected = {}
    with Store(path) as store:
        for model_id, family, dataset, every, offset, head, timed, source in runs:
            rec, scores = record(
                model_id, family, dataset, data_dir, every=every, offset=offset, head=head, timing_=timed, source=source
            )
            store.save_run(rec)
            expected[(model_id, dataset)] = scores
    return expected


def ingest_submissions(path: Path, data_dir: Path) -> list[str]:
    """The submissions committed under submissions/ (real, published runs), ingested into a store
    at `path` as the pages workflow does. Returns the submission ids stored."""
    report = ingest_all(sorted(SUBMISSIONS.iterdir()), path, data_dir=data_dir)
    assert not report.failures, report.failures
    return [outcome.submission_id for _, outcome in report.outcomes]
