"""Tiny random-weight Llama and Mistral causal LMs with small trained BPE tokenizers.

For plumbing tests only (never for scores). The tokenizers mimic the two real families: Llama-3 /
SmolLM2 use byte-level BPE (a leading space marks a word start, no BOS from SmolLM2), Mistral uses
SentencePiece-style BPE ("▁" word marker, BOS added). Both are trained in a fraction of a second on
the generative prompt and answer format, so prompts and answers tokenize into few tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
)

from nerbench.models.generative import build_prompt, target_text

LABELS = ("O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease")
ENTITY_TYPES = ("Chemical", "Disease")
SENTENCES = [
    (
        ["Naloxone", "reverses", "the", "antihypertensive", "effect", "of", "clonidine", "."],
        ["B-Chemical", "O", "O", "O", "O", "O", "B-Chemical", "O"],
    ),
    (
        ["Lithium", "-", "induced", "nephrogenic", "diabetes", "insipidus", "."],
        ["B-Chemical", "O", "O", "B-Disease", "I-Disease", "I-Disease", "O"],
    ),
    (
        ["Acute", "renal", "failure", "after", "cisplatin", ":", "a", "case", "."],
        ["B-Disease", "I-Disease", "I-Disease", "O", "B-Chemical", "O", "O", "O", "O"],
    ),
    (["Hypotension", "."], ["B-Disease", "O"]),
]
SPECIALS = ["<unk>", "<s>", "</s>"]


def _corpus() -> list[str]:
    return [build_prompt(t, ENTITY_TYPES) + target_text(t, g) for t, g in SENTENCES]


def _wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>"
    )


def byte_level_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Llama-3 / SmolLM2 style: byte-level BPE, no BOS."""
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    return _wrap(tok)


def sentencepiece_tokenizer(vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Mistral style: "▁" marks spaces, BOS before every sequence, byte fallback for unseen characters."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("\n", behavior="isolated")
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + 256, special_tokens=SPECIALS + byte_tokens, show_progress=False
    )
    tok.train_from_iterator(_corpus(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return _wrap(tok)


def _dims(tokenizer) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def tiny_llama(seed: int = 0):
    tokenizer = byte_level_tokenizer()
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**_dims(tokenizer))).eval(), tokenizer


def tiny_mistral(seed: int = 0):
    tokenizer = sentencepiece_tokenizer()
    torch.manual_seed(seed)
    return MistralForCausalLM(MistralConfig(**_dims(tokenizer), sliding_window=None)).eval(), tokenizer


def save_tiny(folder, family: str = "llama", seed: int = 0):
    """A checkpoint folder of a tiny random model, marked `nerbench_random_init` so that
    `nerbench eval` refuses to store its scores (tests pass allow_random_init)."""
    model, tokenizer = (tiny_llama if family == "llama" else tiny_mistral)(seed)
    model.config.nerbench_random_init = True
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def train_tiny_adapter(base, out: Path, train, dev, head: str, **settings) -> Path:
    """One epoch of LoRA (r=4, lr 1e-3) on `base` with NCBI-disease's labels, written to `out`: an
    adapter for plumbing tests, never scored. `settings` go to train_llm (word_position, device)."""
    from nerbench.datasets import get_dataset
    from nerbench.models.llm_training import train_llm
    from nerbench.recipes import LLMRecipe

    info = get_dataset("ncbi_disease")
    train_llm(
        base,
        train,
        dev,
        info.labels,
        info.entity_types,
        LLMRecipe(lora_r=4, lora_alpha=8),
        out,
        head=head,
        epochs=1,
        lr=1e-3,
        gradient_accumulation_steps=1,
        **settings,
    )
    return out
