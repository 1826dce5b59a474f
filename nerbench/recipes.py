"""The fine-tuning recipes: plain data, readable without torch (the run record holds one).

A recipe is a discriminated union on `kind`, so each family adds its own without touching the other.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

_FROZEN = ConfigDict(frozen=True, extra="forbid")

LabelPolicy = Literal["first", "majority"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class EncoderRecipe(BaseModel):
    """The paper's encoder recipe: full fine-tuning, AdamW, linear warm-up then linear decay.

    `weight_decay` is 0.01 because the paper's code used torch's AdamW defaults (eps set to 1e-8).
    `label_policy` "first" labels a word by its first sub-token (nerbench's default); "majority"
    is the paper's: every sub-token trained with the word's tag, majority vote per word.
    """

    model_config = _FROZEN

    kind: Literal["encoder-full-finetune"] = "encoder-full-finetune"
    optimizer: Literal["adamw"] = "adamw"
    learning_rate: float = Field(2e-5, gt=0)
    adam_epsilon: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(8, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1)
    early_stopping_metric: Literal["dev_strict_f1"] = "dev_strict_f1"
    max_length: int = Field(512, ge=8)
    label_policy: LabelPolicy = "first"


LlmHead = Literal["token", "generative"]
Quantization = Literal["none", "nf4"]
# Where the LLM token head reads each word (see LLMRecipe.word_position).
WordPosition = Literal["first", "last", "sentence-twice"]
WORD_POSITIONS: tuple[WordPosition, ...] = ("first", "last", "sentence-twice")


class LLMRecipe(BaseModel):
    """The paper's decoder recipe: QLoRA (decoders/src/model_prepare.py and main.py of its code).

    nf4 base weights with double quantization and bf16 compute, LoRA r=128 / alpha=256 /
    dropout 0.05 on every attention and MLP projection, lr 4e-5 with a linear schedule after a 10%
    warm-up, batches of 4 with 4 accumulation steps, paged 8-bit AdamW, up to 20 epochs, early
    stopping (patience 3) on dev strict F1. The paper's generative runs also put LoRA on
    `lm_head` and computed the loss over the whole padded sequence; nerbench adapts the
    projections only and puts the loss on the answer tokens (prompt tokens are given, not learnt).

    `quantization` applies on CUDA. On CPU, where 4-bit brings no gain, training runs plain LoRA on
    fp32 weights unless nf4 is asked for explicitly, and the training record says which.
    `cpu_optimizer` replaces the paged 8-bit AdamW (a CUDA optimizer) on CPU.
    `max_length` is the token-classification window in sub-tokens (longer sentences get
    overlapping windows, as for encoders).

    `word_position` is where the token head reads (and is trained on) each word, under causal
    attention: "first" its first sub-token, which has seen neither the rest of the word nor any
    later word (every run before this setting existed was "first"); "last" its last sub-token,
    which has read the whole word; "sentence-twice" the window's words are fed twice, separated
    by a newline, and each word is read at its last sub-token in the second copy, which has seen
    the whole sentence (each copy gets half the window). "first" is left out of the serialised
    recipe, so the ids of runs recorded before the setting existed do not change.
    """

    model_config = _FROZEN

    kind: Literal["llm-qlora"] = "llm-qlora"
    head: LlmHead = "token"
    quantization: Quantization = "nf4"
    double_quantization: bool = True
    compute_dtype: Literal["bf16"] = "bf16"
    lora_r: int = Field(128, ge=1)
    lora_alpha: int = Field(256, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: tuple[str, ...] = (
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    )
    optimizer: Literal["paged_adamw_8bit"] = "paged_adamw_8bit"
    cpu_optimizer: Literal["adamw"] = "adamw"
    learning_rate: float = Field(4e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    max_epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1)
    early_stopping_metric: Literal["dev_strict_f1"] = "dev_strict_f1"
    max_length: int = Field(512, ge=8)
    label_policy: Literal["first"] = "first"
    word_position: WordPosition = "first"

    @model_serializer(mode="wrap")
    def _omit_first_word_position(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if self.word_position == "first":  # what every run meant before the setting existed
            data.pop("word_position", None)
        return data


Recipe = Annotated[EncoderRecipe | LLMRecipe, Field(discriminator="kind")]

FAMILY_OF_RECIPE = {"encoder-full-finetune": "encoder", "llm-qlora": "llm"}
