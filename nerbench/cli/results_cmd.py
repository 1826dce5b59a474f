"""`nerbench results`: what the results database holds, one row per run."""

import csv
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nerbench.cli._util import Db, Json, cell, line, wide_console
from nerbench.errors import NerbenchError
from nerbench.safe_text import csv_cell, json_text
from nerbench.store import DEFAULT_DB, Store


def _plain(value):
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else value


def _score(value, low=None, high=None) -> str:
    if value is None:
        return "—"
    text = f"{value:.3f}"
    return f"{text} [{low:.3f}, {high:.3f}]" if low is not None and high is not None else text


# The cost column's unit, in its header: per 1,000 test sentences (the stored cost_usd is per split).
COST = "USD/1k sent."


def _cost(value) -> str:
    return "unknown" if value is None else f"${value:.4g}"


def _short_device(name) -> str:
    """'CPU: AMD EPYC 9B14 (2 threads)' -> 'CPU (2 threads)'; GPU names as they are."""
    if not name:
        return "—"
    if name.startswith("CPU"):
        return "CPU" + (f" ({name.rsplit('(', 1)[1]}" if "(" in name else "")
    return name


def _parse(counts) -> str:
    if not counts or not isinstance(counts, dict):
        return ""
    # A submission's counts are self-reported and may name only some of them.
    return "/".join(str(counts.get(k, "?")) for k in ("missing", "extra", "renamed", "malformed"))


def results(
    db: Db = DEFAULT_DB,
    as_json: Json = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Only runs on this dataset.")] = None,
) -> None:
    """One row per stored run: strict P/R/F1 with 95% CI, long-entity F1, speed, cost, device."""
    if as_json and as_csv:
        raise NerbenchError("--json and --csv: choose one")
    with Store(Path(db), create=False) as store:
        rows = [{k: _plain(v) for k, v in row.items()} for row in store.summary(dataset=dataset)]
    if as_json:
        typer.echo(json_text(rows, indent=2))
        return
    if as_csv:
        for row in rows:
            row["parse"] = json_text(row["parse"], sort_keys=True) if row["parse"] else None
        if rows:
            # Every cell through csv_cell: no spreadsheet formula, no control character.
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({key: csv_cell(value) for key, value in row.items()} for row in rows)
        return
    table = Table(
        title=cell(f"Runs in {db}", limit=None),
        caption="F1 = strict micro F1 (a fraction, 0-1) with its 95% bootstrap CI; long = entities "
        "of >= 3 tokens; sent/s = test sentences per second; USD/1k sent. = inference cost per 1,000 test "
        "sentences, as the site and the README give it (--json and --csv also give cost_usd, for one pass over "
        "the whole test split); token/generative = LLM head; parse = generative output lines missing/extra/renamed/"
        "malformed; ref = reference hardware (one H100 80GB); self = self-reported timing; "
        "P/R and more with --json or --csv",
    )
    has_parse = any(row["parse"] for row in rows)
    columns = ("run", "model", "dataset", "F1 [CI]", "long F1", "sent/s", COST, "device", "marks") + (
        ("parse: miss/extra/renamed/malformed",) if has_parse else ()
    )
    for column in columns:
        # Folded, not cut with an ellipsis: a long id or device name is shown whole.
        table.add_column(column, justify="right" if column in ("sent/s", COST) else "left", overflow="fold")
    for row in rows:
        speed = row["sentences_per_second"]
        marks = (
            [row["family"]]
            + ([row["head"]] if row["family"] == "llm" and row["head"] else [])
            + (["ref"] if row["reference_hardware"] else [])
            + (["self"] if row["self_reported"] else [])
        )
        # Stored text (ids, devices, marks) comes from submissions: every cell is escaped Text.
        cells = (
            row["run_id"],
            row["model_id"],
            row["dataset"],
            _score(row["f1"], row["f1_ci_low"], row["f1_ci_high"]),
            _score(row["long_f1"]),
            "—" if speed is None else f"{speed:,.1f}",
            _cost(row["cost_per_1k_sentences_usd"]),
            _short_device(row["device_name"]),
            " ".join(str(mark) for mark in marks),
            *((_parse(row["parse"]),) if has_parse else ()),
        )
        table.add_row(*(cell(value) for value in cells))
    console = wide_console()
    if not rows:
        console.print(line(f"No runs in {db}" + (f" for dataset {dataset}" if dataset else "") + "."))
        return
    console.print(table)
