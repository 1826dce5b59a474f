"""Model resolution: a catalogue id, a local checkpoint folder, a PEFT adapter folder or a Hugging
Face id, resolved to local safetensors files.

The entries are nerbench.models.catalogue, their schema nerbench.models.schema; each entry locates
its own packaged weights (`OfflinePackage.locate`), so resolution only adds the hub and folders.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from nerbench.errors import NerbenchError
from nerbench.models.catalogue import REGISTRY
from nerbench.models.schema import ModelMeta

# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's files are, and what is known about it.

    `path` is always a local folder holding config.json and *.safetensors (hub ids are resolved
    to their cached snapshot), so every loader downstream reads local safetensors only.
    """

    name: str  # what the user asked for, as a display name
    source: Literal["registry", "folder", "hub", "adapter"]
    path: Path  # for "adapter": the adapter folder (adapter_config.json + adapter_model.safetensors)
    hf_id: str | None
    revision: str | None
    meta: ModelMeta | None
    base: ResolvedModel | None = None  # for "adapter": the base model it was trained on

    @property
    def family(self) -> str | None:
        """ "llm" for LLM registry entries and adapters on them, "encoder" for encoder entries."""
        if self.meta is not None:
            return self.meta.family
        return self.base.family or "llm" if self.base is not None else None

    def describe(self) -> dict:
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "hf_id": self.hf_id,
            "revision": self.revision,
            "registry_id": self.meta.id if self.meta else None,
            "package": self.meta.package.requirement if self.meta and self.meta.package else None,
        }
        if self.base is not None:
            out["base"] = self.base.describe()
        return out


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_HUB_FILES = [
    "config.json",
    "*.safetensors",
    "*.safetensors.index.json",
    "tokenizer*",
    "vocab*",
    "special_tokens_map.json",
    "merges.txt",
    "spm.model",
    "*.model",
    "training.json",
]


def check_checkpoint_folder(folder: Path) -> Path:
    """Refuse folders that cannot be loaded safely: no config, unreadable config, no safetensors."""
    if not folder.exists():
        raise NerbenchError(f"checkpoint folder {folder} does not exist")
    if not folder.is_dir():
        raise NerbenchError(f"{folder} is not a folder (a checkpoint is a folder with config.json)")
    config = folder / "config.json"
    if not config.is_file():
        raise NerbenchError(f"{folder} holds no config.json: not a Hugging Face checkpoint folder")
    read_config(config)
    if not any(folder.glob("*.safetensors")):
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in {".bin", ".pt", ".pth"})
        found = f" (found {', '.join(pickled)})" if pickled else ""
        raise NerbenchError(
            f"{folder} holds no *.safetensors weights{found}: nerbench loads safetensors only, "
            "never pickled weights; convert them with safetensors first"
        )
    return folder


def read_config(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise NerbenchError(f"{path}: not UTF-8 text ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise NerbenchError(f"{path}:{err.lineno}: corrupt JSON ({err.msg})") from None
    except OSError as err:
        raise NerbenchError(f"{path}: cannot be read ({err.strerror})") from None
    if not isinstance(data, dict) or "model_type" not in data:
        raise NerbenchError(f"{path}: not a model config (no 'model_type' field)")
    return data


def hub_offline() -> bool:
    # Read at call time: huggingface_hub reads the variable once, at import.
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE)


def _from_hub(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    offline = hub_offline()
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=_HUB_FILES, local_files_only=offline)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, FileNotFoundError):
        at = f" at revision {revision}" if revision else ""
        why = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached"
        raise NerbenchError(
            f"model {repo_id}{at} is neither a local folder nor in the Hugging Face cache, and "
            f"{why}: download it where the hub is reachable, or pass a local checkpoint folder"
        ) from None
    except HfHubHTTPError as err:
        raise NerbenchError(f"model {repo_id}: the hub refused it ({err})") from None
    return check_checkpoint_folder(Path(folder))


ADAPTER_CONFIG = "adapter_config.json"


def is_adapter_folder(path: Path) -> bool:
    return (path / ADAPTER_CONFIG).is_file()


def read_adapter_config(folder: Path) -> dict:
    path = folder / ADAPTER_CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, OSError) as err:
        raise NerbenchError(f"{path}: cannot be read ({err})") from None
    except json.JSONDecodeError as err:
        raise NerbenchError(f"{path}:{err.lineno}: corrupt JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise NerbenchError(f"{path}: not a PEFT adapter config (not a JSON object)")
    return data


def _resolve_adapter(folder: Path, revision: str | None) -> ResolvedModel:
    """A PEFT adapter folder and the base model named by its `base_model_name_or_path`."""
    config = read_adapter_config(folder)
    base_name = config.get("base_model_name_or_path")
    if not isinstance(base_name, str) or not base_name:
        raise NerbenchError(f"{folder / ADAPTER_CONFIG}: field base_model_name_or_path is missing")
    if not (folder / "adapter_model.safetensors").is_file():
        raise NerbenchError(f"{folder} holds no adapter_model.safetensors: nerbench loads safetensors adapters only")
    try:
        base = resolve_model(base_name, revision)
    except NerbenchError as err:
        raise NerbenchError(
            f"{folder / ADAPTER_CONFIG}: base_model_name_or_path {base_name!r} is unavailable ({err})"
        ) from None
    if base.source == "adapter":
        raise NerbenchError(f"{folder / ADAPTER_CONFIG}: the base model {base_name!r} is itself an adapter")
    return ResolvedModel(os.fspath(folder), "adapter", folder, None, None, None, base)


def resolve_model(arg: str | os.PathLike, revision: str | None = None) -> ResolvedModel:
    """A registry id, a local checkpoint folder, a PEFT adapter folder (its base resolved the
    same way) or a Hugging Face id `org/name`, resolved to local files."""
    text = os.fspath(arg)
    if text in REGISTRY:
        meta = REGISTRY[text]
        if meta.package is not None:
            folder = check_checkpoint_folder(meta.package.locate())
            return ResolvedModel(text, "registry", folder, meta.hf_id, meta.revision, meta)
        rev = revision or meta.revision
        return ResolvedModel(text, "registry", _from_hub(meta.hf_id, rev), meta.hf_id, rev, meta)
    path = Path(text).expanduser()
    if path.is_dir() and is_adapter_folder(path):
        return _resolve_adapter(path, revision)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1:
        return ResolvedModel(text, "folder", check_checkpoint_folder(path), None, None, None)
    if _HUB_ID.match(text):
        return ResolvedModel(text, "hub", _from_hub(text, revision), text, revision, None)
    raise NerbenchError(
        f"unknown model {text!r}; registered models: {', '.join(REGISTRY)} "
        "(or pass a local checkpoint folder or a Hugging Face id org/name)"
    )
