"""`nerbench reproduce`: re-run a submission's own weights under the timing protocol on this machine.

A submission is tags plus self-reported timing. When it names its weights (its `[weights]` section:
a Hugging Face id pinned to a commit, optionally with an adapter, or for local testing a folder
inside the submission), this loads them the way `nerbench eval` loads a checkpoint evaluated as it
is — through `evaluate()`, safetensors only, never the model's own code — predicts every test split
the submission has predictions for, and compares the new tags with the submitted ones:

- agreement: the share of word tags that are identical (over every token of the split);
- F1 difference: the re-run's strict F1 minus the submitted predictions' re-scored strict F1.

The rule (REPRODUCED_RULE, `is_reproduced`): at least 99.5% identical tags and |ΔF1| <= 0.005.
On the same kind of hardware a deterministic model gives 100% and 0; GPU kernels (another GPU,
another library version, bf16 accumulation order) flip a few tags near decision boundaries, which
this allows; a real difference in the weights or the tagging does not pass. A CPU re-run of a GPU
submission runs in fp32 rather than bf16 and may flip more: it is judged by the same rule.

The run is nerbench's own measurement: stored under the submission's model id with its timing
measured here (so its track is "timed by nerbench"; never the reference track unless it was timed
on the reference hardware, which nerbench.tracks derives from the measured device: a CPU never
is), and linked to the submission in its details:

    details["reproduces"] = {"submission", "content_sha256", "agreement", "f1_delta",
                             "submitted_f1", "reproduced_f1", "tokens", "differing_tags",
                             "reproduced", "rule"}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from nerbench import scoring
from nerbench.errors import NerbenchError
from nerbench.pipeline.evaluate import EvalOptions, EvalOutcome, evaluate
from nerbench.store import RunResult, Store
from nerbench.submissions import (
    LOCAL_OWNER,
    Validation,
    local_weights_folder,
    model_meta,
    reproduced_submission,
    shown,
    validate,
)

# What agreement counts as reproduced: stated once, here (and in the README's words).
MIN_AGREEMENT = 0.995
MAX_F1_DELTA = 0.005
REPRODUCED_RULE = f">= {MIN_AGREEMENT:.1%} identical tags and |delta F1| <= {MAX_F1_DELTA}"


def is_reproduced(agreement: float, f1_delta: float) -> bool:
    """Whether a re-run agrees with the submitted tags closely enough to count as reproduced."""
    return agreement >= MIN_AGREEMENT and abs(f1_delta) <= MAX_F1_DELTA


@dataclass(frozen=True)
class Agreement:
    tokens: int
    differing: int
    submitted_f1: float
    reproduced_f1: float

    @property
    def share(self) -> float:
        return 1.0 if self.tokens == 0 else (self.tokens - self.differing) / self.tokens

    @property
    def f1_delta(self) -> float:
        return self.reproduced_f1 - self.submitted_f1

    @property
    def reproduced(self) -> bool:
        return is_reproduced(self.share, self.f1_delta)


def agreement(
    submitted: Sequence[Sequence[str]], reproduced: Sequence[Sequence[str]], submitted_f1: float, reproduced_f1: float
) -> Agreement:
    """Tag-by-tag agreement of two taggings of one split (the same sentences, the same words)."""
    if len(submitted) != len(reproduced):
        raise NerbenchError(f"{len(reproduced)} sentences re-predicted, but {len(submitted)} submitted")
    tokens = differing = 0
    for number, (a, b) in enumerate(zip(submitted, reproduced), start=1):
        if len(a) != len(b):
            raise NerbenchError(f"sentence {number}: {len(b)} tags re-predicted, but {len(a)} submitted")
        tokens += len(a)
        differing += sum(x != y for x, y in zip(a, b))
    return Agreement(tokens, differing, submitted_f1, reproduced_f1)


def _strict_f1(metrics: Sequence[Any]) -> float:
    for row in metrics:
        values = row if isinstance(row, dict) else vars(row)
        if (
            values["scheme"] == "strict"
            and values["entity_type"] == scoring.ALL
            and values["length_bucket"] == scoring.ALL
        ):
            return float(values["f1"])
    raise NerbenchError("the re-run has no strict F1 over all entities")


@dataclass
class Reproduction:
    dataset: str
    run_id: str
    status: str  # "stored" | "skipped" (already stored, linked to this submission's content)
    link: dict[str, Any]
    device_name: str | None


class _LinkingSink:
    """Saves each re-run to the store, linked to the submission: its details name the submission
    and its agreement with the submitted tags, and it keeps the submission's model record."""

    def __init__(self, db: Path, v: Validation):
        assert v.submission is not None and v.content_sha256 is not None
        self.db, self.v = db, v
        self.saved: dict[str, Reproduction] = {}

    def _linked(self, details: Any) -> bool:
        link = details.get("reproduces") if isinstance(details, dict) else None
        return isinstance(link, dict) and link.get("content_sha256") == self.v.content_sha256

    def has_run(self, run_id: str) -> bool:
        # A run of these weights stored without the link (a plain `nerbench eval`) is measured again.
        with Store(self.db) as store:
            return store.has_run(run_id) and self._linked(store.run(run_id).get("details"))

    def save_run(self, result: RunResult, *, replaces: str | None = None) -> str:
        v, dataset = self.v, result.record.dataset
        assert v.submission is not None
        found = agreement(
            v.predictions[dataset], result.predictions, v.scores[dataset].strict.f1, _strict_f1(result.metrics)
        )
        link = {
            "submission": v.submission.id,
            "content_sha256": v.content_sha256,
            "agreement": found.share,
            "f1_delta": found.f1_delta,
            "submitted_f1": found.submitted_f1,
            "reproduced_f1": found.reproduced_f1,
            "tokens": found.tokens,
            "differing_tags": found.differing,
            "reproduced": found.reproduced,
            "rule": REPRODUCED_RULE,
            "submitted_hardware": v.submission.hardware.model_dump(),
        }
        result = replace(result, model=model_meta(v.submission), details=(result.details or {}) | {"reproduces": link})
        with Store(self.db) as store:
            if replaces is None and store.has_run(result.record.run_id):
                replaces = result.record.run_id  # the unlinked run of the same weights, measured anew
            run_id = store.save_run(result, replaces=replaces)
        device = (result.timing or {}).get("device_name")
        self.saved[dataset] = Reproduction(dataset, run_id, "stored", link, device)
        return run_id


def _weights_arg(v: Validation) -> tuple[str, str | None]:
    """What `evaluate` is asked to load (a folder, a hub id or an adapter folder) and at which revision."""
    s = v.submission
    assert s is not None
    if s.weights is None:
        raise NerbenchError(
            f"{shown(str(v.path), quote=False)}: the submission names no weights (no [weights] section), "
            "so there is nothing to re-run"
        )
    local = local_weights_folder(v)
    if local is not None:
        from nerbench.models.registry import is_adapter_folder

        if is_adapter_folder(local):
            raise NerbenchError(
                f"weights.path {shown(s.weights.path)}: a local adapter names its base by a path of its own; "
                "a local weights folder must be a whole checkpoint (name an adapter by adapter_id on the hub)"
            )
        return os.fspath(local), None
    assert s.weights.hf_id is not None
    if s.weights.adapter_id is None:
        return s.weights.hf_id, s.weights.revision
    return os.fspath(
        _hub_adapter(s.weights.adapter_id, s.weights.adapter_revision, s.weights.hf_id)
    ), s.weights.revision


def _hub_adapter(adapter_id: str, revision: str | None, base_id: str) -> Path:
    """A PEFT adapter from the hub at its pinned revision (safetensors only), on the declared base."""
    from huggingface_hub import snapshot_download

    from nerbench.models.registry import read_adapter_config

    try:
        folder = Path(
            snapshot_download(
                adapter_id,
                revision=revision,
                allow_patterns=[
                    "adapter_config.json",
                    "adapter_model.safetensors",
                    "tokenizer*",
                    "special_tokens_map.json",
                ],
            )
        )
    except Exception as err:  # the hub's many errors: one line that names the adapter
        raise NerbenchError(f"adapter {adapter_id} at revision {revision}: cannot be downloaded ({err})") from None
    base = read_adapter_config(folder).get("base_model_name_or_path")
    if base != base_id:
        raise NerbenchError(
            f"adapter {adapter_id}: its adapter_config.json names the base {base!r}, but the submission's "
            f"weights.hf_id is {base_id!r}"
        )
    return folder


def _refuse_remote_code(model: str, revision: str | None) -> None:
    """A config that asks for the model's own code (auto_map) is refused before anything loads."""
    from nerbench.models.registry import read_config, resolve_model

    ref = resolve_model(model, revision)
    for folder in (ref.path, ref.base.path if ref.base is not None else None):
        config = Path(folder) / "config.json" if folder is not None else None
        if config is not None and config.is_file() and "auto_map" in read_config(config):
            raise NerbenchError(
                f"{config}: auto_map asks for the model's own code, which nerbench never runs (no trust_remote_code)"
            )


def _check_owner(db: Path, v: Validation) -> None:
    """The model id must be free or the submission's own (as `ingest` requires)."""
    assert v.submission is not None
    sid, model_id = v.submission.id, v.submission.model.id
    with Store(db) as store:
        model = store.model(model_id)
        owners = {str(model["meta"].get("submission") or LOCAL_OWNER)} if model is not None else set()
        for run in store.runs(model_id=model_id):
            submitted = run["record"].submission if run["source"] == "submission" else None
            owners.add(submitted.id if submitted is not None else reproduced_submission(run) or LOCAL_OWNER)
    others = sorted(owners - {sid})
    if others:
        raise NerbenchError(
            f"model id {shown(model_id)} is held in {db} by {', '.join(map(shown, others))}, not by submission "
            f"{shown(sid)}: its re-run cannot be stored under it"
        )


def reproduce(
    path: str | os.PathLike,
    *,
    db: Path,
    data_dir: Path | None = None,
    device: str | None = None,
    runs_dir: Path = Path("runs"),
    force: bool = False,
    say: Callable[[str], None] = lambda _: None,
    allow_random_init: bool = False,  # tests only, as for evaluate
) -> list[Reproduction]:
    """Re-run a valid submission's weights on its datasets; one linked run per dataset."""
    v = validate(path, data_dir)
    if not v.ok:
        listed = "; ".join(str(p) for p in v.problems[:5])
        raise NerbenchError(f"{shown(str(v.path), quote=False)}: not reproduced, the submission is invalid: {listed}")
    s = v.submission
    assert s is not None
    model, revision = _weights_arg(v)
    _refuse_remote_code(model, revision)
    _check_owner(db, v)
    sink = _LinkingSink(db, v)
    options = EvalOptions(
        datasets=sorted(v.scores),
        data_dir=data_dir,
        db=db,
        runs_dir=runs_dir,
        device=device,
        force=force,
        revision=revision,
        trust_remote_code=False,
        name=s.model.id,
        head=s.training.head if s.model.family == "llm" else None,
        allow_random_init=allow_random_init,
        sink=sink,
    )
    outcomes: list[EvalOutcome] = evaluate(model, options, say=say)
    out = []
    for outcome in outcomes:
        if outcome.dataset in sink.saved:
            out.append(sink.saved[outcome.dataset])
            continue
        with Store(db) as store:  # skipped: already stored and linked to this content
            run = store.run(outcome.run_id)
            timing = store.timing(outcome.run_id) or {}
        out.append(
            Reproduction(
                outcome.dataset, outcome.run_id, "skipped", run["details"]["reproduces"], timing.get("device_name")
            )
        )
    return out
