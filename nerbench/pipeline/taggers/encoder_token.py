"""Encoders with a token-classification head: full fine-tuning, a word read from its sub-tokens
by the label policy (first sub-token, or the paper's majority vote).

Served three ways (nerbench.record.Serving), each its own run of one checkpoint: as trained (the
protocol's precision: fp32 on CPU, bf16 on GPU); as deployed (bf16 weights, on a CPU only where
native bf16 is detected: `nerbench.models.encoder.cpu_bf16_support`); onnx (the fp32 graph through
ONNX Runtime: `nerbench.models.onnx_encoder`). Before a deployed condition is timed it is checked
against PyTorch fp32 on the dataset's dev split: the ONNX graph must give every word the same tag
(else it is refused); bf16 may differ, and the run's details say how much (`serving_check`: words
tagged differently, dev F1 of both).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nerbench.errors import NerbenchError
from nerbench.pipeline.taggers.base import Tagger, split_hashes
from nerbench.protocol import BF16, FP32
from nerbench.recipes import EncoderRecipe, LabelPolicy
from nerbench.record import SERVINGS
from nerbench.timing import TimingReport


class EncoderToken(Tagger):
    family = "encoder"
    head = "token"
    servings = SERVINGS

    def __init__(self, ref, request, *, fine_tune: bool):
        super().__init__(ref, request, fine_tune=fine_tune)
        if request.serving == "as-deployed" and not request.device.startswith("cuda"):
            from nerbench.models.encoder import cpu_bf16_support

            support = cpu_bf16_support()  # refused before any training, not after it
            if not support.supported:
                raise NerbenchError(
                    f"--serving as-deployed: an encoder is deployed in bf16, but {support.reason}; on this CPU "
                    "serve it as-trained (fp32) or through onnx"
                )

    @property
    def precision(self) -> str:
        if self.serving == "onnx":
            return FP32
        if self.serving == "as-deployed":
            return BF16
        return super().precision

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

        source = folder or self.ref.path
        common: dict[str, Any] = {
            "device": self.request.device,
            "label_policy": self.label_policy,
            "trust_remote_code": self.request.trust_remote_code,
        }
        if self.serving == "as-trained":
            return EncoderPredictor.load(source, info.labels, **common)
        dev = self._dev(info)
        tokens = [s.tokens for s in dev.sentences]
        if self.serving == "onnx":
            from nerbench.models.onnx_encoder import OnnxEncoderPredictor

            onnx = OnnxEncoderPredictor.load(source, info.labels, verify_on=tokens, **common)
            assert onnx.check_tags is not None and onnx.serving_check is not None
            onnx.serving_check |= {"split": "dev", "dev_sha256": dev.sha256} | _dev_f1(
                dev, info, onnx.check_tags, ("pytorch_fp32", "onnx")
            )
            onnx.check_tags = None
            return onnx
        return _bf16_checked(source, info, dev, tokens, common)

    def _dev(self, info):
        from nerbench.datasets import load_split

        return load_split(info.name, "dev", self.request.data_dir, allow_modified=self.request.allow_modified)

    def pass_details(self, timed, predictor, tokens, timing: TimingReport) -> tuple[TimingReport, dict]:
        timing, details = super().pass_details(timed, predictor, tokens, timing)
        check = getattr(predictor, "serving_check", None)
        if check is not None:
            details["serving_check"] = check
        return timing, details


def _dev_f1(dev, info, tags: tuple[list[list[str]], list[list[str]]], names: tuple[str, str]) -> dict[str, Any]:
    """Strict micro F1 of both predictions of the dev split, and how many words they tag differently."""
    from nerbench import scoring

    gold = [list(s.tags) for s in dev.sentences]
    f1 = {name: scoring.score(gold, t, types=info.entity_types, bootstrap=0).strict.f1 for name, t in zip(names, tags)}
    changed = sum(a != b for x, y in zip(*tags) for a, b in zip(x, y))
    return {"tags_changed": changed, "dev_f1": f1}


def _bf16_checked(source, info, dev, tokens, common: dict[str, Any]):
    """The bf16 predictor, after fp32 and bf16 have both tagged the dev split (its details say how they differ)."""
    import torch

    from nerbench.models.encoder import EncoderPredictor, cpu_bf16_support
    from nerbench.models.predictor import predict_all

    reference = EncoderPredictor.load(source, info.labels, dtype=torch.float32, **common)
    expected = predict_all(reference, tokens)
    del reference
    if str(common["device"]).startswith("cuda"):
        torch.cuda.empty_cache()
    predictor = EncoderPredictor.load(source, info.labels, dtype=torch.bfloat16, **common)
    got = predict_all(predictor, tokens)
    predictor.stats = type(predictor.stats)()  # the check pass is not the timed pass
    device = str(common["device"])
    predictor.serving_check = {
        "reference": "pytorch fp32",
        "candidate": "pytorch bf16",
        "split": "dev",
        "dev_sha256": dev.sha256,
        "sentences": len(tokens),
        "words": sum(len(t) for t in tokens),
        "bf16_support": "cuda" if device.startswith("cuda") else cpu_bf16_support().reason,
    } | _dev_f1(dev, info, (expected, got), ("fp32", "bf16"))
    return predictor
