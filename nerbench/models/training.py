"""Fine-tuning an encoder for token classification with the paper's recipe.

Full fine-tuning, AdamW, linear warm-up over the first 10% of the planned steps then linear
decay, dev strict F1 after every epoch, early stopping after `patience` epochs without
improvement. The weights saved are the best epoch's (the paper's code kept a reference to the
live state dict, so it saved the last epoch's weights instead).
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from pydantic import BaseModel, ValidationError

import nerbench
from nerbench.conll import Sentence
from nerbench.errors import NerbenchError
from nerbench.models.align import IGNORE, encode, training_labels
from nerbench.models.encoder import MAX_WINDOW, EncoderPredictor, default_device
from nerbench.models.predictor import predict_all
from nerbench.models.registry import ResolvedModel, read_config, resolve_model
from nerbench.recipes import EncoderRecipe
from nerbench.timing import Predictor

DevEvaluator = Callable[[Sequence[Sequence[str]], Sequence[Sequence[str]]], float]
RecipeT = TypeVar("RecipeT", bound=BaseModel)


@dataclass(frozen=True)
class TrainingProgress:
    """Reported after every optimisation step (`dev_f1` None) and after every epoch's dev pass."""

    epoch: int  # 1-based
    max_epochs: int
    step: int  # within the epoch, 1-based
    steps: int  # per epoch
    loss: float  # mean training loss so far in this epoch
    dev_f1: float | None = None


@dataclass
class TrainingRecord:
    model: dict
    dataset: str | None
    data: dict  # sha256 of the split files (when known) and of the sentences actually used
    recipe: dict  # the effective recipe, overrides applied
    overrides: dict
    seed: int
    device: str
    versions: dict
    sentences: dict  # train / dev sentences used
    windows: dict  # model inputs built (long sentences give several windows)
    empty_words: int  # training words without sub-tokens (untrainable, tagged O at inference)
    dev_f1: list[float] = field(default_factory=list)  # per epoch
    train_loss: list[float] = field(default_factory=list)  # per epoch
    best_epoch: int = 0
    stopped_early: bool = False
    wall_seconds: float = 0.0
    labels: list[str] = field(default_factory=list)  # the label set, in the head's id order
    llm: dict | None = None  # LLMs: head, quantization, optimizer, LoRA settings, trainable parameters

    def to_dict(self) -> dict:
        return asdict(self)


def sentences_sha256(sentences: Sequence[Sentence]) -> str:
    """A fingerprint of the exact tokens and tags used (independent of the file's layout)."""
    digest = hashlib.sha256()
    for s in sentences:
        digest.update("\t".join(s.tokens).encode("utf-8") + b"\n")
        digest.update("\t".join(s.tags).encode("utf-8") + b"\n\n")
    return digest.hexdigest()


def checked_recipe(recipe: RecipeT, overrides: dict) -> RecipeT:
    """The recipe (encoder or LLM) with overrides applied, held to the same bounds as the recipe itself."""
    try:
        return type(recipe).model_validate(recipe.model_dump() | overrides)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_url=False))
        raise NerbenchError(f"recipe override refused: {problems}") from None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def strict_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    from nerbench.scoring import score

    return score(gold, pred, bootstrap=0).strict.f1


def _check_tags(sentences: Sequence[Sentence], labels: Sequence[str], split: str) -> None:
    known = set(labels)
    for s in sentences:
        for tag in s.tags:
            if tag not in known:
                raise NerbenchError(
                    f"{split} sentence at line {s.line}: tag {tag!r} is not in the labels {list(labels)}"
                )


def training_inputs(
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    labels: Sequence[str],
    max_train_sentences: int | None,
    overrides: dict,
) -> list[Sentence]:
    """The training sentences used (the first `max_train_sentences`, recorded in `overrides`),
    after checking that both splits have sentences and only tags of `labels`."""
    if max_train_sentences is not None:
        if max_train_sentences < 1:
            raise NerbenchError(f"max_train_sentences must be >= 1, got {max_train_sentences}")
        overrides["max_train_sentences"] = max_train_sentences
        train = train[:max_train_sentences]
    if not train or not dev:
        raise NerbenchError("training needs at least one train and one dev sentence")
    _check_tags(train, labels, "train")
    _check_tags(dev, labels, "dev")
    return list(train)


def optimizer_steps_per_epoch(rows: int, batch_size: int, accumulate: int = 1) -> int:
    return math.ceil(math.ceil(rows / batch_size) / accumulate)


def fit(
    model,
    rows: list[tuple[list[int], list[int]]],
    optimizer,
    record: TrainingRecord,
    *,
    batch_size: int,
    max_epochs: int,
    patience: int,
    warmup_ratio: float,
    pad_id: int,
    seed: int,
    device: str,
    dev: Sequence[Sentence],
    dev_predictor: Callable[[], Predictor],
    trained_state: Callable[[], dict[str, torch.Tensor]],
    dev_evaluator: DevEvaluator = strict_f1,
    accumulate: int = 1,
    progress: Callable[[TrainingProgress], None] | None = None,
    after_first_backward: Callable[[], None] | None = None,
) -> dict[str, torch.Tensor]:
    """The epoch loop both families share; returns the state of the best dev epoch.

    Shuffled micro-batches, the loss averaged over `accumulate` of them per optimizer step, a
    linear schedule with warm-up over the planned steps, after every epoch the dev F1 of
    `dev_predictor()` (a predictor over the model as it is then; recorded with the mean loss), stop
    after `patience` epochs without a better dev F1.
    `trained_state()` gives what is saved (all weights, or just the adapter's).
    """
    from transformers import get_linear_schedule_with_warmup

    micro_batches = math.ceil(len(rows) / batch_size)
    total_steps = optimizer_steps_per_epoch(len(rows), batch_size, accumulate) * max_epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(warmup_ratio * total_steps), total_steps)
    shuffler = torch.Generator().manual_seed(seed)
    gold_dev = [list(s.tags) for s in dev]
    dev_words = [s.tokens for s in dev]
    best_state: dict[str, torch.Tensor] | None = None
    best_f1, since_best = float("-inf"), 0
    for epoch in range(1, max_epochs + 1):
        model.train()
        order = torch.randperm(len(rows), generator=shuffler).tolist()
        loss_sum = 0.0
        optimizer.zero_grad()
        for step, (ids, mask, lab) in enumerate(_batches(rows, order, batch_size, pad_id), 1):
            out = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=lab.to(device))
            (out.loss / accumulate).backward()
            if step == 1 and after_first_backward:
                after_first_backward()
            if step % accumulate == 0 or step == micro_batches:
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            loss_sum += out.loss.item()
            if progress:
                progress(TrainingProgress(epoch, max_epochs, step, micro_batches, loss_sum / step))
        model.eval()
        f1 = float(dev_evaluator(gold_dev, predict_all(dev_predictor(), dev_words)))
        record.dev_f1.append(f1)
        record.train_loss.append(loss_sum / micro_batches)
        if progress:
            progress(TrainingProgress(epoch, max_epochs, micro_batches, micro_batches, loss_sum / micro_batches, f1))
        if f1 > best_f1:
            best_f1, since_best, record.best_epoch = f1, 0, epoch
            # Copies: the next optimizer steps change the live tensors in place.
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in trained_state().items()}
        else:
            since_best += 1
            if since_best >= patience:
                record.stopped_early = epoch < max_epochs
                break
    assert best_state is not None
    return best_state


_OUTPUT_FILES = (
    "model.safetensors",
    "config.json",
    "training.json",
    "adapter_model.safetensors",
    "adapter_config.json",
)


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise NerbenchError(f"output folder {out_dir} is not empty (pass overwrite to replace it)")
        for name in _OUTPUT_FILES:
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _batches(rows: list[tuple[list[int], list[int]]], order: list[int], size: int, pad_id: int):
    for start in range(0, len(order), size):
        chosen = [rows[i] for i in order[start : start + size]]
        width = max(len(ids) for ids, _ in chosen)
        ids = torch.full((len(chosen), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chosen), width), dtype=torch.long)
        labels = torch.full((len(chosen), width), IGNORE, dtype=torch.long)
        for r, (i, lab) in enumerate(chosen):
            ids[r, : len(i)] = torch.tensor(i)
            mask[r, : len(i)] = 1
            labels[r, : len(lab)] = torch.tensor(lab)
        yield ids, mask, labels


def train_encoder(
    model_ref: str | ResolvedModel,
    train: list[Sentence],
    dev: list[Sentence],
    labels: Sequence[str],
    recipe: EncoderRecipe,
    out_dir: str | Path,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    max_train_sentences: int | None = None,
    progress: Callable[[TrainingProgress], None] | None = None,
    dataset: str | None = None,
    data_sha256: dict[str, str] | None = None,
    device: str | None = None,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    dev_evaluator: DevEvaluator = strict_f1,
) -> TrainingRecord:
    """Fine-tune `model_ref` on `train`, pick the epoch with the best dev strict F1, save it.

    The output folder has the Hugging Face layout (model.safetensors, config.json with
    id2label/label2id, tokenizer files) plus training.json (this function's TrainingRecord).
    `dev_evaluator(gold, pred) -> F1` is the dev metric (nerbench's strict F1 by default).
    """
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    started = time.perf_counter()
    overrides = {
        k: v for k, v in {"max_epochs": epochs, "learning_rate": lr, "batch_size": batch_size}.items() if v is not None
    }
    recipe = checked_recipe(recipe, overrides)
    labels = tuple(labels)
    train = training_inputs(train, dev, labels, max_train_sentences, overrides)
    out_dir = Path(out_dir)
    ref = model_ref if isinstance(model_ref, ResolvedModel) else resolve_model(model_ref)
    config = read_config(ref.path / "config.json")
    max_length = min(recipe.max_length, int(config.get("max_position_embeddings") or MAX_WINDOW))
    prepare_out_dir(out_dir, overwrite)

    device = device or default_device()
    seed_everything(seed)  # before loading: the new classification head is drawn from it
    tokenizer = AutoTokenizer.from_pretrained(ref.path, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise NerbenchError(f"{ref.name}: no fast tokenizer, word alignment needs word_ids()")
    label2id = {label: i for i, label in enumerate(labels)}
    model = AutoModelForTokenClassification.from_pretrained(
        ref.path,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        ignore_mismatched_sizes=True,  # a checkpoint fine-tuned on other labels gets a new head
        dtype=torch.float32,
    ).to(device)

    enc = encode([s.tokens for s in train], tokenizer, max_length)
    rows = []
    for window in enc.windows:
        tag_ids = [label2id[t] for t in train[window.sentence].tags]
        rows.append((list(window.input_ids), training_labels(window, tag_ids, recipe.label_policy)))
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=recipe.learning_rate,
        eps=recipe.adam_epsilon,
        weight_decay=recipe.weight_decay,
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    import transformers

    record = TrainingRecord(
        model=ref.describe() | {"path": ref.path.name if ref.source == "folder" else None},
        dataset=dataset,
        data={
            "files": dict(data_sha256 or {}),
            "train_sentences_sha256": sentences_sha256(train),
            "dev_sentences_sha256": sentences_sha256(dev),
        },
        recipe=recipe.model_dump() | {"max_length": max_length},
        overrides=overrides,
        seed=seed,
        device=device,
        versions={
            "nerbench": nerbench.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
        },
        sentences={"train": len(train), "dev": len(dev)},
        windows={"train": enc.n_windows},
        empty_words=len(enc.empty_words),
        labels=list(labels),
    )
    best_state = fit(
        model,
        rows,
        optimizer,
        record,
        batch_size=recipe.batch_size,
        max_epochs=recipe.max_epochs,
        patience=recipe.patience,
        warmup_ratio=recipe.warmup_ratio,
        pad_id=pad_id,
        seed=seed,
        device=device,
        dev=dev,
        dev_evaluator=dev_evaluator,
        trained_state=model.state_dict,
        dev_predictor=lambda: EncoderPredictor(
            model, tokenizer, labels, max_length=max_length, label_policy=recipe.label_policy
        ),
        progress=progress,
    )
    model.load_state_dict(best_state)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    record.wall_seconds = time.perf_counter() - started
    (out_dir / "training.json").write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    return record
