"""`nerbench score GOLD PRED` and `nerbench compare GOLD PRED_A PRED_B`."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from nerbench.cli._util import DataDir, Db, Json, pct
from nerbench.comparison import compare_runs
from nerbench.scorefiles import compare_files, score_files
from nerbench.store import DEFAULT_DB

Bootstrap = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the resampling.")]


def score(
    gold: Annotated[Path, typer.Argument(help="Gold CoNLL file (token<TAB>tag).")],
    pred: Annotated[Path, typer.Argument(help="Predicted CoNLL file with the same tokens.")],
    json_out: Json = False,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
) -> None:
    """Score a prediction file against a gold file (entity level, conlleval reading)."""
    scores = score_files(gold, pred, bootstrap=bootstrap, seed=seed)
    if json_out:
        print(json.dumps(scores.to_dict(), indent=2))
        return
    table = Table(title=f"{pred} against {gold}")
    for column in ("scheme", "P", "R", "F1", "n_pred", "n_gold"):
        table.add_column(column, justify="left" if column == "scheme" else "right")
    for name in ("strict", "exact", "partial", "type"):
        prf = getattr(scores, name)
        table.add_row(name, pct(prf.precision), pct(prf.recall), pct(prf.f1), str(prf.n_pred), str(prf.n_gold))
    for name, prf in scores.per_type.items():
        table.add_row(
            f"strict, type {name}", pct(prf.precision), pct(prf.recall), pct(prf.f1), str(prf.n_pred), str(prf.n_gold)
        )
    for name, prf in scores.per_length.items():
        table.add_row(
            f"strict, {name} tokens", pct(prf.precision), pct(prf.recall), pct(prf.f1), str(prf.n_pred), str(prf.n_gold)
        )
    console = Console()
    console.print(table)
    low, high = scores.ci95["f1"]
    console.print(
        f"strict F1 {pct(scores.strict.f1)} (95% CI {pct(low)}–{pct(high)}, {bootstrap} resamples); "
        f"long-entity F1 {pct(scores.long_f1)}; macro F1 {pct(scores.macro_f1)}; "
        f"ill-formed I- starts: gold {scores.ill_formed['gold']}, predictions {scores.ill_formed['pred']}"
    )


def compare(
    items: Annotated[list[str], typer.Argument(help="RUN_A RUN_B (stored runs), or GOLD PRED_A PRED_B (CoNLL files).")],
    json_out: Json = False,
    resamples: Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap and randomization rounds.")] = 10000,
    seed: Seed = 0,
    long_only: Annotated[bool, typer.Option("--long", help="Compare long-entity F1 (>= 3 tokens).")] = False,
    db: Db = DEFAULT_DB,
    data_dir: DataDir = None,
) -> None:
    """Paired significance of the F1 difference between two predictions of the same test set."""
    if len(items) == 2:
        result, _, _ = compare_runs(
            db, items[0], items[1], data_dir=data_dir, resamples=resamples, seed=seed, long_only=long_only
        )
    elif len(items) == 3:
        gold, pred_a, pred_b = map(Path, items)
        result = compare_files(gold, pred_a, pred_b, resamples=resamples, seed=seed, long_only=long_only)
    else:
        raise typer.BadParameter("give RUN_A RUN_B, or GOLD PRED_A PRED_B")
    if json_out:
        print(json.dumps(result.to_dict(), indent=2))
        return
    low, high = result.ci95
    what = "long-entity F1" if long_only else "strict F1"
    Console().print(
        f"{what}: A {pct(result.f1_a)}, B {pct(result.f1_b)}; A − B = {pct(result.delta)} "
        f"(95% CI {pct(low)} to {pct(high)}); p = {result.p_value:.4g} "
        f"(approximate randomization, {resamples} rounds)"
    )
