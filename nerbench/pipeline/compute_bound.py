"""A cell's arithmetic, and the GPU time it would take at the reference GPU's peak.

Where no GPU run of a model is stored, the cell plan has no measured speed to estimate from; it
gives this figure instead, named for what it is: the floating-point operations the cell does,
divided by the reference GPU's dense bf16 peak. Real runs reach a fraction of the peak (memory
traffic, kernel launches, token-by-token decoding), so the real time is longer; a stored GPU run of
the model gives the measured estimate in its place.

FLOPs per token processed, with N the model's parameters (Kaplan et al. 2020, "Scaling Laws for
Neural Language Models", section 2.1: a forward pass is about 2N, a training step about 6N):

- a forward pass (dev scoring, timed test passes, generation with a KV cache): 2N;
- full fine-tuning (the encoders): 6N: the forward 2N, and the backward 4N (gradients of the
  activations and of every weight);
- QLoRA (the LLMs): 4N: the base is frozen, so the backward computes the activations' gradients
  (2N) but no weight gradient of the base; the adapters' own share is left out.

Tokens are counted as whitespace-separated words: a sub-word tokenizer gives each word at least one
token, so the count, and the figure, err low. A generative cell's tokens are its prompts (the
paper's instruction and the sentence) and its answers (one `word:TAG` line per word), as
nerbench.models.prompt_text writes them. The epochs are the budget's, else the recipe's maximum
(early stopping may end training sooner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nerbench.models.prompt_text import build_prompt, target_text
from nerbench.protocol import PROTOCOL

# NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column: BF16 Tensor Core 1,979 teraFLOPS "with
# sparsity", and "specifications are one-half lower without sparsity": 989.5 TFLOP/s dense.
REFERENCE_PEAK_FLOPS = 989.5e12
REFERENCE_PEAK_SOURCE = "the H100 SXM's dense bf16 peak, 989.5 TFLOP/s (NVIDIA's H100 datasheet)"

FORWARD_PER_TOKEN = 2  # x parameters
TRAIN_PER_TOKEN = {"encoder-full-finetune": 6, "llm-qlora": 4}  # x parameters, by recipe kind


@dataclass(frozen=True)
class ComputeBound:
    flops: float
    train_tokens: int  # per epoch
    forward_tokens: int  # dev scoring over all epochs, and the timed test passes

    @property
    def seconds(self) -> float:
        """The cell's time on one reference GPU running at its bf16 peak throughout."""
        return self.flops / REFERENCE_PEAK_FLOPS


def _words(sentences: Sequence[Any], head: str, entity_types: Sequence[str], *, answers: bool) -> int:
    """Tokens the model processes for these sentences, counted as words (each word >= one token)."""
    if head != "generative":
        return sum(len(s.tokens) for s in sentences)
    total = 0
    for s in sentences:
        total += len(build_prompt(s.tokens, entity_types).split())
        # The answer is written (training) or generated (prediction): one `word:TAG` line per word.
        total += len(target_text(s.tokens, s.tags).split()) if answers else len(s.tokens)
    return total


def compute_bound(
    *,
    parameters: int,
    recipe_kind: str | None,
    head: str,
    entity_types: Sequence[str],
    train: Sequence[Any],
    dev: Sequence[Any],
    test: Sequence[Any],
    epochs: int,
    test_passes: int = PROTOCOL.repeats,
) -> ComputeBound:
    """The FLOPs of training on `train` for `epochs` (scoring `dev` after each) and of the timed test
    passes; with no recipe (a model evaluated as it is) the test passes only."""
    forward = 0
    train_tokens = 0
    flops = 0.0
    if recipe_kind is not None:
        train_tokens = _words(train, head, entity_types, answers=True)
        forward += epochs * _words(dev, head, entity_types, answers=False)
        flops += TRAIN_PER_TOKEN[recipe_kind] * parameters * epochs * train_tokens
    forward += test_passes * _words(test, head, entity_types, answers=False)
    flops += FORWARD_PER_TOKEN * parameters * forward
    return ComputeBound(flops, train_tokens, forward)
