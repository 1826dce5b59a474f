"""Decoders writing the paper's `token:TAG` lines (greedy decoding), parsed back onto the words.

The timed pass is wrapped so that its generation statistics and parse counts cover exactly one
pass over the split (the last timed one).
"""

from __future__ import annotations

import time

from nerbench.pipeline.taggers.decoder import DecoderTagger
from nerbench.record import Decoding

_STORED_STATS = (
    "sentences",
    "generated_tokens",
    "stopped_at_limit",
    "max_new_tokens",
    "ignored_generation_defaults",
    "parse",
)


class DecoderGenerative(DecoderTagger):
    head = "generative"

    def decoding(self) -> Decoding:
        from nerbench.models.generative import BUDGET_EXTRA, BUDGET_RATIO

        return Decoding(
            max_new_tokens=f"per sentence: ceil({BUDGET_RATIO} x longest single-label answer in tokens) "
            f"+ {BUDGET_EXTRA}",
            prompt="the paper's Alpaca-style prompt, token:TAG lines",
        )

    def timed(self, predictor):
        return OnePassStats(predictor)

    def pass_details(self, timed, predictor, tokens, timing):
        stats = timed.generation_stats()
        return timing.with_generation(stats), {"generation": {k: stats[k] for k in _STORED_STATS}}


class OnePassStats:
    """A generative predictor whose statistics cover exactly the last pass over the split.

    run_timed asks for the batches once before its warm-up and once at the start of every timed
    pass, so clearing the statistics there leaves those of the last timed pass. Each sentence's
    latency is the wall time of the batch it was generated in (a batch ends when its longest
    answer does).
    """

    def __init__(self, predictor):
        self.inner = predictor
        self.labels, self.batch_size, self.device = predictor.labels, predictor.batch_size, predictor.device
        self.model = predictor.model
        self.model_clock = predictor.model_clock
        self.precision = getattr(predictor, "precision", None)
        self.latencies: list[float] = []

    def batches(self, sentences):
        self.inner.reset_stats()
        self.latencies = []
        return self.inner.batches(sentences)

    def predict_batch(self, sentences):
        self.inner.synchronize()
        start = time.perf_counter()
        tags = self.inner.predict_batch(sentences)
        self.inner.synchronize()
        self.latencies.extend([time.perf_counter() - start] * len(sentences))
        return tags

    def synchronize(self) -> None:
        self.inner.synchronize()

    def generation_stats(self) -> dict:
        import numpy as np

        stats = self.inner.generation_stats()
        generated = np.array(stats["generated_tokens_per_sentence"] or [0], dtype=float)
        latency = np.array(self.latencies or [0.0], dtype=float)
        return stats | {
            "generated_tokens_per_sentence_mean": float(generated.mean()),
            "sentence_latency_s": list(self.latencies),
            "sentence_latency_p50_s": float(np.percentile(latency, 50)),
            "sentence_latency_p95_s": float(np.percentile(latency, 95)),
        }
