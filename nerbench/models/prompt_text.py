"""The generative head's text: the paper's prompt for a sentence and the answer it is trained to write.

Plain strings, no torch: the generative predictor and its training build their sequences from them,
and the cell plan counts their words without loading a model (nerbench.pipeline.compute_bound).
"""

from __future__ import annotations

from collections.abc import Sequence

_PREAMBLE = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request."
)
_INSTRUCTION = (
    "Your task is to identify entities within the text and apply the BIO labeling scheme. "
    "Use the following labels to categorize each entity: {types}."
)


def build_prompt(tokens: Sequence[str], entity_types: Sequence[str]) -> str:
    """The paper's prompt for one sentence, ending where the answer lines begin."""
    return (
        f"{_PREAMBLE}\n\n### Instruction:\n{_INSTRUCTION.format(types=', '.join(entity_types))}\n\n"
        f"### Input:\n{' '.join(tokens)}\n\n### Response:\n"
    )


def target_text(tokens: Sequence[str], tags: Sequence[str]) -> str:
    """The answer the model is trained to write: `token:TAG` lines, the last one also ended by a newline."""
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    return "".join(f"{token}:{tag}\n" for token, tag in zip(tokens, tags))
