"""What `eval` and `train` check before any heavy import (torch, transformers): the names given.

A typo in a dataset or model name is refused in well under a second, before the model libraries
load (seconds) and long before any training.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nerbench.datasets import get_dataset
from nerbench.pipeline.profiles import check_profile


def check_names(model: str, datasets: Sequence[str], profile: str | None = None, revision: str | None = None) -> None:
    """Refuse an unknown dataset, profile or model name (NerbenchError naming it and the known ones)."""
    from nerbench.models.catalogue import REGISTRY

    for name in datasets:
        get_dataset(name)
    if profile is not None:
        check_profile(profile)
    if model in REGISTRY or Path(model).expanduser().exists():
        return  # a registry id, or a folder: loading it checks it
    # Anything else is a hub id or a mistake: resolving it needs no model library (a hub id is
    # looked up in the local cache) and refuses an unknown name with the registered ones.
    from nerbench.models.registry import resolve_model

    resolve_model(model, revision)
