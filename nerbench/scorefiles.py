"""Scoring of prediction files against gold files (what `nerbench score` and `compare` run)."""

from __future__ import annotations

from pathlib import Path

from nerbench import scoring
from nerbench.conll import Sentence, read_conll
from nerbench.errors import NerbenchError


def predicted_tags(gold: list[Sentence], pred: list[Sentence], gold_path: Path, pred_path: Path) -> list[list[str]]:
    """The predicted tags, after checking PRED carries exactly GOLD's tokens, sentence by sentence."""
    if len(pred) != len(gold):
        raise NerbenchError(f"{pred_path}: {len(pred)} sentences, but {gold_path} has {len(gold)}")
    for i, (g, p) in enumerate(zip(gold, pred)):
        if g.tokens == p.tokens:
            continue
        for j, (gt, pt) in enumerate(zip(g.tokens, p.tokens)):
            if gt != pt:
                raise NerbenchError(
                    f"{pred_path}:{p.line + j}: sentence {i + 1}, token {j + 1} is {pt!r}, "
                    f"but {gold_path}:{g.line + j} has {gt!r}"
                )
        raise NerbenchError(
            f"{pred_path}:{p.line}: sentence {i + 1} has {len(p.tokens)} tokens, "
            f"but {gold_path}:{g.line} has {len(g.tokens)}"
        )
    return [list(s.tags) for s in pred]


def score_files(
    gold_path: Path,
    pred_path: Path,
    *,
    bootstrap: int = scoring.BOOTSTRAP_RESAMPLES,
    seed: int = scoring.BOOTSTRAP_SEED,
) -> scoring.Scores:
    gold = read_conll(gold_path)
    tags = predicted_tags(gold, read_conll(pred_path), gold_path, pred_path)
    return scoring.score([list(s.tags) for s in gold], tags, bootstrap=bootstrap, seed=seed)


def compare_files(
    gold_path: Path, pred_a: Path, pred_b: Path, *, resamples: int = 10000, seed: int = 0, long_only: bool = False
) -> scoring.Comparison:
    gold = read_conll(gold_path)
    tags_a = predicted_tags(gold, read_conll(pred_a), gold_path, pred_a)
    tags_b = predicted_tags(gold, read_conll(pred_b), gold_path, pred_b)
    return scoring.compare(
        [list(s.tags) for s in gold], tags_a, tags_b, resamples=resamples, seed=seed, long_only=long_only
    )
