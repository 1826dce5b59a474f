"""Encoders with a token-classification head: full fine-tuning, a word read from its sub-tokens
by the label policy (first sub-token, or the paper's majority vote)."""

from __future__ import annotations

from pathlib import Path

from nerbench.errors import NerbenchError
from nerbench.pipeline.taggers.base import Tagger, split_hashes
from nerbench.recipes import EncoderRecipe, LabelPolicy


class EncoderToken(Tagger):
    family = "encoder"
    head = "token"

    def __init__(self, ref, request, *, fine_tune: bool):
        super().__init__(ref, request, fine_tune=fine_tune)
        if request.serving != "as-trained":
            raise NerbenchError(
                f"--serving {request.serving}: applies to LLMs (adapter merged into a 16-bit base); an encoder "
                "is served as it was trained"
            )

    @property
    def recipe(self) -> EncoderRecipe:
        recipe = self.ref.meta.recipe if self.ref.meta is not None else EncoderRecipe()
        if self.request.label_policy is not None:
            from nerbench.models.training import checked_recipe

            recipe = checked_recipe(recipe, {"label_policy": self.request.label_policy})
        return recipe

    @property
    def label_policy(self) -> LabelPolicy:
        return self.recipe.label_policy

    def train(self, folder, budget, seed, info, train, dev, progress):
        from nerbench.models.training import train_encoder

        return train_encoder(
            self.ref,
            train.sentences,
            budget.dev_slice(dev.sentences),
            info.labels,
            self.recipe,
            folder,
            epochs=budget.epochs,
            lr=budget.learning_rate,
            batch_size=budget.batch_size,
            max_train_sentences=budget.train_sentence_count(train.sentences),
            seed=seed,
            progress=progress,
            dataset=info.name,
            data_sha256=split_hashes(train, dev),
            device=self.request.device,
            overwrite=True,
            trust_remote_code=self.request.trust_remote_code,
        )

    def load_predictor(self, folder: Path | None, info):
        from nerbench.models.encoder import EncoderPredictor

        return EncoderPredictor.load(
            folder or self.ref.path,
            info.labels,
            device=self.request.device,
            label_policy=self.label_policy,
            trust_remote_code=self.request.trust_remote_code,
        )
