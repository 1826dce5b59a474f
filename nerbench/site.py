"""The static leaderboard: HTML pages rendered with Jinja (autoescape on) from the results database.

No server, no CDN, no request of any kind: every link is relative, the one stylesheet is copied
beside the pages and the only script is inline, so the site works from file:// and on GitHub
Pages. The output depends only on the store (and the local test splits used for the paired tests),
the nerbench version and the build time the footer states: everything sorted, so a rebuild with the
same build time (`built_at`, or SOURCE_DATE_EPOCH, the reproducible-builds convention) is
byte-identical.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import multiprocessing
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import numpy as np
from markupsafe import Markup, escape

from nerbench import __version__
from nerbench.datasets import DEFAULT_SUITE, LONG_ENTITY_TOKENS, REGISTRY, Split, load_split, statistics
from nerbench.errors import NerbenchError
from nerbench.protocol import PROTOCOL, price_table
from nerbench.safe_text import shown as one_line
from nerbench.scoring import LENGTH_BUCKETS
from nerbench.site_compare import RESAMPLES, SIGNIFICANCE, TrackPage, pages
from nerbench.site_data import Model, Run, StoreData, read_store, score_cells, slug, track_label
from nerbench.site_html import (
    ci,
    dataset_href,
    dataset_row,
    f1ci,
    f3,
    family,
    hardware,
    model_href,
    model_sections,
    overview_row,
    pretty_json,
    pts,
    score_rows,
    seeds,
    sort_key,
    usd,
)
from nerbench.site_runs import (
    budget_cell,
    load_text,
    model_training,
    overview_reproduction,
    parameters,
    parameters_text,
    remembered,
    reproduction_mark,
    training_of,
)
from nerbench.site_svg import Point, chart, pareto

# The templates and the stylesheet ship inside the package (nerbench/site_assets/{templates,static},
# package data in pyproject.toml), so that an installed nerbench builds the site without the repository.
ASSETS = "site_assets"
DEFAULT_OUT = Path("leaderboard") / "_site"
PAPER_RESULTS = "paper_results.json"
MARKER = ".nerbench-site"  # marks a folder the build may replace
PAPER = {
    "title": "Do LLMs Surpass Encoders for Biomedical NER?",
    "authors": "Motasem S. Obeidat, Md Sultan Al Nahian, Ramakanth Kavuluru",
    "venue": "IEEE ICHI 2025; arXiv:2504.00664",
    "url": "https://arxiv.org/abs/2504.00664",
}
RESULT_COLUMNS = (
    "run_id",
    "model_id",
    "family",
    "head",
    "dataset",
    "split",
    "source",
    "self_reported",
    "shown",
    "created_at",
    "dataset_sha256",
    "precision",
    "recall",
    "f1",
    "f1_ci_low",
    "f1_ci_high",
    "long_f1",
    "long_f1_ci_low",
    "long_f1_ci_high",
    "sentences_per_second",
    "cost_per_split_usd",
    "cost_per_1k_sentences_usd",
    "device_name",
    "num_devices",
    "reference_hardware",
    "timed_busy",
    "track",
    "dev_f1",
    "seed",
    "parameters",
    "training_regime",
    "budget_profile",
    "train_sentences",
    "epochs",
    "training_declared",
)
# What each download column holds, in words (the downloads page lists them). Scores are fractions.
COLUMN_NOTES = {
    "run_id": "the run's id (a hash of its record): `nerbench compare RUN_A RUN_B` takes it",
    "model_id": "the model the run is shown under",
    "family": "encoder or llm",
    "head": "token (a tag per word) or generative (the answer generated as text)",
    "dataset": "the dataset's registry name",
    "split": "the split scored (test)",
    "source": "local (run by nerbench here) or submission",
    "self_reported": "true: timing and training come from a submission, not measured by nerbench",
    "shown": "true: the run the site shows for its model and dataset",
    "created_at": "when the run was stored (UTC)",
    "dataset_sha256": "sha256 of the test file scored",
    "sentences_per_second": "test sentences per second (median timed pass)",
    "device_name": "the device the run was timed on",
    "num_devices": "how many of them",
    "reference_hardware": "true: timed by nerbench on the reference hardware",
    "timed_busy": "true: timed on a busy machine (other processes used more than a quarter of its CPUs during a "
    "timed pass), so its speed and cost understate the hardware; false: not busy; empty: not measured (runs "
    "stored before nerbench measured it, submissions)",
    "track": "the track: training budget, who timed it, hardware class",
    "dev_f1": "strict F1 on the dev split, a fraction (0-1); models are chosen on it",
    "seed": "the training seed",
    "long_f1_ci_low": "95% bootstrap interval of long_f1, lower bound",
    "long_f1_ci_high": "95% bootstrap interval of long_f1, upper bound",
    "precision": "strict precision, a fraction (0-1)",
    "recall": "strict recall, a fraction (0-1)",
    "f1": "strict F1 (the primary score), a fraction (0-1)",
    "f1_ci_low": "95% bootstrap interval of f1, lower bound",
    "f1_ci_high": "95% bootstrap interval of f1, upper bound",
    "long_f1": "strict F1 on entities of 3+ tokens, a fraction (0-1)",
    "cost_per_split_usd": "USD for one timed pass over the whole test split",
    "cost_per_1k_sentences_usd": "USD per 1,000 test sentences",
    "parameters": "parameter count as the model's record states it",
    "training_regime": "full, lora, qlora or none (evaluated as published); empty: not stated",
    "budget_profile": "training budget: paper, quick, custom, or a submission's declared profile",
    "train_sentences": "training sentences used (recorded by nerbench; submissions do not state it)",
    "epochs": "epochs trained (nerbench) or declared (submission)",
    "training_declared": "true: the training columns are a submitter's declaration",
}
_PARQUET_TYPES = {
    "self_reported": "BOOLEAN",
    "shown": "BOOLEAN",
    "reference_hardware": "BOOLEAN",
    "timed_busy": "BOOLEAN",
    "num_devices": "INTEGER",
    "seed": "INTEGER",
    **{
        name: "DOUBLE"
        for name in (
            "precision",
            "recall",
            "f1",
            "f1_ci_low",
            "f1_ci_high",
            "long_f1",
            "long_f1_ci_low",
            "long_f1_ci_high",
            "sentences_per_second",
            "cost_per_split_usd",
            "cost_per_1k_sentences_usd",
            "dev_f1",
        )
    },
    "parameters": "BIGINT",
    "train_sentences": "INTEGER",
    "epochs": "INTEGER",
    "training_declared": "BOOLEAN",
}


# Pages stay small however many submissions are stored (issue 19: under 1 MB at 10,000): the
# overview is split into pages of OVERVIEW_ROWS models in ranked order (index.html the first), a
# dataset page shows its DATASET_ROWS best runs and links pages of the rest, and a cost chart draws
# the Pareto frontier and the CHART_POINTS best points (every point is in data/cost_points.csv).
OVERVIEW_ROWS = 200
DATASET_ROWS = 100
CHART_POINTS = 40
MODEL_CHUNK = 64  # model pages a job: small enough for the two processes to finish together


@dataclass(frozen=True)
class Pager:
    """Where one page of a long list stands: `first` and `last` are 1-based positions in the list."""

    number: int
    hrefs: list[str]  # every page's file name, in order
    first: int
    last: int
    total: int

    @property
    def count(self) -> int:
        return len(self.hrefs)


def pager_nav(pager: Pager, noun: str, root: str) -> Markup:
    """Links to every page of a long list (none where it has one page): on each of the 500 dataset
    pages of 10,000 submissions, a hundred links, which Jinja took a millisecond to loop over."""
    if pager.count <= 1:
        return Markup("")
    links = "".join(
        f'<strong aria-current="page">{number}</strong>'
        if number == pager.number
        else f'<a href="{escape(href)}">{number}</a>'
        for number, href in enumerate(pager.hrefs, 1)
    )
    return Markup(
        f'<nav class="pager" aria-label="pages of {escape(noun)}"><p>{escape(noun.capitalize())} {pager.first:,}–'
        f"{pager.last:,} of {pager.total:,}, best first ({pager.count} pages, every result in the "
        f'<a href="{escape(root)}downloads.html">downloads</a>). Page:\n{links}</p></nav>\n'
    )


def paged(items: list[Any], size: int, href: Callable[[int], str]) -> list[tuple[list[Any], Pager]]:
    """`items` cut into pages of `size` (one page, maybe empty, for a short list); `href(n)` names page n."""
    chunks = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
    hrefs = [href(n) for n in range(1, len(chunks) + 1)]
    out, first = [], 1
    for number, chunk in enumerate(chunks, 1):
        out.append((chunk, Pager(number, hrefs, first, first + len(chunk) - 1, len(items))))
        first += len(chunk)
    return out


def shown_points(points: list[Point], top: int | None = None) -> list[Point]:
    """What a chart draws: the Pareto frontier and the `top` (CHART_POINTS) best points by F1 (all, when few)."""
    top = CHART_POINTS if top is None else top
    if len(points) <= top:
        return points
    keep = {id(p) for p in pareto(points)}
    keep.update(id(p) for p in sorted(points, key=lambda p: (-p.f1, p.cost, p.label))[:top])
    return [p for p in points if id(p) in keep]


@dataclass(frozen=True)
class BuildReport:
    out: Path
    index: Path
    pages: int
    models: int
    runs: int


# --------------------------------------------------------------------------- build context


def build_time(value: datetime | None = None) -> datetime:
    """The build time the footer states: `value`, else SOURCE_DATE_EPOCH when set (seconds since
    1970, the reproducible-builds convention), else now; in UTC, to the second."""
    if value is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
        if epoch:
            try:
                value = datetime.fromtimestamp(int(epoch), UTC)
            except (ValueError, OverflowError, OSError):
                raise NerbenchError(
                    f"SOURCE_DATE_EPOCH={one_line(epoch, 40)}: not a whole number of seconds since 1970-01-01 UTC"
                ) from None
        else:
            value = datetime.now(UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


_HARDWARE_WORDS = {"reference": "the reference H100", "GPU": "another GPU", "CPU": "a CPU", "none": "none stated"}
_TIMED_WORDS = {
    "nerbench": "measured by nerbench",
    "self-reported": "self-reported by the submitter",
    "untimed": "none",
}


def results_context(data: StoreData) -> str:
    """Where the results shown were measured and on which budgets, counted over the shown runs."""
    shown = [run for model in data.models.values() for run in model.shown.values()]
    if not shown:
        return "No results yet."

    def counted(counter: Counter[str]) -> str:
        return ", ".join(f"{name} ({n})" for name, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    hardware = Counter(_HARDWARE_WORDS[run.track.hardware] for run in shown)
    timed = Counter(_TIMED_WORDS[run.track.timed_by] for run in shown)
    budgets = Counter(training_of(run).profile_text for run in shown)
    return (
        f"The {len(shown)} results shown (one per model and dataset): hardware {counted(hardware)}; "
        f"timing {counted(timed)}; training budgets {counted(budgets)}."
    )


# --------------------------------------------------------------------------- reference rows


def paper_results(path: Path | None = None) -> dict[str, Any]:
    """The paper's published numbers that can be cited (nerbench/paper_results.json)."""
    if path is None:
        text = resources.files("nerbench").joinpath(PAPER_RESULTS).read_text("utf-8")
        where = f"nerbench/{PAPER_RESULTS}"
    else:
        text, where = Path(path).read_text("utf-8"), str(path)
    try:
        data = json.loads(text)
    except ValueError as err:
        raise NerbenchError(f"{where}: not valid JSON ({err})") from None
    for index, row in enumerate(data.get("rows", [])):
        for key in ("model", "family", "dataset", "f1", "source"):
            if key not in row:
                raise NerbenchError(f"{where}: rows[{index}].{key}: missing (every published number needs its source)")
    return data


# --------------------------------------------------------------------------- overview rows


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present and len(present) == len(values) else None


def _overview_row(model: Model, datasets: list[str]) -> dict[str, Any]:
    cells = [model.shown.get(d) for d in datasets]
    runs = [run for run in cells if run is not None]
    complete = len(runs) == len(datasets)
    costs = [c for c in (run.cost_usd for run in runs) if c is not None]
    sentences = [n for n in (run.sentences for run in runs) if n]
    cost = 1000 * sum(costs) / sum(sentences) if runs and len(costs) == len(sentences) == len(runs) else None
    devices = sorted({run.device_name or "no timing" for run in runs})
    scores = [run.f1 for run in runs if run.f1 is not None]
    budget, budget_title = budget_cell(model)
    licence = model.meta.get("licence")
    return {
        "model": model,
        "cells": cells,
        "covered": len(runs),
        "macro_f1": _mean([run.f1 for run in runs]) if complete else None,
        # The default order: models run on every dataset by macro F1, then the others by their
        # mean strict F1 over the datasets they were run on.
        "rank_score": sum(scores) / len(scores) if scores else None,
        "parameters": parameters(model),
        "budget": budget,
        "budget_title": budget_title,
        "long_f1": _mean([run.long_f1 for run in runs]) if complete else None,
        "cost": cost,
        "reference": bool(runs) and all(run.reference_hardware for run in runs),
        "classes": sorted({run.device_class for run in runs if run.device_class}),
        "devices": devices,
        "self_reported": any(run.self_reported for run in runs),
        # Timed on a busy machine on some dataset: its speed and cost (and the mean cost) understate the hardware.
        "busy": any(run.timed_busy for run in runs),
        "busy_title": "; ".join(f"{run.dataset}: {load_text(run)}" for run in runs if run.timed_busy),
        "sources": sorted({run.source for run in runs}),
        "tracks": sorted({track_label(run.track) for run in runs}),
        "size_class": size_class(parameters(model)),
        "licence": licence if isinstance(licence, str) and licence else "not stated",
    }


SIZE_CLASSES = ((10**8, "under 100M"), (10**9, "100M to 1B"), (10**10, "1B to 10B"), (None, "10B and more"))


def size_class(count: int | None) -> str:
    """The overview's size filter: which of SIZE_CLASSES a parameter count falls in."""
    if count is None:
        return "not stated"
    return next(name for limit, name in SIZE_CLASSES if limit is None or count < limit)


def _filters(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The values each overview filter offers: those of the rows shown, in a fixed order."""
    sizes = [name for _, name in SIZE_CLASSES] + ["not stated"]
    return {
        "track": sorted({t for row in rows for t in row["tracks"]}),
        "size": [name for name in sizes if any(row["size_class"] == name for row in rows)],
        "licence": sorted({row["licence"] for row in rows}),
    }


def _rank(row: dict[str, Any]) -> tuple:
    """The overview's default order: strict F1, best first. Models run on every dataset of the table
    come first, by macro F1; the others follow by their mean F1 over the datasets they were run on."""
    complete = row["macro_f1"] is not None
    score = row["macro_f1"] if complete else row["rank_score"]
    return (not complete, score is None, -(score or 0.0), row["model"].id)


def _result_columns(data: StoreData) -> dict[str, list[Any]]:
    """The downloads' columns (RESULT_COLUMNS), one value per stored run: a tuple a run, turned
    into columns at the end (a dict a run cost twice as much on 50,000 runs)."""
    rows = []
    for run in data.runs:
        timing = run.timing or {}
        trained = training_of(run)
        model = data.models[run.model_id]
        f1_ci, long_ci = run.f1_ci or (None, None), run.long_f1_ci or (None, None)
        rows.append(
            (
                run.run_id,
                run.model_id,
                run.family,
                run.head,
                run.dataset,
                run.split,
                run.source,
                run.self_reported,
                model.shown.get(run.dataset) is run,
                run.created_at,
                run.dataset_sha256,
                run.precision,
                run.recall,
                run.f1,
                f1_ci[0],
                f1_ci[1],
                run.long_f1,
                long_ci[0],
                long_ci[1],
                timing.get("sentences_per_second"),
                timing.get("cost_usd"),
                timing.get("cost_per_1k_sentences_usd"),
                timing.get("device_name"),
                timing.get("num_devices"),
                run.reference_hardware,
                run.timed_busy,
                track_label(run.track),
                run.dev_f1,
                run.seed,
                parameters(model),
                trained.regime,
                trained.profile,
                trained.train_sentences,
                trained.epochs,
                trained.declared,
            )
        )
    columns = list(zip(*rows)) or [() for _ in RESULT_COLUMNS]
    return {name: list(values) for name, values in zip(RESULT_COLUMNS, columns, strict=True)}


# --------------------------------------------------------------------------- datasets


def _test_split(name: str, data_dir: Path | None) -> Split | None:
    """The local test split (modified copies allowed: the paired test compares sha256 itself)."""
    if name not in REGISTRY:
        return None
    try:
        return load_split(name, "test", data_dir, allow_modified=True)
    except NerbenchError:
        return None


def _dataset_info(name: str, split: Split | None) -> dict[str, Any]:
    info = REGISTRY.get(name)
    out: dict[str, Any] = {"name": name, "info": info, "statistics": None, "note": None}
    if info is None:
        out["note"] = "not in the dataset registry"
        return out
    if split is None:
        out["note"] = "the test split is not available where this site was built, so its statistics are not shown"
        return out
    out["statistics"] = statistics(split.sentences, info.entity_types)
    out["modified"] = split.modified  # a local copy that differs from the registry's sha256
    return out


# --------------------------------------------------------------------------- formatting


def not_in_paper(name: str) -> str | None:
    """Why a registered dataset that the paper did not use is here (its registry note), e.g. that
    NCBI-disease stands in for the private Reddit-Impacts; None for the paper's own sets."""
    info = REGISTRY.get(name)
    return info.note if info is not None and not info.paper_set else None


def shown_value(value: Any) -> Any:
    """Every `{{ value }}` of every template passes here (Jinja's finalize): a missing value is
    shown as a dash, never as the word "None"."""
    return "—" if value is None else value


def _environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=True,  # every page, whatever the template file is called
        undefined=jinja2.StrictUndefined,
        finalize=shown_value,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # a build renders each template thousands of times: no stat of its file each time
    )
    env.filters.update(f3=f3, ci=ci, usd=usd, pts=pts, sort_key=sort_key, pretty_json=pretty_json)
    env.globals.update(
        hardware=hardware,
        seeds=seeds,
        family=family,
        training_of=training_of,
        load_text=load_text,
        model_training=model_training,
        parameters_text=parameters_text,
        not_in_paper=not_in_paper,
        f1ci=f1ci,
        dataset_row=dataset_row,
        pager_nav=pager_nav,
        score_rows=score_rows,
        overview_row=overview_row,
        model_sections=model_sections,
        reproduction_mark=reproduction_mark,
        overview_reproduction=overview_reproduction,
        slug=slug,
        protocol=PROTOCOL,
        paper=PAPER,
        significance=SIGNIFICANCE,
        long_tokens=LONG_ENTITY_TOKENS,
        model_href=model_href,
        dataset_href=dataset_href,
    )
    return env


# --------------------------------------------------------------------------- the build


PointRow = tuple[float | None, float | None, str, str, str, bool, tuple[float, float] | None, bool]


def _points(rows: Iterable[PointRow]) -> list[Point]:
    """(F1, cost, label, link, family, reference, F1 interval, timed busy) -> the points that have
    both an F1 and a cost."""
    return [
        Point(cost, f1, label, href, family, ref, interval, busy)
        for f1, cost, label, href, family, ref, interval, busy in rows
        if f1 is not None and cost is not None and cost > 0
    ]


def site_assets(root: Path | None = None) -> Path:
    """The folder holding the site's templates/ and static/: nerbench's own (read through
    importlib.resources), or `root`. Checked before the build touches --out, so that an incomplete
    install never empties the user's folder."""
    if root is None:
        found = resources.files("nerbench").joinpath(ASSETS)
        if not isinstance(found, Path):  # a zipped import: Jinja and copytree need real files
            raise NerbenchError(f"nerbench's site assets ({found}) are not files on disk; install nerbench with pip")
        root = found
    missing = [str(root / name) for name in ("templates", "static") if not (root / name).is_dir()]
    if missing:
        raise NerbenchError(
            f"the site's templates and stylesheet are missing ({', '.join(missing)}): nerbench is installed "
            "incompletely; reinstall it. Nothing was written."
        )
    return root


def _set_aside(out: Path) -> Path | None:
    """Move a previous build out of the way (into a new hidden folder beside it, returned; _delete
    removes it once the new one is written); refuse to touch a folder that is not one (a mistyped --out)."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise NerbenchError(f"--out {out}: a file, not a folder")
    if any(out.iterdir()) and not (out / MARKER).is_file():
        raise NerbenchError(
            f"--out {out}: not empty and not a site written by `nerbench site build` (no {MARKER}); "
            "choose an empty or new folder"
        )
    holder = Path(tempfile.mkdtemp(prefix=f".{out.name}-previous-", dir=out.absolute().parent))
    try:
        out.rename(holder / "site")
    except OSError:  # not movable (a mount point, say): deleted where it is
        holder.rmdir()
        _delete(out)
        return None
    return holder


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[None]:
    """`out` made an empty folder for the block to write a site into: a previous build is moved
    aside, put back if the block fails, else deleted once the new site is written (ext4 makes a new
    file slowly while many were deleted in the last minutes, as it scans past their inodes: 0.4 ms
    a file here instead of 0.05)."""
    previous = _set_aside(out)
    try:
        yield
    except BaseException:
        if previous is not None:
            shutil.rmtree(out, ignore_errors=True)
            (previous / "site").rename(out)
            previous.rmdir()
        raise
    if previous is not None:
        _delete(previous)


def _delete(folder: Path) -> None:
    """Delete a folder and everything in it. An unlink can wait on the file system (3 ms a file on an
    ext4 mounted with discard, where the 10,000 model pages of an earlier build took half a minute to
    delete one by one), so the files are unlinked from 16 threads; shutil.rmtree takes the rest."""
    files = [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]

    def unlink(paths: list[str]) -> None:
        for path in paths:
            os.unlink(path)

    with ThreadPoolExecutor(16) as pool:
        for _ in pool.map(unlink, [files[i::16] for i in range(16)]):
            pass  # an error is raised here
    shutil.rmtree(folder)


def _write_file(path: Path, text: str) -> None:
    """A page as UTF-8, through os.write: Path.write_text's text layer cost a quarter of the time of
    writing a model page (10,000 of them)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def _analyse(
    data: StoreData, db: Path, data_dir: Path | None, suite: list[str], resamples: int, seed: int
) -> tuple[list[TrackPage], dict[str, dict[str, Any]]]:
    """The part of the build that reads the test splits: paired tests and statistics."""
    splits = {name: _test_split(name, data_dir) for name in suite}  # each file read once
    tracks = pages(data, db, splits, datasets=suite, resamples=resamples, seed=seed)
    return tracks, {name: _dataset_info(name, splits[name]) for name in suite}


_TASK: Callable[[], Any] | None = None  # what the forked worker runs: inherited, so nothing is pickled but the result


def _run_task() -> Any:
    assert _TASK is not None, "_start sets the task before the worker forks"
    return _TASK()


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """The garbage collector off until the block ends (then left as it was found)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _forks(parallel: bool) -> bool:
    return parallel and "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) >= 2


class _Jobs:
    """Hands out the jobs of a build to whichever process is free: this one, and its forked worker
    once its own part is done (through a counter in shared memory), so that neither waits long for
    the other. A job writes its pages and returns how many."""

    def __init__(self, jobs: list[Callable[[], int]], shared: bool) -> None:
        self.jobs = jobs
        self.next = multiprocessing.get_context("fork").Value("q", 0) if shared else None
        self.local = 0

    def _take(self) -> int:
        if self.next is None:
            self.local += 1
            return self.local - 1
        with self.next.get_lock():
            self.next.value += 1
            return self.next.value - 1

    def run(self) -> int:
        """Do jobs until none are left; the pages written."""
        pages = 0
        while (index := self._take()) < len(self.jobs):
            pages += self.jobs[index]()
        return pages


def _start(task: Callable[[], Any], parallel: bool) -> Callable[[], Any]:
    """Run `task` in a forked process where that is possible; returns a function giving its result
    (the task runs in this process, when called, where it is not)."""
    global _TASK
    if not _forks(parallel):
        return task
    _TASK = task
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    try:
        future = pool.submit(_run_task)  # forks now, with _TASK set
    finally:
        _TASK = None

    def result():
        try:
            return future.result()
        finally:
            pool.shutdown()

    return result


def build_site(
    db: Path,
    out: Path = DEFAULT_OUT,
    *,
    data_dir: Path | None = None,
    resamples: int = RESAMPLES,
    seed: int = 0,
    paper_file: Path | None = None,
    assets: Path | None = None,
    parallel: bool = True,
    built_at: datetime | None = None,
) -> BuildReport:
    """Render the whole site into `out` (replacing what a previous build left there).

    With `parallel`, a forked process reads the test splits, runs the paired tests and writes the
    pages that need them while this one writes the downloads, the overview and model pages; then
    both write model pages until none are left (the output is the same).
    `assets` replaces nerbench's own templates/ and static/ (site_assets). `built_at` is the build
    time every page states (build_time: else SOURCE_DATE_EPOCH, else now).
    """
    assets = site_assets(assets)  # before anything is read or written
    built = build_time(built_at)
    db, out = Path(db), Path(out)
    # The garbage collector is off while the store is read and the site written: its passes walked
    # the runs read (kept to the end) again and again and found next to nothing to free, a tenth of
    # the build's time at 1,000 submissions. What it would have freed is freed once it is back on.
    with _collector_off(), remembered():  # remembered: each run's training summary made once
        data = read_store(db)
        paper = paper_results(paper_file)
        with _replacing(out):
            pages = _write_site(
                data,
                db,
                out,
                paper,
                assets,
                built,
                data_dir=data_dir,
                resamples=resamples,
                seed=seed,
                parallel=parallel,
            )
    return BuildReport(out=out, index=out / "index.html", pages=pages, models=len(data.models), runs=len(data.runs))


def _write_site(
    data: StoreData,
    db: Path,
    out: Path,
    paper: dict[str, Any],
    assets: Path,
    built: datetime,
    *,
    data_dir: Path | None,
    resamples: int,
    seed: int,
    parallel: bool,
) -> int:
    """Write every page, download and asset into `out` (an empty folder); returns the pages written."""
    env = _environment(assets / "templates")
    columns = data.datasets
    suite = list(DEFAULT_SUITE) + [d for d in data.datasets if d not in DEFAULT_SUITE]
    paper_rows = sorted(paper.get("rows", []), key=lambda r: (r["dataset"], r["model"]))

    (out / "models").mkdir(parents=True)
    (out / MARKER).write_text("written by `nerbench site build`; the next build replaces this folder\n", "utf-8")
    (out / "datasets").mkdir()
    (out / "data").mkdir()
    shutil.copytree(assets / "static", out / "static")
    common = {
        "n_models": len(data.models),
        "n_runs": len(data.runs),
        "paper_results": paper,
        "built": built.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "built_iso": built.isoformat().replace("+00:00", "Z"),
        "version": __version__,
        "results_context": results_context(data),
    }

    def write(name: str, template: str, **context: Any) -> int:
        root = "../" * name.count("/")
        _write_file(out / name, env.get_template(template).render(root=root, page=name, **common, **context))
        return 1

    # The cost charts' points: dataset pages draw them, and so does the cost page.
    charts = {}
    for dataset in suite:
        shown = [m.shown[dataset] for m in data.models.values() if dataset in m.shown]
        charts[dataset] = _points(
            (
                r.f1,
                r.cost_per_1k,
                r.model_id,
                f"models/{slug(r.model_id)}.html",
                r.family,
                r.reference_hardware,
                r.f1_ci,
                r.timed_busy is True,
            )
            for r in shown
        )
    drawn = {dataset: shown_points(points) for dataset, points in charts.items()}

    def dataset_pages(
        dataset: str,
        runs: list[Run],
        types: list[str],
        cells: dict[str, list[Markup]],
        info: dict[str, Any],
        question: Any,
    ) -> int:
        """A dataset's page and the pages of the rest of its runs, DATASET_ROWS runs (best first) a page."""
        base = slug(dataset)
        written = 0
        for chunk, pager in paged(runs, DATASET_ROWS, lambda n: f"{base}.html" if n == 1 else f"{base}-runs-{n}.html"):
            tables = Markup(  # autoescaped output of the template
                env.get_template("dataset_tables.html").render(
                    root="../",
                    name=dataset,
                    runs=chunk,
                    pager=pager,
                    types=types,
                    buckets=LENGTH_BUCKETS,
                    points=charts[dataset],
                    drawn=len(drawn[dataset]),
                    models=data.models,
                    cells=cells,
                    chart=chart(drawn[dataset], title=f"Strict F1 against cost on {dataset}", root="../")
                    if pager.number == 1
                    else Markup(""),
                )
            )
            if pager.number > 1:
                name = f"datasets/{pager.hrefs[pager.number - 1]}"
                written += write(name, "dataset_runs.html", dataset_name=dataset, tables=tables)
                continue
            written += write(
                f"datasets/{base}.html",
                "dataset.html",
                dataset=info,
                tables=tables,
                question=question,
                paper_rows=[r for r in paper_rows if r["dataset"] == dataset],
            )
        return written

    def analysis() -> int:
        """The pages that need the paired tests (or the test splits), done by the worker."""
        tracks, infos = _analyse(data, db, data_dir, suite, resamples, seed)
        default = next((t for t in tracks if t.default), None)
        written = 0
        for track in tracks:
            written += write(track.href, "compare.html", page_track=track, tracks=tracks, resamples=resamples)
        if default is None:  # an empty store: the page still exists and says so
            written += write("compare.html", "compare.html", page_track=None, tracks=tracks, resamples=resamples)
        written += write("about.html", "about.html", datasets=[infos[d] for d in suite], prices=price_table())
        ranked = {
            dataset: sorted(
                (m.shown[dataset] for m in data.models.values() if dataset in m.shown),
                key=lambda r: (r.f1 is None, -(r.f1 or 0), r.model_id),
            )
            for dataset in suite
        }
        orders = [REGISTRY[dataset].entity_types if dataset in REGISTRY else () for dataset in suite]
        for dataset, (types, cells) in zip(suite, score_cells(db, list(zip(ranked.values(), orders)))):
            question = next((q for q in default.questions if q.dataset == dataset), None) if default else None
            written += dataset_pages(dataset, ranked[dataset], types, cells, infos[dataset], question)
        return written

    def downloads() -> int:
        _write_table(out / "data", DOWNLOADS, _result_columns(data), _PARQUET_TYPES)
        return write(
            "downloads.html", "downloads.html", n_rows=len(data.runs), columns=RESULT_COLUMNS, column_notes=COLUMN_NOTES
        )

    def overview_and_cost() -> int:
        """The overview's pages, the cost page and every point of its charts."""
        overview = [_overview_row(m, columns) for m in data.models.values()]
        overview.sort(key=_rank)
        overall_points = _points(
            (
                row["macro_f1"],
                row["cost"],
                row["model"].id,
                f"models/{row['model'].slug}.html",
                row["model"].family,
                row["reference"],
                None,  # a mean over datasets: no interval is stored for it
                row["busy"],
            )
            for row in overview
        )
        overall_drawn = shown_points(overall_points)
        overall = chart(overall_drawn, title="Macro F1 over datasets against cost", y_label="macro strict F1")
        _write_cost_points(out / "data", overall_points, charts)
        filters = _filters(overview)
        written = 0
        for chunk, pager in paged(overview, OVERVIEW_ROWS, lambda n: "index.html" if n == 1 else f"overview-{n}.html"):
            written += write(
                pager.hrefs[pager.number - 1],
                "index.html",
                columns=columns,
                rows=chunk,
                pager=pager,
                paper_rows=paper_rows,
                filters=filters,
            )
        return written + write(
            "cost.html",
            "cost.html",
            overall=overall,
            overall_points=overall_points,
            overall_drawn=len(overall_drawn),
            charts=[
                (d, charts[d], chart(drawn[d], title=f"Strict F1 against cost on {d}"), len(drawn[d])) for d in suite
            ],
        )

    def model_pages(models: list[Model]) -> int:
        for model in models:
            environments = [run.environment for run in model.runs]
            same = environments[0] and all(e == environments[0] for e in environments)
            write(
                f"models/{model.slug}.html",
                "model.html",
                model=model,
                shared_environment=environments[0] if same else None,
            )
        return len(models)

    models = list(data.models.values())
    chunks = [models[i : i + MODEL_CHUNK] for i in range(0, len(models), MODEL_CHUNK)]
    jobs = _Jobs(
        [downloads, overview_and_cost, *[functools.partial(model_pages, chunk) for chunk in chunks]],
        shared=_forks(parallel),
    )
    # The worker reads the test splits, runs the paired tests and writes the pages that need
    # them (the comparison, the datasets), then takes jobs; this process takes jobs meanwhile.
    worker = _start(lambda: analysis() + jobs.run(), parallel)
    pages = jobs.run()
    pages += worker()
    return pages


COST_POINT_COLUMNS = (
    "chart",
    "model_id",
    "family",
    "reference_hardware",
    "f1",
    "f1_ci_low",
    "f1_ci_high",
    "cost_per_1k_sentences_usd",
)


def _write_cost_points(folder: Path, overall: list[Point], charts: dict[str, list[Point]]) -> None:
    """Every point of every cost chart (a chart draws only the frontier and the best CHART_POINTS):
    chart "macro" holds each model's macro F1, the others a dataset's strict F1."""
    rows = []
    for name, points in [("macro", overall), *charts.items()]:
        for p in sorted(points, key=lambda p: (-p.f1, p.cost, p.label)):
            low, high = p.f1_ci if p.f1_ci else (None, None)
            rows.append((name, p.label, p.family, p.reference, p.f1, low, high, p.cost))
    columns = {name: [row[i] for row in rows] for i, name in enumerate(COST_POINT_COLUMNS)}
    types = {name: "DOUBLE" for name in COST_POINT_COLUMNS[4:]} | {"reference_hardware": "BOOLEAN"}
    _write_table(folder, {"cost_points.csv": "csv"}, columns, types)


def _objects(values: list[Any]) -> np.ndarray:
    """A column for DuckDB to scan (a dict of numpy arrays needs neither pandas nor pyarrow)."""
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _csv_column(name: str, kind: str) -> str:
    """A column of a CSV download: texts made safe, booleans as Python's csv module writes them
    (DuckDB writes doubles as Python's repr does)."""
    if kind == "VARCHAR":
        return f"in_csv.{name}"
    if kind == "BOOLEAN":
        return f"CASE WHEN {name} THEN 'True' WHEN NOT {name} THEN 'False' END AS {name}"
    return name


def _write_table(folder: Path, files: dict[str, str], columns: dict[str, list[Any]], types: dict[str, str]) -> None:
    """Write one table (equal-length columns; a column's type in `types`, else text) into each of
    `files` (name: "csv", "json" or "parquet") with DuckDB: building tens of thousands of rows of
    text in Python took seconds."""
    from nerbench.safe_text import csv_cell

    kinds = {name: types.get(name, "VARCHAR") for name in columns}
    stored = {name: _objects(values) for name, values in columns.items()}
    # Ids and device names come from submissions: no CSV cell may run as a spreadsheet formula
    # (nerbench.safe_text.csv_cell); each distinct text is made safe once. JSON and Parquet carry
    # the values as stored.
    texts = [name for name, kind in kinds.items() if kind == "VARCHAR"]
    safe = {text: csv_cell(text) for name in texts for text in set(columns[name]) if isinstance(text, str)}
    in_csv = {name: _objects([safe.get(v, v) for v in columns[name]]) for name in texts}
    conn = duckdb.connect()
    try:
        conn.register("stored", stored)
        conn.register("in_csv", in_csv)
        typed = ", ".join(f"CAST(stored.{name} AS {kind}) AS {name}" for name, kind in kinds.items())
        conn.execute(f"CREATE TABLE written AS SELECT {typed} FROM stored")
        cells = ", ".join(_csv_column(name, kind) for name, kind in kinds.items())
        queries = {
            "csv": (f"SELECT {cells} FROM written POSITIONAL JOIN in_csv", "FORMAT csv"),
            "json": ("FROM written", "FORMAT json, ARRAY true"),  # one row per line
            "parquet": ("FROM written", "FORMAT parquet"),
        }
        for name, form in files.items():
            query, options = queries[form]
            target = str(folder / name).replace("'", "''")
            conn.execute(f"COPY ({query}) TO '{target}' ({options})")
    finally:
        conn.close()


DOWNLOADS = {"results.csv": "csv", "results.json": "json", "results.parquet": "parquet"}


def _write_downloads(folder: Path, rows: list[dict[str, Any]]) -> None:
    """The downloads of these rows (a dict a run, keyed by RESULT_COLUMNS)."""
    _write_table(folder, DOWNLOADS, {name: [row[name] for row in rows] for name in RESULT_COLUMNS}, _PARQUET_TYPES)
