"""Batching helpers shared by every predictor (encoders here; LLM token classifiers and generators
reuse them). The `Predictor` protocol they serve is defined by the timing layer, which drives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from nerbench.timing import Predictor


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (longest first, stable), cut into groups of `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def predict_all(predictor: Predictor, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    """Tags for every sentence, predicted batch by batch, returned in the input order."""
    out: list[list[str] | None] = [None] * len(sentences)
    for group in predictor.batches(sentences):
        for i, tags in zip(group, predictor.predict_batch([sentences[i] for i in group]), strict=True):
            out[i] = tags
    missing = [i for i, tags in enumerate(out) if tags is None]
    if missing:
        raise RuntimeError(f"predictor batches left out sentences {missing[:5]}")
    return out  # type: ignore[return-value]
