"""Paired significance between stored runs on the same test split (`nerbench compare A B`).

Each side is one run, or several runs (the seeds of one model), pooled as scoring.compare_seeds
does. Where the split has a document sidecar, documents are resampled and swapped, not sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nerbench import scoring
from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.store import Store
from nerbench.tracks import Track, track_of


def _run_ids(runs: str | Sequence[str], side: str) -> list[str]:
    ids = [runs] if isinstance(runs, str) else list(runs)
    if not ids or any(not run_id for run_id in ids):
        raise NerbenchError(f"run {side}: no run id given")
    twice = sorted({run_id for run_id in ids if ids.count(run_id) > 1})
    if twice:
        raise NerbenchError(f"run {side}: {', '.join(twice)} given more than once")
    return ids


def compare_runs(
    db: Path,
    run_a: str | Sequence[str],
    run_b: str | Sequence[str],
    *,
    data_dir: Path | None = None,
    resamples: int = 10000,
    seed: int = 0,
    long_only: bool = False,
) -> tuple[scoring.Comparison, dict, dict]:
    """Compare two stored runs, or two sets of seed runs; returns the comparison and the rows of
    the first run of each side."""
    ids_a, ids_b = _run_ids(run_a, "A"), _run_ids(run_b, "B")
    with Store(db, create=False) as store:
        rows_a = [store.run(run_id) for run_id in ids_a]
        rows_b = [store.run(run_id) for run_id in ids_b]
        first = rows_a[0]
        for run_id, row in zip(ids_a + ids_b, rows_a + rows_b):
            if (row["dataset"], row["split"]) != (first["dataset"], first["split"]):
                raise NerbenchError(
                    f"runs {ids_a[0]} ({first['dataset']}/{first['split']}) and {run_id} "
                    f"({row['dataset']}/{row['split']}) are not on the same test split"
                )
            if row["dataset_sha256"] != first["dataset_sha256"]:
                raise NerbenchError(
                    f"runs {ids_a[0]} and {run_id} were scored against different files of "
                    f"{first['dataset']}/{first['split']} "
                    f"(sha256 {first['dataset_sha256'][:12]}… and {row['dataset_sha256'][:12]}…)"
                )
        seeds_a = [store.predictions(run_id) for run_id in ids_a]
        seeds_b = [store.predictions(run_id) for run_id in ids_b]
    modified = any(bool(row["modified"]) for row in rows_a + rows_b)
    split = load_split(first["dataset"], first["split"], data_dir, allow_modified=modified)
    if split.sha256 != first["dataset_sha256"]:
        raise NerbenchError(
            f"{split.path}: sha256 {split.sha256} is not the {first['dataset_sha256']} the runs were scored against"
        )
    gold = [list(s.tags) for s in split.sentences]
    result = scoring.compare_seeds(
        gold, seeds_a, seeds_b, resamples=resamples, seed=seed, long_only=long_only, units=split.documents
    )
    return result, rows_a[0], rows_b[0]


def tracks_of(db: Path, runs: str | Sequence[str]) -> list[Track]:
    """The track of each stored run (budget, who timed it, hardware class)."""
    with Store(db, create=False) as store:
        out = []
        for run_id in _run_ids(runs, "A"):
            row = store.run(run_id)
            out.append(track_of(row["record"], store.timing(run_id), bool(row["self_reported"])))
    return out


def side_names(rows_a: dict, rows_b: dict, tracks_a: list[Track], tracks_b: list[Track]) -> tuple[str, str]:
    """What `compare` calls each side: its model id and dataset; where both sides are one model,
    their tracks too, and where those agree as well, their first run ids."""
    names = [f"{row['model_id']} on {row['dataset']}" for row in (rows_a, rows_b)]
    if names[0] == names[1]:
        labels = ["; ".join(sorted({t.label for t in tracks})) for tracks in (tracks_a, tracks_b)]
        if labels[0] != labels[1]:
            names = [f"{name} [{label}]" for name, label in zip(names, labels)]
        else:
            names = [f"{name} (run {row['run_id']})" for name, row in zip(names, (rows_a, rows_b))]
    return names[0], names[1]


def track_warning(tracks_a: list[Track], tracks_b: list[Track], names: tuple[str, str] = ("A", "B")) -> str | None:
    """What to tell the user when the runs compared are not on one track: their difference then
    mixes budgets or timing conditions with the model families. `names` names the two sides."""
    labels = sorted({t.label for t in tracks_a + tracks_b})
    if len(labels) < 2:
        return None
    if len(set(tracks_a)) == 1 and len(set(tracks_b)) == 1:
        where = f"{names[0]} is on track '{tracks_a[0].label}', {names[1]} on '{tracks_b[0].label}'"
    else:
        where = "the runs span the tracks " + "; ".join(f"'{label}'" for label in labels)
    return (
        f"warning: {where}. The difference mixes training budget, timing or hardware with the models; "
        "the leaderboard never pairs runs of different tracks"
    )
