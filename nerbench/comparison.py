"""Paired significance between two stored runs on the same test split (`nerbench compare A B`)."""

from __future__ import annotations

from pathlib import Path

from nerbench import scoring
from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.store import Store


def compare_runs(
    db: Path,
    run_a: str,
    run_b: str,
    *,
    data_dir: Path | None = None,
    resamples: int = 10000,
    seed: int = 0,
    long_only: bool = False,
) -> tuple[scoring.Comparison, dict, dict]:
    """Compare two stored runs; returns the comparison and both runs' rows."""
    with Store(db, create=False) as store:
        a, b = store.run(run_a), store.run(run_b)
        if (a["dataset"], a["split"]) != (b["dataset"], b["split"]):
            raise NerbenchError(
                f"runs {run_a} ({a['dataset']}/{a['split']}) and {run_b} ({b['dataset']}/{b['split']}) "
                "are not on the same test split"
            )
        if a["dataset_sha256"] != b["dataset_sha256"]:
            raise NerbenchError(
                f"runs {run_a} and {run_b} were scored against different files of {a['dataset']}/{a['split']} "
                f"(sha256 {a['dataset_sha256'][:12]}… and {b['dataset_sha256'][:12]}…)"
            )
        pred_a, pred_b = store.predictions(run_a), store.predictions(run_b)
    split = load_split(a["dataset"], a["split"], data_dir, allow_modified=bool(a["modified"]))
    if split.sha256 != a["dataset_sha256"]:
        raise NerbenchError(
            f"{split.path}: sha256 {split.sha256} is not the {a['dataset_sha256']} the runs were scored against"
        )
    gold = [list(s.tags) for s in split.sentences]
    result = scoring.compare(gold, pred_a, pred_b, resamples=resamples, seed=seed, long_only=long_only)
    return result, a, b
