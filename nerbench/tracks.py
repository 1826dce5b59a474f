"""The track of a run: which runs may be compared with which.

Two runs answer the paper's question together only when they had the same training budget and
their costs were measured the same way. A track is derived from the run record and its timing:

- budget: the training profile ("paper" recipe, "quick"), a declared other budget, or none stated
  (a published checkpoint evaluated as it is);
- timed by: nerbench itself, the submitter (self-reported), or nobody;
- hardware class: the reference H100 (only for runs nerbench timed there), another GPU, a CPU.

Tracks are ordered by authority: measured before self-reported, reference hardware before other
hardware, the paper recipe before smaller budgets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from nerbench.record import Budget, RunRecord, canonical_json

NAMED_BUDGETS = ("paper", "quick")  # nerbench's profiles, most authoritative first
TIMED_BY = ("nerbench", "self-reported", "untimed")
HARDWARE = ("reference", "GPU", "CPU", "none")
_HARDWARE_LABEL = {"reference": "reference H100", "GPU": "other GPU", "CPU": "CPU", "none": "no hardware"}


@dataclass(frozen=True, order=True)
class Track:
    budget: str  # "paper", "quick", "other: ..." or "not stated"
    timed_by: str
    hardware: str

    @property
    def authority(self) -> tuple[int, int, int, str]:
        budget = NAMED_BUDGETS.index(self.budget) if self.budget in NAMED_BUDGETS else len(NAMED_BUDGETS)
        return (TIMED_BY.index(self.timed_by), HARDWARE.index(self.hardware), budget, self.budget)

    @property
    def label(self) -> str:
        budget = f"{self.budget} budget" if self.budget in NAMED_BUDGETS else f"budget {self.budget}"
        timed = {
            "nerbench": "timed by nerbench",
            "self-reported": "self-reported timing",
            "untimed": "no timing",
        }[self.timed_by]
        return f"{budget} · {timed} · {_HARDWARE_LABEL[self.hardware]}"

    @property
    def key(self) -> str:
        """A short stable name for file names and download columns."""
        return f"{self.budget}|{self.timed_by}|{self.hardware}"


def _budget_name(record: RunRecord) -> str:
    if record.training is not None:
        budget = record.training.budget
        if budget.name in NAMED_BUDGETS:
            return budget.name
        # A budget set by hand: runs with the same settings share a track.
        settings = budget.model_dump(mode="json", exclude_none=True)
        digest = hashlib.sha256(canonical_json(settings).encode("utf-8")).hexdigest()[:8]
        return f"other: {describe_budget(budget)} [{digest}]"
    if record.submission is not None:
        declared = record.submission.training
        profile = declared.get("profile")
        if profile in NAMED_BUDGETS:
            return str(profile)
        if profile or declared.get("epochs"):
            return f"other: declared {profile or 'budget'}" + (
                f", {declared['epochs']} epochs" if declared.get("epochs") else ""
            )
    return "not stated"


def describe_budget(budget: Budget) -> str:
    parts = [f"{budget.epochs} epoch{'s' if budget.epochs != 1 else ''}" if budget.epochs else "recipe epochs"]
    if budget.max_train_sentences or budget.max_train_tokens:
        limits = []
        if budget.max_train_sentences:
            limits.append(f"{budget.max_train_sentences:,} sentences")
        if budget.max_train_tokens:
            limits.append(f"{budget.max_train_tokens:,} words")
        parts.append("train capped at " + " / ".join(limits))
    else:
        parts.append("all train sentences")
    if budget.learning_rate:
        parts.append(f"lr {budget.learning_rate:g}")
    return ", ".join(parts)


def device_class(device_name: str | None) -> str | None:
    if not device_name:
        return None
    return "CPU" if device_name.startswith("CPU") else "GPU"


def track_of(record: RunRecord, timing: dict[str, Any] | None, self_reported: bool) -> Track:
    """The track of one stored run (its record, its timing row, whether it came from a submission)."""
    measured = timing is not None and not self_reported and record.submission is None
    if timing is None:
        timed_by = "untimed"
    else:
        timed_by = "nerbench" if measured else "self-reported"
    if timing is None:
        hardware = "none"
    elif measured and timing.get("reference_hardware"):
        hardware = "reference"
    else:
        hardware = device_class(timing.get("device_name")) or "none"
    return Track(_budget_name(record), timed_by, hardware)
