"""Decoders with a token-classification head and (Q)LoRA adapters: one forward pass per window,
the encoders' word alignment, each word labelled at the position its recipe's `word_position`
names (its first sub-token, its last, or its last in a second copy of the window)."""

from dataclasses import asdict
from typing import Any

from nerbench.pipeline.taggers.decoder import DecoderTagger


class DecoderToken(DecoderTagger):
    head = "token"

    def pass_details(self, timed: Any, predictor: Any, tokens: list, timing) -> tuple[Any, dict]:
        """The windows the head really ran (two copies per window for "sentence-twice")."""
        from nerbench.models.encoder import AlignmentStats

        if not hasattr(predictor, "encode"):
            return super().pass_details(timed, predictor, tokens, timing)
        stats = AlignmentStats()
        stats.add(predictor.encode(tokens))
        return timing, {"alignment": asdict(stats)}
