"""The paper's question, per dataset: is the best LLM better than the best encoder, by how much, is
the difference significant, where does it come from (entities of >= 3 tokens), and at what cost.

The paired test runs on the stored predictions of the two runs against the local gold test split,
only when both runs were scored against the same file (same sha256) and that file is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nerbench import scoring
from nerbench.datasets import REGISTRY, Split
from nerbench.errors import NerbenchError
from nerbench.site_data import Run, StoreData, predictions

SIGNIFICANCE = 0.05


@dataclass
class Paired:
    delta: float  # LLM minus encoder
    ci95: tuple[float, float]
    p_value: float
    resamples: int


@dataclass
class Question:
    dataset: str
    encoder: Run | None
    llm: Run | None
    paired: Paired | None = None
    paired_long: Paired | None = None
    paired_note: str | None = None  # why there is no paired test
    verdict: str = ""

    @property
    def gap(self) -> float | None:
        if self.encoder is None or self.llm is None or self.encoder.f1 is None or self.llm.f1 is None:
            return None
        return self.llm.f1 - self.encoder.f1

    @property
    def long_gap(self) -> float | None:
        if self.encoder is None or self.llm is None or self.encoder.long_f1 is None or self.llm.long_f1 is None:
            return None
        return self.llm.long_f1 - self.encoder.long_f1

    @property
    def cost_ratio(self) -> float | None:
        if self.encoder is None or self.llm is None:
            return None
        enc, llm = self.encoder.cost_per_1k, self.llm.cost_per_1k
        return llm / enc if enc and llm is not None and enc > 0 else None

    @property
    def hardware_note(self) -> str | None:
        """Says when the two costs were not both measured on the reference hardware."""
        if self.encoder is None or self.llm is None:
            return None
        off = [r for r in (self.encoder, self.llm) if not r.reference_hardware]
        if not off:
            return None
        classes = {r.device_class for r in (self.encoder, self.llm)}
        mixed = " (a CPU and a GPU timing)" if classes == {"CPU", "GPU"} else ""
        names = "; ".join(f"{r.model_id}: {r.device_name or 'no timing'}" for r in off)
        return f"not on reference hardware{mixed}: {names}"


def best(runs: list[Run], family: str) -> Run | None:
    scored = [(r.f1, r) for r in runs if r.family == family and r.f1 is not None]
    # Highest F1; ties go to the alphabetically first model so that the choice is stable.
    return min(scored, key=lambda s: (-s[0], s[1].model_id))[1] if scored else None


def _points(value: float) -> str:
    return f"{abs(value) * 100:.1f} F1 points"


def verdict(q: Question) -> str:
    """One sentence from the numbers; plain about what is missing."""
    name = q.dataset
    if q.llm is None:
        if q.encoder is None:
            return f"No runs on {name} yet."
        return (
            f"No LLM has been evaluated on {name} yet; the best encoder, {q.encoder.model_id}, "
            f"reaches strict F1 {q.encoder.f1:.3f}."
        )
    if q.encoder is None:
        return (
            f"No encoder has been evaluated on {name} yet; the best LLM, {q.llm.model_id}, "
            f"reaches strict F1 {q.llm.f1:.3f}."
        )
    gap = q.gap
    assert gap is not None, "best() picks only runs that have an F1"
    who = f"the best LLM ({q.llm.model_id}) and the best encoder ({q.encoder.model_id})"
    if q.paired is not None:
        low, high = q.paired.ci95
        evidence = f" (95% CI {low * 100:+.1f} to {high * 100:+.1f}, p = {q.paired.p_value:.3g})"
    else:
        evidence = " (no paired test)"
    if q.paired is not None and q.paired.p_value >= SIGNIFICANCE:
        head = f"On {name} {who} do not differ significantly: gap {gap * 100:+.1f} F1 points{evidence}"
    elif gap == 0:
        head = f"On {name} {who} have the same strict F1{evidence}"
    else:
        side = "better" if gap > 0 else "worse"
        qualifier = "significantly " if q.paired is not None else ""
        head = (
            f"On {name} the best LLM ({q.llm.model_id}) is {qualifier}{side} than the best encoder "
            f"({q.encoder.model_id}) by {_points(gap)}{evidence}"
        )
    tail = []
    if q.long_gap is not None:
        tail.append(f"on entities of 3+ tokens the gap is {q.long_gap * 100:+.1f} points")
    if q.cost_ratio is not None:
        tail.append(
            f"the LLM costs {q.cost_ratio:.3g}x as much per 1k sentences"
            + (" (timings not all on reference hardware)" if q.hardware_note else "")
        )
    else:
        tail.append("the cost ratio is unknown (a cost is missing)")
    return head + "; " + "; ".join(tail) + "."


def _paired(gold, pred_llm, pred_enc, resamples: int, seed: int, long_only: bool) -> Paired:
    result = scoring.compare(gold, pred_llm, pred_enc, resamples=resamples, seed=seed, long_only=long_only)
    return Paired(result.delta, result.ci95, result.p_value, result.resamples)


def questions(
    data: StoreData,
    db: Path,
    splits: Mapping[str, Split | None],
    *,
    datasets: list[str],
    resamples: int = 1000,
    seed: int = 0,
) -> list[Question]:
    """`splits` holds the local test split of each dataset (None where it is not available)."""
    out: list[Question] = []
    testable: list[tuple[Question, Run, Run, Split]] = []
    for dataset in datasets:
        shown = [m.shown[dataset] for m in data.models.values() if dataset in m.shown]
        q = Question(dataset, best(shown, "encoder"), best(shown, "llm"))
        split = splits.get(dataset)
        if q.encoder is not None and q.llm is not None:
            q.paired_note = _untestable(q.dataset, q.encoder, q.llm, split)
            if q.paired_note is None and split is not None:
                testable.append((q, q.encoder, q.llm, split))
        out.append(q)
    # The predictions of every compared run in one read of the predictions table.
    preds = predictions(db, [r.run_id for _, enc, llm, _ in testable for r in (llm, enc)])
    for q, enc, llm, split in testable:
        _test(q, split, preds[llm.run_id], preds[enc.run_id], resamples, seed)
    for q in out:
        q.verdict = verdict(q)
    return out


def _untestable(dataset: str, enc: Run, llm: Run, split: Split | None) -> str | None:
    """Why the two runs cannot be compared sentence by sentence, or None when they can."""
    if enc.split != llm.split or enc.dataset_sha256 != llm.dataset_sha256:
        return "the two runs were scored against different files of the test split"
    if dataset not in REGISTRY:
        return f"{dataset} is not in the dataset registry, so its gold tags are unknown"
    if split is None or split.split != enc.split:
        return f"the {enc.split} split of {dataset} is not available locally (see `nerbench datasets fetch`)"
    if split.sha256 != enc.dataset_sha256:
        return "the local test file is not the one the runs were scored against (sha256 differs)"
    return None


def _test(q: Question, split: Split, pred_llm: list, pred_enc: list, resamples: int, seed: int) -> None:
    gold = [list(s.tags) for s in split.sentences]
    if len(pred_llm) != len(gold) or len(pred_enc) != len(gold):
        q.paired_note = "the stored predictions do not cover every test sentence"
        return
    try:
        q.paired = _paired(gold, pred_llm, pred_enc, resamples, seed, False)
        q.paired_long = _paired(gold, pred_llm, pred_enc, resamples, seed, True)
    except NerbenchError as err:
        q.paired, q.paired_long = None, None
        q.paired_note = f"the stored predictions do not fit the test split ({err})"
