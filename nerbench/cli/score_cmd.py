"""`nerbench score GOLD PRED` and `nerbench compare GOLD PRED_A PRED_B`.

Scoring files needs the CoNLL reader, the registry's sidecars and the scorer only: the store
(duckdb) and the comparison of stored runs load when `compare` is given run ids, rich (through
nerbench.cli._util) when a table or a line is printed, so --json imports none of it
(tests/test_cli_lazy.py checks what `score --json` and `compare --json` import).
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

# The scorer does no linear algebra, yet numpy starts OpenBLAS's worker threads as it loads, and on
# a small machine they only spin beside a process this short. So where this command is the first to
# load numpy (a `nerbench score` or `compare` process), numpy gets one thread, unless the user chose.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer  # noqa: E402

from nerbench.cli._options import DataDir, Db, Json  # noqa: E402
from nerbench.scorefiles import compare_files, score_files  # noqa: E402

# nerbench.store.DEFAULT_DB, named here without importing the store (tests/test_cli_lazy.py keeps them equal).
DEFAULT_DB = Path("nerbench.duckdb")

Bootstrap = Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the resampling.")]
Docs = Annotated[
    Path | None,
    typer.Option(
        "--docs",
        help="Document id of each gold sentence, one a line (default: GOLD's sidecar <stem>.docs beside it, if any).",
        show_default=False,
    ),
]


def _units(count: int | str, unit: int | str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def score(
    gold: Annotated[Path, typer.Argument(help="Gold CoNLL file (token<TAB>tag).")],
    pred: Annotated[Path, typer.Argument(help="Predicted CoNLL file with the same tokens.")],
    json_out: Json = False,
    bootstrap: Bootstrap = 1000,
    seed: Seed = 0,
    docs: Docs = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="The registered dataset GOLD is a split of: a tag outside its labels, in either file, is refused "
            "(with its file and line) instead of counting as an entity type of its own.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score a prediction file against a gold file (entity level, conlleval reading); scores are
    fractions (0-1).

    The 95% intervals resample documents when GOLD has a document sidecar (<stem>.docs beside it,
    or --docs FILE), sentences otherwise.
    """
    scores = score_files(gold, pred, bootstrap=bootstrap, seed=seed, docs=docs, dataset=dataset)
    if json_out:
        print(json.dumps(scores.to_dict(), indent=2))
        return
    from rich.table import Table

    from nerbench.cli._util import cell, frac, line, plain_console

    # File names and the gold file's entity types are file-derived text: escaped cells, no markup.
    table = Table(title=cell(f"{pred} against {gold}", limit=None))
    for column in ("scheme", "P", "R", "F1", "n_pred", "n_gold"):
        table.add_column(column, justify="left" if column == "scheme" else "right")
    rows = [(name, getattr(scores, name)) for name in ("strict", "exact", "partial", "type")]
    rows += [(f"strict, type {name}", prf) for name, prf in scores.per_type.items()]
    rows += [(f"strict, {name} tokens", prf) for name, prf in scores.per_length.items()]
    for name, prf in rows:
        values = (name, frac(prf.precision), frac(prf.recall), frac(prf.f1), str(prf.n_pred), str(prf.n_gold))
        table.add_row(*(cell(value) for value in values))
    console = plain_console()
    console.print(table)
    low, high = scores.ci95["f1"]
    over = _units(scores.bootstrap["units"], scores.bootstrap["unit"])
    console.print(
        line(
            f"strict F1 {frac(scores.strict.f1)} (95% CI {frac(low)}–{frac(high)}, {bootstrap} resamples of {over}); "
            f"long-entity F1 {frac(scores.long_f1)}; macro F1 {frac(scores.macro_f1)}; "
            f"ill-formed I- starts: gold {scores.ill_formed['gold']}, predictions {scores.ill_formed['pred']}"
        ),
        soft_wrap=True,
    )


def compare(
    items: Annotated[
        list[str],
        typer.Argument(
            help="RUN_A RUN_B (stored runs; each may be a comma-separated list of the seed runs of one model, "
            "e.g. a1,a2,a3 b1,b2), or GOLD PRED_A PRED_B (CoNLL files)."
        ),
    ],
    json_out: Json = False,
    resamples: Annotated[int, typer.Option("--resamples", min=1, help="Bootstrap and randomization rounds.")] = 10000,
    seed: Seed = 0,
    long_only: Annotated[bool, typer.Option("--long", help="Compare long-entity F1 (>= 3 tokens).")] = False,
    db: Db = DEFAULT_DB,
    data_dir: DataDir = None,
    docs: Docs = None,
) -> None:
    """Paired significance of the F1 difference between two predictions of the same test set
    (scores and their difference as fractions, 0-1).

    Stored runs are compared over their test split's documents where the split has a sidecar;
    several runs a side (seeds) are pooled. GOLD PRED_A PRED_B resample and swap documents when
    GOLD has a document sidecar (<stem>.docs beside it, or --docs FILE), sentences otherwise.
    """
    if len(items) == 2:
        if docs is not None:
            raise typer.BadParameter("--docs is for GOLD PRED_A PRED_B; stored runs use their split's sidecar")
        from nerbench.comparison import compare_runs, side_names, track_warning, tracks_of

        runs_a, runs_b = ([run.strip() for run in item.split(",")] for item in items)
        result, row_a, row_b = compare_runs(
            db, runs_a, runs_b, data_dir=data_dir, resamples=resamples, seed=seed, long_only=long_only
        )
        tracks_a, tracks_b = tracks_of(db, runs_a), tracks_of(db, runs_b)
        names = side_names(row_a, row_b, tracks_a, tracks_b)
        warning = track_warning(tracks_a, tracks_b, names)
        tracks = {"A": sorted({t.label for t in tracks_a}), "B": sorted({t.label for t in tracks_b})}
        # (name, F1, what follows the F1) of each side; the F1 is formatted where it is printed.
        sides = [
            (
                name,
                f1,
                f"{f' ({len(runs)} seed runs pooled)' if len(runs) > 1 else ''} "
                f"[{'; '.join(sorted({t.label for t in t_side}))}]",
            )
            for name, f1, runs, t_side in (
                (names[0], result.f1_a, runs_a, tracks_a),
                (names[1], result.f1_b, runs_b, tracks_b),
            )
        ]
        where = f" on {row_a['dataset']} ({row_a['split']})"
    elif len(items) == 3:
        gold, pred_a, pred_b = map(Path, items)
        result = compare_files(gold, pred_a, pred_b, resamples=resamples, seed=seed, long_only=long_only, docs=docs)
        warning, tracks = None, None
        names = (str(pred_a), str(pred_b))
        sides = [(names[0], result.f1_a, ""), (names[1], result.f1_b, "")]
        where = f" against {gold}"
    else:
        raise typer.BadParameter("give RUN_A RUN_B, or GOLD PRED_A PRED_B")
    if warning:
        from nerbench.cli._util import line, plain_console

        # It names the runs' tracks, stored text: escaped.
        plain_console(stderr=True).print(line((warning, "yellow")), soft_wrap=True)
    if json_out:
        names_json = {"A": names[0], "B": names[1]}
        print(
            json.dumps(
                result.to_dict() | {"names": names_json} | ({"tracks": tracks, "warning": warning} if tracks else {}),
                indent=2,
            )
        )
        return
    from nerbench.cli._util import frac, line, plain_console

    low, high = result.ci95
    what = "long-entity F1" if long_only else "strict F1"
    console = plain_console()
    # Model ids, dataset names and track labels are stored text, file names come from the user: escaped lines.
    console.print(line(f"{what}{where}:"), soft_wrap=True)
    for name, f1, rest in sides:
        console.print(line(f"  {name}: {frac(f1)}{rest}"), soft_wrap=True)
    console.print(
        line(
            f"  difference {names[0]} − {names[1]}: {frac(result.delta)} "
            f"(95% CI {frac(low)} to {frac(high)}); p {result.p_text} "
            f"(approximate randomization over {_units(result.units, result.unit)}, {resamples} rounds)"
            + (f"; seeds: {result.seeds_a} vs {result.seeds_b}" if max(result.seeds_a, result.seeds_b) > 1 else "")
        ),
        soft_wrap=True,
    )
