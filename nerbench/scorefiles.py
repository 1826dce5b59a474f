"""Scoring of prediction files against gold files (what `nerbench score` and `compare` run).

The document id of each gold sentence comes from `--docs FILE`, else from the sidecar beside the
gold file (`<stem>.docs`, read by nerbench.conll); with one, the bootstrap and the paired
test resample documents, without one sentences.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from nerbench import scoring
from nerbench.conll import Sentence, load_documents, read_conll, read_documents
from nerbench.errors import NerbenchError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _without_gc(function: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `function` with Python's cyclic garbage collector off. Reading and scoring two files
    makes a few objects per token and frees none until the end: the collector, left on, walks the
    growing heap again and again (a third of the time of `nerbench score`) and finds nothing to
    free. It is back on once the function has returned and its objects are freed (by reference
    counting), so that it does not then walk them all once more."""

    @functools.wraps(function)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if collecting:
                gc.enable()

    return run


def predicted_tags(
    gold: list[Sentence], pred: list[Sentence], gold_path: Path, pred_path: Path
) -> list[tuple[str, ...]]:
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
    return [s.tags for s in pred]


def gold_documents(gold_path: Path, n_sentences: int, docs: Path | None = None) -> tuple[str, ...] | None:
    """The document ids of GOLD's sentences: from `docs` when given, else from a sidecar beside GOLD."""
    if docs is not None:
        return load_documents(docs, n_sentences, gold_path)
    return read_documents(gold_path, n_sentences)


@_without_gc
def score_files(
    gold_path: Path,
    pred_path: Path,
    *,
    bootstrap: int = scoring.BOOTSTRAP_RESAMPLES,
    seed: int = scoring.BOOTSTRAP_SEED,
    docs: Path | None = None,
    dataset: str | None = None,
) -> scoring.Scores:
    """Score PRED against GOLD. With `dataset`, both files may use only that dataset's labels (a
    label outside them is refused with its file and line: it would count as an entity type of its
    own, and halve the macro F1), and per-type results follow the dataset's type order."""
    info = None
    if dataset is not None:
        # The registry (and what it imports) loads only here: files alone are scored without it.
        from nerbench.datasets import check_labels, get_dataset

        info = get_dataset(dataset)
    gold, pred = read_conll(gold_path), read_conll(pred_path)
    if info is not None:
        check_labels(info, gold, gold_path)
        check_labels(info, pred, pred_path)
    tags = predicted_tags(gold, pred, gold_path, pred_path)
    units = gold_documents(gold_path, len(gold), docs)
    types = info.entity_types if info is not None else ()
    return scoring.score([s.tags for s in gold], tags, types=types, bootstrap=bootstrap, seed=seed, units=units)


@_without_gc
def compare_files(
    gold_path: Path,
    pred_a: Path,
    pred_b: Path,
    *,
    resamples: int = 10000,
    seed: int = 0,
    long_only: bool = False,
    docs: Path | None = None,
) -> scoring.Comparison:
    gold = read_conll(gold_path)
    tags_a = predicted_tags(gold, read_conll(pred_a), gold_path, pred_a)
    tags_b = predicted_tags(gold, read_conll(pred_b), gold_path, pred_b)
    units = gold_documents(gold_path, len(gold), docs)
    return scoring.compare(
        [s.tags for s in gold], tags_a, tags_b, resamples=resamples, seed=seed, long_only=long_only, units=units
    )
