"""Encoder token classifiers as predictors: word tokens in, one IOB2 tag per word out."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from nerbench.errors import NerbenchError
from nerbench.models.align import Encoded, decode, encode, join, per_sentence, special_tokens
from nerbench.models.predictor import length_sorted_batches
from nerbench.models.registry import ResolvedModel, read_config, resolve_model
from nerbench.protocol import ENCODER, PROTOCOL
from nerbench.recipes import LabelPolicy
from nerbench.timing import ModelClock

# The timing protocol fixes one batch size per family; this module only reads it.
ENCODER_BATCH_SIZE = PROTOCOL.batch_size(ENCODER)
MAX_WINDOW = 512  # sub-tokens per window, special tokens included (BERT-style position limit)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype(device: str) -> torch.dtype:
    """bf16 on GPUs (the timing protocol's), fp32 on CPUs (where bf16 is slow and lossy)."""
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def model_labels(config_id2label: dict, source: str, labels: Sequence[str]) -> tuple[str, ...]:
    """The model's labels by id, checked to be exactly the dataset's label set."""
    by_id = {int(k): v for k, v in config_id2label.items()}
    id2label = tuple(by_id[i] for i in sorted(by_id))
    if all(re.fullmatch(r"LABEL_\d+", label) for label in id2label):
        raise NerbenchError(
            f"label map mismatch: {source} has no task labels ({len(id2label)} generic LABEL_n), "
            f"so it was not fine-tuned for the dataset's labels {list(labels)}: "
            "fine-tune it first (`nerbench train`)"
        )
    if sorted(by_id) != list(range(len(by_id))) or set(id2label) != set(labels) or len(id2label) != len(set(id2label)):
        raise NerbenchError(
            f"label map mismatch: {source} id2label has {list(id2label)} but the dataset's labels are {list(labels)}"
        )
    return id2label


@dataclass
class AlignmentStats:
    sentences: int = 0
    words: int = 0
    windows: int = 0
    empty_words: int = 0  # words without sub-tokens, tagged O
    clipped_words: int = 0  # words longer than a window, predicted from their first part

    def add(self, enc: Encoded) -> None:
        self.sentences += len(enc.n_words)
        self.words += sum(enc.n_words)
        self.windows += enc.n_windows
        self.empty_words += len(enc.empty_words)
        self.clipped_words += len(enc.clipped_words)


class EncoderPredictor:
    """Length-sorted, padded-to-the-longest batches through AutoModelForTokenClassification."""

    def __init__(
        self,
        model,
        tokenizer,
        labels: Sequence[str],
        *,
        batch_size: int = ENCODER_BATCH_SIZE,
        max_length: int = MAX_WINDOW,
        label_policy: LabelPolicy = "first",
        overlap: int | None = None,
    ):
        if not getattr(tokenizer, "is_fast", False):
            raise NerbenchError(f"{type(tokenizer).__name__} is not a fast tokenizer: word alignment needs word_ids()")
        if label_policy not in ("first", "majority"):
            raise NerbenchError(f"label policy must be 'first' or 'majority', not {label_policy!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.id2label = model_labels(model.config.id2label, "the model config", self.labels)
        self.batch_size = batch_size
        self.max_length = max_length
        self.label_policy = label_policy
        self.overlap = overlap
        self.device = str(next(model.parameters()).device)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.stats = AlignmentStats()
        self.model_clock = ModelClock(self.synchronize)
        self._specials = sum(map(len, special_tokens(tokenizer)))
        # Each sentence's windows, tokenized once per pass over the split (in `batches`).
        self._prepared: dict[tuple[str, ...], Encoded] = {}

    @classmethod
    def load(
        cls,
        model_ref: str | os.PathLike | ResolvedModel,
        labels: Sequence[str],
        *,
        batch_size: int = ENCODER_BATCH_SIZE,
        device: str | None = None,
        max_length: int | None = None,
        label_policy: LabelPolicy | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> EncoderPredictor:
        """Load a fine-tuned token classifier (registry id, folder or hub id) for inference.

        A folder written by `nerbench train` carries training.json; its label policy and window
        are the defaults, so a model is read the way it was trained.
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        ref = model_ref if isinstance(model_ref, ResolvedModel) else resolve_model(model_ref, revision)
        config = read_config(ref.path / "config.json")
        model_labels(config.get("id2label") or {}, f"{ref.path / 'config.json'}", labels)
        trained = _training_settings(ref.path)
        label_policy = label_policy or trained.get("label_policy", "first")
        window = max_length or trained.get("max_length") or MAX_WINDOW
        window = min(window, int(config.get("max_position_embeddings") or window))
        device = device or default_device()
        tokenizer = AutoTokenizer.from_pretrained(ref.path, trust_remote_code=trust_remote_code)
        model = AutoModelForTokenClassification.from_pretrained(
            ref.path,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            dtype=inference_dtype(device),
        )
        model.to(device).eval()
        return cls(model, tokenizer, labels, batch_size=batch_size, max_length=window, label_policy=label_policy)

    def encode(self, sentences: Sequence[Sequence[str]]) -> Encoded:
        """The model inputs of these sentences (one tokenizer call for all of them)."""
        return encode(sentences, self.tokenizer, self.max_length, self.overlap)

    def prepare(self, sentences: Sequence[Sequence[str]]) -> list[Encoded]:
        """Tokenize the sentences once; `predict_batch` reuses their windows."""
        parts = per_sentence(self.encode(sentences))
        self._prepared = {tuple(s): part for s, part in zip(sentences, parts)}
        return parts

    def sub_token_lengths(self, sentences: Sequence[Sequence[str]]) -> list[int]:
        """Sub-tokens per sentence without the special tokens (what batches are sorted by)."""
        return [sum(len(w.input_ids) - self._specials for w in part.windows) for part in self.prepare(sentences)]

    def batches(self, sentences: Sequence[Sequence[str]]) -> list[list[int]]:
        return length_sorted_batches(self.sub_token_lengths(sentences), self.batch_size)

    def predict_batch(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
        prepared = self._prepared
        missing = [s for s in sentences if tuple(s) not in prepared]
        fresh = dict(zip(map(tuple, missing), per_sentence(self.encode(missing)))) if missing else {}
        enc = join([prepared.get(tuple(s)) or fresh[tuple(s)] for s in sentences])
        self.stats.add(enc)
        predictions: list[list[int]] = []
        for start in range(0, enc.n_windows, self.batch_size):
            predictions.extend(self._forward(enc.windows[start : start + self.batch_size]))
        return decode(enc, predictions, self.id2label, self.label_policy)

    def _forward(self, windows) -> list[list[int]]:
        width = max(len(w.input_ids) for w in windows)
        ids = torch.full((len(windows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        for row, w in enumerate(windows):
            ids[row, : len(w.input_ids)] = torch.tensor(w.input_ids)
            mask[row, : len(w.input_ids)] = 1
        with torch.inference_mode(), self.model_clock.measure():
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            best = logits.argmax(-1).cpu()
        return best.tolist()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)


def _training_settings(folder: Path) -> dict:
    """label_policy / max_length recorded by `nerbench train`, if this folder came from it."""
    path = folder / "training.json"
    if not path.is_file():
        return {}
    try:
        recipe = json.loads(path.read_text(encoding="utf-8")).get("recipe", {})
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise NerbenchError(f"{path}: corrupt training record ({err})") from None
    return {k: recipe[k] for k in ("label_policy", "max_length") if k in recipe}
