"""TEST DATA: typed run records for tests that write runs to a store without running a model."""

from __future__ import annotations

from typing import Any

from nerbench.recipes import EncoderRecipe, LLMRecipe
from nerbench.record import Bootstrap, Budget, RunRecord, Submitted, Training, Weights


def run_record(
    model_id: str = "test-model",
    family: str = "encoder",
    dataset: str = "bc5cdr",
    dataset_sha256: str = "f" * 64,
    *,
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    submission: str | None = None,
    **changes: Any,
) -> RunRecord:
    """A record of a made-up run; `profile` adds a training identity with that budget, `submission`
    makes it a submitted run with that submission id."""
    weights = Weights(name=f"test/{model_id}", source="hub", hf_id=f"test/{model_id}")
    fields: dict[str, Any] = dict(
        model_id=model_id,
        family=family,
        dataset=dataset,
        dataset_sha256=dataset_sha256,
        weights=weights,
        bootstrap=Bootstrap(resamples=1000, seed=0),
        nerbench_version="test",
    )
    if profile is not None:
        recipe = EncoderRecipe() if family == "encoder" else LLMRecipe()
        fields["training"] = Training(
            base=weights,
            dataset=dataset,
            head=changes.get("head", "token"),
            quantization=changes.get("quantization", "none"),
            budget=Budget(name=profile, epochs=epochs),
            recipe=recipe,
            seed=seed,
        )
    if submission is not None:
        fields["weights"] = Weights(name=f"test/{model_id}", source="submission", hf_id=f"test/{model_id}")
        fields["submission"] = Submitted(
            id=submission, content_sha256="c" * 64, training={"regime": "full"}, hardware={"device": "test"}
        )
    return RunRecord(**(fields | changes))
