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


def inference_dtype(device: str, serving: str = "as-trained") -> torch.dtype:
    """The weights' dtype for a serving condition.

    As trained (the timing protocol's): bf16 on GPUs, fp32 on CPUs. As deployed: bf16 on GPUs, and
    on CPUs whose bf16 support is detected (`cpu_bf16_support`); a CPU without it is refused, since
    there bf16 is emulated (slow) and "as deployed" would be fp32, the as-trained run again.
    """
    if device.startswith("cuda"):
        return torch.bfloat16
    if serving == "as-deployed":
        support = cpu_bf16_support()
        if not support.supported:
            raise NerbenchError(f"--serving as-deployed: {support.reason}; an encoder on this CPU is served as trained")
        return torch.bfloat16
    return torch.float32


# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: AVX512-BF16 dot products, AMX tiles.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
# torch's ATen CPU kernels run bf16 natively only at these dispatch levels
# (`torch.backends.cpu.get_cpu_capability()`; AVX2 or lower converts each bf16 value to fp32).
BF16_CPU_CAPABILITIES = ("AVX512", "AMX")


@dataclass(frozen=True)
class CpuBf16:
    supported: bool
    reason: str


def cpu_flags(path: str | os.PathLike = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them; None where there is no such file."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / ARM spelling
            return frozenset(value.split())
    return None


def torch_cpu_bf16() -> bool:
    """Whether torch's own CPU query reports native bf16: AVX512-BF16 or AMX tiles (`torch.cpu`,
    read through cpuinfo), and oneDNN built with bf16 kernels (`torch.ops.mkldnn`)."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    native = any(bool(probe()) for probe in probes if probe is not None)
    try:
        onednn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        onednn = False
    return native and onednn


def cpu_bf16_support(
    flags: frozenset[str] | None | bool = True, capability: str | None = None, torch_bf16: bool | None = None
) -> CpuBf16:
    """Detect, never assume, fast bf16 on this CPU. All three must agree: the CPU lists a native
    bf16 instruction set (Linux flags; where there are none, torch's query stands in), torch
    dispatches at a level that uses it (`torch.backends.cpu.get_cpu_capability()`), and torch's
    query (`torch_cpu_bf16`) finds it. The arguments stand in for the machine in tests
    (`flags=True`: read /proc/cpuinfo)."""
    found = cpu_flags() if flags is True else flags
    capability = capability if capability is not None else torch.backends.cpu.get_cpu_capability()
    torch_bf16 = torch_cpu_bf16() if torch_bf16 is None else torch_bf16
    if isinstance(found, frozenset) and not set(BF16_CPU_FLAGS) & found:
        return CpuBf16(False, f"this CPU lists neither {' nor '.join(BF16_CPU_FLAGS)} (no native bf16)")
    if capability not in BF16_CPU_CAPABILITIES:
        return CpuBf16(False, f"torch runs this CPU at the {capability} level, without native bf16 kernels")
    if not torch_bf16:
        return CpuBf16(False, "torch's CPU query finds no native bf16 (AVX512-BF16/AMX with oneDNN bf16 kernels)")
    listed = sorted(set(BF16_CPU_FLAGS) & found) if isinstance(found, frozenset) else ["(no CPU flag list)"]
    return CpuBf16(True, f"native bf16: CPU flags {', '.join(listed)}, torch capability {capability}")


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
        # A deployed serving condition's check against PyTorch fp32 (nerbench.pipeline.taggers.encoder_token).
        self.serving_check: dict | None = None

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
        dtype: torch.dtype | None = None,
    ) -> EncoderPredictor:
        """Load a fine-tuned token classifier (registry id, folder or hub id) for inference.

        A folder written by `nerbench train` carries training.json; its label policy and window
        are the defaults, so a model is read the way it was trained. `dtype`: the protocol's for
        the device (`inference_dtype`) unless given.
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
            dtype=dtype or inference_dtype(device),
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
