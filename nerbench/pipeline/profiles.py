"""The training budgets a registry model is fine-tuned with before evaluation.

"paper" is the recipe itself (up to 20 epochs, early stopping on dev strict F1). "quick" is a
CPU-sized budget for the offline defaults: one epoch on the first sentences of train (at most a
number of sentences and of word tokens, whichever ends first — training time follows tokens, and
BioRED's abstract-long sentences have four times the tokens of the others), dev F1 on the first
sentences of dev, and a higher learning rate — one short epoch at the recipe's 2e-5 left MiniLM
tagging everything O (dev strict F1 0.0 on NCBI-disease after 1,500 sentences).
"""

from __future__ import annotations

from nerbench.errors import NerbenchError
from nerbench.record import Budget

PROFILES = {
    "paper": Budget(name="paper"),
    # lr chosen on the quick dev slices (MiniLM-L6, seed 0; test never looked at): mean dev strict
    # F1 over the five default sets 0.424 at 1e-4, 0.489 at 4e-4 (JNLPBA 0.256 -> 0.461, BC5CDR
    # 0.618 -> 0.691, NCBI-disease 0.683 -> 0.745, ChemProt 0.355 -> 0.354, BioRED 0.208 -> 0.195).
    "quick": Budget(
        name="quick",
        epochs=1,
        learning_rate=4e-4,
        max_train_sentences=2000,
        max_train_tokens=40_000,
        max_dev_sentences=300,
    ),
}

# The quick budget for LLMs, sized for a CPU. The token head gets the encoders' quick budget (same
# train and dev sentences, one epoch), so the two families compare on equal data; SmolLM2-135M LoRA
# (r=128) trains at ~2.3 sentences/s on 2 cores, ~11 minutes per dataset. A generative dev pass
# runs at well under one sentence/s, so the generative budget is smaller. LoRA takes 2e-4 (5x the
# recipe's 4e-5) and no accumulation, so one short epoch has enough optimizer steps to move.
LLM_PROFILES = {
    ("quick", "token"): Budget(
        name="quick",
        epochs=1,
        learning_rate=2e-4,
        max_train_sentences=2000,
        max_train_tokens=40_000,
        max_dev_sentences=300,
        gradient_accumulation_steps=1,
    ),
    ("quick", "generative"): Budget(
        name="quick",
        epochs=1,
        learning_rate=2e-4,
        max_train_sentences=300,
        max_dev_sentences=20,
        gradient_accumulation_steps=1,
    ),
}


def check_profile(name: str) -> None:
    if name not in PROFILES:
        raise NerbenchError(f"--profile: unknown profile {name!r} (known: {', '.join(PROFILES)})")


def profile_for(name: str, family: str, head: str) -> Budget:
    check_profile(name)
    if family == "llm" and (name, head) in LLM_PROFILES:
        return LLM_PROFILES[(name, head)]
    return PROFILES[name]
