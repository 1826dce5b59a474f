"""Decoders with a token-classification head and (Q)LoRA adapters: one forward pass per window,
the encoders' word alignment, a word labelled from its first sub-token."""

from nerbench.pipeline.taggers.decoder import DecoderTagger


class DecoderToken(DecoderTagger):
    head = "token"
