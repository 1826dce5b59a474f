"""Tiny random-weight BERTs on MiniLM's real tokenizer, for plumbing tests only (never for scores)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, BertModel

from nerbench.models.registry import resolve_model

NCBI_LABELS = ("O", "B-Disease", "I-Disease")


def minilm_folder() -> Path:
    return resolve_model("minilm-l6").path


def tiny_config(tokenizer, **kw) -> BertConfig:
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        **kw,
    )


def save_tiny_bert(folder: Path, labels: tuple[str, ...] | None = None, seed: int = 0) -> Path:
    """A checkpoint folder: a token classifier when `labels` is given, else a bare encoder."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    torch.manual_seed(seed)
    if labels is None:
        model = BertModel(tiny_config(tokenizer))
    else:
        model = BertForTokenClassification(
            tiny_config(
                tokenizer,
                num_labels=len(labels),
                id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)},
            )
        )
    model.config.nerbench_random_init = True  # `nerbench eval` refuses to store its scores
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
