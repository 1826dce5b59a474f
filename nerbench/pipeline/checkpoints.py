"""Where a fine-tuned checkpoint lives, and whether it is there: one answer for `train` and `eval`.

A checkpoint is named by its whole training identity (`nerbench.record.Training`: base weights,
dataset, head, quantization, budget, effective recipe, seed), so a run with another seed or label
policy never finds, and never relabels, the weights of another. The identity is also written
beside the weights and compared on reuse.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from nerbench.errors import NerbenchError
from nerbench.record import Training

IDENTITY_FILE = "training-identity.json"
DIGEST_LENGTH = 10


def checkpoint_dir(runs_dir: Path, model_id: str, training: Training) -> Path:
    """runs/<model>/<dataset>/<head>-<budget>-<digest>; a hub id `org/name` as `org--name`."""
    model = model_id.strip("/").replace("/", "--")
    return (
        Path(runs_dir)
        / model
        / training.dataset
        / (f"{training.head}-{training.budget.name}-{training.digest[:DIGEST_LENGTH]}")
    )


def clear_identity(folder: Path) -> None:
    """Before training into `folder`: until the new identity is written, nothing there counts as trained."""
    (folder / IDENTITY_FILE).unlink(missing_ok=True)


def write_identity(folder: Path, training: Training) -> None:
    (folder / IDENTITY_FILE).write_text(training.model_dump_json(indent=2) + "\n", encoding="utf-8")


def is_trained(folder: Path, training: Training) -> bool:
    """A finished training of exactly this identity. training.json is written after the weights,
    and the identity file after training.json, so its presence marks a finished training."""
    path = folder / IDENTITY_FILE
    if not path.is_file() or not any(folder.glob("*.safetensors")):
        return False
    try:
        stored = Training.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        return False
    return stored == training


def read_training_record(folder: Path) -> dict:
    path = folder / "training.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NerbenchError(f"{path}: unreadable training record ({err})") from None
    if not isinstance(data, dict):
        raise NerbenchError(f"{path}: not a training record (not a JSON object)")
    return data


def weights_sha256(folder: Path) -> str:
    """One digest over the folder's safetensors files (name and content), to pin what was evaluated."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.safetensors")):
        digest.update(path.name.encode("utf-8") + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
