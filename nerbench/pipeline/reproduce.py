"""`nerbench reproduce`: re-run a submission's own weights under the timing protocol on this machine.

A submission is tags plus self-reported timing. When it names its weights (its `[weights]` section:
a Hugging Face id pinned to a commit, optionally with an adapter, or for local testing a folder
inside the submission), this loads them the way `nerbench eval` loads a checkpoint evaluated as it
is — through `evaluate()`, safetensors only, never the model's own code — predicts every test split
the submission has predictions for, and compares the new tags with the submitted ones:

- agreement: the share of word tags that are identical (over every token of the split);
- F1 difference: the re-run's strict F1 minus the submitted predictions' re-scored strict F1.

The rule (nerbench.shards.is_reproduced): at least 99.5% identical tags and |ΔF1| <= 0.005.
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
                             "reproduced", "rule", "submitted_hardware"}

With `shards`, each re-run is also written as a shard file (`<dataset>-<run id>.shard.json`), the
way results come back from the reference runner: `.github/workflows/reference.yml` uploads them, a
maintainer commits them under `leaderboard/reproduced/<submission id>/`, and the site workflow
ingests them after the submissions, checking and re-scoring each (nerbench.shards: what is trusted
in a shard, and why).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nerbench.errors import NerbenchError
from nerbench.pipeline.evaluate import EvalOptions, EvalOutcome, evaluate
from nerbench.shards import SHARD_SUFFIX, agreement, reproduction_link, strict_f1, write_shard
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


@dataclass
class Reproduction:
    dataset: str
    run_id: str
    status: str  # "stored" | "skipped" (already stored, linked to this submission's content)
    link: dict[str, Any]
    device_name: str | None
    shard: Path | None = None  # the shard file written (with --shards)


def shard_path(folder: Path, dataset: str, run_id: str) -> Path:
    """One file per re-run: a re-run on other hardware (another run id) does not replace it."""
    return folder / f"{dataset}-{run_id}{SHARD_SUFFIX}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # the store's convention: naive UTC


class _LinkingSink:
    """Saves each re-run to the store, linked to the submission: its details name the submission
    and its agreement with the submitted tags, and it keeps the submission's model record. With a
    shards folder, each saved run is also written there as a shard (what the published site ingests)."""

    def __init__(self, db: Path, v: Validation, shards: Path | None):
        assert v.submission is not None and v.content_sha256 is not None
        self.db, self.v, self.shards = db, v, shards
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
        assert v.submission is not None and v.content_sha256 is not None
        found = agreement(
            v.predictions[dataset], result.predictions, v.scores[dataset].strict.f1, strict_f1(result.metrics)
        )
        link = reproduction_link(v.submission.id, v.content_sha256, found, v.submission.hardware.model_dump())
        result = replace(
            result,
            model=model_meta(v.submission),
            details=(result.details or {}) | {"reproduces": link},
            created_at=result.created_at or _now(),  # the same in the store and the shard
        )
        with Store(self.db) as store:
            if replaces is None and store.has_run(result.record.run_id):
                replaces = result.record.run_id  # the unlinked run of the same weights, measured anew
            run_id = store.save_run(result, replaces=replaces)
        shard = self._write_shard(result)
        device = (result.timing or {}).get("device_name")
        self.saved[dataset] = Reproduction(dataset, run_id, "stored", link, device, shard)
        return run_id

    def _write_shard(self, result: RunResult) -> Path | None:
        if self.shards is None:
            return None
        assert self.v.submission is not None
        cell = {"reproduces": self.v.submission.id, "dataset": result.record.dataset}
        return write_shard(shard_path(self.shards, result.record.dataset, result.record.run_id), result, cell=cell)

    def skipped(self, dataset: str, run_id: str) -> Reproduction:
        """A linked re-run found stored: reported, and written as a shard from the store."""
        with Store(self.db) as store:
            result = _stored_result(store, run_id)
        device = (result.timing or {}).get("device_name")
        link = (result.details or {})["reproduces"]
        return Reproduction(dataset, run_id, "skipped", link, device, self._write_shard(result))


def _stored_result(store: Store, run_id: str) -> RunResult:
    """A stored run as `save_run` took it (what a shard holds)."""
    run = store.run(run_id)
    model = store.model(run["model_id"])
    assert model is not None  # a stored run's model is stored
    return RunResult(
        model=model["meta"],
        record=run["record"],
        predictions=store.predictions(run_id),
        predictions_sha256=run["predictions_sha256"],
        metrics=store.metrics(run_id),
        timing=store.timing(run_id),
        environment=store.environment(run_id),
        source=run["source"],
        self_reported=bool(run["self_reported"]),
        status=run["status"],
        created_at=run["created_at"],
        details=run["details"],
    )


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

    from nerbench.models.registry import hub_offline, read_adapter_config

    try:
        folder = Path(
            snapshot_download(
                adapter_id,
                revision=revision,
                local_files_only=hub_offline(),  # as the base model is looked up: the cache only, offline
                allow_patterns=[
                    "adapter_config.json",
                    "adapter_model.safetensors",
                    "tokenizer*",
                    "special_tokens_map.json",
                    # written by `nerbench train` beside the adapter: the head's label order, window,
                    # word position and base quantization are read from it (without it, other tags)
                    "training.json",
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
    shards: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
    allow_random_init: bool = False,  # tests only, as for evaluate
) -> list[Reproduction]:
    """Re-run a valid submission's weights on its datasets; one linked run per dataset. With `shards`,
    each re-run (measured now or found stored) is also written to that folder as a shard file."""
    v = validate(path, data_dir)
    if not v.ok:
        listed = "; ".join(str(p) for p in v.problems[:5])
        raise NerbenchError(f"{shown(str(v.path), quote=False)}: not reproduced, the submission is invalid: {listed}")
    s = v.submission
    assert s is not None
    model, revision = _weights_arg(v)
    _refuse_remote_code(model, revision)
    _check_owner(db, v)
    sink = _LinkingSink(db, v, shards)
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
    return [sink.saved.get(o.dataset) or sink.skipped(o.dataset, o.run_id) for o in outcomes]
