"""LoRA / QLoRA fine-tuning of decoder LLMs, in both modes, with the paper's recipe.

Token mode trains LoRA adapters plus a new classification head (`score`, saved whole) on the
token classifier, with the encoders' word alignment and one label per word, at the position the
recipe's `word_position` reads it (nerbench.models.llm.head_encode; prediction reads the same one). Generative mode
trains a causal-LM LoRA on `prompt + token:TAG answer + EOS` (nerbench.models.generative), the
loss on the answer tokens only. Both keep the epoch with the best dev strict F1 (dev F1 of the
generative mode goes through GenerativePredictor and its parser), stop after `patience` epochs
without improvement, and save that epoch's adapter (safetensors), the tokenizer and training.json.

Where the weights are kept: on CUDA the recipe's nf4 base (QLoRA) with paged 8-bit AdamW; on CPU
plain LoRA on fp32 weights with torch's AdamW unless nf4 is asked for. The record says which.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

import nerbench
from nerbench.conll import Sentence
from nerbench.errors import NerbenchError
from nerbench.models.align import IGNORE, training_labels
from nerbench.models.encoder import default_device
from nerbench.models.generative import GenerativePredictor, build_prompt, target_text
from nerbench.models.llm import (
    LLM_BATCH_SIZE,
    Head,
    LLMTokenPredictor,
    check_lora_gradients,
    check_word_position,
    head_encode,
    keep_4bit_layers_trainable,
    load_base,
    load_tokenizer,
    lora_config,
)
from nerbench.models.registry import ADAPTER_CONFIG, ResolvedModel, read_config, resolve_model
from nerbench.models.training import (
    DevEvaluator,
    TrainingProgress,
    TrainingRecord,
    checked_recipe,
    fit,
    optimizer_steps_per_epoch,
    prepare_out_dir,
    seed_everything,
    sentences_sha256,
    strict_f1,
    training_inputs,
)
from nerbench.recipes import LLMRecipe, WordPosition

WORD_POSITION_LOSS = {
    "first": "first sub-token of each word",
    "last": "last sub-token of each word",
    "sentence-twice": "last sub-token of each word in the second of two copies of the window",
}


def effective_quantization(recipe: LLMRecipe, quantize: str | None, device: str) -> str:
    """ "nf4" or "none": asked for explicitly, else the recipe's on CUDA and none on CPU."""
    if quantize is not None:
        if quantize not in ("none", "nf4"):
            raise NerbenchError(f"--quantize: must be 'none' or 'nf4', not {quantize!r}")
        return quantize
    return recipe.quantization if device.startswith("cuda") else "none"


def token_rows(
    sentences: Sequence[Sentence],
    tokenizer,
    labels: Sequence[str],
    max_length: int,
    word_position: WordPosition = "first",
):
    label2id = {label: i for i, label in enumerate(labels)}
    enc = head_encode([s.tokens for s in sentences], tokenizer, max_length, word_position)
    rows = []
    for window in enc.windows:
        tag_ids = [label2id[t] for t in sentences[window.sentence].tags]
        rows.append((list(window.input_ids), training_labels(window, tag_ids, "first")))
    return rows, enc


def generative_rows(sentences: Sequence[Sentence], tokenizer, entity_types: Sequence[str], limit: int | None):
    """prompt + answer + EOS per sentence; labels IGNORE on the prompt (it is given, not learnt)."""
    if tokenizer.eos_token_id is None:
        raise NerbenchError("generative training: the tokenizer has no end-of-sequence token")
    rows = []
    for s in sentences:
        prompt = tokenizer(build_prompt(s.tokens, entity_types))["input_ids"]
        answer = tokenizer(target_text(s.tokens, s.tags), add_special_tokens=False)["input_ids"]
        answer = list(answer) + [tokenizer.eos_token_id]
        ids = list(prompt) + answer
        if limit is not None and len(ids) > limit:
            raise NerbenchError(
                f"train sentence at line {s.line}: prompt and answer take {len(ids)} tokens, more than "
                f"the model's {limit} positions"
            )
        rows.append((ids, [IGNORE] * len(prompt) + answer))
    return rows


def _optimizer(params, recipe: LLMRecipe, device: str):
    """The recipe's paged 8-bit AdamW on CUDA; torch's AdamW on CPU (bitsandbytes pages GPU memory)."""
    if device.startswith("cuda"):
        import bitsandbytes as bnb

        return bnb.optim.PagedAdamW8bit(
            params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay
        ), recipe.optimizer
    return torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay), recipe.cpu_optimizer


def _adapter_base_name(ref: ResolvedModel) -> str:
    """What the saved adapter names as its base: the registry id or hub id (portable), else the folder."""
    if ref.meta is not None:
        return ref.meta.id
    if ref.source == "hub" and ref.hf_id:
        return ref.hf_id
    return str(Path(ref.path).resolve())


def train_llm(
    model_ref: str | ResolvedModel,
    train: list[Sentence],
    dev: list[Sentence],
    labels: Sequence[str],
    entity_types: Sequence[str],
    recipe: LLMRecipe,
    out_dir: str | Path,
    *,
    head: Head | None = None,
    word_position: WordPosition | None = None,
    quantize: str | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    gradient_accumulation_steps: int | None = None,
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
    """LoRA-fine-tune the decoder `model_ref` for `head`, keep the best dev epoch, save the adapter."""
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    started = time.perf_counter()
    overrides: dict[str, object] = {
        k: v
        for k, v in {
            "max_epochs": epochs,
            "learning_rate": lr,
            "batch_size": batch_size,
            "gradient_accumulation_steps": gradient_accumulation_steps,
            "head": head,
            "word_position": check_word_position(word_position) if word_position is not None else None,
        }.items()
        if v is not None
    }
    recipe = checked_recipe(recipe, overrides)
    head = recipe.head
    if head != "token" and recipe.word_position != "first":
        raise NerbenchError(f"--word-position {recipe.word_position}: applies to the token head only")
    labels = tuple(labels)
    train = training_inputs(train, dev, labels, max_train_sentences, overrides)
    out_dir = Path(out_dir)
    ref = model_ref if isinstance(model_ref, ResolvedModel) else resolve_model(model_ref)
    if ref.source == "adapter":
        raise NerbenchError(f"{ref.path} is an adapter: train from its base model instead")
    config = read_config(ref.path / "config.json")
    positions = config.get("max_position_embeddings")
    max_length = min(recipe.max_length, int(positions or recipe.max_length))
    device = device or default_device()
    quantization = effective_quantization(recipe, quantize, device)
    if quantize is not None:
        overrides["quantize"] = quantize
    prepare_out_dir(out_dir, overwrite)

    seed_everything(seed)  # before loading: the new head and the LoRA matrices are drawn from it
    tokenizer = load_tokenizer(ref.path, trust_remote_code)
    model = load_base(
        ref.path,
        head,
        labels,
        device=device,
        quantize=quantization == "nf4",
        recipe=recipe,
        pad_token_id=tokenizer.pad_token_id,
        trust_remote_code=trust_remote_code,
    )
    four_bit_layers = 0
    if quantization == "nf4":
        from peft import prepare_model_for_kbit_training

        if device.startswith("cuda"):  # the paper's preparation (norms in fp32, checkpointing)
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
        four_bit_layers = keep_4bit_layers_trainable(model)
    model = get_peft_model(model, lora_config(recipe, head))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    if head == "token":
        rows, enc = token_rows(train, tokenizer, labels, max_length, recipe.word_position)
        windows, empty = {"train": enc.n_windows}, len(enc.empty_words)
    else:
        rows = generative_rows(train, tokenizer, entity_types, int(positions) if positions else None)
        windows, empty = {"train": len(rows)}, 0
    steps_per_epoch = optimizer_steps_per_epoch(len(rows), recipe.batch_size, recipe.gradient_accumulation_steps)
    optimizer, optimizer_name = _optimizer([p for p in model.parameters() if p.requires_grad], recipe, device)

    import peft
    import transformers

    record = TrainingRecord(
        model=ref.describe() | {"path": ref.path.name if ref.source == "folder" else None},
        dataset=dataset,
        data={
            "files": dict(data_sha256 or {}),
            "train_sentences_sha256": sentences_sha256(train),
            "dev_sentences_sha256": sentences_sha256(dev),
        },
        recipe=recipe.model_dump(mode="json") | {"max_length": max_length},
        overrides=overrides,
        seed=seed,
        device=device,
        versions={
            "nerbench": nerbench.__version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "python": platform.python_version(),
        },
        sentences={"train": len(train), "dev": len(dev)},
        windows=windows,
        empty_words=empty,
        labels=list(labels),
        llm={
            "head": head,
            "quantization": quantization,
            "weights": "nf4 4-bit base" if quantization == "nf4" else f"{str(next(model.parameters()).dtype)[6:]} base",
            "compute_dtype": "bf16" if device.startswith("cuda") else "fp32",
            "optimizer": optimizer_name,
            "lora": {
                "r": recipe.lora_r,
                "alpha": recipe.lora_alpha,
                "dropout": recipe.lora_dropout,
                "target_modules": list(recipe.target_modules),
                "modules_to_save": ["score"] if head == "token" else [],
            },
            "trainable_parameters": trainable,
            "loss": WORD_POSITION_LOSS[recipe.word_position] if head == "token" else "answer tokens and EOS only",
            "word_position": recipe.word_position if head == "token" else None,
            "entity_types": list(entity_types),
            "four_bit_cpu_kernel_disabled_layers": four_bit_layers,
            "optimizer_steps_per_epoch": steps_per_epoch,
        },
    )

    def dev_predictor():
        if head == "token":
            return LLMTokenPredictor(
                model, tokenizer, labels, max_length=max_length, word_position=recipe.word_position
            )
        return GenerativePredictor(model, tokenizer, labels, entity_types, batch_size=LLM_BATCH_SIZE)

    best_state = fit(
        model,
        rows,
        optimizer,
        record,
        batch_size=recipe.batch_size,
        max_epochs=recipe.max_epochs,
        patience=recipe.patience,
        warmup_ratio=recipe.warmup_ratio,
        pad_id=tokenizer.pad_token_id,
        seed=seed,
        device=device,
        dev=dev,
        dev_predictor=dev_predictor,
        dev_evaluator=dev_evaluator,
        trained_state=lambda: get_peft_model_state_dict(model),
        accumulate=recipe.gradient_accumulation_steps,
        progress=progress,
        # every epoch: a dev pass came in between
        after_first_backward=lambda: check_lora_gradients(model),
    )
    set_peft_model_state_dict(model, best_state)
    model.save_pretrained(out_dir, safe_serialization=True)
    _name_portable_base(out_dir / ADAPTER_CONFIG, _adapter_base_name(ref))
    tokenizer.save_pretrained(out_dir)
    record.wall_seconds = time.perf_counter() - started
    (out_dir / "training.json").write_text(json.dumps(record.to_dict(), indent=2) + "\n", encoding="utf-8")
    return record


def _name_portable_base(path: Path, base: str) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
