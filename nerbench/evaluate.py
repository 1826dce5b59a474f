"""`nerbench eval`: for each dataset, fine-tune where needed, predict the test split under the
timing protocol, score, and store the run — one transaction per dataset.

The flow is one-way: dataset registry -> (training) -> predictor -> timed predictions -> scores
-> store. A run's identity is its configuration (model, weights, profile, seed, label policy,
batch size, device, precision, protocol, test-split sha256); a dataset whose configuration is
already stored is skipped, so an interrupted eval resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from nerbench import __version__, scoring
from nerbench.datasets import DEFAULT_SUITE, get_dataset, load_split
from nerbench.environment import environment
from nerbench.errors import NerbenchError
from nerbench.store import RunRecord, Store, config_hash, predictions_sha256
from nerbench.timing import ENCODER, PROTOCOL, run_timed

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class TrainingProfile:
    """How much of the registered recipe a registry model is fine-tuned with before evaluation.

    "paper" is the recipe itself (up to 20 epochs, early stopping on dev strict F1). "quick" is a
    CPU-sized budget for the offline defaults: one epoch on the first sentences of train, dev F1
    on the first sentences of dev, and a higher learning rate — one short epoch at the recipe's
    2e-5 left MiniLM tagging everything O (dev strict F1 0.0 on NCBI-disease after 1,500
    sentences). The profile is part of every run's configuration.
    """

    name: str
    epochs: int | None = None  # None: the recipe's maximum
    learning_rate: float | None = None  # None: the recipe's
    max_train_sentences: int | None = None
    max_dev_sentences: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "paper": TrainingProfile("paper"),
    "quick": TrainingProfile("quick", epochs=1, learning_rate=1e-4, max_train_sentences=2000, max_dev_sentences=300),
}


@dataclass
class EvalOptions:
    datasets: Sequence[str] = DEFAULT_SUITE
    profile: str = "paper"
    seed: int = 0
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


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def weights_sha256(folder: Path) -> str:
    """One digest over the folder's safetensors files (name and content), to pin what was evaluated."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checkpoint_dir(runs_dir: Path, model_id: str, dataset: str, profile: str) -> Path:
    """Where `eval` keeps the fine-tuned checkpoint of a registry model: the folder `nerbench
    train` writes by default for the paper profile, a sibling `<dataset>@<profile>` otherwise."""
    base = runs_dir / model_id / dataset
    return base if profile == "paper" else base.with_name(f"{dataset}@{profile}")


def _is_trained(folder: Path) -> bool:
    # training.json is written after the weights, so its presence marks a finished training.
    return (folder / "training.json").is_file() and any(folder.glob("*.safetensors"))


def _model_meta(ref, model_id: str, parameters: int | None) -> dict:
    if ref.meta is not None:
        meta = ref.meta.model_dump(mode="json")
        return meta
    return {
        "id": model_id,
        "family": ENCODER,
        "hf_id": ref.hf_id,
        "revision": ref.revision,
        "parameters": parameters,
        "licence": None,
        "source": ref.source,
    }


def _model_id(ref, options: EvalOptions) -> str:
    if options.name:
        return options.name
    if ref.meta is not None:
        return ref.meta.id
    if ref.source == "hub":
        return ref.hf_id
    return Path(ref.path).resolve().name


def evaluate(model: str, options: EvalOptions, *, say: Say = _quiet, training_progress=None) -> list[EvalOutcome]:
    """Evaluate MODEL on each dataset; returns what was stored or skipped, in order."""
    from nerbench.models.registry import resolve_model

    if options.profile not in PROFILES:
        raise NerbenchError(f"--profile: unknown profile {options.profile!r} (known: {', '.join(PROFILES)})")
    if not options.datasets:
        raise NerbenchError("--dataset: no dataset to evaluate on")
    infos = [get_dataset(name) for name in options.datasets]  # unknown names fail before any work
    ref = resolve_model(model, options.revision)
    if ref.meta is not None and ref.meta.family != ENCODER:
        raise NerbenchError(f"model {model!r} is an {ref.meta.family}: `eval` supports encoders for now")
    model_id = _model_id(ref, options)
    # A registry entry is a pretrained base that is fine-tuned per dataset; a folder or hub model
    # is evaluated as it is, so its weights are part of the configuration.
    fine_tune = ref.meta is not None
    base_weights = None if fine_tune else weights_sha256(ref.path)

    outcomes = []
    with Store(options.db) as store:
        for info in infos:
            outcomes.append(
                _evaluate_dataset(ref, model_id, fine_tune, base_weights, info, options, store, say, training_progress)
            )
    return outcomes


def _run_config(ref, fine_tune: bool, base_weights: str | None, test, options: EvalOptions, device: str,
                label_policy: str) -> dict:
    return {
        "task": "ner-bio",
        "split": "test",
        "model": ref.describe(),
        "weights_sha256": base_weights,
        "fine_tuned_by_eval": fine_tune,
        "profile": PROFILES[options.profile].to_dict() if fine_tune else None,
        "seed": options.seed,
        "head": "token",
        "label_policy": label_policy,
        "batch_size": PROTOCOL.batch_size(ENCODER),
        "device": device.split(":")[0],
        "precision": PROTOCOL.precision(ENCODER, device=device),
        "dataset_sha256": test.sha256,
        "modified_dataset": test.modified,
        "protocol": PROTOCOL.to_dict(),
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
    }


def _evaluate_dataset(ref, model_id, fine_tune, base_weights, info, options, store, say, training_progress):
    from nerbench.models.encoder import EncoderPredictor, default_device
    from nerbench.models.training import train_encoder

    device = options.device or default_device()
    recipe_policy = ref.meta.recipe.label_policy if ref.meta is not None else "first"
    label_policy = options.label_policy or recipe_policy
    test = load_split(info.name, "test", options.data_dir, allow_modified=options.allow_modified)
    config = _run_config(ref, fine_tune, base_weights, test, options, device, label_policy)
    existing = store.find_run(model_id, info.name, config_hash(config))
    if existing is not None and not options.force:
        say(f"{info.name}: already stored as run {existing} (same model and configuration); skipped")
        return EvalOutcome(info.name, "skipped", existing)

    trained, training = False, None
    checkpoint = ref.path
    if fine_tune:
        checkpoint = checkpoint_dir(options.runs_dir, model_id, info.name, options.profile)
        if _is_trained(checkpoint) and not options.force:
            say(f"{info.name}: using the fine-tuned checkpoint in {checkpoint}")
        else:
            profile = PROFILES[options.profile]
            say(f"{info.name}: no fine-tuned checkpoint of {model_id} yet: training it "
                f"({profile.name} profile) into {checkpoint}")
            train = load_split(info.name, "train", options.data_dir, allow_modified=options.allow_modified)
            dev = load_split(info.name, "dev", options.data_dir, allow_modified=options.allow_modified)
            dev_sentences = dev.sentences[: profile.max_dev_sentences] if profile.max_dev_sentences else dev.sentences
            train_encoder(
                ref, train.sentences, dev_sentences, info.labels, ref.meta.recipe, checkpoint,
                epochs=profile.epochs, lr=profile.learning_rate, max_train_sentences=profile.max_train_sentences, seed=options.seed,
                progress=training_progress, dataset=info.name,
                data_sha256={"train": train.sha256, "dev": dev.sha256}, device=device, overwrite=True,
                trust_remote_code=options.trust_remote_code,
            )
            trained = True
        training = _read_training_record(checkpoint)

    say(f"{info.name}: predicting {len(test.sentences)} test sentences "
        f"({PROTOCOL.warmup_batches} warm-up batches, {PROTOCOL.repeats} timed passes)")
    predictor = EncoderPredictor.load(
        checkpoint, info.labels, device=device, label_policy=label_policy,
        trust_remote_code=options.trust_remote_code,
    )
    tokens = [s.tokens for s in test.sentences]
    predictions, timing = run_timed(predictor, tokens, price_per_hour=options.price_per_hour)
    # The tags that are scored and stored are the timed pass's, hashed once here.
    digest = predictions_sha256(predictions)
    gold = [list(s.tags) for s in test.sentences]
    scores = scoring.score(gold, predictions, types=info.entity_types,
                           bootstrap=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    parameters = sum(p.numel() for p in predictor.model.parameters())
    details = {
        "training": training,
        "alignment": _alignment(predictor, tokens),
        "ill_formed": scores.ill_formed,
        "checkpoint": str(checkpoint) if fine_tune else None,
        "parameters_evaluated": parameters,
        "nerbench_version": __version__,
    }
    record = RunRecord(
        model=_model_meta(ref, model_id, parameters),
        dataset=info.name,
        split="test",
        config=config,
        dataset_sha256=test.sha256,
        modified=test.modified,
        predictions=predictions,
        predictions_sha256=digest,
        metrics=scores.metric_rows(),
        timing=timing.to_dict(),
        environment=environment(),
        details=details,
    )
    run_id = store.save_run(record, replaces=existing if options.force else None)
    say(f"{info.name}: stored run {run_id}: strict F1 {scores.strict.f1:.4f}, long-entity F1 "
        f"{scores.long_f1:.4f}, {timing.sentences_per_second:.1f} sentences/s")
    return EvalOutcome(
        info.name, "stored", run_id, scores.strict.f1, scores.long_f1, timing.sentences_per_second,
        timing.cost_usd, trained, details,
    )


def _read_training_record(folder: Path) -> dict | None:
    path = folder / "training.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NerbenchError(f"{path}: unreadable training record ({err})") from None


def _alignment(predictor, tokens) -> dict:
    """Windows and untaggable words of the test split, counted once (not per timed pass)."""
    from nerbench.models.align import encode
    from nerbench.models.encoder import AlignmentStats

    stats = AlignmentStats()
    stats.add(encode(tokens, predictor.tokenizer, predictor.max_length, predictor.overlap))
    return asdict(stats)
