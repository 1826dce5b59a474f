"""How long fine-tuning (and an eval) will take on a CPU, estimated before it starts.

The estimate is the work, counted in sentences, divided by a measured speed:

- work per dataset: (train sentences the budget uses + dev sentences scored) x epochs, plus the
  timed passes over the test split for an eval. Epochs are the budget's, else the recipe's maximum:
  early stopping on dev F1 may end training sooner, so the estimate is an upper bound.
- speed: what a reference model of the same way of tagging was measured to do on nerbench's 2-core
  CPU machines (MEASURED, each figure with where it comes from), scaled by parameter count for
  other models (time per sentence grows about in proportion to the parameters). A rough guide, not
  a promise: timings on these machines vary by up to ~1.8x between runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerbench.datasets import load_split
from nerbench.errors import NerbenchError
from nerbench.protocol import PROTOCOL
from nerbench.record import Budget


@dataclass(frozen=True)
class MeasuredSpeed:
    """Sentences per second of one reference model on a 2-core CPU, and where the figures come from."""

    model: str
    parameters: int
    train: float  # training sentences per second (forward, backward, optimizer step)
    predict: float  # prediction sentences per second (dev scoring and test passes)
    source: str


MEASURED: dict[tuple[str, str], MeasuredSpeed] = {
    ("encoder", "token"): MeasuredSpeed(
        model="MiniLM-L6 (full fine-tuning)",
        parameters=22_565_376,
        train=30.0,
        predict=160.0,
        source="measured on nerbench's 2-core CPU machines (ENVIRONMENT.md, 'Speed seen on these machines': "
        "~30 train and ~160 inference sentences/s, 2 threads)",
    ),
    ("llm", "token"): MeasuredSpeed(
        model="SmolLM2-135M (LoRA r=128, token head)",
        parameters=134_515_008,
        train=2.3,
        predict=17.9,
        source="measured on nerbench's 2-core CPU machines (~2.3 train sentences/s: nerbench/pipeline/profiles.py; "
        "17.9 test sentences/s: the README's results table)",
    ),
    ("llm", "generative"): MeasuredSpeed(
        model="SmolLM2-135M (LoRA r=128, generative head)",
        parameters=134_515_008,
        train=0.42,
        predict=0.41,
        source="measured on nerbench's 2-core CPU machines (the README: 300 training sentences in about 12 minutes, "
        "0.41 test sentences/s)",
    ),
}


@dataclass(frozen=True)
class SplitSizes:
    """What one dataset gives a training: its train sentences (the budget may take only the first
    ones), and how many dev and test sentences there are."""

    dataset: str
    train: Sequence[Any]  # sentences (each with .tokens): a budget may cap them by word tokens
    dev: int
    test: int


@dataclass(frozen=True)
class DatasetEstimate:
    dataset: str
    epochs: int
    train_sentences: int  # per epoch
    dev_sentences: int  # scored after each epoch
    test_sentences: int  # per timed pass (0: training only)
    test_passes: int
    seconds: float


@dataclass(frozen=True)
class Estimate:
    model: str
    parameters: int
    reference: MeasuredSpeed
    train_rate: float  # sentences/s assumed for this model
    predict_rate: float
    datasets: tuple[DatasetEstimate, ...]
    up_to: bool  # epochs are the recipe's maximum: early stopping may end training sooner

    @property
    def seconds(self) -> float:
        return sum(d.seconds for d in self.datasets)

    @property
    def scaled(self) -> bool:
        return self.parameters != self.reference.parameters


def estimate(
    model: str,
    parameters: int,
    family: str,
    head: str,
    budget: Budget,
    recipe_epochs: int,
    sizes: Sequence[SplitSizes],
    *,
    test_passes: int = PROTOCOL.repeats,
) -> Estimate:
    """The CPU time of training `model` under `budget` on each dataset (and, with `test_passes`,
    of its timed test passes), from the measured speed of its way of tagging scaled by parameters."""
    if parameters <= 0:
        raise ValueError(f"parameters must be positive, not {parameters}")
    reference = MEASURED[(family, head)]
    scale = reference.parameters / parameters
    train_rate, predict_rate = reference.train * scale, reference.predict * scale
    epochs = budget.epochs or recipe_epochs
    rows = []
    for size in sizes:
        counted = budget.train_sentence_count(size.train)
        train = len(size.train) if counted is None else min(counted, len(size.train))
        dev = min(budget.max_dev_sentences, size.dev) if budget.max_dev_sentences else size.dev
        seconds = epochs * (train / train_rate + dev / predict_rate) + test_passes * size.test / predict_rate
        rows.append(DatasetEstimate(size.dataset, epochs, train, dev, size.test, test_passes, seconds))
    return Estimate(model, parameters, reference, train_rate, predict_rate, tuple(rows), budget.epochs is None)


def duration(seconds: float) -> str:
    """'under a minute', '12 min', '3 h 05 min', '4 days 2 h'."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h"


def about(seconds: float) -> str:
    """'about 12 min', or 'under a minute'."""
    text = duration(seconds)
    return text if text == "under a minute" else f"about {text}"


def describe(estimate: Estimate, what: str) -> list[str]:
    """The estimate as lines of plain text: one per dataset, the total, and the speed assumed."""
    lines = []
    for d in estimate.datasets:
        epochs = f"{d.epochs} epoch{'s' if d.epochs != 1 else ''}"
        work = f"{d.train_sentences:,} train + {d.dev_sentences:,} dev sentences x {epochs}"
        if d.test_passes and d.test_sentences:
            work += f" + {d.test_sentences:,} test sentences x {d.test_passes} timed passes"
        lines.append(f"  {d.dataset}: {work}: {'up to ' if estimate.up_to else ''}{about(d.seconds)}")
    if len(estimate.datasets) > 1:
        lines.append(f"  in all: {'up to ' if estimate.up_to else ''}{about(estimate.seconds)} of {what}")
    reference = estimate.reference
    speed = f"speed assumed: {estimate.train_rate:.2g} train and {estimate.predict_rate:.3g} predicted sentences/s"
    if estimate.scaled:
        speed += (
            f", scaled by parameter count from {reference.model} ({reference.parameters / 1e6:,.1f}M parameters; "
            f"{reference.train:g} train and {reference.predict:g} predicted sentences/s, {reference.source}) to "
            f"{estimate.model}'s {estimate.parameters / 1e6:,.1f}M parameters"
        )
    else:
        speed += f" for {reference.model}, {reference.source}"
    lines.append(f"  ({speed}{'; early stopping may end training sooner' if estimate.up_to else ''})")
    return lines


def split_sizes(
    datasets: Sequence[str], data_dir: Path | None = None, *, allow_modified: bool = False, test: bool = True
) -> list[SplitSizes]:
    """The train sentences and dev (and test) sizes of each dataset. A split that cannot be read
    is left out: the eval or training itself reports it, with its file."""
    sizes = []
    for name in datasets:
        try:
            train, dev = (
                load_split(name, split, data_dir, allow_modified=allow_modified) for split in ("train", "dev")
            )
            tested = len(load_split(name, "test", data_dir, allow_modified=allow_modified).sentences) if test else 0
        except NerbenchError:
            continue
        sizes.append(SplitSizes(name, train.sentences, len(dev.sentences), tested))
    return sizes


def _head_of(meta: Any, head: str | None) -> str:
    """The way of tagging a registry model is trained with: the head asked for, else its recipe's."""
    if meta.family != "llm":
        return "token"
    return head or str(meta.recipe.head)


def for_registry_model(
    model: str,
    profile: str,
    sizes: Sequence[SplitSizes],
    *,
    head: str | None = None,
    test_passes: int = PROTOCOL.repeats,
) -> Estimate | None:
    """The estimate for a registry model under a profile (None for any other model: its size and
    recipe are not known before it is loaded)."""
    from nerbench.models.catalogue import REGISTRY
    from nerbench.pipeline.profiles import profile_for

    meta = REGISTRY.get(model)
    if meta is None:
        return None
    chosen = _head_of(meta, head)
    if (meta.family, chosen) not in MEASURED:
        return None
    budget = profile_for(profile, meta.family, chosen)
    return estimate(
        model, meta.parameters, meta.family, chosen, budget, meta.recipe.max_epochs, sizes, test_passes=test_passes
    )


def paper_on_cpu_notice(
    model: str,
    sizes: Sequence[SplitSizes],
    *,
    head: str | None = None,
    test_passes: int = PROTOCOL.repeats,
    seeds: int = 1,
) -> list[str]:
    """What the paper profile will cost on a CPU, and what `--profile quick` would: lines of plain
    text, none for a model that is not in the registry (nothing is known of its size before loading).
    With several `seeds` each trains anew: the totals are multiplied."""
    paper = for_registry_model(model, "paper", sizes, head=head, test_passes=test_passes)
    quick = for_registry_model(model, "quick", sizes, head=head, test_passes=test_passes)
    if paper is None or quick is None or not paper.datasets:
        return []
    from nerbench.models.catalogue import REGISTRY
    from nerbench.pipeline.profiles import profile_for
    from nerbench.tracks import describe_budget

    meta = REGISTRY[model]
    chosen = _head_of(meta, head)
    what = "training and prediction" if test_passes else "training"
    lines = [
        f"No GPU here (device cpu): the paper profile fine-tunes {model} with its whole recipe (up to "
        f"{meta.recipe.max_epochs} epochs over every train sentence) on this CPU. Estimated time:",
        *describe(paper, what),
        *([f"  x {seeds} seeds (each trains anew): up to {about(seeds * paper.seconds)} in all"] if seeds > 1 else []),
        f"For a CPU-sized budget add --profile quick ({describe_budget(profile_for('quick', meta.family, chosen))}): "
        f"{about(seeds * quick.seconds)}{' in all' if len(quick.datasets) > 1 or seeds > 1 else ''}.",
    ]
    return lines
