"""`nerbench eval`: for each dataset, fine-tune where needed, predict the test split under the
timing protocol, score, and store the run — one transaction per dataset.

One loop for every way of tagging: the tagger (nerbench.pipeline.taggers) says how the model is
trained, loaded and described; this module never asks which family or head it has. Generative
tagging on a CPU is slow (SmolLM2-135M: well under one sentence per second), and the test split is
never cut short.

Models built from a config with random weights (their config.json says `nerbench_random_init`, as
the test helpers write it) are refused: their F1 is noise, never a result. Only tests pass
`allow_random_init`.

The flow is one-way: dataset registry -> (training) -> predictor -> timed predictions -> scores ->
store. A run's identity is its record (nerbench.record.RunRecord); a dataset whose record is
already stored is skipped, so an interrupted eval resumes where it stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from nerbench import __version__, scoring
from nerbench.datasets import DEFAULT_SUITE, get_dataset, load_split
from nerbench.environment import environment
from nerbench.errors import NerbenchError
from nerbench.pipeline.checkpoints import (
    checkpoint_dir,
    clear_identity,
    is_trained,
    read_training_record,
    weights_sha256,
    write_identity,
)
from nerbench.pipeline.profiles import check_profile, profile_for
from nerbench.pipeline.taggers import Request, Tagger, select_tagger
from nerbench.protocol import PROTOCOL
from nerbench.record import Bootstrap, Budget, RunRecord, Training, Weights
from nerbench.scoring import BOOTSTRAP_DRAW, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from nerbench.store import RunResult, Store, predictions_sha256
from nerbench.timing import Progress, busy_note, run_timed

RANDOM_INIT_MARKER = "nerbench_random_init"


@dataclass
class EvalOptions:
    datasets: Sequence[str] = DEFAULT_SUITE
    profile: str = "paper"
    seed: int = 0
    seeds: int = 1  # train and store seeds seed, seed + 1, ..., seed + seeds - 1 (registry models)
    label_policy: str | None = None  # None: the recipe's (first sub-token)
    data_dir: Path | None = None
    db: Path = Path("nerbench.duckdb")
    runs_dir: Path = Path("runs")
    device: str | None = None
    price_per_hour: float | None = None
    force: bool = False
    allow_modified: bool = False
    revision: str | None = None
    trust_remote_code: bool = False
    name: str | None = None  # model id to store for a folder or hub model
    head: str | None = None  # LLMs: "token" or "generative"; None: the recipe's (token) or the adapter's
    quantize: str | None = None  # LLMs: "none" / "nf4" base while training; None: nf4 on CUDA, none on CPU
    word_position: str | None = None  # LLM token head; None: the recipe's ("first")
    # Each serving condition is its own run (nerbench.record.Serving); one checkpoint serves them all.
    servings: Sequence[str] = ("as-trained",)
    allow_random_init: bool = False  # tests only: store runs of random-weight models
    # A budget in place of the profile's (a cell run elsewhere carries its own: nerbench.pipeline.cells).
    budget: Budget | None = None
    # Where each run is saved: None, the store at `db`; a cell's shard file (nerbench.pipeline.cells).
    sink: RunSink | None = None


@dataclass
class EvalOutcome:
    dataset: str
    status: str  # "stored" | "skipped"
    run_id: str
    strict_f1: float | None = None
    long_f1: float | None = None
    sentences_per_second: float | None = None
    cost_usd: float | None = None
    trained: bool = False
    details: dict = field(default_factory=dict)
    profile: str | None = None  # the training profile; None for a model evaluated as it is
    seed: int | None = None  # the training seed (None: evaluated as it is)
    serving: str = "as-trained"


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


_HUB_SNAPSHOT = re.compile(r"models--(?P<org>[^/]+?)--(?P<name>[^/]+)/snapshots/(?P<revision>[0-9a-f]{40})/?$")


def hub_origin(path: str | Path) -> tuple[str, str] | None:
    """The hub id and commit of a folder that is a snapshot in a Hugging Face cache
    (`models--org--name/snapshots/<commit>`), as `reproduce` fetches a submission's adapter; else None."""
    match = _HUB_SNAPSHOT.search(Path(path).as_posix())
    return (f"{match['org']}/{match['name']}", match["revision"]) if match else None


def weights_of(ref) -> Weights:
    """The weights' identity in the run record. A registry entry is pinned by the catalogue (its
    package or hub revision); anything else by the digest of its safetensors files. Folders are
    named by their last part only: where they happen to be is no part of what was evaluated; a
    folder that is a hub snapshot is named by its hub id and commit."""
    name = Path(ref.name).name if ref.source in ("folder", "adapter") else ref.name
    hf_id, revision = ref.hf_id, ref.revision
    origin = hub_origin(ref.path) if ref.source in ("folder", "adapter") and hf_id is None else None
    if origin is not None:
        name, (hf_id, revision) = origin[0], origin
    return Weights(
        name=name,
        source=ref.source,
        hf_id=hf_id,
        revision=revision,
        registry_id=ref.meta.id if ref.meta else None,
        package=ref.meta.package.requirement if ref.meta and ref.meta.package else None,
        sha256=None if ref.source == "registry" else weights_sha256(ref.path),
        base=weights_of(ref.base) if ref.base is not None else None,
    )


def model_id_of(ref, name: str | None = None) -> str:
    """The id results are stored under: the given name, the registry id, the hub id, or the folder's name."""
    if name:
        return name
    if ref.meta is not None:
        return ref.meta.id
    if ref.source == "hub":
        return ref.hf_id
    return Path(ref.path).resolve().name


def training_identity(tagger: Tagger, base: Weights, dataset: str, budget, seed: int) -> Training:
    return Training(
        base=base,
        dataset=dataset,
        head=tagger.head,
        quantization=tagger.training_quantization,
        budget=budget,
        recipe=tagger.effective_recipe(budget),
        seed=seed,
    )


@dataclass(frozen=True)
class _Context:
    """What every dataset of one `evaluate` call shares."""

    tagger: Tagger
    model_id: str
    weights: Weights
    options: EvalOptions
    store: RunSink
    say: Say
    training_progress: Callable | None
    prediction_progress: Progress | None = None  # run_timed's: (phase, sentences done, total)

    @property
    def profile_name(self) -> str | None:
        return self.options.profile if self.tagger.fine_tune else None

    def split(self, info, name: str):
        return load_split(info.name, name, self.options.data_dir, allow_modified=self.options.allow_modified)


@dataclass(frozen=True)
class _Checkpoint:
    """The weights a dataset was predicted with, and whether this eval trained them."""

    folder: Path | None = None  # the fine-tuned folder; None for a model evaluated as it is
    training: dict | None = None  # its training record
    trained_now: bool = False


def _refuse_random_init(ref) -> None:
    from nerbench.models.registry import read_config

    for folder in (ref.path, ref.base.path if ref.base is not None else None):
        if folder is None or not (Path(folder) / "config.json").is_file():
            continue
        if read_config(Path(folder) / "config.json").get(RANDOM_INIT_MARKER):
            raise NerbenchError(
                f"{Path(folder) / 'config.json'}: {RANDOM_INIT_MARKER} is set: the model was built "
                "from a config with random weights, and its scores are never stored as results"
            )


def _model_meta(ref, model_id: str, parameters: int | None, family: str) -> dict:
    if ref.meta is not None:
        return ref.meta.model_dump(mode="json")
    return {
        "id": model_id,
        "family": family,
        "hf_id": ref.hf_id,
        "revision": ref.revision,
        "parameters": parameters,
        "licence": None,
        "source": ref.source,
    }


def default_device() -> str:
    from nerbench.models.encoder import default_device as torch_default

    return torch_default()


def evaluate(
    model: str,
    options: EvalOptions,
    *,
    say: Say = _quiet,
    training_progress=None,
    prediction_progress: Progress | None = None,
) -> list[EvalOutcome]:
    """Evaluate MODEL on each dataset; returns what was stored or skipped, in order.

    `training_progress` hears of every training step and epoch (nerbench.models.training.TrainingProgress);
    `prediction_progress(phase, done, total)` of every batch of the warm-up and the timed passes."""
    from nerbench.models.registry import resolve_model

    check_profile(options.profile)
    if not options.datasets:
        raise NerbenchError("--dataset: no dataset to evaluate on")
    if options.seeds < 1:
        raise NerbenchError(f"--seeds: {options.seeds} is not a number of seeds (1 or more)")
    infos = [get_dataset(name) for name in options.datasets]  # unknown names fail before any work
    ref = resolve_model(model, options.revision)
    if not options.allow_random_init:
        _refuse_random_init(ref)
    # A registry entry is a pretrained base that is fine-tuned per dataset; a folder, hub model or
    # adapter is evaluated as it is, so its weights are part of the record.
    fine_tune = ref.meta is not None
    request = Request(
        device=options.device or default_device(),
        head=options.head,
        quantize=options.quantize,
        label_policy=options.label_policy,
        trust_remote_code=options.trust_remote_code,
        word_position=options.word_position,
        data_dir=options.data_dir,
        allow_modified=options.allow_modified,
    )
    if options.seeds > 1 and not fine_tune:
        raise NerbenchError(
            f"--seeds {options.seeds}: {model} is evaluated as it is (nerbench does not train it), so every seed "
            "would be the same run; seeds apply to registry models, which eval fine-tunes"
        )
    if not options.servings:
        raise NerbenchError("--serving: no serving condition to evaluate")
    servings = list(dict.fromkeys(options.servings))
    taggers = [select_tagger(ref, replace(request, serving=serving), fine_tune=fine_tune) for serving in servings]
    weights = weights_of(ref)
    if options.sink is None:
        Store(options.db).close()  # a database that cannot be opened fails before any training
    outcomes = []
    # Each seed is its own training identity, checkpoint and run (seed is part of the run record);
    # each serving condition is its own run of the same checkpoint, trained once.
    for seed in range(options.seed, options.seed + options.seeds):
        seeded = replace(options, seed=seed)
        contexts = [
            _Context(
                tagger,
                model_id_of(ref, options.name),
                weights,
                seeded,
                options.sink or _BriefStore(options.db),
                say,
                training_progress,
                prediction_progress,
            )
            for tagger in taggers
        ]
        for info in infos:
            for context in contexts:
                outcome = _evaluate_dataset(context, info)
                outcome.seed = seed if fine_tune else None
                outcome.serving = context.tagger.serving
                outcomes.append(outcome)
    return outcomes


class RunSink(Protocol):
    """Where an eval saves its runs: the store (_BriefStore) or a cell's shard file."""

    def has_run(self, run_id: str) -> bool: ...

    def save_run(self, result: RunResult, *, replaces: str | None = None) -> str: ...


class _BriefStore:
    """The results database, opened only for each lookup and each save. An eval trains and predicts
    for minutes or hours; holding DuckDB's file lock all that time would lock out `nerbench
    results`, `ingest` and other evals."""

    def __init__(self, path: Path):
        self.path = path

    def has_run(self, run_id: str) -> bool:
        with Store(self.path) as store:
            return store.has_run(run_id)

    def save_run(self, result: RunResult, **kwargs) -> str:
        with Store(self.path) as store:
            return store.save_run(result, **kwargs)


def run_record(context: _Context, info, test, training: Training | None) -> RunRecord:
    tagger = context.tagger
    return RunRecord(
        model_id=context.model_id,
        family=tagger.family,
        dataset=info.name,
        dataset_sha256=test.sha256,
        modified_dataset=test.modified,
        weights=context.weights,
        head=tagger.head,
        quantization=tagger.quantization,
        label_policy=tagger.label_policy,
        serving=tagger.serving,
        training=training,
        lora=tagger.lora(),
        decoding=tagger.decoding(),
        batch_size=tagger.batch_size,
        device=tagger.request.device.split(":")[0],
        precision=tagger.precision,
        protocol=PROTOCOL,
        bootstrap=Bootstrap(
            resamples=BOOTSTRAP_RESAMPLES,
            seed=BOOTSTRAP_SEED,
            unit="document" if test.documents else "sentence",
            draw=BOOTSTRAP_DRAW,
        ),
        nerbench_version=__version__,
    )


def _evaluate_dataset(context: _Context, info) -> EvalOutcome:
    tagger, options, say = context.tagger, context.options, context.say
    test = context.split(info, "test")
    training = None
    if tagger.fine_tune:
        budget = options.budget or profile_for(options.profile, tagger.family, tagger.head)
        training = training_identity(tagger, context.weights, info.name, budget, options.seed)
    record = run_record(context, info, test, training)
    stored = context.store.has_run(record.run_id)
    if stored and not options.force:
        say(f"{info.name}: already stored as run {record.run_id} (same model and configuration); skipped")
        return EvalOutcome(info.name, "skipped", record.run_id, profile=context.profile_name)

    checkpoint = _Checkpoint()
    if training is not None:
        checkpoint = _fine_tuned(context, info, training)
    elif tagger.ref.source == "adapter":
        checkpoint = _Checkpoint(
            training=read_training_record(tagger.ref.path) if (tagger.ref.path / "training.json").is_file() else None
        )
    slow = " (generative tagging: slow on a CPU)" if tagger.head == "generative" and record.device != "cuda" else ""
    served = f", served {tagger.serving}" if tagger.family == "llm" or tagger.serving != "as-trained" else ""
    say(
        f"{info.name}: predicting {len(test.sentences)} test sentences with the {tagger.head} head{slow}{served} "
        f"({PROTOCOL.warmup_batches} warm-up batches, {PROTOCOL.repeats} timed passes)"
    )
    predictor = tagger.load_predictor(checkpoint.folder if training is not None else None, info)
    timed = tagger.timed(predictor)
    tokens = [s.tokens for s in test.sentences]
    predictions, timing = run_timed(
        timed, tokens, price_per_hour=options.price_per_hour, progress=context.prediction_progress
    )
    timing, details = tagger.pass_details(timed, predictor, tokens, timing)
    return _score_and_store(context, info, test, record, stored, checkpoint, predictor, predictions, timing, details)


def _fine_tuned(context: _Context, info, training: Training) -> _Checkpoint:
    """The checkpoint of exactly this training identity: reused when finished, else trained now."""
    options, say = context.options, context.say
    folder = checkpoint_dir(options.runs_dir, context.model_id, training)
    if is_trained(folder, training) and not options.force:
        say(f"{info.name}: using the fine-tuned checkpoint in {folder}")
        return _Checkpoint(folder, read_training_record(folder), False)
    say(
        f"{info.name}: no fine-tuned {training.head}-head checkpoint of {context.model_id} with this recipe yet: "
        f"training it ({training.budget.name} profile, seed {training.seed}) into {folder}"
    )
    train, dev = context.split(info, "train"), context.split(info, "dev")
    clear_identity(folder)
    context.tagger.train(folder, training.budget, training.seed, info, train, dev, context.training_progress)
    write_identity(folder, training)
    return _Checkpoint(folder, read_training_record(folder), True)


def _score_and_store(
    context: _Context,
    info,
    test,
    record: RunRecord,
    stored: bool,
    checkpoint: _Checkpoint,
    predictor,
    predictions,
    timing,
    details: dict,
) -> EvalOutcome:
    """Score the timed predictions and store the run (one transaction); the same for every tagger."""
    digest = predictions_sha256(predictions)  # the tags scored and stored are the timed pass's
    gold = [list(s.tags) for s in test.sentences]
    scores = scoring.score(
        gold,
        predictions,
        types=info.entity_types,
        bootstrap=BOOTSTRAP_RESAMPLES,
        seed=BOOTSTRAP_SEED,
        units=test.documents,
    )
    parameters = sum(p.numel() for p in predictor.model.parameters())
    details = details | {
        "training": checkpoint.training,
        "ill_formed": scores.ill_formed,
        "checkpoint": str(checkpoint.folder) if checkpoint.folder is not None else None,
        "parameters_evaluated": parameters,
    }
    result = RunResult(
        model=_model_meta(context.tagger.ref, context.model_id, parameters, context.tagger.family),
        record=record,
        predictions=predictions,
        predictions_sha256=digest,
        metrics=scores.metric_rows(),
        timing=timing.to_dict(),
        environment=environment(),
        details=details,
    )
    run_id = context.store.save_run(result, replaces=record.run_id if stored else None)
    parse = (details.get("generation") or {}).get("parse")
    extra = (
        (
            f"; parse: {parse['missing']} missing, {parse['extra']} extra, {parse['renamed']} renamed, "
            f"{parse['malformed']} malformed lines"
        )
        if parse
        else ""
    )
    context.say(
        f"{info.name}: stored run {run_id}: strict F1 {scores.strict.f1:.4f}, long-entity F1 "
        f"{scores.long_f1:.4f}, {timing.sentences_per_second:.2f} sentences/s{extra}"
    )
    busy = busy_note(timing.load)
    if busy is not None:
        context.say(f"{info.name}: warning: {busy}")
    return EvalOutcome(
        info.name,
        "stored",
        run_id,
        scores.strict.f1,
        scores.long_f1,
        timing.sentences_per_second,
        timing.cost_usd,
        checkpoint.trained_now,
        details,
        context.profile_name,
    )
