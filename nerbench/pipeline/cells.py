"""Cells: the unit of work past one machine, and the plan of a matrix of them.

A cell is one (model, dataset, head, profile, seed, serving condition): exactly what `nerbench
eval` does for one dataset, one seed and one serving condition. `run_cell` runs it through
`evaluate` with a shard sink in place of the store, so the whole run — record, metrics, timing,
environment, predictions, details with the training record, and the scheduler's job id — lands in
one shard file (nerbench.shards) and the store is never opened; `nerbench ingest` loads shards.

A cell carries everything its worker needs (model, data and checkpoint folders, device, and an
explicit budget where one replaces the profile's), as plain data: a job on another node or in
another process is handed the cell, never this process's state.

Cells that share a training identity (the serving conditions of one LLM checkpoint) are one job:
run one after the other, the first trains the checkpoint and the others reuse it, rather than two
jobs training into one folder at once.

`plan` says, for each cell, whether its shard is there, its run stored, or it is still to run,
what it trains, and how long it should take on a GPU from the speeds measured in stored GPU runs.
Where none is stored it gives the cell's floor instead, named as such: its FLOPs at the reference
GPU's bf16 peak (nerbench.pipeline.compute_bound), which real runs exceed.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from nerbench.datasets import DEFAULT_SUITE, get_dataset, resolve_data_dir, split_path
from nerbench.errors import NerbenchError
from nerbench.pipeline.taggers import TAGGERS
from nerbench.protocol import PROTOCOL
from nerbench.record import SERVINGS, Budget, RunRecord, Serving, canonical_json
from nerbench.shards import SHARD_SUFFIX, read_shard, write_shard
from nerbench.store import RunResult, Store

# The paper's matrix (Obeidat et al., 2025): four encoders and two LLMs, the LLMs with the generative
# head (the paper's) and the token head, on the five held-out sets, with the paper's recipe.
PAPER_ENCODERS = ("bert-large-uncased", "bert-large-cased", "biomedbert-large-uncased-abstract", "deberta-v3-large")
PAPER_LLMS = ("mistral-7b-instruct-v0.3", "llama-3.1-8b-instruct")
PAPER_LLM_HEADS = ("generative", "token")
PRIVATE_STAND_IN = ("ncbi_disease", "reddit_impacts")  # the public stand-in, and the paper's set
SUITES = ("paper",)

CellStatus = Literal["to run", "running", "shard", "stored"]


class Cell(BaseModel):
    """One (model, dataset, head, profile, seed, serving condition), and how its worker runs it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    dataset: str
    head: str | None = None  # "token" / "generative" (LLMs); None: the recipe's or the model's own
    profile: str = "paper"
    seed: int = 0
    serving: Serving = "as-trained"
    budget: Budget | None = None  # an explicit budget in place of the profile's (a tiny one in tests)
    # How, not what: where the worker finds the data and keeps checkpoints, and on what it runs.
    device: str | None = None  # None: cuda where there is one, else cpu
    data_dir: str | None = None
    runs_dir: str = "runs"
    allow_modified: bool = False
    revision: str | None = None
    name: str | None = None
    label_policy: str | None = None
    quantize: str | None = None
    word_position: str | None = None
    price_per_hour: float | None = None

    @property
    def key(self) -> str:
        """The shard's name: readable coordinates and a digest of the whole cell."""
        digest = hashlib.sha256(canonical_json(self.model_dump(mode="json")).encode("utf-8")).hexdigest()[:10]
        parts = [self.model, self.dataset, self.head or "default", self.profile, f"seed{self.seed}", self.serving]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)).strip("-.")[:120]
        return f"{slug}_{digest}"

    @property
    def training_key(self) -> str:
        """Cells with the same key share one checkpoint (they differ in serving only)."""
        return canonical_json({k: v for k, v in self.model_dump(mode="json").items() if k != "serving"})

    def shard_path(self, shard_dir: Path) -> Path:
        return Path(shard_dir) / f"{self.key}{SHARD_SUFFIX}"

    def describe(self) -> str:
        head = f", {self.head} head" if self.head else ""
        serving = f", {self.serving}" if self.serving != "as-trained" else ""
        return f"{self.model} on {self.dataset}{head}, {self.profile} profile, seed {self.seed}{serving}"

    def options(self, db: Path = Path("nerbench.duckdb")):
        """The EvalOptions of exactly this cell (one dataset, one seed, one serving condition)."""
        from nerbench.pipeline.evaluate import EvalOptions

        return EvalOptions(
            datasets=(self.dataset,),
            profile=self.profile,
            seed=self.seed,
            seeds=1,
            label_policy=self.label_policy,
            data_dir=Path(self.data_dir) if self.data_dir else None,
            db=db,
            runs_dir=Path(self.runs_dir),
            device=self.device,
            price_per_hour=self.price_per_hour,
            allow_modified=self.allow_modified,
            revision=self.revision,
            name=self.name,
            head=self.head,
            quantize=self.quantize,
            word_position=self.word_position,
            servings=(self.serving,),
            budget=self.budget,
        )


def _registry_meta(model: str):
    from nerbench.models.catalogue import REGISTRY

    return REGISTRY.get(model)


def _head_of(model: str, head: str | None) -> str | None:
    meta = _registry_meta(model)
    if meta is None:
        return head
    if meta.family != "llm":
        if head not in (None, "token"):
            raise NerbenchError(f"--head {head}: {model} is an encoder; it has the token head only")
        return "token"
    return head or str(meta.recipe.head)


def paper_datasets(data_dir: Path | None = None) -> tuple[str, ...]:
    """The five default sets, with Reddit-Impacts in place of its public stand-in NCBI-disease
    where the user has it (all three of its splits in the data directory)."""
    stand_in, private = PRIVATE_STAND_IN
    if all(split_path(private, split, data_dir).is_file() for split in ("train", "dev", "test")):
        return tuple(private if name == stand_in else name for name in DEFAULT_SUITE)
    return DEFAULT_SUITE


def matrix(
    models: Sequence[tuple[str, str | None]],
    datasets: Sequence[str],
    *,
    profile: str = "paper",
    seeds: Iterable[int] = (0,),
    servings: Sequence[str] = ("as-trained",),
    **how: Any,
) -> list[Cell]:
    """Every (model, head) x dataset x seed x serving cell, in that order; `how` is the cells'
    shared way of running (device, data_dir, runs_dir, budget...)."""
    for name in datasets:
        get_dataset(name)
    for serving in servings:
        if serving not in SERVINGS:
            raise NerbenchError(f"--serving: unknown serving condition {serving!r} (known: {', '.join(SERVINGS)})")
    seeds = list(seeds)
    cells = []
    for model, head in models:
        resolved = _head_of(model, head)
        meta = _registry_meta(model)
        # Each family serves the conditions its tagger offers (ONNX Runtime is the encoders' only):
        # a condition the family cannot serve is not planned for its models.
        family = meta.family if meta is not None else None
        served = [s for s in servings if family is None or s in TAGGERS[(family, resolved or "token")].servings]
        for dataset in datasets:
            for seed in seeds:
                for serving in dict.fromkeys(served):
                    cells.append(
                        Cell(
                            model=model,
                            dataset=dataset,
                            head=resolved,
                            profile=profile,
                            seed=seed,
                            serving=serving,
                            **how,
                        )
                    )
    return cells


def suite_models(suite: str) -> list[tuple[str, str | None]]:
    if suite != "paper":
        raise NerbenchError(f"--suite: unknown suite {suite!r} (known: {', '.join(SUITES)})")
    models: list[tuple[str, str | None]] = [(model, "token") for model in PAPER_ENCODERS]
    return models + [(model, head) for model in PAPER_LLMS for head in PAPER_LLM_HEADS]


def suite_cells(suite: str, *, datasets: Sequence[str] | None = None, data_dir: Path | None = None, **kw: Any):
    """The cells of a named suite ("paper": 4 encoders + 2 LLMs x 2 heads, on the five sets)."""
    models = suite_models(suite)
    return matrix(models, datasets or paper_datasets(data_dir), data_dir=_folder(data_dir), **kw)


def _folder(path: Path | None) -> str | None:
    """A folder a worker elsewhere can find: absolute."""
    return str(Path(path).expanduser().absolute()) if path is not None else None


def absolute_data_dir(data_dir: Path | None) -> str:
    return str(resolve_data_dir(data_dir).expanduser().absolute())


# --------------------------------------------------------------------------- running one cell


class ShardSink:
    """Where `evaluate` saves the run of one cell: its shard file, never the store."""

    def __init__(self, path: Path, cell: Cell, job: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.cell = cell
        self.job = job
        self.run_id: str | None = None

    def has_run(self, run_id: str) -> bool:
        if not self.path.is_file():
            return False
        try:
            return read_shard(self.path).run_id == run_id
        except NerbenchError:
            return False  # a damaged shard is written anew

    def save_run(self, result: RunResult, *, replaces: str | None = None) -> str:
        details = dict(result.details or {})
        if self.job is not None:
            details["scheduler"] = dict(self.job)
        result.details = details
        write_shard(self.path, result, cell=self.cell.model_dump(mode="json"), job=self.job)
        self.run_id = result.record.run_id
        return self.run_id


def run_cell(
    cell: Cell, shard_dir: Path, *, job: dict[str, Any] | None = None, say: Callable[[str], None] = print
) -> Path:
    """Run one cell as `evaluate` runs one dataset, into its shard file; returns the shard's path.
    A cell whose shard is already there (with this very run) is not run again."""
    from nerbench.pipeline.evaluate import evaluate

    path = cell.shard_path(shard_dir)
    sink = ShardSink(path, cell, job)
    options = replace(cell.options(), sink=sink)
    say(f"cell {cell.key}: {cell.describe()}")
    evaluate(cell.model, options, say=say)
    return path


def run_cells(
    cells: Sequence[Cell], shard_dir: Path, *, job: dict[str, Any] | None = None, say: Callable[[str], None] = print
) -> list[str]:
    """The cells of one job (one training identity), one after the other."""
    return [str(run_cell(cell, shard_dir, job=job, say=say)) for cell in cells]


def jobs_of(cells: Sequence[Cell]) -> list[list[Cell]]:
    """Cells grouped by training identity, in plan order: one scheduler job each."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.training_key, []).append(cell)
    return list(groups.values())


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Speed:
    """Measured GPU speeds of one (model, head), from stored runs on CUDA."""

    train: float | None  # training work (train + dev sentences per epoch) per second
    predict: float | None  # timed test sentences per second
    runs: int
    device: str | None


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    status: CellStatus
    shard: Path
    run_id: str | None
    trains: str
    seconds: float | None  # estimated on one GPU; None where no measured speed is stored
    note: str
    peak_seconds: float | None = None  # the cell's FLOPs at the reference GPU's bf16 peak (compute_bound)
    job: str | None = None  # the job of an earlier launch that still runs the cell ("running")


@dataclass(frozen=True)
class Plan:
    cells: list[PlannedCell]
    gpus_per_cell: int
    speeds_from: str  # where the measured speeds came from (or why there are none)

    @property
    def to_run(self) -> list[PlannedCell]:
        return [p for p in self.cells if p.status == "to run"]

    @property
    def running(self) -> list[PlannedCell]:
        return [p for p in self.cells if p.status == "running"]

    @property
    def gpu_hours(self) -> float:
        return sum(p.seconds or 0.0 for p in self.to_run) * max(self.gpus_per_cell, 1) / 3600

    @property
    def unestimated(self) -> list[PlannedCell]:
        return [p for p in self.to_run if p.seconds is None]

    @property
    def peak_gpu_hours(self) -> float:
        """The unestimated cells' GPU-hours at the reference GPU's peak (what real runs exceed)."""
        return sum(p.peak_seconds or 0.0 for p in self.unestimated) * max(self.gpus_per_cell, 1) / 3600

    @property
    def unbounded(self) -> list[PlannedCell]:
        """Cells to run with neither a measured estimate nor a FLOP count (no data, or no known size)."""
        return [p for p in self.unestimated if p.peak_seconds is None]


def _matches(record: RunRecord, cell: Cell, budget: Budget | None, device: str) -> bool:
    """Whether a stored run is this cell's: same model, dataset, head, serving, budget, seed and device."""
    model_id = cell.name or cell.model
    if record.model_id != model_id or record.dataset != cell.dataset or record.serving != cell.serving:
        return False
    if cell.head is not None and record.head != cell.head:
        return False
    if record.device != device or record.submission is not None:
        return False
    if record.training is None:
        return budget is None
    return budget is not None and record.training.seed == cell.seed and record.training.budget == budget


def _budget(cell: Cell) -> Budget | None:
    from nerbench.pipeline.profiles import profile_for

    meta = _registry_meta(cell.model)
    if meta is None:
        return None
    return cell.budget or profile_for(cell.profile, meta.family, cell.head or "token")


def _device(cell: Cell) -> str:
    return (cell.device or "cpu").split(":")[0]


def measured_speeds(db: Path) -> tuple[dict[tuple[str, str], Speed], list[tuple[RunRecord, Any]]]:
    """GPU speeds per (model, head) from the runs stored at `db` (none when there is no file)."""
    if not Path(db).is_file():
        return {}, []
    sums: dict[tuple[str, str], list[float]] = {}
    stored: list[tuple[RunRecord, Any]] = []
    with Store(db) as store:
        for row in store.runs():
            record: RunRecord = row["record"]
            stored.append((record, row.get("details")))
            if record.device != "cuda" or row.get("self_reported"):
                continue
            timing = store.timing(row["run_id"]) or {}
            acc = sums.setdefault((record.model_id, record.head), [0.0, 0.0, 0.0, 0.0, 0.0])
            acc[4] += 1
            if timing.get("sentences_per_second"):
                acc[0] += float(timing["sentences_per_second"])
                acc[1] += 1
            training = (row.get("details") or {}).get("training") or {}
            sentences, wall = training.get("sentences") or {}, training.get("wall_seconds")
            epochs = len(training.get("dev_f1") or [])
            if wall and epochs:
                acc[2] += epochs * (int(sentences.get("train", 0)) + int(sentences.get("dev", 0)))
                acc[3] += float(wall)
    speeds = {
        key: Speed(
            train=acc[2] / acc[3] if acc[3] else None,
            predict=acc[0] / acc[1] if acc[1] else None,
            runs=int(acc[4]),
            device="cuda",
        )
        for key, acc in sums.items()
    }
    return speeds, stored


def _splits(dataset: str, data_dir: str | None, allow_modified: bool) -> tuple[list, list, list] | None:
    """The train, dev and test sentences (None where the data is not here)."""
    from nerbench.datasets import load_split

    try:
        train, dev, test = (
            load_split(dataset, split, Path(data_dir) if data_dir else None, allow_modified=allow_modified)
            for split in ("train", "dev", "test")
        )
    except NerbenchError:
        return None
    return train.sentences, dev.sentences, test.sentences


def _used(budget: Budget | None, splits: tuple[list, list, list]) -> tuple[list, list, list]:
    """The sentences a cell uses: the budget's share of train and dev, and the whole test split."""
    train, dev, test = splits
    if budget is None:
        return [], [], test
    counted = budget.train_sentence_count(train)
    train = train if counted is None else train[:counted]
    dev = dev[: budget.max_dev_sentences] if budget.max_dev_sentences else dev
    return train, dev, test


def _trains(cell: Cell, budget: Budget | None, splits) -> tuple[str, int | None, int | None, int | None]:
    """What the cell trains, in words, and its work: train + dev sentences per epoch, epochs, test sentences."""
    from nerbench.tracks import describe_budget

    meta = _registry_meta(cell.model)
    if meta is None or budget is None:
        return "nothing (evaluated as it is)", None, None, len(splits[2]) if splits else None
    epochs = budget.epochs or meta.recipe.max_epochs
    what = f"{cell.head or 'token'}-head {meta.recipe.kind} ({budget.name}: {describe_budget(budget)})"
    if splits is None:
        return f"{what}; data not here, sentence counts unknown", None, epochs, None
    train, dev, test = (len(part) for part in _used(budget, splits))
    upto = "up to " if budget.epochs is None else ""
    return f"{what}: {train:,} train + {dev:,} dev sentences x {upto}{epochs} epochs", train + dev, epochs, test


def _peak_seconds(cell: Cell, budget: Budget | None, epochs: int | None, splits) -> float | None:
    """The cell's FLOPs at the reference GPU's peak; None for a model of unknown size or absent data."""
    from nerbench.pipeline.compute_bound import compute_bound

    meta = _registry_meta(cell.model)
    if meta is None or splits is None:
        return None
    train, dev, test = _used(budget, splits)
    bound = compute_bound(
        parameters=meta.parameters,
        recipe_kind=meta.recipe.kind if budget is not None else None,
        head=cell.head or "token",
        entity_types=get_dataset(cell.dataset).entity_types,
        train=train,
        dev=dev,
        test=test,
        epochs=epochs or 0,
    )
    return bound.seconds


def plan(
    cells: Sequence[Cell],
    shard_dir: Path,
    db: Path,
    *,
    gpus_per_cell: int = 1,
    running: Mapping[str, str] | None = None,
) -> Plan:
    """Each cell's status (shard there, run stored, still running in the job `running` names for its
    key, or to run), what it trains, and its estimated GPU time from the speeds stored GPU runs of
    the same model and head measured."""
    speeds, stored = measured_speeds(db)
    stored_ids = {record.run_id for record, _ in stored}
    splits_cache: dict[tuple[str, str | None], Any] = {}
    planned = []
    for cell in cells:
        shard = cell.shard_path(shard_dir)
        budget = _budget(cell)
        key = (cell.dataset, cell.data_dir)
        if key not in splits_cache:
            splits_cache[key] = _splits(cell.dataset, cell.data_dir, cell.allow_modified)
        trains, work, epochs, test = _trains(cell, budget, splits_cache[key])
        status: CellStatus = "to run"
        run_id = None
        if shard.is_file():
            try:
                run_id = read_shard(shard).run_id
                status = "stored" if run_id in stored_ids else "shard"
            except NerbenchError:
                status = "to run"  # a damaged shard: the cell runs again and writes it anew
        if status == "to run":
            for record, _ in stored:
                if _matches(record, cell, budget, _device(cell)):
                    status, run_id = "stored", record.run_id
                    break
        job = (running or {}).get(cell.key) if status == "to run" else None
        if job is not None:
            status = "running"  # submitted by an earlier launch, not ended: never submitted twice
        speed = speeds.get((cell.name or cell.model, cell.head or "token"))
        seconds, note, peak = None, "", None
        if speed is None or speed.predict is None or (work is not None and speed.train is None):
            note = f"no measured GPU speed stored for {cell.model} ({cell.head or 'token'} head)"
            peak = _peak_seconds(cell, budget, epochs, splits_cache[key])
        elif test is None:
            note = "data not here: sentence counts unknown, not estimated"
        else:
            training = (work or 0) * (epochs or 0) / speed.train if work and speed.train else 0.0
            seconds = training + test * PROTOCOL.repeats / speed.predict
            note = f"from {speed.runs} stored GPU run(s) of {cell.model}"
        planned.append(PlannedCell(cell, status, shard, run_id, trains, seconds, note, peak, job))
    source = (
        f"measured speeds of {sum(s.runs for s in speeds.values())} stored GPU run(s) in {db}"
        if speeds
        else f"no GPU run stored in {db}" + ("" if Path(db).is_file() else " (no such file)")
    )
    return Plan(planned, gpus_per_cell, source)


def job_environment_note() -> dict[str, Any]:
    """The scheduler's ids of the current process, from Slurm's environment (empty elsewhere)."""
    keys = ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME")
    return {key.lower(): os.environ[key] for key in keys if key in os.environ}
