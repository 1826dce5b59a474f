"""The interface every way of tagging implements; the evaluation loop never asks which one it has.

A tagger knows, for one model: how it describes itself in the run record (head, quantization, label
policy, precision, LoRA and decoding settings), the recipe it is fine-tuned with, how to train a
checkpoint, how to load the predictor that is timed, and what it reports about the timed pass.
(lm-evaluation-harness's `LM` base class plays the same part for its `evaluate`.)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

from nerbench.errors import NerbenchError
from nerbench.protocol import NF4, PROTOCOL
from nerbench.recipes import Recipe
from nerbench.record import SERVINGS, Budget, Decoding, Family, Head, Lora, Serving
from nerbench.timing import TimingReport


@dataclass(frozen=True)
class Request:
    """What the user asked for that changes how a model is trained or tags."""

    device: str
    head: str | None = None
    quantize: str | None = None  # LLMs: the base's quantization while training
    label_policy: str | None = None
    trust_remote_code: bool = False
    word_position: str | None = None  # LLM token head: "first" / "last" / "sentence-twice"; None: the recipe's
    serving: str = "as-trained"  # nerbench.record.SERVINGS
    data_dir: Path | None = None  # where a serving condition's check reads the dev split (None: the default)
    allow_modified: bool = False


class Tagger(ABC):
    family: ClassVar[Family]
    head: ClassVar[Head]
    servings: ClassVar[tuple[Serving, ...]] = ("as-trained", "as-deployed")  # the conditions it can serve

    def __init__(self, ref: Any, request: Request, *, fine_tune: bool):
        self.ref = ref  # nerbench.models.registry.ResolvedModel
        self.request = request
        self.fine_tune = fine_tune  # a registry base, fine-tuned per dataset; else evaluated as it is
        if request.serving not in SERVINGS:
            raise NerbenchError(f"--serving: must be {' or '.join(repr(s) for s in SERVINGS)}, not {request.serving!r}")
        if request.serving not in self.servings:
            raise NerbenchError(
                f"--serving {request.serving}: not a serving condition of the {self.family} {self.head} head "
                f"(it serves {' or '.join(self.servings)})"
            )

    # ---- how the run describes itself

    @property
    @abstractmethod
    def recipe(self) -> Recipe:
        """The recipe fine-tuning starts from (the registry's, or the one the weights were trained with)."""

    @property
    def quantization(self) -> str:
        """Of the evaluated model ("none" or "nf4")."""
        return "none"

    @property
    def training_quantization(self) -> str:
        """Of the base while training."""
        return "none"

    @property
    def label_policy(self) -> str | None:
        return None

    @property
    def serving(self) -> Serving:
        return cast(Serving, self.request.serving)

    @property
    def batch_size(self) -> int:
        """The batch size the model is timed at."""
        return PROTOCOL.batch_size(self.family)

    @property
    def precision(self) -> str:
        return PROTOCOL.precision(self.family, quantized=self.quantization == NF4, device=self.request.device)

    def lora(self) -> Lora | None:
        return None

    def decoding(self) -> Decoding | None:
        return None

    def effective_recipe(self, budget: Budget) -> Recipe:
        """The recipe with the budget (and the request) applied, as training will use it."""
        from nerbench.models.training import checked_recipe

        overrides = {
            "max_epochs": budget.epochs,
            "learning_rate": budget.learning_rate,
            "batch_size": budget.batch_size,
        } | self.recipe_overrides(budget)
        return checked_recipe(self.recipe, {k: v for k, v in overrides.items() if v is not None})

    def recipe_overrides(self, budget: Budget) -> dict[str, Any]:
        """What this way of tagging sets in the recipe beyond the budget's epochs, rate and batch."""
        return {}

    # ---- the work

    @abstractmethod
    def train(
        self, folder: Path, budget: Budget, seed: int, info: Any, train: Any, dev: Any, progress: Callable | None
    ) -> Any:
        """Fine-tune the base into `folder`; returns the training record."""

    @abstractmethod
    def load_predictor(self, folder: Path | None, info: Any) -> Any:
        """The predictor over a fine-tuned `folder`, or over the model as it is (None)."""

    def timed(self, predictor: Any) -> Any:
        """What the protocol times (a wrapper may collect statistics of exactly one pass)."""
        return predictor

    def pass_details(self, timed: Any, predictor: Any, tokens: list, timing: TimingReport) -> tuple[TimingReport, dict]:
        """What the timed pass reports beside its tags: word alignment for token heads."""
        return timing, {"alignment": alignment(predictor, tokens)}


def alignment(predictor: Any, tokens: list) -> dict:
    """Windows and untaggable words of the test split, counted once (not per timed pass)."""
    from nerbench.models.align import encode
    from nerbench.models.encoder import AlignmentStats

    stats = AlignmentStats()
    stats.add(encode(tokens, predictor.tokenizer, predictor.max_length, predictor.overlap))
    return asdict(stats)


def split_hashes(train: Any, dev: Any) -> dict[str, str]:
    return {"train": train.sha256, "dev": dev.sha256}
