"""Decoder LLMs for NER: loading with LoRA / QLoRA, and the token-classification predictor.

Token mode puts a classification head (`LlamaForTokenClassification`, `MistralForTokenClassification`)
on the decoder: one forward pass per window, each word labelled from one sub-token chosen by the
recipe's `word_position` (`head_encode`: its first, its last, or its last in a second copy of the
window), words fed with their leading space where the tokenizer needs it (the word alignment of the
encoders, nerbench.models.align). Generative mode is nerbench.models.generative; this module loads its model.

Serving conditions (nerbench.record.Serving): "as-trained" loads the base quantized as it was trained
(nf4 for QLoRA; bf16 on CUDA or fp32 on CPU otherwise) with the adapter left unmerged, at the
protocol's batch size, as the paper served it; "as-deployed" merges the adapter into a 16-bit base
(bf16 on CUDA, fp32 on CPU) and runs it at a throughput batch size.

Two bitsandbytes traps on CPU are handled here (see ENVIRONMENT.md): the fresh `score` head is kept
out of 4-bit quantization (`llm_int8_skip_modules`), and the packed-weight CPU kernel is switched
off on 4-bit layers that are trained (`keep_4bit_layers_trainable`), because a no-grad forward in
eval mode repacks the weights in place and every later LoRA gradient becomes None;
`check_lora_gradients` makes any such failure loud.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from nerbench.errors import NerbenchError
from nerbench.models.align import Encoded, Window, encode, special_tokens
from nerbench.models.encoder import MAX_WINDOW, EncoderPredictor, default_device, model_labels
from nerbench.models.registry import (
    ADAPTER_CONFIG,
    ResolvedModel,
    read_adapter_config,
    read_config,
    resolve_model,
)
from nerbench.protocol import DEPLOYED_LLM_BATCH_SIZE, LLM, NF4, PROTOCOL
from nerbench.recipes import WORD_POSITIONS, LLMRecipe, WordPosition
from nerbench.record import SERVINGS
from nerbench.timing import loaded_in_4bit

Head = Literal["token", "generative"]
LLM_BATCH_SIZE = PROTOCOL.batch_size(LLM)
HEAD_MODULE = "score"  # the classification head of *ForTokenClassification decoders
_TASK_TYPE = {"token": "TOKEN_CLS", "generative": "CAUSAL_LM"}
_HEAD_OF_TASK: dict[str, Head] = {"TOKEN_CLS": "token", "CAUSAL_LM": "generative"}


def load_tokenizer(path: Path, trust_remote_code: bool = False):
    """The model's fast tokenizer, with the end-of-sequence token as padding when none is set."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise NerbenchError(f"{path}: no fast tokenizer, word alignment needs word_ids()")
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise NerbenchError(f"{path}: the tokenizer has neither a padding nor an end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(recipe: LLMRecipe, device: str):
    """nf4 with double quantization; bf16 compute on CUDA (the recipe's), fp32 on CPU."""
    from transformers import BitsAndBytesConfig

    compute = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=recipe.double_quantization,
        bnb_4bit_compute_dtype=compute,
        # The new head is not in the checkpoint: wrapped as 4-bit it would never be quantized.
        llm_int8_skip_modules=[HEAD_MODULE, "lm_head"],
    )


def base_dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_base(
    path: Path,
    head: Head,
    labels: Sequence[str],
    *,
    device: str,
    quantize: bool,
    recipe: LLMRecipe | None = None,
    pad_token_id: int | None = None,
    trust_remote_code: bool = False,
):
    """The base decoder with a token-classification head (new, for `labels`) or its LM head."""
    from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

    kwargs: dict = {"use_safetensors": True, "trust_remote_code": trust_remote_code}
    if quantize:
        config = quantization_config(recipe or LLMRecipe(), device)
        # The layers left unquantized (norms, embeddings, the head) run in the compute dtype.
        kwargs.update(quantization_config=config, device_map={"": device}, dtype=config.bnb_4bit_compute_dtype)
    else:
        kwargs["dtype"] = base_dtype(device)
    if head == "token":
        labels = tuple(labels)
        model = AutoModelForTokenClassification.from_pretrained(
            path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            pad_token_id=pad_token_id,
            ignore_mismatched_sizes=True,
            **kwargs,
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if not quantize:
        model.to(device)
    return model


def lora_config(recipe: LLMRecipe, head: Head):
    from peft import LoraConfig

    return LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.target_modules),
        bias="none",
        task_type=_TASK_TYPE[head],
        modules_to_save=[HEAD_MODULE] if head == "token" else None,
    )


def keep_4bit_layers_trainable(model) -> int:
    """Switch off bitsandbytes' packed CPU kernel on every 4-bit layer; returns how many.

    That kernel repacks a layer's weights in place on its first no-grad forward in eval mode
    (a dev pass); the training forward afterwards no longer reaches the LoRA weights' autograd
    path, so their gradients stay None and nothing is learnt, without an error.
    """
    import bitsandbytes as bnb

    count = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def check_lora_gradients(model) -> None:
    """Raise unless every trainable LoRA parameter received a gradient in the last backward."""
    lora = [(n, p) for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    if not lora:
        raise NerbenchError("LoRA training: the model has no trainable LoRA parameters")
    missing = [n for n, p in lora if p.grad is None]
    if missing:
        raise NerbenchError(
            f"LoRA training: {len(missing)} of {len(lora)} LoRA parameters got no gradient "
            f"(first: {missing[0]}); with a 4-bit base on CPU this happens after an eval forward "
            "repacked the weights: train before any evaluation in the process, or reload the model"
        )


def is_quantized(model) -> bool:
    return loaded_in_4bit(model)


# --------------------------------------------------------------------------- where a word is read

COPY_SEPARATOR = "\n"  # between the two copies of a window ("sentence-twice")


def copy_separator(tokenizer) -> list[int]:
    """The ids between the two copies: a newline, else the tokenizer's separator or end token."""
    ids = list(tokenizer(COPY_SEPARATOR, add_special_tokens=False)["input_ids"])
    if ids:
        return ids
    for token_id in (tokenizer.sep_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return [token_id]
    raise NerbenchError("word position 'sentence-twice': the tokenizer has no separator between the two copies")


def check_word_position(word_position: str) -> WordPosition:
    if word_position not in WORD_POSITIONS:
        raise NerbenchError(
            f"--word-position: must be {', '.join(repr(w) for w in WORD_POSITIONS)}, not {word_position!r}"
        )
    return word_position


def head_encode(
    sentences: Sequence[Sequence[str]],
    tokenizer,
    max_length: int,
    word_position: WordPosition = "first",
    overlap: int | None = None,
) -> Encoded:
    """The token head's windows: each owned word keeps exactly one position, the one it is read at.

    "first": the word's first sub-token (the encoders' alignment). "last": its last sub-token.
    "sentence-twice": every window becomes prefix + words + separator + the same words + suffix
    (each copy gets half the room), and a word is read at its last sub-token in the second copy.
    A word longer than the room keeps its first sub-tokens (`Encoded.clipped_words`), as before.
    """
    check_word_position(word_position)
    if word_position != "sentence-twice":
        enc = encode(sentences, tokenizer, max_length, overlap)
        if word_position == "first":
            return _one_position(enc, 0)
        return _one_position(enc, -1)
    prefix, suffix = special_tokens(tokenizer)
    separator = copy_separator(tokenizer)
    room = (max_length - len(prefix) - len(suffix) - len(separator)) // 2
    if room < 2:
        raise NerbenchError(f"word position 'sentence-twice': a window of {max_length} leaves no room for two copies")
    once = encode(sentences, tokenizer, room + len(prefix) + len(suffix), overlap)
    windows = []
    for w in once.windows:
        words = w.input_ids[len(prefix) : len(w.input_ids) - len(suffix)]
        shift = len(words) + len(separator)
        owned = tuple((word, (positions[-1] + shift,)) for word, positions in w.owned)
        ids = (*prefix, *words, *separator, *words, *suffix)
        windows.append(Window(w.sentence, tuple(ids), owned))
    return Encoded(tuple(windows), once.n_words, once.empty_words, once.clipped_words)


def _one_position(enc: Encoded, index: int) -> Encoded:
    windows = tuple(
        Window(w.sentence, w.input_ids, tuple((word, (positions[index],)) for word, positions in w.owned))
        for w in enc.windows
    )
    return Encoded(windows, enc.n_words, enc.empty_words, enc.clipped_words)


class LLMTokenPredictor(EncoderPredictor):
    """A decoder token classifier under the encoder predictor's batching and word alignment."""

    def __init__(
        self,
        model,
        tokenizer,
        labels: Sequence[str],
        *,
        batch_size: int = LLM_BATCH_SIZE,
        max_length: int = MAX_WINDOW,
        overlap: int | None = None,
        precision: str | None = None,
        word_position: WordPosition = "first",
    ):
        super().__init__(
            model,
            tokenizer,
            labels,
            batch_size=batch_size,
            max_length=max_length,
            label_policy="first",
            overlap=overlap,
        )
        self.precision = precision
        self.pad_id = tokenizer.pad_token_id
        self.word_position = check_word_position(word_position)

    def encode(self, sentences: Sequence[Sequence[str]]) -> Encoded:
        return head_encode(sentences, self.tokenizer, self.max_length, self.word_position, self.overlap)


# --------------------------------------------------------------------------- loading for inference


def training_record(folder: Path) -> dict:
    path = folder / "training.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise NerbenchError(f"{path}: corrupt training record ({err})") from None
    return data if isinstance(data, dict) else {}


def adapter_head(folder: Path) -> Head:
    """token or generative, from the adapter's PEFT task type."""
    task = read_adapter_config(folder).get("task_type")
    if task not in _HEAD_OF_TASK:
        raise NerbenchError(
            f"{folder / ADAPTER_CONFIG}: task_type {task!r} is neither TOKEN_CLS (token head) "
            "nor CAUSAL_LM (generative head)"
        )
    return _HEAD_OF_TASK[task]


def trained_quantized(folder: Path) -> bool:
    """Whether the adapter in `folder` was trained on a 4-bit base (read from training.json)."""
    return training_record(folder).get("llm", {}).get("quantization") == NF4


def load_llm_predictor(
    model_ref: str | os.PathLike | ResolvedModel,
    labels: Sequence[str],
    entity_types: Sequence[str],
    *,
    head: Head | None = None,
    device: str | None = None,
    batch_size: int | None = None,
    serving: str = "as-trained",
    trust_remote_code: bool = False,
):
    """A predictor for an LLM adapter folder (its base resolved) or a plain LLM checkpoint folder.

    Adapter folders written by `nerbench train` carry training.json: its labels order the head,
    its quantization is the base's when served as trained, its window is reused. `batch_size`
    defaults to the serving condition's (the protocol's 8 as trained, DEPLOYED_LLM_BATCH_SIZE as
    deployed).
    """
    from nerbench.models.generative import GenerativePredictor

    ref = model_ref if isinstance(model_ref, ResolvedModel) else resolve_model(model_ref)
    device = device or default_device()
    adapter = ref.path if ref.source == "adapter" else None
    base_path = ref.base.path if adapter is not None and ref.base is not None else ref.path
    record = training_record(adapter) if adapter is not None else {}
    if adapter is not None:
        found = adapter_head(adapter)
        if head is not None and head != found:
            raise NerbenchError(f"--head {head}: the adapter in {adapter} was trained for the {found} head")
        head = found
    head = head or "token"
    if serving not in SERVINGS[:2]:  # "onnx" serves encoders only
        raise NerbenchError(f"serving: must be {' or '.join(repr(x) for x in SERVINGS[:2])}, not {serving!r}")
    deployed = serving == "as-deployed"
    if batch_size is None:
        batch_size = DEPLOYED_LLM_BATCH_SIZE if deployed else LLM_BATCH_SIZE
    quantized = adapter is not None and trained_quantized(adapter) and not deployed
    precision = PROTOCOL.precision(LLM, quantized=quantized, device=device)
    head_labels = tuple(record.get("labels") or labels)
    if head == "token" and adapter is None:
        config = read_config(base_path / "config.json")
        model_labels(config.get("id2label") or {}, f"{base_path / 'config.json'}", labels)
    tokenizer = load_tokenizer(
        adapter if adapter is not None and (adapter / "tokenizer.json").is_file() else base_path, trust_remote_code
    )
    if head == "token" and adapter is None:
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(
            base_path,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
            dtype=base_dtype(device),
        ).to(device)
    else:
        model = load_base(
            base_path,
            head,
            head_labels,
            device=device,
            quantize=precision == NF4,
            pad_token_id=tokenizer.pad_token_id,
            trust_remote_code=trust_remote_code,
        )
    if precision == NF4 and not device.startswith("cuda"):
        # Served as trained: the plain 4-bit CPU kernel, as training used (the packed one repacks the
        # weights in place on its first forward and fails on layers narrower than its block).
        keep_4bit_layers_trainable(model)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
        if deployed:  # as trained, the adapter stays a separate pass beside the base, as the paper ran it
            model = model.merge_and_unload()
    model.eval()
    if head == "generative":
        return GenerativePredictor(model, tokenizer, labels, entity_types, batch_size=batch_size, precision=precision)
    trained = record.get("recipe", {})
    window = int(trained.get("max_length") or LLMRecipe().max_length)
    # Read each word where it was trained to be read; records without the setting are "first".
    word_position = check_word_position(trained.get("word_position", "first"))
    return LLMTokenPredictor(
        model,
        tokenizer,
        labels,
        batch_size=batch_size,
        max_length=window,
        precision=precision,
        word_position=word_position,
    )
