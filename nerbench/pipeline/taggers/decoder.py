"""What both decoder heads share: the LoRA / QLoRA recipe, the quantization of the base, and an
adapter folder evaluated as it is (its head, quantization and recipe read from the folder)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from nerbench.errors import NerbenchError
from nerbench.pipeline.taggers.base import Tagger, split_hashes
from nerbench.protocol import DEPLOYED_LLM_BATCH_SIZE
from nerbench.recipes import LLMRecipe
from nerbench.record import Budget, Lora


class DecoderTagger(Tagger):
    family = "llm"

    def __init__(self, ref, request, *, fine_tune: bool):
        super().__init__(ref, request, fine_tune=fine_tune)
        if request.label_policy not in (None, "first"):
            raise NerbenchError("--label-policy: LLM token classifiers label words by their first sub-token")
        if request.quantize is not None and not fine_tune:
            raise NerbenchError("--quantize: applies to training; this model is evaluated as it is")
        if ref.source == "adapter":
            from nerbench.models.llm import adapter_head

            found = adapter_head(ref.path)
            if found != self.head:
                raise NerbenchError(f"--head {self.head}: the adapter {ref.path} was trained for the {found} head")
        asked = self.asked_word_position
        if asked is not None:
            from nerbench.models.llm import check_word_position

            check_word_position(asked)
            if self.head != "token":
                raise NerbenchError(f"--word-position: applies to the token head, not the {self.head} head")
            if not fine_tune and asked != self.recipe.word_position:
                raise NerbenchError(
                    f"--word-position {asked}: this model is evaluated as it is, and reads words at "
                    f"{self.recipe.word_position!r}"
                )

    @property
    def asked_word_position(self) -> str | None:
        """The request's word position for the token head (None: the recipe's)."""
        return self.request.word_position

    @cached_property  # an adapter's is read from its training record: once
    def recipe(self) -> LLMRecipe:
        if self.ref.source == "adapter":
            from nerbench.models.llm import training_record

            dump = training_record(self.ref.path).get("recipe")
            if dump:
                return LLMRecipe.model_validate({k: v for k, v in dump.items() if k in LLMRecipe.model_fields})
        return self.ref.meta.recipe if self.ref.meta is not None else LLMRecipe()

    @property
    def training_quantization(self) -> str:
        from nerbench.models.llm_training import effective_quantization

        return effective_quantization(self.recipe, self.request.quantize, self.request.device)

    @cached_property
    def quantization(self) -> str:
        if self.serving == "as-deployed":
            return "none"  # merged into a 16-bit base
        if self.ref.source == "adapter":
            from nerbench.models.llm import trained_quantized

            return "nf4" if trained_quantized(self.ref.path) else "none"
        return self.training_quantization if self.fine_tune else "none"

    @property
    def label_policy(self) -> str | None:
        """The token head's word position, which the record keeps as its label policy (so "first",
        the only one before word positions existed, leaves older run ids as they were)."""
        if self.head != "token":
            return None
        return self.asked_word_position or self.recipe.word_position

    @property
    def batch_size(self) -> int:
        return DEPLOYED_LLM_BATCH_SIZE if self.serving == "as-deployed" else super().batch_size

    def lora(self) -> Lora | None:
        if self.ref.source != "adapter" and not self.fine_tune:
            return None
        r = self.recipe
        return Lora(r=r.lora_r, alpha=r.lora_alpha, dropout=r.lora_dropout, target_modules=tuple(r.target_modules))

    def recipe_overrides(self, budget: Budget) -> dict[str, Any]:
        # The word position is part of the recipe, hence of the training identity: another one
        # trains another checkpoint, and the run record's recipe says which was used.
        return {
            "gradient_accumulation_steps": budget.gradient_accumulation_steps,
            "head": self.head,
            "word_position": self.asked_word_position,
        }

    def train(self, folder, budget, seed, info, train, dev, progress):
        from nerbench.models.llm_training import train_llm

        return train_llm(
            self.ref,
            train.sentences,
            budget.dev_slice(dev.sentences),
            info.labels,
            info.entity_types,
            self.recipe,
            folder,
            head=self.head,
            word_position=self.asked_word_position,
            quantize=self.training_quantization,
            epochs=budget.epochs,
            lr=budget.learning_rate,
            batch_size=budget.batch_size,
            max_train_sentences=budget.train_sentence_count(train.sentences),
            gradient_accumulation_steps=budget.gradient_accumulation_steps,
            seed=seed,
            progress=progress,
            dataset=info.name,
            data_sha256=split_hashes(train, dev),
            device=self.request.device,
            overwrite=True,
            trust_remote_code=self.request.trust_remote_code,
        )

    def load_predictor(self, folder: Path | None, info):
        from nerbench.models.llm import load_llm_predictor
        from nerbench.models.registry import resolve_model

        model = resolve_model(folder) if folder is not None else self.ref
        return load_llm_predictor(
            model,
            info.labels,
            info.entity_types,
            head=self.head,
            device=self.request.device,
            batch_size=self.batch_size,
            serving=self.serving,
            trust_remote_code=self.request.trust_remote_code,
        )
