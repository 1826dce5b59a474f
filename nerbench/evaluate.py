"""`nerbench eval`: for each dataset, fine-tune where needed, predict the test split under the
timing protocol, score, and store the run — one transaction per dataset.

Encoders and LLMs go through the same flow. LLMs have two heads: "token" (a classification head
with LoRA, one forward pass per window) and "generative" (the paper's `token:TAG` lines, greedy
decoding); the run's configuration records the head, the quantization, the LoRA settings and the
generation settings, and a generative run stores the generation statistics and parse counts of
exactly one timed pass. Generative tagging on a CPU is slow (SmolLM2-135M: well under one
sentence per second), and the test split is never cut short.

Models built from a config with random weights (their config.json says `nerbench_random_init`,
as the test helpers write it) are refused: their F1 is noise, never a result. Only tests pass
`allow_random_init`.

The flow is one-way: dataset registry -> (training) -> predictor -> timed predictions -> scores
-> store. A run's identity is its configuration (model, weights, profile, seed, label policy,
batch size, device, precision, protocol, test-split sha256); a dataset whose configuration is
already stored is skipped, so an interrupted eval resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from nerbench import __version__, scoring
from nerbench.datasets import DEFAULT_SUITE, get_dataset, load_split
from nerbench.environment import environment
from nerbench.errors import NerbenchError
from nerbench.store import RunRecord, Store, config_hash, predictions_sha256
from nerbench.timing import ENCODER, LLM, NF4, PROTOCOL, run_timed

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class TrainingProfile:
    """How much of the registered recipe a registry model is fine-tuned with before evaluation.

    "paper" is the recipe itself (up to 20 epochs, early stopping on dev strict F1). "quick" is a
    CPU-sized budget for the offline defaults: one epoch on the first sentences of train (at most
    a number of sentences and of word tokens, whichever ends first — training time follows
    tokens, and BioRED's abstract-long sentences have four times the tokens of the others), dev F1
    on the first sentences of dev, and a higher learning rate — one short epoch at the recipe's
    2e-5 left MiniLM tagging everything O (dev strict F1 0.0 on NCBI-disease after 1,500
    sentences). The profile is part of every run's configuration.
    """

    name: str
    epochs: int | None = None  # None: the recipe's maximum
    learning_rate: float | None = None  # None: the recipe's
    max_train_sentences: int | None = None
    max_train_tokens: int | None = None  # word tokens
    max_dev_sentences: int | None = None
    gradient_accumulation_steps: int | None = None  # LLMs; None: the recipe's

    def to_dict(self) -> dict:
        return asdict(self)

    def train_sentence_count(self, sentences: Sequence) -> int | None:
        """How many of the first training sentences the budget allows (None: all of them).

        The sentence that would cross the token budget is left out, but at least one is kept.
        """
        if self.max_train_tokens is None:
            return self.max_train_sentences
        limit = len(sentences) if self.max_train_sentences is None else min(self.max_train_sentences, len(sentences))
        used = count = 0
        for sentence in sentences[:limit]:
            used += len(sentence.tokens)
            if used > self.max_train_tokens:
                break
            count += 1
        return max(count, 1)

    def dev_slice(self, sentences: Sequence) -> Sequence:
        return sentences[: self.max_dev_sentences] if self.max_dev_sentences else sentences


PROFILES = {
    "paper": TrainingProfile("paper"),
    # lr chosen on the quick dev slices (MiniLM-L6, seed 0; test never looked at): mean dev strict
    # F1 over the five default sets 0.424 at 1e-4, 0.489 at 4e-4 (JNLPBA 0.256 -> 0.461, BC5CDR
    # 0.618 -> 0.691, NCBI-disease 0.683 -> 0.745, ChemProt 0.355 -> 0.354, BioRED 0.208 -> 0.195).
    "quick": TrainingProfile("quick", epochs=1, learning_rate=4e-4, max_train_sentences=2000, max_train_tokens=40_000,
                             max_dev_sentences=300),
}

# The quick profile for LLMs, sized for a CPU. The token head gets the encoders' quick budget
# (same train and dev sentences, one epoch), so the two families compare on equal data;
# SmolLM2-135M LoRA (r=128) trains at ~2.3 sentences/s on 2 cores, ~11 minutes per dataset. A generative dev
# pass runs at well under one sentence/s, so the generative budget is smaller. LoRA takes 2e-4
# (5x the recipe's 4e-5) and no accumulation, so one short epoch has enough optimizer steps to move.
LLM_PROFILES = {
    ("quick", "token"): TrainingProfile("quick", epochs=1, learning_rate=2e-4, max_train_sentences=2000,
                                        max_train_tokens=40_000, max_dev_sentences=300, gradient_accumulation_steps=1),
    ("quick", "generative"): TrainingProfile("quick", epochs=1, learning_rate=2e-4, max_train_sentences=300,
                                             max_dev_sentences=20, gradient_accumulation_steps=1),
}


def profile_for(name: str, family: str, head: str | None) -> TrainingProfile:
    if family == LLM and (name, head) in LLM_PROFILES:
        return LLM_PROFILES[(name, head)]
    return PROFILES[name]


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
    head: str | None = None  # LLMs: "token" or "generative"; None: the recipe's (token) or the adapter's
    quantize: str | None = None  # LLMs: "none" / "nf4" base while training; None: nf4 on CUDA, none on CPU
    allow_random_init: bool = False  # tests only: store runs of random-weight models


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


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class _Context:
    """What every dataset of one `evaluate` call shares."""

    ref: object  # nerbench.models.registry.ResolvedModel
    model_id: str
    family: str
    fine_tune: bool  # a registry base, fine-tuned per dataset; otherwise evaluated as it is
    base_weights: str | None  # the weights' sha256 when evaluated as they are
    options: EvalOptions
    store: "_BriefStore"
    say: Say
    training_progress: object

    @property
    def profile_name(self) -> str | None:
        return self.options.profile if self.fine_tune else None

    def split(self, info, name: str):
        return load_split(info.name, name, self.options.data_dir, allow_modified=self.options.allow_modified)


@dataclass(frozen=True)
class _Checkpoint:
    """The weights a dataset was predicted with, and whether this eval trained them."""

    folder: str | None = None  # the fine-tuned folder; None for a model evaluated as it is
    training: dict | None = None  # its training record
    trained_now: bool = False


def weights_sha256(folder: Path) -> str:
    """One digest over the folder's safetensors files (name and content), to pin what was evaluated."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.safetensors")):
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checkpoint_dir(runs_dir: Path, model_id: str, dataset: str, profile: str, head: str = "token") -> Path:
    """Where `eval` keeps the fine-tuned checkpoint of a registry model: the folder `nerbench
    train` writes by default for the paper profile, a sibling `<dataset>@<profile>` otherwise
    (`<dataset>-generative...` for the generative head of an LLM)."""
    name = dataset if head == "token" else f"{dataset}-generative"
    return runs_dir / model_id / (name if profile == "paper" else f"{name}@{profile}")


RANDOM_INIT_MARKER = "nerbench_random_init"


def _refuse_random_init(ref) -> None:
    for folder in (ref.path, ref.base.path if ref.base is not None else None):
        if folder is None or not (Path(folder) / "config.json").is_file():
            continue
        from nerbench.models.registry import read_config

        if read_config(Path(folder) / "config.json").get(RANDOM_INIT_MARKER):
            raise NerbenchError(
                f"{Path(folder) / 'config.json'}: {RANDOM_INIT_MARKER} is set: the model was built "
                "from a config with random weights, and its scores are never stored as results"
            )


def _is_trained(folder: Path) -> bool:
    # training.json is written after the weights, so its presence marks a finished training.
    return (folder / "training.json").is_file() and any(folder.glob("*.safetensors"))


def _model_meta(ref, model_id: str, parameters: int | None, family: str) -> dict:
    if ref.meta is not None:
        meta = ref.meta.model_dump(mode="json")
        return meta
    return {
        "id": model_id,
        "family": family,
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
    from nerbench.models.training import is_llm

    if options.profile not in PROFILES:
        raise NerbenchError(f"--profile: unknown profile {options.profile!r} (known: {', '.join(PROFILES)})")
    if not options.datasets:
        raise NerbenchError("--dataset: no dataset to evaluate on")
    infos = [get_dataset(name) for name in options.datasets]  # unknown names fail before any work
    ref = resolve_model(model, options.revision)
    if not options.allow_random_init:
        _refuse_random_init(ref)
    family = LLM if is_llm(ref) else ENCODER
    if family == ENCODER and (options.head not in (None, "token") or options.quantize is not None):
        raise NerbenchError(f"--head / --quantize: apply to LLMs only; {model!r} is an encoder")
    if options.head not in (None, "token", "generative"):
        raise NerbenchError(f"--head: must be 'token' or 'generative', not {options.head!r}")
    model_id = _model_id(ref, options)
    # A registry entry is a pretrained base that is fine-tuned per dataset; a folder, hub model or
    # adapter is evaluated as it is, so its weights are part of the configuration.
    fine_tune = ref.meta is not None
    base_weights = None if fine_tune else weights_sha256(ref.path)

    Store(options.db).close()  # a database that cannot be opened fails before any training
    context = _Context(ref, model_id, family, fine_tune, base_weights, options, _BriefStore(options.db), say,
                       training_progress)
    evaluate_dataset = _evaluate_llm_dataset if family == LLM else _evaluate_encoder_dataset
    return [evaluate_dataset(context, info) for info in infos]


class _BriefStore:
    """The results database, opened only for each lookup and each save. An eval trains and predicts
    for minutes or hours; holding DuckDB's file lock all that time would lock out `nerbench
    results`, `ingest` and other evals."""

    def __init__(self, path: Path):
        self.path = path

    def find_run(self, *args) -> str | None:
        with Store(self.path) as store:
            return store.find_run(*args)

    def save_run(self, record: RunRecord, **kwargs) -> str:
        with Store(self.path) as store:
            return store.save_run(record, **kwargs)


def _run_config(context: _Context, test, device: str, *, profile: TrainingProfile, head: str,
                label_policy: str | None, precision: str, llm: dict | None = None) -> dict:
    """The run's identity: a dataset whose configuration is already stored is skipped."""
    config = {
        "task": "ner-bio",
        "split": "test",
        "model": context.ref.describe(),
        "weights_sha256": context.base_weights,
        "fine_tuned_by_eval": context.fine_tune,
        "profile": profile.to_dict() if context.fine_tune else None,
        "seed": context.options.seed,
        "head": head,
        "label_policy": label_policy,
        "batch_size": PROTOCOL.batch_size(context.family),
        "device": device.split(":")[0],
        "precision": precision,
        "dataset_sha256": test.sha256,
        "modified_dataset": test.modified,
        "protocol": PROTOCOL.to_dict(),
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
    }
    if llm is not None:
        config["llm"] = llm
    return config


def _stored_run(context: _Context, info, config: dict) -> str | None:
    """The stored run of this configuration: skipped, or replaced with --force."""
    return context.store.find_run(context.model_id, info.name, config_hash(config))


def _skip(context: _Context, info, existing: str) -> EvalOutcome:
    context.say(f"{info.name}: already stored as run {existing} (same model and configuration); skipped")
    return EvalOutcome(info.name, "skipped", existing, profile=context.profile_name)


def _evaluate_encoder_dataset(context: _Context, info) -> EvalOutcome:
    from nerbench.models.encoder import EncoderPredictor, default_device
    from nerbench.models.training import train_encoder

    ref, options, say = context.ref, context.options, context.say
    device = options.device or default_device()
    recipe_policy = ref.meta.recipe.label_policy if ref.meta is not None else "first"
    label_policy = options.label_policy or recipe_policy
    profile = PROFILES[options.profile]
    test = context.split(info, "test")
    config = _run_config(context, test, device, profile=profile, head="token", label_policy=label_policy,
                         precision=PROTOCOL.precision(ENCODER, device=device))
    existing = _stored_run(context, info, config)
    if existing is not None and not options.force:
        return _skip(context, info, existing)

    checkpoint, folder = _Checkpoint(), ref.path
    if context.fine_tune:
        folder = checkpoint_dir(options.runs_dir, context.model_id, info.name, options.profile)
        trained_now = False
        if _is_trained(folder) and not options.force:
            say(f"{info.name}: using the fine-tuned checkpoint in {folder}")
        else:
            say(f"{info.name}: no fine-tuned checkpoint of {context.model_id} yet: training it "
                f"({profile.name} profile) into {folder}")
            train, dev = context.split(info, "train"), context.split(info, "dev")
            train_encoder(
                ref, train.sentences, profile.dev_slice(dev.sentences), info.labels, ref.meta.recipe, folder,
                epochs=profile.epochs, lr=profile.learning_rate,
                max_train_sentences=profile.train_sentence_count(train.sentences), seed=options.seed,
                progress=context.training_progress, dataset=info.name,
                data_sha256={"train": train.sha256, "dev": dev.sha256}, device=device, overwrite=True,
                trust_remote_code=options.trust_remote_code,
            )
            trained_now = True
        checkpoint = _Checkpoint(str(folder), _read_training_record(folder), trained_now)

    say(f"{info.name}: predicting {len(test.sentences)} test sentences "
        f"({PROTOCOL.warmup_batches} warm-up batches, {PROTOCOL.repeats} timed passes)")
    predictor = EncoderPredictor.load(
        folder, info.labels, device=device, label_policy=label_policy,
        trust_remote_code=options.trust_remote_code,
    )
    tokens = [s.tokens for s in test.sentences]
    predictions, timing = run_timed(predictor, tokens, price_per_hour=options.price_per_hour)
    details = {"alignment": _alignment(predictor, tokens)}
    return _score_and_store(context, info, test, config, existing, checkpoint, predictor, predictions, timing,
                            details)


def _score_and_store(context: _Context, info, test, config: dict, existing: str | None, checkpoint: _Checkpoint,
                     predictor, predictions, timing, details: dict) -> EvalOutcome:
    """Score the timed predictions and store the run (one transaction); the same for every family."""
    # The tags that are scored and stored are the timed pass's, hashed once here.
    digest = predictions_sha256(predictions)
    gold = [list(s.tags) for s in test.sentences]
    scores = scoring.score(gold, predictions, types=info.entity_types,
                           bootstrap=BOOTSTRAP_RESAMPLES, seed=BOOTSTRAP_SEED)
    parameters = sum(p.numel() for p in predictor.model.parameters())
    details = details | {
        "training": checkpoint.training,
        "ill_formed": scores.ill_formed,
        "checkpoint": checkpoint.folder,
        "parameters_evaluated": parameters,
        "nerbench_version": __version__,
    }
    record = RunRecord(
        model=_model_meta(context.ref, context.model_id, parameters, context.family),
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
    run_id = context.store.save_run(record, replaces=existing if context.options.force else None)
    parse = (details.get("generation") or {}).get("parse")
    extra = (f"; parse: {parse['missing']} missing, {parse['extra']} extra, {parse['renamed']} renamed, "
             f"{parse['malformed']} malformed lines") if parse else ""
    context.say(f"{info.name}: stored run {run_id}: strict F1 {scores.strict.f1:.4f}, long-entity F1 "
                f"{scores.long_f1:.4f}, {timing.sentences_per_second:.2f} sentences/s{extra}")
    return EvalOutcome(
        info.name, "stored", run_id, scores.strict.f1, scores.long_f1, timing.sentences_per_second,
        timing.cost_usd, checkpoint.trained_now, details, context.profile_name,
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


# --------------------------------------------------------------------------- LLMs


class OnePassStats:
    """A generative predictor whose statistics cover exactly the last pass over the split.

    run_timed asks for the batches once before its warm-up and once at the start of every timed
    pass, so clearing the statistics there leaves those of the last timed pass. Each sentence's
    latency is the wall time of the batch it was generated in (a batch ends when its longest
    answer does).
    """

    def __init__(self, predictor):
        self.inner = predictor
        self.labels, self.batch_size, self.device = predictor.labels, predictor.batch_size, predictor.device
        self.model = predictor.model
        self.precision = getattr(predictor, "precision", None)
        self.latencies: list[float] = []

    def batches(self, sentences):
        self.inner.reset_stats()
        self.latencies = []
        return self.inner.batches(sentences)

    def predict_batch(self, sentences):
        self.inner.synchronize()
        start = time.perf_counter()
        tags = self.inner.predict_batch(sentences)
        self.inner.synchronize()
        self.latencies.extend([time.perf_counter() - start] * len(sentences))
        return tags

    def synchronize(self) -> None:
        self.inner.synchronize()

    def generation_stats(self) -> dict:
        import numpy as np

        stats = self.inner.generation_stats()
        generated = np.array(stats["generated_tokens_per_sentence"] or [0], dtype=float)
        latency = np.array(self.latencies or [0.0], dtype=float)
        return stats | {
            "generated_tokens_per_sentence_mean": float(generated.mean()),
            "sentence_latency_s": list(self.latencies),
            "sentence_latency_p50_s": float(np.percentile(latency, 50)),
            "sentence_latency_p95_s": float(np.percentile(latency, 95)),
        }


def _llm_settings(head: str, quantization: str, recipe) -> dict:
    out = {"head": head, "quantization": quantization}
    if recipe is not None:
        out["lora"] = {"r": recipe.lora_r, "alpha": recipe.lora_alpha, "dropout": recipe.lora_dropout,
                       "target_modules": list(recipe.target_modules)}
    if head == "generative":
        from nerbench.models.generative import BUDGET_EXTRA, BUDGET_RATIO

        out["generation"] = {"decoding": "greedy", "do_sample": False, "num_beams": 1,
                             "max_new_tokens": f"per sentence: ceil({BUDGET_RATIO} x longest single-label "
                                               f"answer in tokens) + {BUDGET_EXTRA}",
                             "prompt": "the paper's Alpaca-style prompt, token:TAG lines"}
    return out


def _evaluate_llm_dataset(context: _Context, info) -> EvalOutcome:
    from nerbench.models.encoder import default_device
    from nerbench.models.llm import adapter_head, load_llm_predictor, training_record, trained_quantized
    from nerbench.models.llm_training import effective_quantization, train_llm
    from nerbench.models.registry import resolve_model
    from nerbench.recipes import LLMRecipe

    ref, options, say = context.ref, context.options, context.say
    device = options.device or default_device()
    recipe = ref.meta.recipe if ref.meta is not None else None
    if ref.source == "adapter":
        head = adapter_head(ref.path)
        if options.head not in (None, head):
            raise NerbenchError(f"--head {options.head}: the adapter {ref.path} was trained for the {head} head")
        quantization = NF4 if trained_quantized(ref.path) else "none"
        recipe_dump = training_record(ref.path).get("recipe")
        recipe = LLMRecipe.model_validate({k: v for k, v in recipe_dump.items() if k in LLMRecipe.model_fields}) \
            if recipe_dump else None
    else:
        head = options.head or (recipe.head if recipe is not None else "token")
        quantization = (effective_quantization(recipe or LLMRecipe(), options.quantize, device)
                        if context.fine_tune else "none")
    if options.quantize is not None and not context.fine_tune:
        raise NerbenchError("--quantize: applies to training; this model is evaluated as it is")
    profile = profile_for(options.profile, LLM, head)
    test = context.split(info, "test")
    config = _run_config(context, test, device, profile=profile, head=head,
                         label_policy="first" if head == "token" else None,
                         precision=PROTOCOL.precision(LLM, quantized=quantization == NF4, device=device),
                         llm=_llm_settings(head, quantization, recipe))
    existing = _stored_run(context, info, config)
    if existing is not None and not options.force:
        return _skip(context, info, existing)

    checkpoint, model = _Checkpoint(), ref
    if context.fine_tune:
        folder = checkpoint_dir(options.runs_dir, context.model_id, info.name, options.profile, head)
        done = _is_trained(folder) and training_record(folder).get("llm", {}).get("quantization") == quantization
        trained_now = False
        if done and not options.force:
            say(f"{info.name}: using the fine-tuned adapter in {folder}")
        else:
            say(f"{info.name}: no fine-tuned {head}-head adapter of {context.model_id} yet: training it "
                f"({profile.name} profile, {quantization} base) into {folder}")
            train, dev = context.split(info, "train"), context.split(info, "dev")
            train_llm(
                ref, train.sentences, profile.dev_slice(dev.sentences), info.labels, info.entity_types, recipe, folder,
                head=head, quantize=quantization, epochs=profile.epochs, lr=profile.learning_rate,
                max_train_sentences=profile.train_sentence_count(train.sentences),
                gradient_accumulation_steps=profile.gradient_accumulation_steps, seed=options.seed,
                progress=context.training_progress, dataset=info.name,
                data_sha256={"train": train.sha256, "dev": dev.sha256}, device=device, overwrite=True,
                trust_remote_code=options.trust_remote_code,
            )
            trained_now = True
        checkpoint = _Checkpoint(str(folder), _read_training_record(folder), trained_now)
        model = resolve_model(folder)
    elif ref.source == "adapter":
        checkpoint = _Checkpoint(training=training_record(ref.path) or None)

    slow = " (generative tagging: slow on a CPU)" if head == "generative" and not device.startswith("cuda") else ""
    say(f"{info.name}: predicting {len(test.sentences)} test sentences with the {head} head{slow} "
        f"({PROTOCOL.warmup_batches} warm-up batches, {PROTOCOL.repeats} timed passes)")
    predictor = load_llm_predictor(model, info.labels, info.entity_types, head=head, device=device,
                                   trust_remote_code=options.trust_remote_code)
    timed = OnePassStats(predictor) if head == "generative" else predictor
    tokens = [s.tokens for s in test.sentences]
    predictions, timing = run_timed(timed, tokens, price_per_hour=options.price_per_hour)
    details: dict = {}
    if head == "generative":
        stats = timed.generation_stats()
        timing = timing.with_generation(stats)
        details["generation"] = {k: stats[k] for k in ("sentences", "generated_tokens", "stopped_at_limit",
                                                       "max_new_tokens", "ignored_generation_defaults", "parse")}
    else:
        details["alignment"] = _alignment(predictor, tokens)
    return _score_and_store(context, info, test, config, existing, checkpoint, predictor, predictions, timing,
                            details)
